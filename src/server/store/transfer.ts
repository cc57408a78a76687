/**
 * Moving a whole store: `store import --from-mlflow` (MLflow's own auth database into a store) and
 * `store copy` (one store into another). Both load the destination in one write and only when it
 * is empty, then open it again and compare what it holds with what was meant to go in.
 */
import {access, rm} from 'node:fs/promises'

import {ExitCode, UserError} from '../../core/errors.js'
import {type ContentCounts, contentCounts, contentDigest, isEmptyContent, readContent} from './content.js'
import {readMlflowAuthDb, type Skipped} from './mlflow-auth-db.js'
import {openStore, parseStoreLocation, storeUserError} from './open.js'
import {redactUrl, type StoreContent, StoreError} from './store.js'

export interface Summary {
  counts: ContentCounts
  digest: string
}

export interface ImportResult {
  destination: Summary
  from: string
  revision: null | string
  schema: string
  skipped: Skipped[]
  to: string
}

export interface CopyResult {
  destination: Summary
  from: string
  source: Summary
  to: string
}

function summarize(content: StoreContent): Summary {
  return {counts: contentCounts(content), digest: contentDigest(content)}
}

function notEmpty(location: string, content: StoreContent): UserError {
  const {roles, users} = contentCounts(content)
  return new UserError(`The store ${redactUrl(location)} is not empty (${users} users, ${roles} roles): nothing was changed`, {
    code: 'RESOURCE_ALREADY_EXISTS',
    exit: ExitCode.AlreadyExists,
    hint: 'Import or copy into a new store (a file that does not exist yet), then point serve at it.',
  })
}

/**
 * Loads `content` into the store at `location` when it is empty, then opens it afresh and checks
 * it holds exactly that (same digest). A JSON file this created is removed again when the load
 * is refused, so a failed run leaves nothing behind.
 */
async function loadInto(location: string, content: StoreContent): Promise<Summary> {
  const parsed = parseStoreLocation(location)
  const existed = parsed.kind === 'json' ? await exists(parsed.path) : true
  const store = await openStore(location)
  let loaded = false
  try {
    if (!isEmptyContent(readContent(store))) throw notEmpty(location, readContent(store))
    try {
      await store.importContent(content)
    } catch (error) {
      if (error instanceof StoreError && error.code === 'RESOURCE_ALREADY_EXISTS') throw notEmpty(location, readContent(store))
      throw storeUserError(error)
    }

    loaded = true
  } finally {
    await store.close()
    if (!loaded && !existed && parsed.kind === 'json') await removeJsonStore(parsed.path)
  }

  // What is durable, not what this process remembers: the store read back from where it lives.
  const written = await contentAt(location)
  const expected = summarize(content)
  const actual = summarize(written)
  if (actual.digest !== expected.digest) {
    throw new UserError(
      `The store ${redactUrl(location)} does not hold what was written to it (digest ${actual.digest}, expected ${expected.digest}; counts ${JSON.stringify(actual.counts)}, expected ${JSON.stringify(expected.counts)})`,
      {code: 'VERIFICATION_FAILED', exit: ExitCode.Unexpected, hint: 'Another process may have written to it meanwhile; do not use it before checking.'},
    )
  }

  return actual
}

/** Everything the store at `location` (which must exist) holds, read through the store itself. */
async function contentAt(location: string): Promise<StoreContent> {
  const store = await openStore(location, {mustExist: true})
  try {
    return readContent(store)
  } finally {
    await store.close()
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

async function removeJsonStore(path: string): Promise<void> {
  await Promise.all([path, `${path}.journal`].map((file) => rm(file, {force: true}).catch(() => {})))
}

/** MLflow's basic-auth database at `from` into the empty store at `to`. */
export async function importFromMlflow(from: string, to: string): Promise<ImportResult> {
  // Read and checked whole before the destination is touched: a bad source changes nothing.
  const source = await readMlflowAuthDb(from)
  const destination = await loadInto(to, source.content)
  return {destination, from: redactUrl(from), revision: source.revision, schema: source.schema, skipped: source.skipped, to: redactUrl(to)}
}

/** Everything in the store at `from` into the empty store at `to`, verified by counts and digest. */
export async function copyStore(from: string, to: string): Promise<CopyResult> {
  const content = await contentAt(from)
  const expected = summarize(content)
  const destination = await loadInto(to, content)
  return {destination, from: redactUrl(from), source: expected, to: redactUrl(to)}
}

/** `users 3, roles 4, role_permissions 9, assignments 4; sha256 …`: one line for people. */
export function summaryLine(summary: Summary): string {
  const counts = Object.entries(summary.counts)
    .map(([table, count]) => `${table} ${count}`)
    .join(', ')
  return `${counts}; sha256 ${summary.digest}`
}
