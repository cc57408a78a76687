import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {chmod, mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'
import {before, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {MlflowCredentialsFile, mlflowCredentialsPath, type StoredLogin} from '../../src/client/mlflow-credentials.js'
import {assertUserError} from '../support/assert.js'
import {homeWith as homeWithFile, modeOf, tempDir} from '../support/files.js'
import {requireMlflow} from '../support/mlflow-install.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'

const exec = promisify(execFile)

const tempHome = () => tempDir('creds')

/** A home whose ~/.mlflow/credentials holds `content` (or nothing). */
const homeWith = (content?: string) => homeWithFile(mlflowCredentialsPath, content)

function pythonEnv(home: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toUpperCase().startsWith('MLFLOW_')))
  return {...env, HOME: home}
}

type Creds = [string | null, string | null]

/**
 * What MLflow's own reader, `read_mlflow_creds()`, returns for each home. One Python process for
 * all of them (importing MLflow takes seconds): HOME is switched per home, which `expanduser`
 * reads on every call.
 */
async function mlflowReads(python: string, homes: string[]): Promise<Array<Creds | {error: string}>> {
  const script = [
    'import json, os, sys',
    'from mlflow.utils.credentials import read_mlflow_creds',
    'out = []',
    'for home in sys.argv[1:]:',
    '    os.environ["HOME"] = home',
    '    try:',
    '        c = read_mlflow_creds()',
    '        out.append([c.username, c.password])',
    '    except Exception as e:',
    '        out.append({"error": type(e).__name__})',
    'print(json.dumps(out))',
  ].join('\n')
  const {stdout} = await exec(python, ['-c', script, ...homes], {env: pythonEnv(homes[0])})
  return JSON.parse(stdout)
}

/** Plain configparser (what MLflow uses) on each file: the [mlflow] pair, or the error's name. */
async function configparserReads(paths: string[]): Promise<Array<{error?: string; ok?: Creds}>> {
  const script = [
    'import configparser, json, sys',
    'out = []',
    'for path in sys.argv[1:]:',
    '    c = configparser.ConfigParser()',
    '    try:',
    '        c.read(path, encoding="utf-8")',
    '        if "mlflow" not in c:',
    '            out.append({"ok": [None, None]})',
    '            continue',
    '        s = c["mlflow"]',
    '        out.append({"ok": [s.get("mlflow_tracking_username"), s.get("mlflow_tracking_password")]})',
    '    except Exception as e:',
    '        out.append({"error": type(e).__name__})',
    'print(json.dumps(out))',
  ].join('\n')
  const {stdout} = await exec('python3', ['-c', script, ...paths])
  return JSON.parse(stdout)
}

/** Every section configparser sees, values raw (DEFAULT included). */
async function configparserDump(path: string): Promise<Record<string, Record<string, string>>> {
  const script = [
    'import configparser, json, sys',
    'c = configparser.ConfigParser()',
    'c.read(sys.argv[1], encoding="utf-8")',
    'out = {s: dict(c.items(s, raw=True)) for s in c.sections()}',
    'out["DEFAULT"] = dict(c.defaults())',
    'print(json.dumps(out))',
  ].join('\n')
  const {stdout} = await exec('python3', ['-c', script, path])
  return JSON.parse(stdout)
}

function login(profile: string, username: string, password: string, trackingUri = `http://127.0.0.1:5000/${profile}`): StoredLogin {
  return {password, profile, trackingUri, username}
}

/** 100 printable ASCII characters with every INI-special one (%, =, :, #, ;, [, ]) and a space. */
const LONG_PASSWORD = Array.from({length: 100}, (_, index) => (index === 50 ? ' ' : String.fromCharCode(33 + ((index * 7) % 94)))).join('')

describe('mlflowCredentialsPath', () => {
  it('is ~/.mlflow/credentials, in the given home or os.homedir()', () => {
    assert.equal(mlflowCredentialsPath('/home/someone'), join('/home/someone', '.mlflow', 'credentials'))
    assert.equal(mlflowCredentialsPath(), join(homedir(), '.mlflow', 'credentials'))
  })
})

