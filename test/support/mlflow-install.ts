import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {CACHE_DIR, venvBin, venvDir} from './mlflow-versions.js'

const run = promisify(execFile)

/** uv resolves and installs MLflow's ~150 packages in seconds where pip takes minutes. */
const UV_VERSION = '0.13.9'
const STAMP = '.mlflowctl-complete'

function requirement(version: string): string {
  return `mlflow[auth]==${version}`
}

function statusFile(version: string): string {
  return join(CACHE_DIR, `install-${version}.json`)
}

async function sh(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    await run(file, args, {env, maxBuffer: 64 * 1024 * 1024})
  } catch (error) {
    const {stderr, stdout} = error as {stderr?: string; stdout?: string}
    const output = `${stderr ?? ''}${stdout ?? ''}`.trim().split('\n').slice(-15).join('\n')
    throw new Error(`${file} ${args.join(' ')} failed:\n${output}`)
  }
}

let uvReady: Promise<string> | undefined
/** One bootstrap per process, however many versions install at once. */
function ensureUv(): Promise<string> {
  uvReady ??= (async () => {
    const dir = join(CACHE_DIR, `uv-${UV_VERSION}`)
    const uv = join(dir, 'bin', 'uv')
    if (existsSync(uv)) return uv
    await rm(dir, {force: true, recursive: true})
    await mkdir(CACHE_DIR, {recursive: true})
    await sh('python3', ['-m', 'venv', dir])
    await sh(join(dir, 'bin', 'pip'), ['install', '--quiet', `uv==${UV_VERSION}`])
    return uv
  })()
  return uvReady
}

async function isInstalled(version: string): Promise<boolean> {
  try {
    return (await readFile(join(venvDir(version), STAMP), 'utf8')) === requirement(version)
  } catch {
    return false
  }
}

/**
 * Installs `mlflow[auth]==version` into its cached virtual environment unless a complete
 * install is already there. The stamp is written last, so an interrupted install is redone.
 */
export async function installMlflow(version: string): Promise<void> {
  if (await isInstalled(version)) return
  const uv = await ensureUv()
  const dir = venvDir(version)
  await rm(dir, {force: true, recursive: true})
  await sh(uv, ['venv', '--quiet', '--python', 'python3', dir])
  await sh(uv, ['pip', 'install', '--quiet', '--compile-bytecode', '--python', venvBin(version, 'python'), requirement(version)])
  await writeFile(join(dir, STAMP), requirement(version))
}

/** Installs and records the outcome, so each interop test can fail with the reason. */
export async function prepareMlflow(version: string): Promise<{error?: string; ok: boolean; seconds: number}> {
  const started = Date.now()
  let outcome: {error?: string; ok: boolean}
  try {
    await installMlflow(version)
    outcome = {ok: true}
  } catch (error) {
    outcome = {error: (error as Error).message, ok: false}
  }

  await mkdir(CACHE_DIR, {recursive: true})
  await writeFile(statusFile(version), JSON.stringify(outcome))
  return {...outcome, seconds: (Date.now() - started) / 1000}
}

/** The venv's python, or an error that says why MLflow is not there. */
export async function requireMlflow(version: string): Promise<string> {
  if (await isInstalled(version)) return venvBin(version, 'python')
  let reason = 'it was never installed (run the README test command, which installs it)'
  try {
    const status = JSON.parse(await readFile(statusFile(version), 'utf8')) as {error?: string}
    if (status.error) reason = status.error
  } catch {}

  throw new Error(`MLflow ${version} is not available: ${reason}`)
}

/**
 * Adds one Python package (a wheel, `name==version`) to a pinned MLflow's cached environment, for
 * the few tests that need it (psycopg2-binary: MLflow's auth app on PostgreSQL). Beside MLflow's
 * own install, with a stamp of its own, so MLflow's install is never redone for it.
 */
export async function addPythonPackage(version: string, requirement: string): Promise<void> {
  const python = await requireMlflow(version)
  const stamp = join(venvDir(version), `.mlflowctl-extra-${requirement.replaceAll(/[^\w.=-]/g, '_')}`)
  if (existsSync(stamp)) return
  await sh(await ensureUv(), ['pip', 'install', '--quiet', '--only-binary', ':all:', '--python', python, requirement])
  await writeFile(stamp, requirement)
}
