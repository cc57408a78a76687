/**
 * Acceptance test of MLflow's own web UI, in a real headless Chromium logged in with the browser's
 * HTTP basic auth, against two targets: MLflow's basic-auth server, and `mlflowctl serve` in front
 * of a plain MLflow server. The same scenario runs against both: a user sees in the experiment
 * list exactly the experiments they may read, reads a run's metrics and params, an admin signs a
 * user up through /signup, and a non-admin is refused /signup.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type Page} from 'playwright-core'

import {type BrowserSession, distinctRoutes, openBrowser, step} from '../support/browser.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {PythonClient} from '../support/python-client.js'
import {basicAuth, type Json} from '../support/rest.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

type TargetKind = 'basic-auth' | 'serve'

interface Target {
  admin: Credentials
  kind: TargetKind
  serve?: RunningServe
  url: string
  version: string
}

async function startTarget(kind: TargetKind, version: string): Promise<Target> {
  if (kind === 'basic-auth') {
    const server = await acquireServer(version, 'basic-auth')
    return {admin: server.admin!, kind, url: server.url, version}
  }

  const upstream = await acquireServer(version, 'plain')
  const serve = await startServe({upstream: upstream.url})
  return {admin: serve.admin, kind, serve, url: serve.url, version}
}

/** MLflow 3.13 replaced the per-resource permission endpoints with the unified grants. */
function hasUnifiedPermissions(version: string): boolean {
  const [major, minor] = version.split('.').map(Number)
  return major > 3 || (major === 3 && minor >= 13)
}

async function rest(
  target: Target,
  as: Credentials,
  method: string,
  path: string,
  body?: unknown,
): Promise<{body: Json | undefined; status: number; text: string}> {
  const response = await fetch(`${target.url}${path}`, {
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: {authorization: basicAuth(as), ...(body === undefined ? {} : {'content-type': 'application/json'})},
    method,
    signal: AbortSignal.timeout(30_000),
  })
  const text = await response.text()
  let parsed: Json | undefined
  try {
    parsed = JSON.parse(text)
  } catch {}

  return {body: parsed, status: response.status, text}
}

/** Grants a user a permission on an experiment: classic endpoint up to 3.12, unified grant after. */
async function grantExperiment(target: Target, as: Credentials, experimentId: string, username: string, permission: string) {
  return hasUnifiedPermissions(target.version)
    ? rest(target, as, 'POST', '/api/3.0/mlflow/users/permissions/grant', {permission, resource_id: experimentId, resource_type: 'experiment', username})
    : rest(target, as, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: experimentId, permission, username})
}

interface Scenario {
  alice: Credentials
  /** Every experiment the test created, by name. */
  all: string[]
  bob: Credentials
  /** What hiding an experiment from bob took on this server (NO_PERMISSIONS, or DENY where that is refused). */
  hiddenWith: string
  hiddenNote: string
  /** The one of alice's experiments bob must not see. */
  hidden: string
  /** The names prefix shared by this scenario's experiments (typed into the list's search box). */
  prefix: string
  /** The names bob may read. */
  readable: string[]
  run: {experimentId: string; id: string; metrics: Record<string, number>; name: string; params: Record<string, string>}
}

