/**
 * The file operations of the JSON store: reading its bytes, noticing a change by its stat, finding
 * the real file behind a symlink, and the cross-process lock (`<file>.lock`, proper-lockfile).
 */
import {readFile, realpath, stat} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {lock} from 'proper-lockfile'

import {StoreFileError} from './store.js'

const LOCK_RETRY_MAX_TIMEOUT_MS = 200

export function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code
}

/** The file's bytes, or undefined when there is no file. */
export async function readStoreBytes(path: string, location: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    throw new StoreFileError(location, `Cannot read the auth store ${location}: ${(error as Error).message}. It was left unchanged.`, {cause: error})
  }
}

/**
 * Changes whenever the file is replaced or rewritten. Only a hint that a reload is due: whether
 * the content changed is decided by its hash.
 */
export async function statSignature(path: string): Promise<string> {
  try {
    const info = await stat(path, {bigint: true})
    return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`
  } catch (error) {
    return `error:${errorCode(error) ?? 'unknown'}`
  }
}

/** The file that writes replace and the lock guards: a symlink's target, so every path to it agrees. */
export async function resolveTarget(location: string): Promise<string> {
  try {
    return await realpath(location)
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw cannotOpen(location, error)
    try {
      return join(await realpath(dirname(location)), basename(location))
    } catch (inner) {
      throw cannotOpen(location, inner)
    }
  }
}

function cannotOpen(location: string, error: unknown): StoreFileError {
  return new StoreFileError(location, `Cannot open the auth store ${location}: ${(error as Error).message}`, {cause: error})
}

/** Runs `body` holding the cross-process lock `<target>.lock`. */
export async function withFileLock<T>(
  target: string,
  location: string,
  staleMs: number,
  onCompromised: (error: Error) => void,
  body: () => Promise<T>,
): Promise<T> {
  let release: () => Promise<void>
  let compromised = false
  try {
    release = await lock(target, {
      lockfilePath: `${target}.lock`,
      onCompromised(error) {
        // proper-lockfile's default throws from a timer, which would kill the server.
        compromised = true
        onCompromised(error)
      },
      realpath: false,
      // Wait long enough to outlast a dead holder's stale lock, then give up with an error.
      retries: {
        factor: 1.5,
        maxTimeout: LOCK_RETRY_MAX_TIMEOUT_MS,
        minTimeout: 2,
        randomize: true,
        retries: Math.ceil((3 * staleMs) / LOCK_RETRY_MAX_TIMEOUT_MS) + 20,
      },
      stale: staleMs,
    })
  } catch (error) {
    const locked = errorCode(error) === 'ELOCKED'
    const reason = locked ? `another process holds ${target}.lock and keeps it fresh` : (error as Error).message
    throw new StoreFileError(location, `Cannot lock the auth store ${location}: ${reason}. Nothing was changed.`, {
      cause: error,
      problem: locked ? 'locked' : 'unreadable',
    })
  }

  try {
    return await body()
  } finally {
    if (!compromised) await release().catch((error: Error) => onCompromised(error))
  }
}