describe('MlflowCredentialsFile', () => {
  let python = ''
  before(async () => {
    python = await requireMlflow(MLFLOW_VERSIONS.latest)
  })

  it('loads a missing file as an empty document', async () => {
    const {path} = await homeWith()
    const file = await MlflowCredentialsFile.load(path)
    assert.equal(file.path, path)
    assert.deepEqual(file.activeCredentials, {})
    assert.equal(file.currentProfile, undefined)
    assert.deepEqual(file.listProfiles(), [])
    assert.equal(file.getProfile('prod'), undefined)
    // Saving an untouched empty document creates nothing.
    assert.deepEqual(await file.save(), {warnings: []})
    await assert.rejects(stat(dirname(path)), {code: 'ENOENT'})
  })

  it('creates ~/.mlflow 0700 and the file 0600, laid out as documented', async () => {
    const {home, path} = await homeWith()
    const file = await MlflowCredentialsFile.load(path)
    file.saveLogin(login('prod', 'alice', 's3cr%t'), {activate: true})
    assert.deepEqual(await file.save(), {warnings: []})
    assert.equal(await modeOf(join(home, '.mlflow')), 0o700)
    assert.equal(await modeOf(path), 0o600)
    assert.equal(
      await readFile(path, 'utf8'),
      [
        '[mlflow]',
        'mlflow_tracking_username = alice',
        'mlflow_tracking_password = s3cr%%t',
        '',
        '[mlflowctl]',
        'current_profile = prod',
        '',
        '[mlflowctl.profile.prod]',
        'tracking_uri = http://127.0.0.1:5000/prod',
        'mlflow_tracking_username = alice',
        'mlflow_tracking_password = s3cr%%t',
        '',
      ].join('\n'),
    )
  })

  it("round-trips tricky values, and MLflow's own reader gets exactly what was written", async () => {
    const cases: Array<[string, string]> = [
      ['alice', '%'],
      ['bob', '%%'],
      ['carol', '100%(user)s%'],
      ['dave', 'a=b:c'],
      ['erin', '#not a comment'],
      ['frank', ';also not; a # comment'],
      ['ünïcødé 用户', 'пароль 密码 🔑 ß'],
      ['gina', LONG_PASSWORD],
      ['x=y:z', '=:starts with delimiters'],
      ['henry', '[mlflow]'],
    ]
    assert.equal(LONG_PASSWORD.length, 100)
    const homes: string[] = []
    for (const [username, password] of cases) {
      const {home, path} = await homeWith()
      homes.push(home)
      const file = await MlflowCredentialsFile.load(path)
      file.saveLogin(login('p', username, password), {activate: true})
      await file.save()
      const reloaded = await MlflowCredentialsFile.load(path)
      assert.deepEqual(reloaded.activeCredentials, {password, username})
      assert.deepEqual(reloaded.getProfile('p'), login('p', username, password))
    }

    assert.deepEqual(await mlflowReads(python, homes), cases)
  })

  it('keeps every other section, comment, blank line and line ending byte for byte', async () => {
    const before = [
      '# MLflow credentials, hand-written',
      '; a semicolon comment',
      '',
      '[other]',
      'key = value with %% percent',
      'multi = first line',
      '  second line',
      '',
      '  third after a blank',
      '[mlflow]',
      'MLFLOW_TRACKING_USERNAME: olduser',
      '  # a comment inside the section',
      'mlflow_tracking_password=oldpw',
      '    continued password line',
      '[tail]',
      'x = 1',
      '# trailing comment, no newline at the end',
    ].join('\n')
    const {path} = await homeWith(before)
    const file = await MlflowCredentialsFile.load(path)
    // configparser joins the continuation into the password; so must we.
    assert.deepEqual(file.activeCredentials, {password: 'oldpw\ncontinued password line', username: 'olduser'})
    file.saveLogin(login('prod', 'alice', 'new%pw'), {activate: true})
    await file.save()
    const after = [
      '# MLflow credentials, hand-written',
      '; a semicolon comment',
      '',
      '[other]',
      'key = value with %% percent',
      'multi = first line',
      '  second line',
      '',
      '  third after a blank',
      '[mlflow]',
      'MLFLOW_TRACKING_USERNAME: alice',
      '  # a comment inside the section',
      'mlflow_tracking_password=new%%pw',
      '[tail]',
      'x = 1',
      '# trailing comment, no newline at the end',
      '',
      '[mlflowctl]',
      'current_profile = prod',
      '',
      '[mlflowctl.profile.prod]',
      'tracking_uri = http://127.0.0.1:5000/prod',
      'mlflow_tracking_username = alice',
      'mlflow_tracking_password = new%%pw',
      '',
    ].join('\n')
    assert.equal(await readFile(path, 'utf8'), after)
    assert.deepEqual((await configparserDump(path)).other, {key: 'value with %% percent', multi: 'first line\nsecond line\n\nthird after a blank'})
  })

  it('keeps CRLF line endings and adds new lines with them', async () => {
    const {path} = await homeWith('[mlflow]\r\nmlflow_tracking_username = old\r\n')
    const file = await MlflowCredentialsFile.load(path)
    file.saveLogin(login('p', 'new', 'pw'), {activate: true})
    await file.save()
    const text = await readFile(path, 'utf8')
    assert.ok(text.startsWith('[mlflow]\r\nmlflow_tracking_username = new\r\nmlflow_tracking_password = pw\r\n\r\n[mlflowctl]\r\n'), JSON.stringify(text))
    assert.doesNotMatch(text.replaceAll('\r\n', ''), /[\r\n]/)
  })

  it('never duplicates a section or key over repeated logins and switches', async () => {
    const {home, path} = await homeWith('[mlflow]\nmlflow_tracking_username = someone\n')
    for (let round = 0; round < 3; round++) {
      const file = await MlflowCredentialsFile.load(path)
      file.saveLogin(login('prod', 'alice', `pw-${round}`), {activate: true})
      file.saveLogin(login('dev', 'bob', 'dev%pw'), {activate: false})
      file.useProfile(round % 2 === 0 ? 'dev' : 'prod')
      await file.save()
    }

    const text = await readFile(path, 'utf8')
    const count = (pattern: RegExp) => text.match(pattern)?.length ?? 0
    assert.equal(count(/^\[mlflow\]$/gm), 1)
    assert.equal(count(/^\[mlflowctl\]$/gm), 1)
    assert.equal(count(/^\[mlflowctl\.profile\.prod\]$/gm), 1)
    assert.equal(count(/^\[mlflowctl\.profile\.dev\]$/gm), 1)
    assert.equal(count(/^mlflow_tracking_username/gm), 3)
    assert.equal(count(/^mlflow_tracking_password/gm), 3)
    assert.equal(count(/^current_profile/gm), 1)
    // Round 2 switched to dev last; configparser's strict mode would reject any duplicate.
    assert.deepEqual(await mlflowReads(python, [home]), [['bob', 'dev%pw']])
  })

  it('tightens a 0644 file to 0600 and says so', async () => {
    const {path} = await homeWith('[mlflow]\nmlflow_tracking_username = a\n')
    await chmod(path, 0o644)
    const file = await MlflowCredentialsFile.load(path)
    file.saveLogin(login('p', 'a', 'b'), {activate: true})
    const {warnings} = await file.save()
    assert.equal(await modeOf(path), 0o600)
    assert.equal(warnings.length, 1)
    assert.match(warnings[0], /0644.*0600/)
    // A 0600 file gives no warning.
    assert.deepEqual(await (await MlflowCredentialsFile.load(path)).save(), {warnings: []})
  })

  it('leaves an existing ~/.mlflow directory mode alone', async () => {
    const {home, path} = await homeWith('')
    await chmod(join(home, '.mlflow'), 0o755)
    const file = await MlflowCredentialsFile.load(path)
    file.saveLogin(login('p', 'a', 'b'), {activate: true})
    await file.save()
    assert.equal(await modeOf(join(home, '.mlflow')), 0o755)
    assert.equal(await modeOf(path), 0o600)
  })

  it('switches and removes profiles', async () => {
    const {home, path} = await homeWith()
    const file = await MlflowCredentialsFile.load(path)
    file.saveLogin(login('prod', 'alice', 'prod-pw'), {activate: true})
    file.saveLogin(login('dev', 'bob', 'dev-pw'), {activate: false})
    assert.equal(file.currentProfile, 'prod')
    assert.deepEqual(file.activeCredentials, {password: 'prod-pw', username: 'alice'})
    assert.deepEqual(
      file.listProfiles().map((each) => each.profile),
      ['prod', 'dev'],
    )

    // Updating the current profile without activating still updates what MLflow reads.
    file.saveLogin(login('prod', 'alice', 'prod-pw-2'), {activate: false})
    assert.deepEqual(file.activeCredentials, {password: 'prod-pw-2', username: 'alice'})

    file.useProfile('dev')
    assert.equal(file.currentProfile, 'dev')
    assert.deepEqual(file.activeCredentials, {password: 'dev-pw', username: 'bob'})
    await file.save()
    // Checked with MLflow below, with the final state, in one Python process.
    const switched = await tempHome()
    await mkdir(join(switched, '.mlflow'))
    await writeFile(mlflowCredentialsPath(switched), await readFile(path))

    // Removing a profile that is not the current one keeps the active login.
    assert.equal(file.removeProfile('prod'), true)
    assert.equal(file.getProfile('prod'), undefined)
    assert.deepEqual(file.activeCredentials, {password: 'dev-pw', username: 'bob'})
    assert.equal(file.removeProfile('prod'), false)

    // Removing the current one logs out: [mlflow] loses its keys, current_profile goes.
    assert.equal(file.removeProfile('dev'), true)
    assert.equal(file.currentProfile, undefined)
    assert.deepEqual(file.activeCredentials, {})
    assert.deepEqual(file.listProfiles(), [])
    await file.save()
    assert.equal(await readFile(path, 'utf8'), '[mlflow]\n\n[mlflowctl]\n')
    assert.deepEqual(await mlflowReads(python, [switched, home]), [
      ['bob', 'dev-pw'],
      [null, null],
    ])

    await assertUserError(() => file.useProfile('nope'), 'PROFILE_NOT_FOUND')
    await assertUserError(() => file.getProfile('bad name'), 'INVALID_PROFILE_NAME')
    await assertUserError(() => file.saveLogin(login('a/b', 'u', 'p'), {activate: true}), 'INVALID_PROFILE_NAME')
  })

  it('refuses values configparser would not read back, and writes nothing', async () => {
    const original = '[mlflow]\nmlflow_tracking_username = keep\n'
    const {path} = await homeWith(original)
    const file = await MlflowCredentialsFile.load(path)
    const refused: Array<[string, string, string]> = [
      ['u', 'line\nbreak', /line break/.source],
      ['u', 'carriage\rreturn', /line break/.source],
      ['u', ' leading', /whitespace/.source],
      ['u', 'trailing\t', /whitespace/.source],
      ['u', 'python-space\u001C', /whitespace/.source],
      ['u', 'lone \uD800 surrogate', /surrogate/.source],
      ['', 'pw', /empty/.source],
      [' u', 'pw', /whitespace/.source],
    ]
    for (const [username, password, message] of refused) {
      await assertUserError(() => file.saveLogin(login('p', username, password), {activate: true}), 'INVALID_CREDENTIAL_VALUE', new RegExp(message))
    }

    await assertUserError(() => file.saveLogin(login('p', 'u', 'p', ''), {activate: true}), 'INVALID_CREDENTIAL_VALUE', /tracking URI is empty/)
    assert.deepEqual(file.listProfiles(), [])
    assert.equal(await readFile(path, 'utf8'), original)
  })

  it('reads tricky but valid files exactly as configparser does', async () => {
    const files = [
      '[mlflow]\nmlflow_tracking_username = u\nmlflow_tracking_password = first\n  second\n\n  third\n\n',
      '[mlflow]\n  mlflow_tracking_username = indented\n  mlflow_tracking_password = also\n',
      '[mlflow] trailing text after the header\nMLFLOW_TRACKING_USERNAME : Mixed Case Key\n',
      '[mlflow]\nmlflow_tracking_username=a=b:c\nmlflow_tracking_password:x=y\n',
      '[mlflow]\nmlflow_tracking_username = \u001Cpadded\u00A0\n',
      '[mlflow]\r\nmlflow_tracking_username = crlf\r\nmlflow_tracking_password = cr-only\rmlflow_tracking_token = t',
      '[DEFAULT]\nmlflow_tracking_password = from-default\n[mlflow]\nmlflow_tracking_username = u\n',
      '[mlflow]\nuser = bob\nmlflow_tracking_username = %(USER)s\nmlflow_tracking_password = a%%b%(user)s\n',
      '[mlflow]\nmlflow_tracking_username =\nmlflow_tracking_password = x\n',
      '[MLflow]\nmlflow_tracking_username = wrong case section\n',
      '[mlflow]\nmlflow_tracking_password = a ; b # c\n',
      '[mlflow]\nmlflow_tracking_password = x\n# a comment\n    continued after the comment\n',
      '',
    ]
    const paths: string[] = []
    const ours: Creds[] = []
    for (const content of files) {
      const {path} = await homeWith(content)
      paths.push(path)
      const {password, username} = (await MlflowCredentialsFile.load(path)).activeCredentials
      ours.push([username ?? null, password ?? null])
    }

    // activeCredentials treats an empty value as absent, as read_mlflow_creds' `or` does.
    const python = (await configparserReads(paths)).map((each) => each.ok!.map((value) => value || null))
    assert.deepEqual(ours, python)
    assert.deepEqual(ours[7], ['bob', 'a%bbob'])
  })

  it('rejects broken files like configparser, naming the file and line', async () => {
    const broken: Array<[string, number, RegExp]> = [
      ['[mlflow]\na = 1\n[other]\n[mlflow]\n', 4, /section \[mlflow\] appears again \(first on line 1\)/],
      ['[mlflow]\nmlflow_tracking_username = a\nMLFLOW_TRACKING_USERNAME = b\n', 3, /appears again/],
      ['# comment\nmlflow_tracking_username = a\n[mlflow]\n', 2, /before any \[section\]/],
      ['[mlflow]\nmlflow_tracking_username = a\njust some words\n', 3, /neither/],
      ['[mlflow]\n= value without a key\n', 2, /neither/],
      ['[DEFAULT]\na = 1\n[DEFAULT]\na = 2\n[mlflow]\n', 4, /appears again/],
      ['[mlflow]\nmlflow_tracking_username = a\n[other]\nbroken line in another section\n', 4, /neither/],
      ['[mlflow]\nmlflow_tracking_username = a\nmlflow_tracking_password = 100%\n', 3, /'%'/],
      ['[mlflow]\nmlflow_tracking_password = %(nope)s\n', 2, /not set/],
      ['[mlflow]\nmlflow_tracking_password = %(broken\n', 2, /%\(/],
    ]
    const paths: string[] = []
    for (const [content, line, message] of broken) {
      const {path} = await homeWith(content)
      paths.push(path)
      await assertUserError(
        async () => (await MlflowCredentialsFile.load(path)).activeCredentials,
        'CREDENTIALS_FILE_INVALID',
        new RegExp(`^${path.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')}, line ${line}: .*${message.source}`),
      )
      assert.equal(await readFile(path, 'utf8'), content, 'nothing is written')
    }

    const {path: bomPath} = await homeWith('\uFEFF[mlflow]\nmlflow_tracking_username = a\n')
    paths.push(bomPath)
    await assertUserError(() => MlflowCredentialsFile.load(bomPath), 'CREDENTIALS_FILE_INVALID', /byte order mark/)
    const {path: latin1Path} = await homeWith()
    await mkdir(dirname(latin1Path), {recursive: true})
    await writeFile(latin1Path, Buffer.from('[mlflow]\nmlflow_tracking_password = caf\xE9\n', 'latin1'))
    await assertUserError(() => MlflowCredentialsFile.load(latin1Path), 'CREDENTIALS_FILE_INVALID', /UTF-8/)

    // configparser fails on every one of these too.
    for (const result of await configparserReads(paths)) assert.ok(result.error, JSON.stringify(result))
  })

  it('can replace a password configparser cannot interpolate', async () => {
    const {home, path} = await homeWith('[mlflow]\nmlflow_tracking_username = a\nmlflow_tracking_password = 50%\n')
    const file = await MlflowCredentialsFile.load(path)
    file.saveLogin(login('p', 'a', '50%'), {activate: true})
    await file.save()
    assert.deepEqual(await mlflowReads(python, [home]), [['a', '50%']])
  })

  it('warns when [DEFAULT] supplies a key [mlflow] lacks', async () => {
    const {path} = await homeWith('[DEFAULT]\nmlflow_tracking_password = leaked\n')
    const file = await MlflowCredentialsFile.load(path)
    file.saveLogin(login('p', 'a', 'b'), {activate: true})
    assert.deepEqual((await file.save()).warnings, [])
    file.removeProfile('p')
    assert.deepEqual(file.activeCredentials, {password: 'leaked'})
    const {warnings} = await file.save()
    assert.equal(warnings.length, 1)
    assert.match(warnings[0], /\[DEFAULT\].*mlflow_tracking_password/)
  })

  it('indents a new key so that an indented section header after it stays a header', async () => {
    const content = '[mlflow]\n  mlflow_tracking_username = old\n  [other]\n  key = value\n'
    const {path} = await homeWith(content)
    const file = await MlflowCredentialsFile.load(path)
    file.saveLogin(login('p', 'new', 'pw'), {activate: true})
    await file.save()
    const dump = await configparserDump(path)
    assert.deepEqual(dump.other, {key: 'value'})
    assert.deepEqual(dump.mlflow, {mlflow_tracking_password: 'pw', mlflow_tracking_username: 'new'})
  })

  it('refuses an edit that would change how configparser reads the rest, and writes nothing', async () => {
    // `  [b]` is a header only because it follows a header; once [mlflowctl.profile.p] is gone,
    // it would become a continuation of x.
    const content = '[a]\nx = 1\n[mlflowctl.profile.p]\n  [b]\n  y = 2\n'
    const {path} = await homeWith(content)
    const file = await MlflowCredentialsFile.load(path)
    assert.ok(file.getProfile('p'))
    await assertUserError(() => file.removeProfile('p'), 'CREDENTIALS_FILE_UNEDITABLE')
    assert.ok(file.getProfile('p'), 'the document is unchanged')
    await file.save()
    assert.equal(await readFile(path, 'utf8'), content)
  })

  it('refuses to overwrite changes another program made after load', async () => {
    const {path} = await homeWith('[mlflow]\n')
    const file = await MlflowCredentialsFile.load(path)
    file.saveLogin(login('p', 'a', 'b'), {activate: true})
    await writeFile(path, '[mlflow]\n# edited meanwhile\n')
    await assertUserError(() => file.save(), 'CREDENTIALS_FILE_CHANGED')
    assert.equal(await readFile(path, 'utf8'), '[mlflow]\n# edited meanwhile\n')
  })
})