async function setUp(target: Target): Promise<Scenario> {
  const {version} = target
  const prefix = uniqueName('webui')
  const alice = {password: `alice-${prefix}-pw`, username: `${prefix}-alice`}
  const bob = {password: `bob-${prefix}-pw`, username: `${prefix}-bob`}
  const admin = new PythonClient({credentials: target.admin, trackingUri: target.url, version})
  await admin.call('auth', 'create_user', alice.username, alice.password)
  await admin.call('auth', 'create_user', bob.username, bob.password)

  const asAlice = new PythonClient({credentials: alice, trackingUri: target.url, version})
  const asBob = new PythonClient({credentials: bob, trackingUri: target.url, version})
  const aliceNames = [1, 2, 3].map((i) => `${prefix}-alice-exp-${i}`)
  const bobNames = [1, 2].map((i) => `${prefix}-bob-exp-${i}`)
  const aliceIds: string[] = []
  for (const name of aliceNames) aliceIds.push(await asAlice.call<string>('tracking', 'create_experiment', name))
  for (const name of bobNames) await asBob.call<string>('tracking', 'create_experiment', name)

  // alice lets bob read her first experiment explicitly, and hides her second from him (the
  // server's default_permission is READ, so without a grant bob could read it).
  const granted = await grantExperiment(target, alice, aliceIds[0], bob.username, 'READ')
  assert.equal(granted.status, 200, `alice's READ grant for bob: ${granted.text}`)
  let hiddenWith = 'NO_PERMISSIONS'
  let hiddenNote = ''
  const hid = await grantExperiment(target, alice, aliceIds[1], bob.username, 'NO_PERMISSIONS')
  if (hid.status !== 200) {
    // MLflow 3.13+ refuses NO_PERMISSIONS on a resource ("an absent grant plus default_permission
    // already expresses no access"); its absolute deny is DENY.
    hiddenNote = `NO_PERMISSIONS refused (${hid.status}): ${hid.text.slice(0, 300)}`
    hiddenWith = 'DENY'
    const denied = await grantExperiment(target, alice, aliceIds[1], bob.username, 'DENY')
    assert.equal(denied.status, 200, `alice's DENY for bob: ${denied.text}`)
  }

  // A run in alice's first experiment (readable by bob) with metrics at several steps and params.
  const runName = `${prefix}-run`
  const run = await asAlice.batch([{args: [aliceIds[0]], client: 'tracking', kwargs: {run_name: runName}, method: 'create_run'}])
  assert.equal(run[0].error, undefined, JSON.stringify(run[0].error))
  const runId = run[0].ok.info.run_id as string
  const series: Record<string, number[]> = {accuracy: [0.5, 0.75, 0.875], loss: [2.5, 1.25, 0.625]}
  const params = {optimizer: `adam-${prefix.slice(-6)}`, seed: '1234'}
  const logged = await asAlice.batch([
    ...Object.entries(series).flatMap(([key, values]) =>
      values.map((value, step) => ({args: [runId, key, value], client: 'tracking' as const, kwargs: {step}, method: 'log_metric'})),
    ),
    ...Object.entries(params).map(([key, value]) => ({args: [runId, key, value], client: 'tracking' as const, method: 'log_param'})),
  ])
  for (const result of logged) assert.equal(result.error, undefined, JSON.stringify(result.error))

  return {
    alice,
    all: [...aliceNames, ...bobNames],
    bob,
    hidden: aliceNames[1],
    hiddenNote,
    hiddenWith,
    prefix,
    readable: [aliceNames[0], aliceNames[2], ...bobNames].sort(),
    run: {
      experimentId: aliceIds[0],
      id: runId,
      metrics: Object.fromEntries(Object.entries(series).map(([key, values]) => [key, values.at(-1)!])),
      name: runName,
      params,
    },
  }
}

/** Names of the experiment list's rows that belong to this scenario. */
async function listedNames(page: Page, prefix: string): Promise<string[]> {
  const names = await page.getByTestId('experiment-list-item-link').allTextContents()
  return names
    .map((name) => name.trim())
    .filter((name) => name.startsWith(prefix))
    .sort()
}

