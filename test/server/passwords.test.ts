import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {before, describe, it} from 'node:test'

import {hashPassword, verifyPassword} from '../../src/server/passwords.js'
import {requireMlflow} from '../support/mlflow-install.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'

/** Reads a JSON request on stdin: hashes to make and hashes to check, with Werkzeug itself. */
const WERKZEUG_SCRIPT = `
import json, sys
from werkzeug.security import check_password_hash, generate_password_hash
request = json.load(sys.stdin)
def check(item):
    try:
        return check_password_hash(item["hash"], item["password"])
    except Exception as error:
        return "error: " + repr(error)
json.dump({
    "generated": [generate_password_hash(item["password"], method=item["method"]) for item in request.get("generate", [])],
    "checked": [check(item) for item in request.get("check", [])],
}, sys.stdout)
`

interface WerkzeugRequest {
  check?: {hash: string; password: string}[]
  generate?: {method: string; password: string}[]
}

let python: string

async function werkzeug(request: WerkzeugRequest): Promise<{checked: (boolean | string)[]; generated: string[]}> {
  const child = spawn(python, ['-c', WERKZEUG_SCRIPT], {stdio: ['pipe', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdin.end(JSON.stringify(request))
  const code = await new Promise<null | number>((resolve) => child.once('close', resolve))
  assert.equal(code, 0, `werkzeug script failed: ${stderr}`)
  return JSON.parse(stdout)
}

const PASSWORDS = ['password1234', 'pässwörd ✓ 密码 🔑 ok', 'with $ and : and spaces', '']

describe('passwords (Werkzeug-compatible hashes)', () => {
  before(async () => {
    python = await requireMlflow(MLFLOW_VERSIONS.latest)
  })

  it('makes scrypt:32768:8:1 hashes in exactly Werkzeug 3 form, with a fresh salt each time', async () => {
    const first = await hashPassword('password1234')
    const second = await hashPassword('password1234')
    assert.match(first, /^scrypt:32768:8:1\$[A-Za-z0-9]{16}\$[0-9a-f]{128}$/)
    assert.match(second, /^scrypt:32768:8:1\$[A-Za-z0-9]{16}\$[0-9a-f]{128}$/)
    assert.notEqual(first.split('$')[1], second.split('$')[1])
  })

  it('verifies hashes made by Werkzeug (scrypt and pbkdf2, several parameters) and rejects wrong passwords', async () => {
    const methods = [
      'scrypt',
      'scrypt:16384:8:1',
      'scrypt:1024:4:2',
      'pbkdf2:sha256',
      'pbkdf2:sha256:1000',
      'pbkdf2:sha1:1000',
      'pbkdf2:sha512:1000',
      'pbkdf2:sha384:2000',
    ]
    const generate = methods.flatMap((method) => PASSWORDS.map((password) => ({method, password})))
    const {generated} = await werkzeug({generate})
    assert.equal(generated.length, generate.length)
    await Promise.all(
      generated.map(async (hash, i) => {
        const {method, password} = generate[i]
        assert.equal(await verifyPassword(hash, password), true, `${method} ${JSON.stringify(password)}: ${hash}`)
        assert.equal(await verifyPassword(hash, `${password}x`), false, `${method}: wrong password accepted`)
      }),
    )
    // Werkzeug writes the full method; sanity-check we exercised what we meant to.
    assert.ok(generated.some((hash) => hash.startsWith('scrypt:32768:8:1$')))
    assert.ok(generated.some((hash) => hash.startsWith('pbkdf2:sha256:1000000$')))
    assert.ok(generated.some((hash) => hash.startsWith('pbkdf2:sha1:1000$')))
  })

  it('verifies the short method forms with Werkzeug defaults (plain scrypt, pbkdf2:sha256, pbkdf2)', async () => {
    const {generated} = await werkzeug({
      generate: [
        {method: 'scrypt', password: 'short form ✓'},
        {method: 'pbkdf2:sha256', password: 'short form ✓'},
      ],
    })
    const [scryptHash, pbkdf2Hash] = generated
    const rest = (hash: string) => hash.slice(hash.indexOf('$'))
    const shortForms = [`scrypt${rest(scryptHash)}`, `pbkdf2:sha256${rest(pbkdf2Hash)}`, `pbkdf2${rest(pbkdf2Hash)}`]
    const {checked} = await werkzeug({check: shortForms.map((hash) => ({hash, password: 'short form ✓'}))})
    assert.deepEqual(checked, [true, true, true], 'Werkzeug accepts the short forms too')
    for (const hash of shortForms) {
      assert.equal(await verifyPassword(hash, 'short form ✓'), true, hash)
      assert.equal(await verifyPassword(hash, 'short form'), false, hash)
    }
  })

  it('makes hashes that Werkzeug verifies, and Werkzeug rejects them for a wrong password', async () => {
    const hashes = await Promise.all(PASSWORDS.map((password) => hashPassword(password)))
    const check = hashes.flatMap((hash, i) => [
      {hash, password: PASSWORDS[i]},
      {hash, password: `${PASSWORDS[i]} `},
    ])
    const {checked} = await werkzeug({check})
    assert.deepEqual(
      checked,
      check.map((_, i) => i % 2 === 0),
    )
  })

  it('says false, never throws, for malformed and unsupported hashes', async () => {
    const [good] = (await werkzeug({generate: [{method: 'pbkdf2:sha256:1000', password: 'secret'}]})).generated
    const [, salt, hex] = good.split('$')
    const malformed = [
      '',
      'scrypt',
      'scrypt$',
      `scrypt$${salt}`,
      `pbkdf2:sha256:1000$${salt}`,
      `pbkdf2:sha256:1000$${salt}$${hex.slice(0, -2)}`,
      `pbkdf2:sha256:1000$${salt}$${hex.toUpperCase()}`,
      `pbkdf2:sha256:1000$${salt}$${hex}00`,
      `pbkdf2:sha256:0$${salt}$${hex}`,
      `pbkdf2:sha256:-5$${salt}$${hex}`,
      `pbkdf2:sha256:abc$${salt}$${hex}`,
      `pbkdf2:sha256:1000:9$${salt}$${hex}`,
      `pbkdf2:whirlpool-ish:1000$${salt}$${hex}`,
      `scrypt:32768:8$${salt}$${hex}`,
      `scrypt:x:8:1$${salt}$${hex}`,
      `scrypt:1000:8:1$${salt}$${hex}`,
      `scrypt:1073741824:8:1$${salt}$${hex}`,
      `sha1$${salt}$${hex}`,
      `plain$${salt}$secret`,
      `bcrypt$${salt}$${hex}`,
      `$2b$12$abcdefghijklmnopqrstuv`,
    ]
    assert.equal(await verifyPassword(good, 'secret'), true)
    for (const hash of malformed) {
      assert.equal(await verifyPassword(hash, 'secret'), false, JSON.stringify(hash))
    }

    // Runtime garbage from an untyped caller is not an exception either.
    assert.equal(await verifyPassword(undefined as unknown as string, 'secret'), false)
    assert.equal(await verifyPassword(good, null as unknown as string), false)
    // A lone surrogate has no UTF-8 encoding (Python raises); we refuse rather than substitute.
    assert.equal(await verifyPassword(good, 'secret\uD800'), false)
    await assert.rejects(hashPassword('bad\uDC00'), TypeError)
  })
})
