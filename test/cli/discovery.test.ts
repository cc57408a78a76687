/**
 * Finding one's way around the built CLI: unknown commands, help and version flags, the auth
 * topic, one spelling per flag, shell completion. Spawns bin/run.js; no MLflow server.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdir, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {promisify} from 'node:util'

import {ExitCode} from '../../src/core/errors.js'
import {CLI, cliEnv, runCli, runCliOnTerminal} from '../support/cli.js'
import {tempDir} from '../support/files.js'

const exec = promisify(execFile)

describe('an unknown command', () => {
  it('is named as typed, with spaces, and the closest command is suggested (exit 2)', async () => {
    const result = await runCli(['user', 'list'])
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(result.stderr, /"user list" is not a mlflowctl command/)
    assert.match(result.stderr, /Did you mean `mlflowctl users list`\?/)
    assert.doesNotMatch(result.stderr, /user:list/)
  })

  it('keeps the arguments that followed, hides the flags, and never echoes a flag value', async () => {
    const result = await runCli(['perms', 'grant', 'experment', '1', '--user', 'alice', '--permission', 'secret-ish-READ'])
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(result.stderr, /"perms grant experment 1" is not a mlflowctl command/)
    assert.match(result.stderr, /Did you mean `mlflowctl perms grant experiment 1 …`\?/)
    assert.doesNotMatch(result.stderr, /secret-ish|perms:grant/)
  })

  it('answers in JSON under --json, and suggests nothing for a word that is no typo', async () => {
    const json = await runCli(['users', 'lst', '--json'])
    assert.equal(json.code, ExitCode.Usage)
    assert.deepEqual(JSON.parse(json.stdout), {
      error: {
        code: 'COMMAND_NOT_FOUND',
        exit: 2,
        hint: 'Did you mean `mlflowctl users list …`? (`mlflowctl users list --help` shows how to use it.)',
        message: '"users lst" is not a mlflowctl command',
      },
    })
    const nonsense = await runCli(['frobnicate'])
    assert.equal(nonsense.code, ExitCode.Usage)
    assert.match(nonsense.stderr, /"frobnicate" is not a mlflowctl command/)
    assert.match(nonsense.stderr, /`mlflowctl --help` lists the commands/)
    assert.doesNotMatch(nonsense.stderr, /Did you mean/)
  })

  it('gets the same answer when help is asked for it', async () => {
    const result = await runCli(['users', 'lst', '-h'])
    assert.equal(result.code, ExitCode.Usage)
    assert.match(result.stderr, /"users lst" is not a mlflowctl command/)
    assert.match(result.stderr, /Did you mean `mlflowctl users list`\?/)
  })

  it('on a terminal, suggests without asking and runs nothing', async () => {
    const result = await runCliOnTerminal(['perms', 'revok', 'experiment', '1', '--user', 'alice', '--yes'], [])
    assert.equal(result.code, ExitCode.Usage, result.output)
    assert.match(result.output, /Did you mean `mlflowctl perms revoke experiment 1 …`\?/)
    assert.doesNotMatch(result.output, /\? \(Y\/n\)|Revoked|Not logged in/)
  })
})

describe('help and version', () => {
  it('-h is --help on every command and topic', async () => {
    for (const args of [['users', 'list', '-h'], ['perms', 'grant', 'experiment', '-h'], ['-h'], ['auth', '-h']]) {
      const result = await runCli(args)
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stdout, /USAGE\n {2}\$ mlflowctl/)
    }
  })

  it('`version`, `-v` and `--version` print the same line; `version --json` the parts', async () => {
    const outputs = await Promise.all([['version'], ['-v'], ['--version']].map((args) => runCli(args)))
    for (const result of outputs) assert.equal(result.code, 0, result.stderr)
    assert.match(outputs[0].stdout, /^mlflowctl\/\d+\.\d+\.\d+ \S+ node-v\d+/)
    assert.equal(outputs[1].stdout, outputs[0].stdout)
    assert.equal(outputs[2].stdout, outputs[0].stdout)
    const json = JSON.parse((await runCli(['version', '--json'])).stdout) as Record<string, string>
    assert.equal(json.node, process.version)
    assert.match(outputs[0].stdout, new RegExp(`^mlflowctl/${json.version.replaceAll('.', '\\.')} ${json.platform}-${json.arch} `))
  })

  it('perms --help lists perms list once, as a command; perms list --help lists its kinds', async () => {
    const perms = await runCli(['perms', '--help'])
    assert.equal(perms.code, 0, perms.stderr)
    assert.equal(perms.stdout.match(/^ {2}perms list /gm)?.length, 1, perms.stdout)
    assert.match(perms.stdout, /COMMANDS\n {2}perms list /)
    const list = await runCli(['perms', 'list', '--help'])
    assert.match(list.stdout, /perms list experiment[\s\S]*perms list model[\s\S]*perms list scorer/)
  })

  it('the auth topic has login, logout, status, switch and profiles', async () => {
    const auth = await runCli(['auth'])
    assert.equal(auth.code, 0, auth.stderr)
    for (const name of ['login', 'logout', 'profiles', 'status', 'switch']) assert.match(auth.stdout, new RegExp(`^ {2}auth ${name} `, 'm'))
    const login = await runCli(['auth', 'login', '--help'])
    assert.match(login.stdout, /\$ mlflowctl auth login/)
  })
})

describe('one spelling per flag', () => {
  it('-u is --user in login as in perms; --username still works but is not shown', async () => {
    const help = await runCli(['login', '--help'])
    assert.match(help.stdout, /-u, --user=<value>/)
    assert.doesNotMatch(help.stdout, /--username/)
    const perms = await runCli(['perms', 'get', 'model', '--help'])
    assert.match(perms.stdout, /-u, --user=<value>/)
    // The old spelling parses: the login gets as far as the (unreachable) server.
    const old = await runCli(['login', '--tracking-uri', 'http://127.0.0.1:9', '--username', 'alice', '--password-stdin'], {
      env: {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0'},
      input: 'pw',
    })
    assert.equal(old.code, ExitCode.Unavailable, old.stderr)
  })
})

describe('shell completion', () => {
  /** What bash offers for the words typed, through the script `completion bash` prints. */
  async function bashCompletes(home: string, words: string[]): Promise<string[]> {
    const bin = join(home, 'bin')
    await mkdir(bin, {recursive: true})
    await symlink(CLI, join(bin, 'mlflowctl')).catch(() => undefined)
    const script = (await exec(process.execPath, [CLI, 'completion', 'bash'], {env: cliEnv(home)})).stdout
    const words_ = ['mlflowctl', ...words].map((word) => `'${word}'`).join(' ')
    const {stdout} = await exec(
      'bash',
      ['-c', `${script}\nCOMP_WORDS=(${words_}); COMP_CWORD=${words.length}; _mlflowctl_complete; printf '%s\\n' "\${COMPREPLY[@]}"`],
      {env: cliEnv(home, {PATH: `${bin}:${process.env.PATH}`})},
    )
    return stdout.split('\n').filter(Boolean)
  }

  it('bash completes commands, subcommands, flags, flag values and stored profile names', async () => {
    const home = await tempDir('completion')
    await mkdir(join(home, '.mlflow'))
    await writeFile(
      join(home, '.mlflow', 'credentials'),
      '[mlflowctl.profile.staging]\ntracking_uri = http://127.0.0.1:9\nmlflow_tracking_username = a\nmlflow_tracking_password = b\n',
      {mode: 0o600},
    )
    assert.deepEqual(await bashCompletes(home, ['perms', 'gr']), ['grant'])
    assert.deepEqual(await bashCompletes(home, ['auth', 's']), ['switch', 'status'])
    assert.deepEqual(await bashCompletes(home, ['perms', 'grant', 'model', 'm', '--perm']), ['--permission'])
    assert.deepEqual(await bashCompletes(home, ['perms', 'grant', 'model', 'm', '--permission', 'M']), ['MANAGE'])
    assert.deepEqual(await bashCompletes(home, ['auth', 'switch', '']), ['staging'])
    assert.deepEqual(await bashCompletes(home, ['users', 'list', '--profile', 'st']), ['staging'])
  })

  it('prints a script for zsh and fish that asks mlflowctl itself', async () => {
    for (const shell of ['zsh', 'fish']) {
      const result = await runCli(['completion', shell])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stdout, /__complete --/)
    }

    const bad = await runCli(['completion', 'tcsh'])
    assert.equal(bad.code, ExitCode.Usage)
  })
})
