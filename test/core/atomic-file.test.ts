import assert from 'node:assert/strict'
import {chmod, mkdir, readdir, readFile, readlink, stat, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {atomicWriteFile, ensurePrivateDir} from '../../src/core/atomic-file.js'
import {modeOf, tempDir} from '../support/files.js'

/** Runs `body` under a umask, restoring the previous one afterwards. */
async function withUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask)
  try {
    return await body()
  } finally {
    process.umask(previous)
  }
}

describe('atomicWriteFile', () => {
  it('creates the file with exactly the requested mode, whatever the umask', async () => {
    const dir = await tempDir('atomic')
    await withUmask(0o077, () => atomicWriteFile(join(dir, 'a'), 'first', {mode: 0o644}))
    assert.equal(await modeOf(join(dir, 'a')), 0o644)
    await withUmask(0o000, () => atomicWriteFile(join(dir, 'b'), 'second', {mode: 0o600}))
    assert.equal(await modeOf(join(dir, 'b')), 0o600)
  })

  it('replaces an existing file, sets its mode, and leaves no temp file behind', async () => {
    const dir = await tempDir('atomic')
    const path = join(dir, 'credentials')
    await writeFile(path, 'old content that is longer than the new one', {mode: 0o644})
    await atomicWriteFile(path, Buffer.from('new ✓'), {mode: 0o600})
    assert.equal(await readFile(path, 'utf8'), 'new ✓')
    assert.equal(await modeOf(path), 0o600)
    assert.deepEqual(await readdir(dir), ['credentials'])
  })

  it('removes its temp file and keeps the target when the rename fails', async () => {
    const dir = await tempDir('atomic')
    // A non-empty directory cannot be replaced by a file: rename fails after the temp is written.
    const path = join(dir, 'target')
    await mkdir(path)
    await writeFile(join(path, 'inside'), 'x')
    await assert.rejects(atomicWriteFile(path, 'data', {mode: 0o600}))
    assert.deepEqual((await readdir(dir)).sort(), ['target'])
    assert.ok((await stat(path)).isDirectory())
  })

  it('writes through a symlink, keeping the link', async () => {
    const dir = await tempDir('atomic')
    await mkdir(join(dir, 'dotfiles'))
    await writeFile(join(dir, 'dotfiles', 'credentials'), 'old')
    await symlink(join(dir, 'dotfiles', 'credentials'), join(dir, 'link'))
    await atomicWriteFile(join(dir, 'link'), 'new', {mode: 0o600})
    assert.equal(await readlink(join(dir, 'link')), join(dir, 'dotfiles', 'credentials'))
    assert.equal(await readFile(join(dir, 'dotfiles', 'credentials'), 'utf8'), 'new')
    assert.deepEqual(await readdir(join(dir, 'dotfiles')), ['credentials'])
  })
})

describe('ensurePrivateDir', () => {
  it('creates missing directories, parents included, with mode 0700', async () => {
    const dir = await tempDir('atomic')
    await withUmask(0o022, () => ensurePrivateDir(join(dir, 'a', 'b', 'c')))
    for (const path of [join(dir, 'a'), join(dir, 'a', 'b'), join(dir, 'a', 'b', 'c')]) assert.equal(await modeOf(path), 0o700, path)
  })

  it('sets 0700 even when the umask would take owner bits away', async () => {
    const dir = await tempDir('atomic')
    await withUmask(0o177, () => ensurePrivateDir(join(dir, '.mlflow')))
    assert.equal(await modeOf(join(dir, '.mlflow')), 0o700)
  })

  it('leaves an existing directory, such as the home directory, as it is', async () => {
    const dir = await tempDir('atomic')
    await chmod(dir, 0o755)
    await mkdir(join(dir, 'existing'), {mode: 0o750})
    await chmod(join(dir, 'existing'), 0o750)
    await ensurePrivateDir(join(dir, 'existing'))
    await ensurePrivateDir(join(dir, 'existing', 'new'))
    assert.equal(await modeOf(dir), 0o755)
    assert.equal(await modeOf(join(dir, 'existing')), 0o750)
    assert.equal(await modeOf(join(dir, 'existing', 'new')), 0o700)
  })
})
