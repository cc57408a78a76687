/** File-system helpers the unit and interop tests share: scratch folders, homes, file modes. */
import {mkdir, mkdtemp, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {after, before} from 'node:test'

/** A fresh, empty folder under the system's temp dir, named after `purpose`. */
export async function tempDir(purpose: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `mlflowctl-${purpose}-`))
}

/**
 * Fresh paths in one scratch folder of the test file that calls this at its top level (made
 * before its tests, removed after them): `fresh('store.json')` is `<folder>/1-store.json`, then 2-, ...
 */
export function scratchFiles(purpose: string): (name: string) => string {
  let dir: string
  let n = 0
  before(async () => {
    dir = await tempDir(purpose)
  })
  after(() => rm(dir, {force: true, recursive: true}))
  return (name) => join(dir, `${++n}-${name}`)
}

/** The permission bits of a file or folder (0o600, 0o700, ...). */
export async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

export interface Home {
  env: {HOME: string}
  home: string
  /** The file `homeWith` was asked about, whether or not it wrote it. */
  path: string
}

/**
 * A fresh home in which the file `locate(home)` holds `content` (mode 0600, its folder created),
 * or does not exist when `content` is undefined.
 */
export async function homeWith(locate: (home: string) => string, content?: string): Promise<Home> {
  const home = await tempDir('home')
  const path = locate(home)
  if (content !== undefined) {
    await mkdir(dirname(path), {recursive: true})
    await writeFile(path, content, {mode: 0o600})
  }

  return {env: {HOME: home}, home, path}
}
