import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {type Json} from './rest.js'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CLI = join(REPO_ROOT, 'bin', 'run.js')

export interface CliResult {
  code: number
  stderr: string
  stdout: string
}

export interface CliOptions {
  /** The built CLI to run; by default the repository's bin/run.js (compiled dist/). */
  bin?: string
  /** The working directory; by default the test process's. */
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** HOME for the CLI; by default a fresh empty dir, so no real credentials are read or written. */
  home?: string
  input?: string
}

/** Asserts that a --json run succeeded (exit 0) and returns the JSON document it printed. */
export function okJson(result: CliResult): Json {
  assert.equal(result.code, 0, `mlflowctl failed (${result.code}): ${result.stderr}${result.stdout}`)
  return JSON.parse(result.stdout) as Json
}

/** The environment of a user with a fresh HOME and none of the MLflow, Databricks or AWS settings of this machine. */
export function cliEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(MLFLOW_|DATABRICKS_|AWS_|NODE_OPTIONS|NODE_TEST)/.test(key))),
    HOME: home,
    NO_COLOR: '1',
    // oclif wraps messages at 80 columns when not on a terminal; tests match whole sentences.
    OCLIF_COLUMNS: '400',
    // serve's log as on a terminal (without one it writes JSON lines): tests match its sentences.
    MLFLOWCTL_LOG_FORMAT: 'pretty',
    ...extra,
  }
}

/** Runs mlflowctl as a user would, in its own process, and returns its exit code and output. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'mlflowctl-home-')))
  const env = cliEnv(home, options.env)
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [options.bin ?? CLI, ...args], {cwd: options.cwd, env, timeout: 60_000}, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({code, stderr, stdout})
    })
    child.stdin!.end(options.input ?? '')
  })
}

const PTY_RUN = join(REPO_ROOT, 'test', 'support', 'py', 'pty_run.py')

export interface PtyStep {
  expect: string
  send: string
}

/** Runs mlflowctl on a pseudo-terminal (stdin, stdout and stderr are a TTY) and answers prompts. */
export async function runCliOnTerminal(
  args: string[],
  steps: PtyStep[],
  options: Omit<CliOptions, 'input'> = {},
): Promise<{code: number; output: string; unmatched: null | string}> {
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'mlflowctl-home-')))
  const env = {...cliEnv(home, options.env), TERM: 'xterm'}
  const request = JSON.stringify({argv: [process.execPath, options.bin ?? CLI, ...args], env, steps, timeout: 40})
  return new Promise((resolve, reject) => {
    const child = execFile('python3', [PTY_RUN], {maxBuffer: 16 * 1024 * 1024, timeout: 60_000}, (error, stdout, stderr) => {
      if (error) reject(new Error(`pty_run failed: ${error.message}\n${stderr}`))
      else {
        const result = JSON.parse(stdout) as {exit: number; output: string; unmatched: null | string}
        resolve({code: result.exit, output: result.output, unmatched: result.unmatched})
      }
    })
    child.stdin!.end(request)
  })
}
