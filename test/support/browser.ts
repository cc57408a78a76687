/**
 * A headless Chromium for the web UI tests: Debian's own `chromium` package driven by
 * playwright-core (Playwright's browser downloads are never used). On a fresh Debian machine the
 * package is installed once with apt-get (the tests run as root). Every browser gets a fresh temp
 * profile, logs in with HTTP basic auth, and may only reach loopback addresses.
 */
import {spawn} from 'node:child_process'
import {constants} from 'node:fs'
import {access, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {type TestContext} from 'node:test'
import {fileURLToPath} from 'node:url'

import {type BrowserContext, chromium, type Page, type Request} from 'playwright-core'

import {type Credentials} from './mlflow-server.js'

export const CHROMIUM = process.env.MLFLOWCTL_TEST_CHROMIUM ?? '/usr/bin/chromium'

/** Where failure screenshots and HTML dumps go: test-output/web-ui/ at the repository root. */
export const OUTPUT_DIR = fileURLToPath(new URL('../../test-output/web-ui/', import.meta.url))

/**
 * Flags for a quiet browser: without the background-networking ones Chromium keeps calling home
 * (component updates, sync, field trials, QUIC probes), which on a closed network only stalls.
 */
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost'])

function isLoopback(url: URL): boolean {
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) return true // data:, blob:, about:
  return LOOPBACK_HOSTS.has(url.hostname) || url.hostname.startsWith('127.')
}

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function run(command: string, args: string[]): Promise<{code: number | null; output: string}> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}, stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000)
    }

    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.once('error', (error) => resolve({code: null, output: `${output}\n${error.message}`}))
    child.once('exit', (code) => resolve({code, output}))
  })
}

let installing: Promise<string> | undefined

/** The path of Debian's chromium, installing the package first when it is missing (once per process). */
export function ensureChromium(): Promise<string> {
  installing ??= (async () => {
    if (await executable(CHROMIUM)) return CHROMIUM
    if (CHROMIUM !== '/usr/bin/chromium') throw new Error(`MLFLOWCTL_TEST_CHROMIUM=${CHROMIUM} is not an executable`)
    process.stderr.write('[test] chromium is missing: apt-get update && apt-get install -y chromium\n')
    for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'chromium']]) {
      const {code, output} = await run('apt-get', args)
      if (code !== 0) {
        throw new Error(
          `the web UI tests need Debian's chromium (${CHROMIUM}), and \`apt-get ${args.join(' ')}\` failed (${code ?? 'not run'}); install it by hand with \`apt-get install chromium\` (as root):\n${output}`,
        )
      }
    }

    if (!(await executable(CHROMIUM))) throw new Error(`apt-get installed chromium, but ${CHROMIUM} is still missing`)
    return CHROMIUM
  })()
  // A failed install is reported to every test that asks, not retried by each.
  return installing
}

export interface BrowserSession {
  close(): Promise<void>
  context: BrowserContext
  /** Requests the page tried to send off the loopback interface (all blocked). */
  offLoopback: string[]
  page: Page
  /** Every request the page sent, in order. */
  requests: Request[]
  /** Every response the page received: method, URL and status. */
  responses: Array<{method: string; status: number; url: string}>
}

/**
 * A fresh headless Chromium (own temp profile) whose HTTP basic-auth prompts are answered with
 * the given credentials, for origin only. Close it with close(), which also removes the profile.
 */
export async function openBrowser(options: {
  /** Extra Chromium flags, e.g. one that trusts a test certificate. */
  args?: string[]
  baseURL: string
  credentials?: Credentials
}): Promise<BrowserSession> {
  const executablePath = await ensureChromium()
  const profile = await mkdtemp(join(tmpdir(), 'mlflowctl-chromium-'))
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(profile, {
      args: [...ARGS, ...(options.args ?? [])],
      baseURL: options.baseURL,
      executablePath,
      headless: true,
      httpCredentials: options.credentials && {origin: new URL(options.baseURL).origin, ...options.credentials},
      viewport: {height: 900, width: 1400},
    })
  } catch (error) {
    await rm(profile, {force: true, recursive: true})
    throw error
  }

  const offLoopback: string[] = []
  const requests: Request[] = []
  await context.route(
    (url) => !isLoopback(url),
    async (route) => {
      offLoopback.push(route.request().url())
      await route.abort('blockedbyclient')
    },
  )
  const responses: BrowserSession['responses'] = []
  context.on('request', (request) => requests.push(request))
  context.on('response', (response) => responses.push({method: response.request().method(), status: response.status(), url: response.url()}))
  const page = context.pages()[0] ?? (await context.newPage())
  page.setDefaultTimeout(30_000)
  page.setDefaultNavigationTimeout(60_000)
  return {
    async close() {
      await Promise.race([
        context.close().catch(() => {}),
        new Promise((resolve) => {
          setTimeout(resolve, 15_000).unref()
        }),
      ])
      await rm(profile, {force: true, recursive: true})
    },
    context,
    offLoopback,
    page,
    requests,
    responses,
  }
}

/** A file name from a test's name. */
function fileName(name: string): string {
  return name.replaceAll(/[^\w.@-]+/g, '_').slice(0, 150)
}

/** Saves the page's screenshot and HTML to test-output/web-ui/<name>.png / .html; never throws. */
export async function saveEvidence(page: Page, name: string): Promise<string[]> {
  const saved: string[] = []
  try {
    await mkdir(OUTPUT_DIR, {recursive: true})
    const base = join(OUTPUT_DIR, fileName(name))
    if (!page.isClosed()) {
      await page.screenshot({fullPage: true, path: `${base}.png`, timeout: 10_000}).then(
        () => saved.push(`${base}.png`),
        () => {},
      )
      const html = await Promise.race([
        page.content().catch(() => undefined),
        new Promise<undefined>((resolve) => {
          setTimeout(() => resolve(undefined), 10_000).unref()
        }),
      ])
      if (html !== undefined) {
        await writeFile(`${base}.html`, html)
        saved.push(`${base}.html`)
      }
    }
  } catch {}

  return saved
}

/** The distinct "METHOD /path" of requests to the origin, in order of first use, without query strings. */
export function distinctRoutes(requests: Request[], origin: string): string[] {
  const seen = new Set<string>()
  for (const request of requests) {
    const url = new URL(request.url())
    if (url.origin !== origin) continue
    seen.add(`${request.method()} ${url.pathname}`)
  }

  return [...seen]
}

/** The distinct "METHOD /path STATUS" of the page's answers from the origin, in order of first answer, without query strings. */
export function distinctAnswers(responses: BrowserSession['responses'], origin: string): string[] {
  const seen = new Set<string>()
  for (const {method, status, url} of responses) {
    const parsed = new URL(url)
    if (parsed.origin === origin) seen.add(`${method} ${parsed.pathname} ${status}`)
  }

  return [...seen]
}

/** Runs a browser step of a test; on failure saves the page's screenshot and HTML under test-output/web-ui/ and rethrows. */
export async function step(t: TestContext, title: string, session: BrowserSession, body: (page: Page) => Promise<void>): Promise<void> {
  try {
    await body(session.page)
  } catch (error) {
    const saved = await saveEvidence(session.page, `${title} ${t.name}`)
    if (saved.length > 0) t.diagnostic(`saved ${saved.join(', ')}`)
    throw error
  }
}
