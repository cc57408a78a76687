/**
 * What the benches share: the load generator (wrk), nginx in a throwaway prefix, Debian packages
 * installed where missing, and the machine's description. Loopback only.
 */
import {type ChildProcess, execFileSync, spawn, spawnSync} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'

export {freePort} from '../support/mlflow-server.js'

/** Installs the Debian packages that give these commands, when one is missing (the bench runs as root on Debian). */
export function ensureCommands(packages: Record<string, string>): void {
  const missing = Object.entries(packages).filter(([command]) => spawnSync('sh', ['-c', `command -v ${command}`]).status !== 0)
  if (missing.length === 0) return
  const names = missing.map(([, name]) => name)
  console.error(`installing ${names.join(', ')} with apt-get`)
  const env = {...process.env, DEBIAN_FRONTEND: 'noninteractive'}
  execFileSync('apt-get', ['update', '-qq'], {env, stdio: 'ignore'})
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], {env, stdio: 'ignore'})
}

export interface Load {
  /** Requests answered with a status other than 2xx/3xx, or socket errors: the figures are void unless 0. */
  errors: number
  /** The slowest request: the tail a percentile hides. */
  max: number
  p50: number
  p99: number
  rps: number
}

const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, us: 0.001}

function toMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text)
  if (!match) throw new Error(`wrk: unexpected latency ${text}`)
  return Number(match[1]) * UNIT_MS[match[2]]
}

/** wrk on one thread (the other core is the server's): requests per second and latency percentiles. */
export function wrk(url: string, connections: number, seconds: number, headers: Record<string, string> = {}): Load {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '10s']
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`)
  const output = execFileSync('wrk', [...args, url], {encoding: 'utf8'})
  const percentile = (p: string) => toMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(output)![1])
  const count = (pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? 0)
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
  return {
    errors: count(/Non-2xx or 3xx responses: (\d+)/) + (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0),
    max: toMs(/^\s+Latency\s+\S+\s+\S+\s+(\S+)/m.exec(output)![1]),
    p50: percentile('50'),
    p99: percentile('99'),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(output)![1]),
  }
}

/** A child process that is stopped with the bench. */
export interface Child {
  stop(): Promise<void>
}

export function child(process_: ChildProcess): Child {
  return {
    async stop() {
      if (process_.exitCode !== null || process_.signalCode !== null) return
      const exited = new Promise<void>((resolve) => process_.once('exit', () => resolve()))
      process_.kill('SIGTERM')
      await exited
    },
  }
}

/** nginx in the foreground with this `http { … }` body, in a throwaway prefix; resolves once `port` answers. */
export async function startNginx(httpBody: string, port: number): Promise<Child> {
  const prefix = mkdtempSync(join(tmpdir(), 'mlflowctl-bench-nginx-'))
  const conf = join(prefix, 'nginx.conf')
  writeFileSync(
    conf,
    `worker_processes 1;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log;\nevents { worker_connections 1024; }\n` +
      `http {\n access_log off;\n client_body_temp_path ${prefix};\n proxy_temp_path ${prefix};\n${httpBody}\n}\n`,
  )
  const started = child(spawn('nginx', ['-p', prefix, '-c', conf, '-g', 'daemon off;'], {stdio: 'ignore'}))
  await waitForPort(port)
  return started
}

/** An nginx auth_basic user file line: salted SHA-1, the cheapest hash nginx checks (nginx at its fastest). */
export function htpasswdLine(username: string, password: string): string {
  const salt = randomBytes(8)
  const digest = createHash('sha1').update(password).update(salt).digest()
  return `${username}:{SSHA}${Buffer.concat([digest, salt]).toString('base64')}\n`
}

export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const answer = await fetch(`http://127.0.0.1:${port}/`)
      await answer.arrayBuffer()
      return
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`nothing answered on port ${port}: ${(error as Error).message}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** The machine, for the figures' context: they are noisy on a shared machine. */
export function machine(): {cpus: number; cpuModel: string; loadAverage: number[]; node: string} {
  return {cpuModel: cpus()[0]?.model ?? 'unknown', cpus: cpus().length, loadAverage: loadavg().map((n) => Number(n.toFixed(2))), node: process.version}
}
