import {type RunningServer, type ServerInfo, type ServerKind, startMlflowServer} from './mlflow-server.js'

/**
 * Servers shared by the whole run: test/run.ts starts one plain and one basic-auth server per
 * pinned version and hands them to every test file in MLFLOWCTL_TEST_SERVERS. Tests on a shared
 * server use fresh names (see uniqueName) so they never depend on each other. A test file run on
 * its own starts what it asks for and stops it in releaseServers().
 */
export const SHARED_SERVERS_ENV = 'MLFLOWCTL_TEST_SERVERS'

type SharedServers = Record<string, ServerInfo | {error: string}>

export function serverKey(version: string, kind: ServerKind): string {
  return `${kind}@${version}`
}

// Started by this file when run on its own: one per version and kind, handed to every caller as
// the run's shared servers would be.
const ownServers = new Map<string, Promise<RunningServer>>()

export async function acquireServer(version: string, kind: ServerKind): Promise<ServerInfo> {
  const key = serverKey(version, kind)
  const shared = process.env[SHARED_SERVERS_ENV]
  if (shared) {
    const entry = (JSON.parse(shared) as SharedServers)[key]
    if (entry && 'error' in entry) throw new Error(entry.error)
    if (entry) return entry
  }

  let server = ownServers.get(key)
  if (!server) {
    server = startMlflowServer({kind, version})
    ownServers.set(key, server)
    server.catch(() => ownServers.delete(key))
  }

  return server
}

export async function releaseServers(): Promise<void> {
  const servers = [...ownServers.values()]
  ownServers.clear()
  await Promise.all(servers.map(async (server) => (await server.catch(() => undefined))?.stop()))
}

let counter = 0
/** A name no other test on a shared server uses. */
export function uniqueName(prefix: string): string {
  counter++
  return `${prefix}-${process.pid}-${counter}-${Date.now().toString(36)}`
}
