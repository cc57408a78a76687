/**
 * The one place a store location becomes a Store: a path opens the JSON file store; a
 * `postgresql://` URL names a database store. Used by the store commands (import, copy), so every
 * adapter is reachable wherever a location is taken.
 */
import {access} from 'node:fs/promises'

import {ExitCode, UserError} from '../../core/errors.js'
import {JsonFileStore} from './json-store.js'
import {type Store, StoreFileError} from './store.js'

export type StoreLocation = {kind: 'json'; path: string} | {kind: 'postgresql'; url: string}

const POSTGRES = /^postgres(?:ql)?(?:\+[a-z0-9]+)?:\/\//i

/** A URL of another scheme is refused rather than taken for a file name. */
const OTHER_URL = /^[a-z][a-z0-9+.-]*:\/\//i

export function parseStoreLocation(location: string): StoreLocation {
  if (location === '') throw new UserError('A store location is empty', {exit: ExitCode.Usage, hint: 'Give a JSON file path or a postgresql:// URL.'})
  if (POSTGRES.test(location)) return {kind: 'postgresql', url: location}
  if (OTHER_URL.test(location))
    throw new UserError(`${describeLocation(location)} is not a store location mlflowctl knows`, {
      exit: ExitCode.Usage,
      hint: 'Give a JSON file path or a postgresql:// URL.',
    })
  return {kind: 'json', path: location}
}

/** The location for messages: a URL without its password. */
export function describeLocation(location: string): string {
  try {
    const url = new URL(location)
    if (url.password) url.password = '***'
    return url.protocol === 'file:' ? location : url.href
  } catch {
    return location
  }
}

export interface OpenStoreOptions {
  /** Refuse a location that does not exist yet (a source), instead of creating it (a destination). */
  mustExist?: boolean
}

/**
 * Opens the store at `location`. A JSON file is created when missing unless `mustExist`; what
 * cannot be used (invalid, unreadable, locked) is a UserError that says why, with serve's exit codes.
 */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  const parsed = parseStoreLocation(location)
  if (parsed.kind === 'postgresql') {
    throw new UserError(`PostgreSQL stores are not available in this mlflowctl yet (${describeLocation(parsed.url)})`, {
      code: 'UNSUPPORTED_STORE',
      exit: ExitCode.Unsupported,
      hint: 'Use a JSON file store for now.',
    })
  }

  if (options.mustExist) {
    try {
      await access(parsed.path)
    } catch {
      throw new UserError(`The store ${parsed.path} does not exist`, {code: 'STORE_NOT_FOUND', exit: ExitCode.Usage})
    }
  }

  try {
    // A command's store lives for one run: no watching for other processes' changes.
    return await JsonFileStore.open(parsed.path, {watch: false})
  } catch (error) {
    throw storeUserError(error)
  }
}

/** A store's own error as the CLI reports it; anything else as it is. */
export function storeUserError(error: unknown): unknown {
  if (!(error instanceof StoreFileError)) return error
  return new UserError(error.message, {
    cause: error,
    code: error.problem === 'locked' ? 'STORE_LOCKED' : 'STORE_UNUSABLE',
    exit: error.problem === 'locked' ? ExitCode.InUse : ExitCode.Usage,
  })
}