function scenario(kind: TargetKind, version: string): void {
  describe(`MLflow's web UI through ${kind === 'serve' ? 'mlflowctl serve' : "MLflow's basic-auth server"} (MLflow ${version})`, () => {
    let target: Target
    let data: Scenario
    let bob: BrowserSession
    const title = `${kind}@${version}`

    before(async () => {
      target = await startTarget(kind, version)
      data = await setUp(target)
      bob = await openBrowser({baseURL: target.url, credentials: data.bob})
    })

    after(async () => {
      await bob?.close()
      await target?.serve?.stop()
    })

    it('lists exactly the experiments bob may read', async (t) => {
      if (data.hiddenNote) t.diagnostic(`hiding an experiment: ${data.hiddenNote}; used ${data.hiddenWith}`)
      // The control: the admin's search with the same filter finds all five, the hidden one too.
      const all = await rest(target, target.admin, 'POST', '/api/2.0/mlflow/experiments/search', {filter: `name LIKE '${data.prefix}%'`, max_results: 100})
      assert.equal(all.status, 200, all.text)
      assert.deepEqual(all.body?.experiments.map((experiment: {name: string}) => experiment.name).sort(), [...data.all].sort())
      await step(t, title, bob, async (page) => {
        const home = await page.goto('/')
        assert.equal(home?.status(), 200)
        // The SPA rendered and its navigation works: the sidebar's Experiments entry leads to the list.
        await page.getByRole('link', {exact: true, name: 'Experiments'}).first().click()
        await page.waitForURL(/#\/experiments\/?$/)
        const search = page.getByTestId('search-experiment-input')
        await search.waitFor()
        // Other tests share the server: narrow the list to this scenario's experiments, by name.
        const answered = page.waitForResponse(
          (response) => response.url().includes('/experiments/search') && decodeURIComponent(response.url().replaceAll('+', ' ')).includes(data.prefix),
        )
        await search.fill(data.prefix)
        await search.press('Enter')
        const response = await answered
        assert.equal(response.status(), 200, `the UI's experiments/search answered ${response.status()}`)
        for (const name of data.readable) await page.getByTestId('experiment-list-item-link').filter({hasText: name}).first().waitFor()
        assert.deepEqual(
          await listedNames(page, data.prefix),
          data.readable,
          `bob must see his own two experiments and alice's first and third, not ${data.hidden} (hidden with ${data.hiddenWith})`,
        )
      })
    })

    it("shows bob the run's metrics and params on the run page", async (t) => {
      await step(t, title, bob, async (page) => {
        // The app is loaded already, so this is an in-page (hash) navigation, as from a link.
        await page.goto(`/#/experiments/${data.run.experimentId}/runs/${data.run.id}`)
        await page.getByRole('heading', {exact: true, name: data.run.name}).waitFor()
        await page.getByRole('heading', {exact: true, name: `Metrics (${Object.keys(data.run.metrics).length})`}).waitFor()
        await page.getByRole('heading', {exact: true, name: `Parameters (${Object.keys(data.run.params).length})`}).waitFor()
        // Each metric's row shows its latest value (the one logged at the last step).
        for (const [key, value] of [...Object.entries(data.run.metrics), ...Object.entries(data.run.params)]) {
          const cell = page.getByRole('cell', {exact: true, name: key})
          await cell.waitFor()
          assert.equal(await cell.count(), 1, `one row for ${key}`)
          const shown = (await cell.locator('xpath=following-sibling::*[@role="cell"][1]').innerText()).trim()
          assert.equal(shown, String(value), `${key}'s value on the run page`)
        }
      })
      const routes = distinctRoutes(bob.requests, target.url).filter((route) => !/ \/static-files\//.test(route))
      t.diagnostic(`routes the UI called for bob (${title}): ${routes.join(', ')}`)
      t.diagnostic(`off-loopback requests blocked: ${bob.offLoopback.length === 0 ? 'none' : bob.offLoopback.join(', ')}`)
      const refused = bob.responses.filter((response) => response.status >= 400 && response.status !== 401 && new URL(response.url).origin === target.url)
      if (refused.length > 0)
        t.diagnostic(`answered >= 400 to bob's UI: ${refused.map(({method, status, url}) => `${method} ${new URL(url).pathname} ${status}`).join(', ')}`)
    })

    it('lets an admin sign a user up through /signup, and the user can then log in', async (t) => {
      const admin = await openBrowser({baseURL: target.url, credentials: target.admin})
      try {
        const user = {password: `signup-${data.prefix}-pw`, username: `${data.prefix}-carol`}
        await step(t, `${title} admin`, admin, async (page) => {
          const form = await page.goto('/signup')
          assert.equal(form?.status(), 200)
          await page.locator('input[name="username"]').fill(user.username)
          await page.locator('input[name="password"]').fill(user.password)
          // The server answers the form with a script that alerts its message and redirects home.
          // The alert blocks the page (and the click's navigation) until answered: accept it at once.
          const alerted = new Promise<string>((resolve) => {
            page.once('dialog', async (dialog) => {
              resolve(dialog.message())
              await dialog.accept()
            })
          })
          const posted = page.waitForResponse((response) => response.request().method() === 'POST' && response.url().includes('/users/create-ui'))
          await page.locator('input[type="submit"]').click()
          const message = await alerted
          assert.equal((await posted).status(), 200)
          assert.equal(message, `Successfully signed up user: ${user.username}`)
          await page.waitForURL((url) => url.pathname === '/' || url.pathname === '')
        })
        const current = await rest(target, user, 'GET', '/api/2.0/mlflow/users/current')
        const me = current.status === 404 ? await rest(target, user, 'GET', `/api/2.0/mlflow/users/get?username=${encodeURIComponent(user.username)}`) : current
        assert.equal(me.status, 200, me.text)
        assert.equal(me.body?.user?.username, user.username)
        assert.equal(me.body?.user?.is_admin, false)
        const wrong = await rest(
          target,
          {...user, password: `${user.password}-wrong`},
          'GET',
          `/api/2.0/mlflow/users/get?username=${encodeURIComponent(user.username)}`,
        )
        assert.equal(wrong.status, 401, 'a wrong password is rejected')
      } finally {
        await admin.close()
      }
    })

    it('refuses /signup to bob (403)', async (t) => {
      await step(t, title, bob, async (page) => {
        const response = await page.goto('/signup')
        assert.equal(response?.status(), 403)
        assert.equal(await page.locator('input[name="password"]').count(), 0, 'no sign-up form')
      })
    })
  })
}

for (const version of [MLFLOW_VERSIONS.latest, MLFLOW_VERSIONS.legacy]) {
  for (const kind of ['basic-auth', 'serve'] as const) scenario(kind, version)
}
