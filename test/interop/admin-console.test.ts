/**
 * MLflow 3.17's admin console (the web UI's "Manage" pages) in a real headless Chromium, logged
 * in with the browser's HTTP basic auth: an admin creates a role, grants it READ on an
 * experiment and assigns it to a user, all with clicks and form fills; the user, who could not
 * see the experiment before (default_permission NO_PERMISSIONS), then finds it in the UI's
 * experiment list, and sees the role and its grant on their Account page.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it, type TestContext} from 'node:test'

import {type Locator, type Page} from 'playwright-core'

import {isUserRoleName} from '../../src/mlflow/rbac.js'
import {type AuthTarget, type AuthTargetKind, authTarget, targetTitle} from '../support/auth-target.js'
import {type BrowserSession, distinctAnswers, openBrowser, step} from '../support/browser.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

/** Roles arrived in MLflow 3.14; the console with them in 3.17. */
const VERSION = MLFLOW_VERSIONS.latest

/** Where the scenario runs: MLflow's own app, and `mlflowctl serve` in front of a plain MLflow. */
const KINDS: AuthTargetKind[] = ['basic-auth', 'serve']

/** The names of the experiment list's rows that start with prefix, as bob's UI shows them after searching for it. */
async function listedExperiments(page: Page, prefix: string, expected: string[]): Promise<string[]> {
  // A full load, so nothing the UI cached before the admin's changes is shown.
  const home = await page.goto('/')
  assert.equal(home?.status(), 200)
  await page.getByRole('link', {exact: true, name: 'Experiments'}).first().click()
  await page.waitForURL(/#\/experiments\/?$/)
  const search = page.getByTestId('search-experiment-input')
  await search.waitFor()
  await search.fill(prefix)
  const [answer] = await Promise.all([
    page.waitForResponse(
      (response) => response.url().includes('/experiments/search') && decodeURIComponent(response.url().replaceAll('+', ' ')).includes(prefix),
    ),
    search.press('Enter'),
  ])
  assert.equal(answer.status(), 200, "the UI's experiments/search")
  // The rows render just after the answer; when one never comes, the assertion on what is listed says so.
  const rows = page.getByTestId('experiment-list-item-link')
  await Promise.all(expected.map((name) => rows.filter({hasText: name}).first().waitFor({timeout: 15_000}))).catch(() => {})
  const names = await rows.allTextContents()
  return names
    .map((name) => name.trim())
    .filter((name) => name.startsWith(prefix))
    .sort()
}

/** Clicks a button that sends METHOD …path, and insists on the server's 200. */
async function submit(page: Page, button: Locator, method: string, path: string): Promise<void> {
  const [response] = await Promise.all([
    page.waitForResponse((response) => response.request().method() === method && new URL(response.url()).pathname.endsWith(path)),
    button.click(),
  ])
  assert.equal(response.status(), 200, `${method} ${path}: ${await response.text().catch(() => '')}`)
}

/**
 * Waits for target on a console page. A page that shows one of the console's error alerts instead
 * (a call it needs was refused) fails at once, with the alert's text.
 */
async function shown(page: Page, target: Locator): Promise<void> {
  const alert = page.locator('[role="alert"][data-component-id^="admin."]')
  await target.or(alert).first().waitFor()
  if (!(await target.first().isVisible())) assert.fail(`the console shows an error: ${(await alert.first().innerText()).replaceAll(/\s+/g, ' ').trim()}`)
}

/** The calls the console made that were not answered with success ("METHOD /path STATUS"). */
function failedAnswers(session: BrowserSession, origin: string): string[] {
  return distinctAnswers(session.responses, origin).filter((answer) => Number(answer.split(' ')[2]) >= 400)
}

function routeLog(t: TestContext, who: string, session: BrowserSession, origin: string): void {
  const answers = distinctAnswers(session.responses, origin).filter((answer) => !/ \/static-files\//.test(answer))
  t.diagnostic(`routes the console called as ${who}: ${answers.join(', ')}`)
  if (session.offLoopback.length > 0) t.diagnostic(`off-loopback requests blocked: ${session.offLoopback.join(', ')}`)
}

for (const kind of KINDS) {
  describe(`MLflow ${VERSION}'s admin console on ${targetTitle(kind)} MLflow ${VERSION}`, () => {
    const prefix = uniqueName('console')
    const bob = {password: `bob-${prefix}-pw`, username: `${prefix}-bob`}
    const role = {description: `lets ${bob.username} read one experiment`, name: `${prefix}-readers`}
    const shared = `${prefix}-shared`
    const own = `${prefix}-bobs-own`
    const title = `console ${kind}@${VERSION}`
    let target: AuthTarget
    let sharedId: string
    let admin: BrowserSession
    let bobBrowser: BrowserSession
    const {ok} = restClient(() => target.url)

    before(async () => {
      target = await authTarget(VERSION, kind, {defaultPermission: 'NO_PERMISSIONS', users: [bob]})
      // The admin's experiment, which nobody else may see; and one of bob's own, the control that
      // his list renders at all.
      sharedId = (await ok(target.admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: shared})).experiment_id
      await ok(bob, 'POST', '/api/2.0/mlflow/experiments/create', {name: own})
      admin = await openBrowser({baseURL: target.url, credentials: target.admin})
      bobBrowser = await openBrowser({baseURL: target.url, credentials: bob})
    })

    after(async () => {
      await admin?.close()
      await bobBrowser?.close()
      await target?.stop()
    })

    it("does not show bob the admin's experiment yet", async (t) => {
      await step(t, title, bobBrowser, async (page) => {
        assert.deepEqual(await listedExperiments(page, prefix, [own]), [own])
      })
    })

    it('lets the admin create a role, grant it READ on the experiment, and assign it to bob', async (t) => {
      try {
        await step(t, title, admin, async (page) => {
          await page.goto('/')
          // The console is behind the account menu's "Manage".
          await page.getByRole('button', {name: `Account menu for ${target.admin.username}`}).click()
          await page.getByRole('menuitem', {exact: true, name: 'Manage'}).click()
          await page.waitForURL(/#\/admin/)

          // 1. A role, with a name and description only.
          await page.getByRole('tab', {exact: true, name: 'Roles'}).click()
          const createRole = page.getByRole('button', {exact: true, name: 'Create Role'})
          await shown(page, createRole)
          await createRole.click()
          const dialog = page.getByRole('dialog')
          await dialog.getByPlaceholder('Enter role name').fill(role.name)
          await dialog.getByPlaceholder('Enter description (optional)').fill(role.description)
          await submit(page, dialog.getByRole('button', {exact: true, name: 'Create role'}), 'POST', '/mlflow/roles/create')
          await dialog.waitFor({state: 'hidden'})

          // 2. On the role's page: READ on the experiment, picked by name from the role's editor.
          await page.getByRole('link', {exact: true, name: role.name}).click()
          await page.waitForURL(/#\/admin\/roles\/\d+/)
          const editRole = page.getByRole('button', {exact: true, name: 'Edit role'})
          await shown(page, editRole)
          await editRole.click()
          await dialog.getByText('Specific experiment', {exact: true}).click()
          await dialog.getByRole('combobox', {name: /^Experiment/}).click()
          const experiments = page.getByRole('listbox', {name: 'Experiment options'})
          await experiments.getByRole('searchbox').fill(shared)
          await experiments.getByRole('option', {exact: true, name: `${shared} (${sharedId})`}).click()
          await dialog.getByRole('button', {exact: true, name: 'Add'}).click()
          await dialog.getByRole('button', {exact: true, name: 'Review changes'}).click()
          await dialog.getByText(`experiment:${sharedId} → READ`, {exact: true}).waitFor()
          await submit(page, dialog.getByRole('button', {exact: true, name: 'Apply changes'}), 'POST', '/mlflow/roles/permissions/add')
          await dialog.waitFor({state: 'hidden'})
          const grants = page.getByRole('row').filter({hasText: 'READ'})
          await grants.first().waitFor()
          assert.deepEqual(
            (await grants.getByRole('cell').allInnerTexts()).map((cell) => cell.trim()),
            ['experiment', sharedId, 'READ'],
            "the role's permissions",
          )

          // 3. On bob's page: the role, picked from the roles he may be given.
          await page.getByRole('link', {exact: true, name: 'Platform Admin'}).click()
          await page.getByRole('tab', {exact: true, name: 'Users'}).click()
          const bobsLink = page.getByRole('link', {exact: true, name: bob.username})
          await shown(page, bobsLink)
          await bobsLink.click()
          await page.waitForURL(/#\/admin\/users\//)
          await page.getByRole('button', {exact: true, name: 'Edit access'}).click()
          await dialog.getByRole('combobox', {name: /^Roles/}).click()
          const roles = page.getByRole('listbox', {name: 'Roles options'})
          await roles.getByRole('searchbox').fill(role.name)
          await roles.getByRole('option', {name: role.name}).click()
          // A multi-select stays open: Escape closes it, not the dialog.
          await page.keyboard.press('Escape')
          await roles.waitFor({state: 'hidden'})
          await dialog.getByRole('button', {exact: true, name: 'Review changes'}).click()
          await dialog.getByText('Roles to assign').waitFor()
          await dialog.getByText(role.name).waitFor()
          await submit(page, dialog.getByRole('button', {exact: true, name: 'Apply changes'}), 'POST', '/mlflow/roles/assign')
          await dialog.waitFor({state: 'hidden'})
          await page.getByRole('row').filter({hasText: role.name}).first().waitFor()
        })
      } finally {
        routeLog(t, 'the admin', admin, target.url)
      }

      // Every call answered as on MLflow: the workspaces MLflow's console asks for are switched off
      // (503, and the dialog works on).
      assert.deepEqual(failedAnswers(admin, target.url), ['GET /ajax-api/3.0/mlflow/workspaces 503'])

      // What the console showed is what the server holds: bob has the role, and it has the one grant
      // (besides his hidden per-user role, which holds his MANAGE on the experiment he created).
      const held = await ok(target.admin, 'GET', `/api/3.0/mlflow/users/roles/list?username=${encodeURIComponent(bob.username)}`)
      assert.deepEqual(
        held.roles
          .filter((each: {name: string}) => !isUserRoleName(each.name))
          .map((each: {description: string; name: string; permissions: Array<Record<string, string>>}) => ({
            description: each.description,
            name: each.name,
            permissions: each.permissions.map(({permission, resource_pattern, resource_type}) => ({permission, resource_pattern, resource_type})),
          })),
        [{...role, permissions: [{permission: 'READ', resource_pattern: sharedId, resource_type: 'experiment'}]}],
      )
    })

    it("then shows bob the admin's experiment beside his own", async (t) => {
      await step(t, title, bobBrowser, async (page) => {
        assert.deepEqual(await listedExperiments(page, prefix, [own, shared]), [own, shared].sort())
      })
    })

    it('shows bob the role and its grant on his Account page', async (t) => {
      try {
        await step(t, title, bobBrowser, async (page) => {
          await page.getByRole('button', {name: `Account menu for ${bob.username}`}).click()
          await page.getByRole('menuitem', {exact: true, name: 'Account'}).click()
          await page.waitForURL(/#\/account/)
          await page.getByRole('row').filter({hasText: role.name}).first().waitFor()
          await page.getByRole('tab', {exact: true, name: 'Permissions'}).click()
          const row = page.getByRole('row').filter({hasText: `experiment:${sharedId}`})
          await row.first().waitFor()
          assert.deepEqual(
            (await row.getByRole('cell').allInnerTexts()).map((cell) => cell.trim()),
            [`experiment:${sharedId}`, 'READ', role.name],
          )
        })
      } finally {
        routeLog(t, bob.username, bobBrowser, target.url)
      }

      // Nothing a page of bob's called was refused (each page reads the assistant's config and providers).
      assert.deepEqual(failedAnswers(bobBrowser, target.url), [])
    })
  })
}
