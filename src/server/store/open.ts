/**
 * The one place a store location becomes a Store: a path opens the JSON file store; a
 * `postgresql://` URL the database store. serve and the store commands (import, copy) both open
 * theirs here, so every adapter is reachable wherever a location is taken, read the same way.
 */
import {access} from 'node:fs/promises'

import {ExitCode, UserError} from '../../core/errors.js'
import {JsonFileStore, type JsonFileStoreOptions} from './json-store.js'
import {type PgStoreOptions} from './pg-store.js'
import {isPostgresUrl, redactUrl, type Store, StoreFileError} from './store.js'

export type StoreLocation = {kind: 'json'; path: string} | {kind: 'postgresql'; url: string}

/** A URL of another scheme is refused rather than taken for a file name. */
const OTHER_URL = /^[a-z][a-z0-9+.-]*:\/\//i

export function parseStoreLocation(location: string): StoreLocation {
  if (location === '') throw new UserError('A store location is empty', {exit: ExitCode.Usage, hint: 'Give a JSON file path or a postgresql:// URL.'})
  if (isPostgresUrl(location)) return {kind: 'postgresql', url: location}
  if (OTHER_URL.test(location))
    throw new UserError(`${redactUrl(location)} is not a store location mlflowctl knows`, {
      exit: ExitCode.Usage,
      hint: 'Give a JSON file path or a postgresql:// URL.',
    })
  return {kind: 'json', path: location}
}

export interface OpenStoreOptions {
  /** Refuse a location that does not exist yet (a source), instead of creating it (a destination). */
  mustExist?: boolean
}

export interface AdapterOptions {
  json?: JsonFileStoreOptions
  postgres?: PgStoreOptions
}

/**
 * The adapter a location names, opened with the options for its kind; its failures are the
 * adapter's own (StoreFileError). The database driver is loaded only for a database.
 */
export async function openAdapter(location: string, options: AdapterOptions = {}): Promise<Store> {
  const parsed = parseStoreLocation(location)
  if (parsed.kind === 'json') return JsonFileStore.open(parsed.path, options.json)
  const {PgStore} = await import('./pg-store.js')
  return PgStore.open(parsed.url, options.postgres)
}

/**
 * Opens the store at `location` for a command: for its one run, so it neither watches a file nor
 * follows a database for other processes' changes. A JSON file is created when missing unless
 * `mustExist` (a database must hold a store already); what cannot be used (invalid, unreachable,
 * locked) is a UserError that says why, with serve's exit codes.
 */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  const parsed = parseStoreLocation(location)
  if (options.mustExist && parsed.kind === 'json') {
    try {
      await access(parsed.path)
    } catch {
      throw new UserError(`The store ${parsed.path} does not exist`, {code: 'STORE_NOT_FOUND', exit: ExitCode.Usage})
    }
  }

  try {
    return await openAdapter(location, {
      json: {watch: false},
      postgres: {applicationName: 'mlflowctl store', create: !options.mustExist, follow: false},
    })
  } catch (error) {
    throw storeUserError(error)
  }
}

/**
 * A store that cannot be used is the user's to fix (or, when locked, to wait for): no stack trace,
 * a documented exit code, a hint for a file or a database. Anything else as it is.
 */
export function storeUserError(error: unknown): unknown {
  if (!(error instanceof StoreFileError)) return error
  const database = isPostgresUrl(error.path)
  switch (error.problem) {
    case 'locked': {
      return new UserError(error.message, {
        cause: error,
        code: 'STORE_LOCKED',
        exit: ExitCode.InUse,
        hint: 'Another mlflowctl (a serve, or a command on the same store) is using it: stop it, or start again once it is done.',
      })
    }

    case 'missing': {
      return new UserError(error.message, {cause: error, code: 'STORE_NOT_FOUND', exit: ExitCode.Usage})
    }

    case 'invalid': {
      return new UserError(error.message, {
        cause: error,
        code: 'STORE_INVALID',
        exit: ExitCode.Usage,
        hint: database
          ? 'Correct the tables, or restore the database from a backup. mlflowctl never overwrites a store it cannot read.'
          : 'Correct the file, or restore it from a backup. mlflowctl never overwrites a store it cannot read.',
      })
    }

    default: {
      return new UserError(error.message, {
        cause: error,
        code: 'STORE_UNUSABLE',
        exit: ExitCode.Usage,
        hint: database
          ? 'Check that the database is up, and that the URL names it with a user that may create tables there (the password in the URL or PGPASSWORD).'
          : 'Give a store path mlflowctl can read and write (a file, in a directory it may create files in).',
      })
    }
  }
}
