/**
 * Crash-safe file replacement for files that hold secrets. Plain module (no oclif).
 *
 * - atomicWriteFile(path, data, {mode}): writes a uniquely named temp file next to the target
 *   (created exclusively with `mode`), fsyncs it, renames it over the target and fsyncs the
 *   directory. A crash at any instant leaves either the old or the new file, and the new content
 *   is durable once the promise resolves. The temp file is removed on failure. When the target is
 *   a symlink (dotfile managers), the file it points to is replaced and the link kept.
 * - writeFileOnce(path, data, {mode}): the same, but never replaces a file already at `path`
 *   (a backup that must keep the first content it was given); resolves false when one was there.
 * - ensurePrivateDir(dir): creates a directory (and missing parents) with mode 0700. Directories
 *   that already exist are left alone, so a user's home is never chmodded.
 * - tempPathFor(target): the temp name atomicWriteFile uses beside a target.
 * - syncDirectory(dir): makes renames and creations in a directory durable.
 * - looseModeWarning(path): the warning to give before a secrets file other users could read is
 *   rewritten as 0600; undefined when its mode is already private.
 */
import {randomBytes} from 'node:crypto'
import {chmod, type FileHandle, link, mkdir, open, realpath, rename, rm, stat} from 'node:fs/promises'
import {basename, dirname, join, relative, sep} from 'node:path'

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code
}

/** The file a write should replace: the symlink's target when `path` is a symlink. */
async function writeTarget(path: string): Promise<string> {
  try {
    return await realpath(path)
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return path
    throw error
  }
}

/** Makes the rename itself durable: the directory entry must reach the disk too. */
export async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync; NTFS journals the rename itself.
  if (process.platform === 'win32') return
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } catch (error) {
    // Some filesystems (network, FUSE) do not implement fsync on directories.
    if (errorCode(error) !== 'EINVAL' && errorCode(error) !== 'ENOTSUP') throw error
  } finally {
    await handle.close()
  }
}

/** A fresh name beside `target` for a file that will be renamed over it: `.<name>.<pid>.<12 hex>.tmp`. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
}

export async function atomicWriteFile(path: string, data: string | Buffer, options: {mode: number}): Promise<void> {
  const target = await writeTarget(path)
  const dir = dirname(target)
  const temp = tempPathFor(target)
  let handle: FileHandle | undefined = await open(temp, 'wx', options.mode)
  try {
    // The umask may have cleared bits of the requested mode; the result must be exactly `mode`.
    await handle.chmod(options.mode)
    await handle.writeFile(data)
    await handle.sync()
    await handle.close()
    handle = undefined
    await rename(temp, target)
  } catch (error) {
    await handle?.close().catch(() => {})
    await rm(temp, {force: true}).catch(() => {})
    throw error
  }

  await syncDirectory(dir)
}

export async function writeFileOnce(path: string, data: string | Buffer, options: {mode: number}): Promise<boolean> {
  const dir = dirname(path)
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(temp, 'wx', options.mode)
  try {
    try {
      await handle.chmod(options.mode)
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }

    // link() fails rather than replace an existing file, and shows the complete file or none.
    await link(temp, path)
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false
    throw error
  } finally {
    await rm(temp, {force: true}).catch(() => {})
  }

  await syncDirectory(dir)
  return true
}

export async function ensurePrivateDir(dir: string): Promise<void> {
  const firstCreated = await mkdir(dir, {mode: 0o700, recursive: true})
  if (firstCreated === undefined) return
  // mkdir's mode is filtered by the umask; set 0700 exactly, on the directories we created only.
  const created = [firstCreated]
  for (const part of relative(firstCreated, dir).split(sep).filter(Boolean)) {
    created.push(join(created.at(-1)!, part))
  }

  for (const path of created) await chmod(path, 0o700)
}

export async function looseModeWarning(path: string): Promise<string | undefined> {
  const {mode} = await stat(path)
  if ((mode & 0o077) === 0 || process.platform === 'win32') return undefined
  return `${path} was accessible to other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); it is now 0600.`
}
