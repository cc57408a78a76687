import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {chmod, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {promisify} from 'node:util'

import {
  databricksConfigPath,
  databricksProfileName,
  parseDatabricksConfig,
  readDatabricksProfile,
  removeDatabricksCredentials,
  saveDatabricksCredentials,
} from '../../src/client/databrickscfg.js'
import {UserError} from '../../src/core/errors.js'
import {assertUserError} from '../support/assert.js'
import {exists, homeWith as homeWithFile, modeOf, tempDir} from '../support/files.js'

const exec = promisify(execFile)

const tempHome = () => tempDir('dbcfg')

/** A home whose ~/.databrickscfg holds `content` (0600), or nothing. */
const homeWith = (content?: string) => homeWithFile((home) => join(home, '.databrickscfg'), content)

/**
 * What Python reads: RawConfigParser (the Databricks Python SDK's view, no interpolation) and
 * ConfigParser.get (MLflow's legacy Databricks reader, which interpolates %), per section.
 */
async function pythonReads(path: string): Promise<{interpolated: Record<string, Record<string, string>>; raw: Record<string, Record<string, string>>}> {
  const script = [
    'import configparser, json, sys',
    'raw = configparser.RawConfigParser()',
    'raw.read(sys.argv[1], encoding="utf-8")',
    'interp = configparser.ConfigParser()',
    'interp.read(sys.argv[1], encoding="utf-8")',
    'print(json.dumps({',
    '    "raw": {s: dict(raw._sections[s]) for s in raw.sections()} | {"DEFAULT": dict(raw.defaults())},',
    '    "interpolated": {s: {k: interp.get(s, k) for k in interp._sections[s]} for s in interp.sections()},',
    '}))',
  ].join('\n')
  const {stdout} = await exec('python3', ['-c', script, path])
  return JSON.parse(stdout)
}

/** 100 printable ASCII characters without '%' (MLflow's legacy reader) or spaces. */
const LONG_SECRET = Array.from({length: 100}, (_, index) => String.fromCharCode(33 + ((index * 7) % 94)))
  .join('')
  .replaceAll('%', '_')

describe('databricksConfigPath and databricksProfileName', () => {
  it('take the explicit value, then the environment, then the default', () => {
    const env = {DATABRICKS_CONFIG_FILE: '/etc/dbcfg', DATABRICKS_CONFIG_PROFILE: 'from-env', HOME: '/home/me'}
    assert.equal(databricksConfigPath(env, '/explicit'), '/explicit')
    assert.equal(databricksConfigPath(env), '/etc/dbcfg')
    assert.equal(databricksConfigPath({HOME: '/home/me'}), join('/home/me', '.databrickscfg'))
    assert.equal(databricksConfigPath({DATABRICKS_CONFIG_FILE: '', HOME: '/home/me'}), join('/home/me', '.databrickscfg'))
    assert.equal(databricksConfigPath({DATABRICKS_CONFIG_FILE: '~/cfg/databricks', HOME: '/home/me'}), '/home/me/cfg/databricks')
    assert.equal(databricksConfigPath({DATABRICKS_CONFIG_FILE: '/x/~/y', HOME: '/home/me'}), '/x/~/y')
    assert.equal(databricksProfileName(env, 'explicit'), 'explicit')
    assert.equal(databricksProfileName(env), 'from-env')
    assert.equal(databricksProfileName({DATABRICKS_CONFIG_PROFILE: ''}), 'DEFAULT')
  })
})

describe('parseDatabricksConfig (Go SDK semantics)', () => {
  it('cuts inline comments only after a space, and keeps # and ; inside values', () => {
    const profiles = parseDatabricksConfig(
      ['[p]', 'password = abc#123;x', 'token = dapi123 # a comment', 'host = https://h ; another', 'tab = a\t#b', 'colon: value:with=colon'].join('\n'),
    )
    assert.deepEqual(profiles.get('p'), {
      colon: 'value:with=colon',
      host: 'https://h',
      password: 'abc#123;x',
      tab: 'a\t#b',
      token: 'dapi123',
    })
  })

  it('merges duplicate sections (last key wins), ignores keys before any section, keeps key case', () => {
    const profiles = parseDatabricksConfig(
      ['orphan = ignored', '[p]', 'host = first', 'token = t1', '[q]', 'host = q', '[p]', 'host = second', 'Token = other-case', ''].join('\r\n'),
    )
    assert.deepEqual(profiles.get('p'), {Token: 'other-case', host: 'second', token: 't1'})
    assert.deepEqual([...profiles.keys()], ['p', 'q'])
  })

  it('unquotes and joins values the way ini.v1 does', () => {
    const profiles = parseDatabricksConfig(
      [
        '[p]',
        'double = "quoted value"',
        "single = 'quoted'",
        'inner = "a"b"',
        'continued = abc\\',
        '  def\\',
        '  ghi',
        'triple = """line one',
        'line two"""',
        'backtick = `raw # not a comment`',
        'after = ok',
      ].join('\n'),
    )
    assert.deepEqual(profiles.get('p'), {
      after: 'ok',
      backtick: 'raw # not a comment',
      continued: 'abcdefghi',
      double: 'quoted value',
      inner: '"a"b"',
      single: 'quoted',
      triple: 'line one\nline two',
    })
  })

  it('rejects lines the Go SDK cannot parse, naming the line', () => {
    const cases: Array<[string, RegExp]> = [
      ['[ok]\nhost = h\n[broken\n', /^\/cfg, line 3: .*closing/],
      ['[ok]\nhost = h\njust words\n', /^\/cfg, line 3: .*neither/],
      ['[ok]\nv = """never closed\n', /^\/cfg, line 2: .*never closed/],
      ['[]\nhost = h\n', /^\/cfg, line 1: .*empty/],
    ]
    for (const [content, message] of cases) {
      assert.throws(
        () => parseDatabricksConfig(content, '/cfg'),
        (error: unknown) => error instanceof UserError && error.code === 'DATABRICKS_CONFIG_INVALID' && message.test(error.message),
      )
    }
  })
})

describe('readDatabricksProfile', () => {
  it('reads the selected profile, or returns undefined when the file or section is missing', async () => {
    const {env, home} = await homeWith('[DEFAULT]\nhost = https://default\ntoken = d\n\n[dev]\nhost = https://dev\ncluster_id = c1\n')
    assert.deepEqual(await readDatabricksProfile({env}), {
      path: join(home, '.databrickscfg'),
      profile: 'DEFAULT',
      values: {host: 'https://default', token: 'd'},
    })
    assert.deepEqual((await readDatabricksProfile({env: {...env, DATABRICKS_CONFIG_PROFILE: 'dev'}}))?.values, {cluster_id: 'c1', host: 'https://dev'})
    assert.equal((await readDatabricksProfile({env: {...env, DATABRICKS_CONFIG_PROFILE: 'dev'}, profile: 'DEFAULT'}))?.profile, 'DEFAULT')
    assert.equal(await readDatabricksProfile({env, profile: 'missing'}), undefined)
    assert.equal(await readDatabricksProfile({env: {HOME: await tempHome()}}), undefined)
  })

  it('honours DATABRICKS_CONFIG_FILE with a leading ~', async () => {
    const home = await tempHome()
    await writeFile(join(home, 'custom.cfg'), '[x]\nhost = https://custom\n')
    const profile = await readDatabricksProfile({env: {DATABRICKS_CONFIG_FILE: '~/custom.cfg', HOME: home}, profile: 'x'})
    assert.deepEqual(profile, {path: join(home, 'custom.cfg'), profile: 'x', values: {host: 'https://custom'}})
  })
})

describe('saveDatabricksCredentials', () => {
  it('creates a new file 0600 without a backup', async () => {
    const {env, path} = await homeWith()
    const result = await saveDatabricksCredentials({credentials: {host: 'https://h', token: 'dapi1'}, env})
    assert.equal(await readFile(path, 'utf8'), '[DEFAULT]\nhost = https://h\ntoken = dapi1\n')
    assert.equal(await modeOf(path), 0o600)
    assert.equal(result.backupPath, undefined)
    assert.equal(await exists(`${path}.bak`), false)
    assert.deepEqual(result.removed, [])
  })

  it('replaces only the profile auth keys, keeps everything else byte for byte, and backs up 0600', async () => {
    const before = [
      '; written by hand',
      '[DEFAULT]',
      'host = https://default # the fallback',
      '',
      '[dev]',
      '# dev workspace',
      'host  = https://old-dev',
      'username = olduser',
      'cluster_id = 0123-abc',
      'password = oldpw',
      'warehouse_id = w1',
      '',
      '[other]',
      'host = https://other',
      'token = keep-me',
    ].join('\n')
    const {env, path} = await homeWith(before)
    const result = await saveDatabricksCredentials({credentials: {host: 'https://new-dev', token: 'dapi-new'}, env, profile: 'dev'})
    const after = [
      '; written by hand',
      '[DEFAULT]',
      'host = https://default # the fallback',
      '',
      '[dev]',
      '# dev workspace',
      'host = https://new-dev',
      'token = dapi-new',
      'cluster_id = 0123-abc',
      'warehouse_id = w1',
      '',
      '[other]',
      'host = https://other',
      'token = keep-me',
    ].join('\n')
    assert.equal(await readFile(path, 'utf8'), after)
    assert.deepEqual(result.removed, ['host', 'username', 'password'])
    assert.equal(result.backupPath, `${path}.bak`)
    assert.equal(await readFile(`${path}.bak`, 'utf8'), before)
    assert.equal(await modeOf(`${path}.bak`), 0o600)
    assert.deepEqual(result.warnings, [])
    assert.deepEqual((await pythonReads(path)).raw.dev, {cluster_id: '0123-abc', host: 'https://new-dev', token: 'dapi-new', warehouse_id: 'w1'})
  })

  it('appends a missing profile after a blank line', async () => {
    const {env, path} = await homeWith('[DEFAULT]\nhost = https://d')
    await saveDatabricksCredentials({credentials: {host: 'https://n', password: 'pw', username: 'u'}, env, profile: 'new'})
    assert.equal(await readFile(path, 'utf8'), '[DEFAULT]\nhost = https://d\n\n[new]\nhost = https://n\nusername = u\npassword = pw\n')
  })

  it('indents new keys like the keys after them, so Python does not read those as continuations', async () => {
    const {env, path} = await homeWith('[p]\n  cluster_id = c\n  warehouse_id = w\n')
    await saveDatabricksCredentials({credentials: {host: 'https://h', token: 't'}, env, profile: 'p'})
    assert.equal(await readFile(path, 'utf8'), '[p]\n  host = https://h\n  token = t\n  cluster_id = c\n  warehouse_id = w\n')
    assert.deepEqual((await pythonReads(path)).raw.p, {cluster_id: 'c', host: 'https://h', token: 't', warehouse_id: 'w'})
  })

  it('tightens a 0644 file and its backup to 0600, with a warning', async () => {
    const {env, path} = await homeWith('[DEFAULT]\nhost = https://d\n')
    await chmod(path, 0o644)
    await writeFile(`${path}.bak`, 'stale', {mode: 0o644})
    const {warnings} = await saveDatabricksCredentials({credentials: {host: 'https://d', token: 't'}, env})
    assert.equal(await modeOf(path), 0o600)
    assert.equal(await modeOf(`${path}.bak`), 0o600)
    assert.equal(await readFile(`${path}.bak`, 'utf8'), '[DEFAULT]\nhost = https://d\n')
    assert.equal(warnings.length, 1)
    assert.match(warnings[0], /0644.*0600/)
  })

  it('the same credentials again write nothing and keep the .bak; a loose mode is still tightened', async () => {
    const {env, path} = await homeWith('[DEFAULT]\nhost = https://d\ncluster_id = c\n')
    await saveDatabricksCredentials({credentials: {host: 'https://d', token: 't'}, env})
    const backup = await readFile(`${path}.bak`, 'utf8')
    const written = await readFile(path, 'utf8')
    await chmod(path, 0o644)
    const {ino} = await stat(path)
    const again = await saveDatabricksCredentials({credentials: {host: 'https://d', token: 't'}, env})
    assert.equal(again.backupPath, undefined)
    assert.deepEqual(again.removed, [])
    assert.equal(again.warnings.length, 1)
    assert.match(again.warnings[0], /0644.*0600/)
    assert.equal(await readFile(`${path}.bak`, 'utf8'), backup)
    assert.equal(await readFile(path, 'utf8'), written)
    assert.equal((await stat(path)).ino, ino)
    assert.equal(await modeOf(path), 0o600)
    // A different token is a change: written, with the previous file as the backup.
    const changed = await saveDatabricksCredentials({credentials: {host: 'https://d', token: 't2'}, env})
    assert.equal(changed.backupPath, `${path}.bak`)
    assert.equal(await readFile(`${path}.bak`, 'utf8'), written)
  })

  it('writes values that Go, the Python SDK and MLflow all read back exactly', async () => {
    const secrets = ['abc#123', 'a;b', 'x=y:z', '#start', ';start', 'пароль 密码 🔑', 'has inner spaces', LONG_SECRET, "it's", 'a"b']
    const {env, path} = await homeWith()
    for (const [index, secret] of secrets.entries()) {
      await saveDatabricksCredentials({credentials: {host: 'https://h', password: secret, username: `user-${index}`}, env, profile: `p${index}`})
    }

    const go = parseDatabricksConfig(await readFile(path, 'utf8'))
    const python = await pythonReads(path)
    for (const [index, secret] of secrets.entries()) {
      const expected = {host: 'https://h', password: secret, username: `user-${index}`}
      assert.deepEqual(go.get(`p${index}`), expected)
      assert.deepEqual(python.raw[`p${index}`], expected)
      assert.deepEqual(python.interpolated[`p${index}`], expected)
      assert.deepEqual((await readDatabricksProfile({env, profile: `p${index}`}))?.values, expected)
    }
  })

  it('refuses values some reader would not read back, and writes nothing', async () => {
    const original = '[DEFAULT]\nhost = https://d\n'
    const {env, path} = await homeWith(original)
    const refused: Array<[string, RegExp]> = [
      ['line\nbreak', /line break/],
      ['cr\rhere', /line break/],
      [' leading', /whitespace/],
      ['trailing ', /whitespace/],
      ['abc #123', /inline comment/],
      ['abc\t;123', /inline comment/],
      ['"quoted"', /quoted/],
      ["'quoted'", /quoted/],
      ['"""triple', /quoted/],
      ['`tick', /quoted/],
      ['ends\\', /continuation/],
      ['100%', /'%'/],
    ]
    for (const [token, message] of refused) {
      await assertUserError(() => saveDatabricksCredentials({credentials: {host: 'https://d', token}, env}), 'INVALID_CREDENTIAL_VALUE', message)
    }

    await assertUserError(() => saveDatabricksCredentials({credentials: {token: 't'}, env}), 'INVALID_CREDENTIAL_VALUE', /host/)
    await assertUserError(() => saveDatabricksCredentials({credentials: {host: 'https://d'}, env, profile: '__settings__'}), 'INVALID_PROFILE_NAME')
    await assertUserError(() => saveDatabricksCredentials({credentials: {host: 'https://d'}, env, profile: 'a b'}), 'INVALID_PROFILE_NAME')
    assert.equal(await readFile(path, 'utf8'), original)
    assert.equal(await exists(`${path}.bak`), false)
  })

  it('refuses to edit a file the Go SDK cannot parse, naming the line, and writes nothing', async () => {
    const original = '[DEFAULT]\nhost = https://d\n[broken\n'
    const {env, path} = await homeWith(original)
    await assertUserError(() => saveDatabricksCredentials({credentials: {host: 'https://d', token: 't'}, env}), 'DATABRICKS_CONFIG_INVALID', /line 3/)
    assert.equal(await readFile(path, 'utf8'), original)
    assert.equal(await exists(`${path}.bak`), false)
  })

  it('with duplicate sections, clears auth keys in each, writes once, and warns about Python', async () => {
    const {env, path} = await homeWith('[p]\nhost = https://a\ntoken = t1\n\n[p]\nTOKEN = t2\ncluster_id = c\n')
    const {warnings} = await saveDatabricksCredentials({credentials: {host: 'https://b', token: 't3'}, env, profile: 'p'})
    assert.equal(await readFile(path, 'utf8'), '[p]\n\n[p]\nhost = https://b\ntoken = t3\ncluster_id = c\n')
    assert.deepEqual(parseDatabricksConfig(await readFile(path, 'utf8')).get('p'), {cluster_id: 'c', host: 'https://b', token: 't3'})
    assert.equal(warnings.length, 1)
    assert.match(warnings[0], /\[p\] more than once/)
  })
})

describe('removeDatabricksCredentials', () => {
  it('removes token, username and password, keeps host and the rest, with a backup', async () => {
    const before = '[DEFAULT]\nhost = https://d\ntoken = t\n\n[dev]\nhost = https://dev\nusername = u\npassword = p\ncluster_id = c\n'
    const {env, path} = await homeWith(before)
    const result = await removeDatabricksCredentials({env, profile: 'dev'})
    assert.equal(await readFile(path, 'utf8'), '[DEFAULT]\nhost = https://d\ntoken = t\n\n[dev]\nhost = https://dev\ncluster_id = c\n')
    assert.deepEqual(result.removed, ['username', 'password'])
    assert.equal(await readFile(`${path}.bak`, 'utf8'), before)
    assert.equal(await modeOf(`${path}.bak`), 0o600)
    assert.deepEqual((await pythonReads(path)).raw.dev, {cluster_id: 'c', host: 'https://dev'})
  })

  it('changes nothing when the profile holds no secrets or is missing', async () => {
    const before = '[dev]\nhost = https://dev\n'
    const {env, path} = await homeWith(before)
    assert.deepEqual((await removeDatabricksCredentials({env, profile: 'dev'})).removed, [])
    assert.deepEqual((await removeDatabricksCredentials({env, profile: 'missing'})).removed, [])
    assert.equal(await readFile(path, 'utf8'), before)
    assert.equal(await exists(`${path}.bak`), false)
    const empty = await tempHome()
    assert.deepEqual((await removeDatabricksCredentials({env: {HOME: empty}})).removed, [])
    assert.equal(await exists(join(empty, '.databrickscfg')), false)
  })
})
