/**
 * A real PostgreSQL for the tests of serve's database store: Debian's packages (installed with
 * apt-get on first use when missing, so a later run finds them), a cluster in a temporary data
 * directory on a free loopback port, stopped when the test is done or the process exits. The
 * server refuses to run as root, so as root it runs as `nobody`.
 */
import {execFile, execFileSync} from 'node:child_process'
import {existsSync, readdirSync} from 'node:fs'
import {chmod, chown, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import pg from 'pg'

import {freePort, randomSecret} from './mlflow-server.js'

const run = promisify(execFile)
const ROOT = '/usr/lib/postgresql'
const NOBODY = 65_534

export interface RunningPostgres {
  /** A connection string for the test's superuser (password auth over TCP). */
  url: string
  /** Creates a database of this name; resolves with its connection string. */
  database(name: string): Promise<string>
  /** A superuser query, for setting up and for killing a replica's connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>
  /** Stops the server (fast shutdown) and removes its data directory. */
  stop(): Promise<void>
  /** Stops accepting and drops every connection (immediate shutdown); start() brings it back on the same port and data. */
  pause(): Promise<void>
  start(): Promise<void>
}

function binDir(): string | undefined {
  if (!existsSync(ROOT)) return undefined
  const versions = readdirSync(ROOT)
    .filter((name) => existsSync(join(ROOT, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))
  return versions.length > 0 ? join(ROOT, versions[0], 'bin') : undefined
}

let installing: Promise<string> | undefined
/** The server's bin directory, installing Debian's postgresql package once when it is missing. */
export function ensurePostgres(): Promise<string> {
  installing ??= (async () => {
    const found = binDir()
    if (found) return found
    if (process.getuid?.() !== 0) throw new Error(`PostgreSQL is not installed (no ${ROOT}/*/bin/initdb), and only root may apt-get install it`)
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], {
      env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'},
      maxBuffer: 64 << 20,
    })
    const installed = binDir()
    if (!installed) throw new Error('apt-get install postgresql finished, but no initdb was found')
    return installed
  })()
  return installing
}

const running = new Set<() => void>()
process.once('exit', () => {
  for (const kill of running) kill()
})

/** One query on its own connection to the database at `url`. */
export async function queryAt<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({connectionString: url})
  await client.connect()
  try {
    return await client.query<R>(text, values)
  } finally {
    await client.end()
  }
}

export async function startPostgres(): Promise<RunningPostgres> {
  const bin = await ensurePostgres()
  const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-pg-'))
  const data = join(dir, 'data')
  const asRoot = process.getuid?.() === 0
  const password = randomSecret()
  const pwfile = join(dir, 'pw')
  await writeFile(pwfile, password)
  if (asRoot) {
    await chown(dir, NOBODY, NOBODY)
    await chown(pwfile, NOBODY, NOBODY)
  }

  await chmod(dir, 0o700)
  const as = (file: string, args: string[]) => (asRoot ? ['runuser', ['-u', 'nobody', '--', file, ...args]] : [file, args]) as [string, string[]]
  const sh = async (file: string, args: string[]) => {
    const [command, argv] = as(join(bin, file), args)
    try {
      await run(command, argv, {cwd: dir})
    } catch (error) {
      const {stderr, stdout} = error as {stderr?: string; stdout?: string}
      throw new Error(`${file} ${args.join(' ')} failed: ${stderr ?? ''}${stdout ?? ''}`)
    }
  }

  await sh('initdb', ['-D', data, '-U', 'mlflowctl', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8'])
  const port = await freePort()
  const options = `-h 127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c full_page_writes=off -c max_connections=200`
  const start = () => sh('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', join(dir, 'server.log'), '-o', options])
  await start()
  const kill = () => {
    try {
      const [command, argv] = as(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate'])
      execFileSync(command, argv, {stdio: 'ignore'})
    } catch {}
  }

  running.add(kill)
  const url = `postgresql://mlflowctl:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`
  const query: RunningPostgres['query'] = (text, values) => queryAt(url, text, values)

  return {
    async database(name) {
      await query(`CREATE DATABASE ${name}`)
      const at = new URL(url)
      at.pathname = `/${name}`
      return at.href
    },
    async pause() {
      await sh('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w'])
    },
    query,
    start,
    async stop() {
      running.delete(kill)
      await sh('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w']).catch(() => kill())
      await rm(dir, {force: true, recursive: true})
    },
    url,
  }
}
