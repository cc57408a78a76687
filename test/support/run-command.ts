/**
 * Runs an mlflowctl command inside the test process, through oclif as bin/run.js does: the built
 * commands (dist/, so build first), the base command's error rendering, and oclif's own error
 * handler printing to stderr and choosing the exit code. The environment is runCli's (a fresh
 * HOME, none of this machine's MLflow, Databricks or AWS settings), and nothing is a terminal.
 * A spawned run costs about half a second (Node, oclif and the imports start anew); this costs a
 * few milliseconds after the first call.
 *
 * Not for what only a real process shows: a secret piped on stdin, a terminal, signals, the exit
 * of the process itself. Those use runCli / runCliOnTerminal.
 */
import {AsyncLocalStorage} from 'node:async_hooks'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'

import {type CliOptions, type CliResult, cliEnv, REPO_ROOT} from './cli.js'

// oclif wraps error messages at the terminal's width, read once when it loads (80 when not on a
// terminal); runCli's processes get OCLIF_COLUMNS. In process, the same through oclif's settings,
// which must be in place before oclif loads.
const COLUMNS = 400
const oclifSettings = globalThis as {oclif?: {columns?: number}}
if (oclifSettings.oclif !== undefined && oclifSettings.oclif.columns !== COLUMNS) {
  throw new Error('test/support/run-command.ts must be imported before anything that loads oclif')
}

oclifSettings.oclif = {columns: COLUMNS}

const oclif = await (async () => {
  const [{run}, {Exit, handle}] = await Promise.all([import('@oclif/core/run'), import('@oclif/core/handle')])
  return {Exit, handle, run}
})()

interface Capture {
  stderr: string
  stdout: string
}

// Only writes made by the command (in its async context) are captured: the test runner writes
// its own reports to stdout meanwhile, and those must pass.
const capture = new AsyncLocalStorage<Capture>()

function intercept(stream: NodeJS.WriteStream, key: keyof Capture): () => void {
  const original = stream.write
  stream.write = function (this: NodeJS.WriteStream, chunk: string | Uint8Array, ...rest: unknown[]): boolean {
    const into = capture.getStore()
    if (!into) return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
    into[key] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
    const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined
    if (callback) process.nextTick(callback)
    return true
  } as NodeJS.WriteStream['write']
  return () => {
    stream.write = original
  }
}

/** Sets an own property for the duration of a call; returns what puts it back. */
function override<T extends object>(target: T, key: PropertyKey, value: unknown): () => void {
  const saved = Object.getOwnPropertyDescriptor(target, key)
  Object.defineProperty(target, key, {configurable: true, value, writable: true})
  return () => {
    if (saved) Object.defineProperty(target, key, saved)
    else delete (target as Record<PropertyKey, unknown>)[key]
  }
}

/** Makes process.env exactly `next` (in place: os.homedir() reads the real environment); returns what restores it. */
function replaceEnv(next: NodeJS.ProcessEnv): () => void {
  const set = (values: NodeJS.ProcessEnv) => {
    for (const key of Object.keys(process.env)) if (!(key in values)) delete process.env[key]
    for (const [key, value] of Object.entries(values)) if (value !== undefined) process.env[key] = value
  }

  const saved = {...process.env}
  set(next)
  return () => set(saved)
}

// process.env, process.exitCode, the streams and oclif's exit hook are the process's: one call at a time.
let queue: Promise<unknown> = Promise.resolve()

/** Runs `mlflowctl <args>` in this process and returns its exit code and output, as runCli would. */
export async function runCommand(args: string[], options: Omit<CliOptions, 'bin' | 'input'> = {}): Promise<CliResult> {
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'mlflowctl-home-')))
  const turn = queue.then(() => runOne(args, cliEnv(home, options.env)))
  queue = turn.catch(() => {})
  return turn
}

async function runOne(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const output: Capture = {stderr: '', stdout: ''}
  let handledExit: number | undefined
  const savedExitCode = process.exitCode
  process.exitCode = undefined
  const restore = [
    replaceEnv(env),
    intercept(process.stdout, 'stdout'),
    intercept(process.stderr, 'stderr'),
    // As runCli without input: stdin an empty pipe (a command that reads it finds no secret
    // rather than waiting on the test runner's), and no terminal (no prompts, no colours).
    override(process, 'stdin', Readable.from([])),
    ...[process.stdout, process.stderr].map((stream) => override(stream, 'isTTY', false)),
    // oclif's handler ends the process with the exit code; here it records it.
    override(oclif.Exit, 'exit', (code = 0) => {
      handledExit = code
    }),
  ]
  try {
    await capture.run(output, async () => {
      try {
        await oclif.run(args, REPO_ROOT)
      } catch (error) {
        await oclif.handle(error as Error)
      }
    })
    const code = handledExit ?? process.exitCode ?? 0
    return {code: Number(code), ...output}
  } finally {
    for (const undo of restore.reverse()) undo()
    process.exitCode = savedExitCode
  }
}
