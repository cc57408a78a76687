import {Plugin} from '@oclif/core'
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtemp, readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {promisify} from 'node:util'

import {type Manifest, renderCommandsDoc} from '../../scripts/commands-doc.js'
import {REPO_ROOT, runCli} from '../support/cli.js'

const exec = promisify(execFile)
const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {version: string}

describe('the mlflowctl package', () => {
  it('commits an oclif.manifest.json that matches the commands', async () => {
    const plugin = new Plugin({errorOnManifestCreate: true, ignoreManifest: true, root: REPO_ROOT, type: 'core'})
    await plugin.load()
    const fresh = JSON.parse(JSON.stringify(plugin.manifest))
    const committed = JSON.parse(await readFile(join(REPO_ROOT, 'oclif.manifest.json'), 'utf8'))
    assert.deepEqual(committed, fresh, 'oclif.manifest.json is stale: run `npm run manifest` and commit it')
  })

  it('commits a docs/commands.md that matches the commands', async () => {
    const manifest = JSON.parse(await readFile(join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as Manifest
    const committed = await readFile(join(REPO_ROOT, 'docs', 'commands.md'), 'utf8')
    assert.equal(committed, renderCommandsDoc(manifest), 'docs/commands.md is stale: run `npm run manifest && npm run docs:commands` and commit it')
    for (const id of Object.keys(manifest.commands).filter((id) => !id.startsWith('__')))
      assert.ok(committed.includes(`## \`mlflowctl ${id.replaceAll(':', ' ')}\``), id)
  })

  it('prints its version and help', async () => {
    const version = await runCli(['--version'])
    assert.equal(version.code, 0)
    assert.match(version.stdout, new RegExp(`^mlflowctl/${pkg.version.replaceAll('.', '\\.')} `))
    const help = await runCli(['--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /USAGE\n {2}\$ mlflowctl \[COMMAND\]/)
  })

  it('packs into a tarball that installs into an empty prefix and runs', async () => {
    const work = await mkdtemp(join(tmpdir(), 'mlflowctl-pack-'))
    const {stdout} = await exec('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024})
    const [{filename, files}] = JSON.parse(stdout) as Array<{filename: string; files: Array<{path: string}>}>
    const paths = files.map((file) => file.path)
    assert.ok(paths.includes('oclif.manifest.json'), 'the manifest ships in the package')
    assert.ok(paths.includes('dist/index.js'), 'the compiled code ships in the package')
    assert.ok(!paths.some((path) => path.startsWith('src/') || path.startsWith('test/')), 'sources and tests stay out')

    const prefix = join(work, 'prefix')
    await exec('npm', ['install', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, filename)], {maxBuffer: 16 * 1024 * 1024})
    const bin = join(prefix, 'node_modules', '.bin', 'mlflowctl')
    const version = await runCli(['--version'], {bin})
    assert.equal(version.code, 0, version.stderr)
    assert.match(version.stdout, new RegExp(`^mlflowctl/${pkg.version.replaceAll('.', '\\.')} `))
    const help = await runCli(['--help'], {bin})
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /\$ mlflowctl \[COMMAND\]/)
  })
})
