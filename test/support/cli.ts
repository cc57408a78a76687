import {execFile} from 'node:child_process'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

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
  env?: NodeJS.ProcessEnv
  /** HOME for the CLI; by default a fresh empty dir, so no real credentials are read or written. */
  home?: string
  input?: string
}

/** Runs mlflowctl as a user would, in its own process, and returns its exit code and output. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'mlflowctl-home-')))
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(MLFLOW_|DATABRICKS_|AWS_|NODE_OPTIONS)/.test(key))),
    HOME: home,
    NO_COLOR: '1',
    ...options.env,
  }
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [options.bin ?? CLI, ...args], {env, timeout: 60_000}, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({code, stderr, stdout})
    })
    child.stdin!.end(options.input ?? '')
  })
}
