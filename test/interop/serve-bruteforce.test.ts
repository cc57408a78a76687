/**
 * Failed-login limits with MLflow's real Python client (MLflow 3.17.2): a client guessing a
 * password is refused with 429, which the client raises as an MlflowException (retries off); the
 * real user's client goes on working while the username is under attack from several addresses:
 * verified credentials at once, new ones (a changed password) after a bounded wait. The clients reach serve from different loopback
 * addresses through small TCP forwarders, as from different machines. Run on the file store and
 * on PostgreSQL (MLFLOWCTL_TEST_STORE=postgres).
 */
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {connect, createServer, type Server, type Socket} from 'node:net'
import {after, describe, it} from 'node:test'

import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {restClient} from '../support/rest.js'
import {startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

/** A TCP forwarder to serve whose connections to serve come from `localAddress`: a client on another machine. */
async function fromAddress(target: string, localAddress: string): Promise<{close(): Promise<void>; url: string}> {
  const {hostname, port} = new URL(target)
  const open = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect({host: hostname, localAddress, port: Number(port)})
    for (const socket of [client, upstream]) {
      open.add(socket)
      socket.once('close', () => open.delete(socket))
    }

    client.pipe(upstream).pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const {port: own} = server.address() as {port: number}
  return {
    // The Python client keeps its connections open: close them too.
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        for (const socket of open) socket.destroy()
      }),
    url: `http://127.0.0.1:${own}`,
  }
}

const version = MLFLOW_VERSIONS.latest

describe(`serve's failed-login limits with MlflowClient (MLflow ${version})`, {timeout: 120_000}, () => {
  it('locks a guessing client out with 429, and the real user still gets in', async () => {
    const upstream = await acquireServer(version, 'plain')
    const serve = await startServe({
      extraArgs: ['--lockout-per-user-address', '3', '--lockout-per-address', '6', '--lockout-per-user', '4', '--lockout-delay-max', '1'],
      upstream: upstream.url,
    })
    const guesserA = await fromAddress(serve.url, '127.0.0.2')
    const guesserB = await fromAddress(serve.url, '127.0.0.3')
    try {
      const rest = restClient(() => serve.url)
      const alice = {password: 'alice-real-password-1', username: uniqueName('alice')}
      await rest.ok(serve.admin, 'POST', '/api/2.0/mlflow/users/create', alice)
      const client = (trackingUri: string, credentials: {password: string; username: string}) =>
        new PythonClient({credentials, env: {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0'}, trackingUri, version})
      const search = {client: 'tracking' as const, kwargs: {max_results: 1}, method: 'search_experiments'}

      // The real user, from 127.0.0.1.
      const [first] = await client(serve.url, alice).batch([search])
      assert.equal(first.error, undefined, JSON.stringify(first.error))

      // A guesser on 127.0.0.2: three wrong passwords are 401, then the pair is refused, the right password included.
      const guesses = await client(guesserA.url, {password: 'guess-1', username: alice.username}).batch([search, search, search])
      for (const result of guesses) assert.equal(expectError(result).status, 401, JSON.stringify(result))
      const locked = expectError((await client(guesserA.url, {password: 'guess-2', username: alice.username}).batch([search]))[0])
      assert.equal(locked.type, 'MlflowException')
      assert.match(locked.message, /429/)
      const lockedRight = expectError((await client(guesserA.url, alice).batch([search]))[0])
      assert.match(lockedRight.message, /429/)

      // The real user from elsewhere is untouched.
      const [still] = await client(serve.url, alice).batch([search])
      assert.equal(still.error, undefined, JSON.stringify(still.error))

      // A second guessing address takes the username over its limit: logins for it are delayed,
      // never refused; the real user's verified credentials pass at once, new ones after the wait.
      const more = await client(guesserB.url, {password: 'guess-3', username: alice.username}).batch([search, search])
      for (const result of more) assert.equal(expectError(result).status, 401, JSON.stringify(result))
      const [during] = await client(serve.url, alice).batch([search])
      assert.equal(during.error, undefined, JSON.stringify(during.error))
      const changed = {...alice, password: 'alice-new-password-2'}
      await rest.ok(serve.admin, 'PATCH', '/api/2.0/mlflow/users/update-password', changed)
      const [afterChange] = await client(guesserB.url, changed).batch([search])
      assert.equal(afterChange.error, undefined, JSON.stringify(afterChange.error))

      const log = serve.output()
      assert.match(log, new RegExp(`3 failed logins for user "${alice.username}" from 127\\.0\\.0\\.2: refused for 60 s`))
      assert.match(log, new RegExp(`4 failed logins for user "${alice.username}" from any address`))
      assert.doesNotMatch(log, /guess-|alice-real-password|alice-new-password/)
    } finally {
      await guesserA.close()
      await guesserB.close()
      await serve.stop()
    }
  })
})
