import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type Credentials, type RunningServer, startMlflowServer} from './mlflow-server.js'
import {restClient} from './rest.js'
import {type RunningServe, startServe} from './serve.js'
import {acquireServer} from './servers.js'

/** The two targets one test body runs against: MLflow's own basic-auth app, and `mlflowctl serve` in front of a plain MLflow. */
export type AuthTargetKind = 'basic-auth' | 'serve'

export interface AuthTarget {
  admin: Credentials
  /** The serve process, for the 'serve' kind. */
  serve?: RunningServe
  /** The plain MLflow behind serve, when the target started its own (with `env`): its log shows what serve forwarded. */
  upstream?: RunningServer
  /** Stops what this target started (not the run's shared servers: releaseServers() does that). */
  stop(): Promise<void>
  url: string
}

export interface AuthTargetOptions {
  /** default_permission: a basic-auth server of its own started with it, or serve given it in a basic_auth.ini. Default: the shared servers (READ). */
  defaultPermission?: string
  /** Environment for MLflow: servers of the target's own are started with it (a plain one behind serve). */
  env?: NodeJS.ProcessEnv
  /** Users the admin creates through /api/2.0/mlflow/users/create before the target is handed out. */
  users?: Credentials[]
}

/** "serve in front of" / "the basic-auth app of", for test titles ending in "MLflow <version>". */
export function targetTitle(kind: AuthTargetKind): string {
  return kind === 'serve' ? 'serve in front of' : 'the basic-auth app of'
}

export async function authTarget(version: string, kind: AuthTargetKind, options: AuthTargetOptions = {}): Promise<AuthTarget> {
  const target = options.env ? await startOwnTarget(version, kind, options.env) : await startTarget(version, kind, options.defaultPermission)
  try {
    const {ok} = restClient(() => target.url)
    for (const user of options.users ?? []) await ok(target.admin, 'POST', '/api/2.0/mlflow/users/create', user)
  } catch (error) {
    await target.stop()
    throw error
  }

  return target
}

async function startOwnTarget(version: string, kind: AuthTargetKind, env: NodeJS.ProcessEnv): Promise<AuthTarget> {
  const server = await startMlflowServer({env, kind: kind === 'serve' ? 'plain' : 'basic-auth', version})
  if (kind === 'basic-auth') return {admin: server.admin!, stop: () => server.stop(), url: server.url}
  try {
    const serve = await startServe({upstream: server.url})
    return {
      admin: serve.admin,
      serve,
      async stop() {
        await serve.stop()
        await server.stop()
      },
      upstream: server,
      url: serve.url,
    }
  } catch (error) {
    await server.stop()
    throw error
  }
}

async function startTarget(version: string, kind: AuthTargetKind, defaultPermission: string | undefined): Promise<AuthTarget> {
  if (kind === 'serve') {
    let extraArgs: string[] | undefined
    if (defaultPermission !== undefined) {
      const ini = join(await mkdtemp(join(tmpdir(), 'mlflowctl-target-')), 'basic_auth.ini')
      await writeFile(ini, `[mlflow]\ndefault_permission = ${defaultPermission}\n`)
      extraArgs = ['--config', ini]
    }

    const serve = await startServe({extraArgs, upstream: (await acquireServer(version, 'plain')).url})
    return {
      admin: serve.admin,
      serve,
      async stop() {
        await serve.stop()
      },
      url: serve.url,
    }
  }

  if (defaultPermission !== undefined) {
    const server = await startMlflowServer({authConfig: {default_permission: defaultPermission}, kind: 'basic-auth', version})
    return {admin: server.admin!, stop: () => server.stop(), url: server.url}
  }

  const server = await acquireServer(version, 'basic-auth')
  return {admin: server.admin!, async stop() {}, url: server.url}
}
