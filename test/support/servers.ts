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

const ownServers: RunningServer[] = []

export async function acquireServer(version: string, kind: ServerKind): Promise<ServerInfo> {
  const shared = process.env[SHARED_SERVERS_ENV]
  if (shared) {
    const entry = (JSON.parse(shared) as SharedServers)[serverKey(version, kind)]
    if (entry && 'error' in entry) throw new Error(entry.error)
    if (entry) return entry
  }

  const server = await startMlflowServer({kind, version})
  ownServers.push(server)
  return server
}

export async function releaseServers(): Promise<void> {
  await Promise.all(ownServers.splice(0).map((server) => server.stop()))
}

let counter = 0
/** A name no other test on a shared server uses. */
export function uniqueName(prefix: string): string {
  counter++
  return `${prefix}-${process.pid}-${counter}-${Date.now().toString(36)}`
}
