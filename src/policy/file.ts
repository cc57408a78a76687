/**
 * Reading an access-policy file (YAML, format v1: docs/access-as-code.md) into an AccessPolicy,
 * with every resource resolved against the server and every item's line kept for messages.
 *
 * Exports:
 * - readPolicyFile(path, resolver): Promise<AccessPolicy> — reads and checks the file; throws a
 *   UserError (exit 2, USAGE_ERROR; exit 8, UNSUPPORTED, when every problem is a feature the
 *   server lacks) whose message lists each problem as `FILE:LINE: message`.
 * - parsePolicy(text, resolver, fileName): Promise<AccessPolicy> — the same from text.
 * - Resolver, Feature: what reading needs from a server: read-only lookups and feature probes.
 *   ./resolver.ts makes one from a session; tests pass a fake.
 *
 * Order: YAML syntax, then the JSON Schema (./schema.ts, with ajv), then the checks that need the
 * whole file (one resource per item, duplicates, users named but not listed, kind/level rules),
 * then the server (features, then names → ids). Each stage reports all its problems at once;
 * nothing is ever sent to the server but lookups.
 */
import {readFile} from 'node:fs/promises'

import {Ajv, type ErrorObject} from 'ajv'
import {isMap, LineCounter, parseDocument, type Document, type Node} from 'yaml'

import {editDistance} from '../core/edit-distance.js'
import {ExitCode, UserError} from '../core/errors.js'
import {mapLimit} from '../core/map-limit.js'
import {DEFAULT_WORKSPACE, perUserGrantProblem, rowProblem, WILDCARD} from '../mlflow/rbac.js'
import {ALL_RESOURCES, DENY_SINCE, scorerResourceId, UNIFIED_SINCE} from '../mlflow/resources.js'
import {
  type AccessPolicy,
  describeTarget,
  type Grant,
  type PasswordSource,
  POLICY_KINDS,
  type PolicyKind,
  roleKey,
  type RolePolicy,
  type Target,
  targetKey,
  type UserPolicy,
} from './model.js'
import {GRANT_RESOURCE_KEYS, POLICY_SCHEMA} from './schema.js'

/**
 * What the server offers, as reading a file needs to know it: `roles` (3.12), `unified` per-user
 * grants with `*`, prompts and gateway objects (3.13), `mcp` servers (3.15), `deny` (3.17: DENY
 * and the sub-resource tiers).
 */
export type Feature = 'deny' | 'mcp' | 'roles' | 'unified'

/** The MLflow release that added each feature, for messages. */
export const FEATURE_SINCE: Record<Feature, string> = {deny: DENY_SINCE, mcp: '3.15', roles: '3.12', unified: UNIFIED_SINCE}

export interface Resolver {
  supports(feature: Feature): Promise<boolean>
  /** The id of the experiment of this name; undefined when there is none. */
  experimentId(name: string): Promise<string | undefined>
  /** The name of the experiment of this id; undefined when there is none (or the caller may not read it). */
  experimentName(id: string): Promise<string | undefined>
  modelExists(name: string): Promise<boolean>
  /** Whether a prompt of this name exists (a registered model tagged as a prompt). */
  promptExists(name: string): Promise<boolean>
}

interface Problem {
  line: number
  message: string
  /** A feature the server lacks (exit 8 when every problem is one). */
  unsupported?: boolean
}

class Problems {
  readonly list: Problem[] = []

  add(line: number, message: string, unsupported = false): void {
    this.list.push({line, message, ...(unsupported ? {unsupported} : {})})
  }

  throwIfAny(fileName: string): void {
    if (this.list.length === 0) return
    const sorted = [...this.list].sort((a, b) => a.line - b.line)
    const lines = [...new Set(sorted.map((problem) => `${fileName}:${problem.line}: ${problem.message}`))]
    const unsupported = this.list.every((problem) => problem.unsupported)
    const message = lines.length === 1 ? lines[0] : `${fileName} has ${lines.length} problems:\n${lines.join('\n')}`
    throw new UserError(message, unsupported ? {code: 'UNSUPPORTED', exit: ExitCode.Unsupported} : {code: 'USAGE_ERROR', exit: ExitCode.Usage})
  }
}

type Path = Array<number | string>

/** Line numbers of the parsed document's nodes. */
class Lines {
  constructor(
    private readonly doc: Document,
    private readonly counter: LineCounter,
  ) {}

  ofOffset(offset: number): number {
    return this.counter.linePos(offset).line
  }

  /** The line of the node at `path`, or of its nearest ancestor that exists. */
  of(path: Path): number {
    for (let end = path.length; end >= 0; end--) {
      const node = end === 0 ? this.doc.contents : (this.doc.getIn(path.slice(0, end), true) as Node | undefined)
      if (node?.range) return this.ofOffset(node.range[0])
    }

    return 1
  }

  /** The line of a key within the map at `path`. */
  ofKey(path: Path, key: string): number {
    const map = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true)
    if (isMap(map)) {
      const pair = map.items.find((item) => (item.key as {value?: unknown} | null)?.value === key)
      const node = pair?.key as Node | undefined
      if (node?.range) return this.ofOffset(node.range[0])
    }

    return this.of(path)
  }
}

let validator: ReturnType<Ajv['compile']> | undefined

function validate(data: unknown): ErrorObject[] {
  validator ??= new Ajv({allErrors: true, strict: false, verbose: true}).compile(POLICY_SCHEMA)
  return validator(data) ? [] : (validator.errors ?? [])
}

/** `/users/0/grants/1` → ['users', 0, 'grants', 1]. */
function pointerPath(pointer: string): Path {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part))
}

const quoted = (value: unknown) => JSON.stringify(value)

/** What a schema error says, in words for the file's author. */
function schemaMessage(error: ErrorObject, path: Path): string {
  const last = path.at(-1)
  const subject =
    typeof last === 'string' ? (path.at(-2) === 'grants' ? `the level of ${last}` : `"${last}"`) : typeof last === 'number' ? `item ${last + 1}` : 'the file'
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty)
      const known = Object.keys((error.parentSchema as {properties?: object} | undefined)?.properties ?? {})
      const [closest] = known.map((candidate) => ({candidate, distance: editDistance(key, candidate)})).sort((a, b) => a.distance - b.distance)
      if (closest && closest.distance <= Math.max(1, Math.floor(key.length / 3))) return `unknown key "${key}"; did you mean "${closest.candidate}"?`
      return `unknown key "${key}"; expected one of: ${known.join(', ')}`
    }

    case 'required': {
      return `missing "${String(params.missingProperty)}"`
    }

    case 'enum': {
      return `${subject} must be one of ${(params.allowedValues as unknown[]).join(', ')}, not ${quoted(error.data)}`
    }

    case 'const': {
      return `${subject} must be ${quoted(params.allowedValue)}, not ${quoted(error.data)}`
    }

    case 'type': {
      const type = String(params.type)
      const article = /^[aeiou]/.test(type) ? 'an' : 'a'
      const hint = type === 'string' && (typeof error.data === 'number' || typeof error.data === 'boolean') ? ' (quote it)' : ''
      return `${subject} must be ${article} ${type.replace('array', 'list').replace('object', 'mapping')}${hint}`
    }

    case 'pattern': {
      if (last === 'experiment_id') return `"experiment_id" must be an experiment id (digits), not ${quoted(error.data)}`
      if (last === 'env') return `"env" must be the name of an environment variable, not ${quoted(error.data)}`
      return `${subject} does not match ${String(params.pattern)}`
    }

    case 'not': {
      return `role names starting with "__user_" are MLflow's hidden per-user roles: give those rows as the user's grants`
    }

    case 'minLength': {
      return `${subject} is empty`
    }

    case 'minProperties':
    case 'maxProperties': {
      if (last === 'password') return '"password" takes exactly one of env, stdin, generate'
      return `${subject} is empty`
    }

    default: {
      return `${subject} ${error.message ?? 'is invalid'}`
    }
  }
}

/** A grant item before the server is asked: what it names and how. */
interface Ref {
  /** experiment_id given rather than a name (for experiments and a scorer's experiment). */
  byId: boolean
  kind: PolicyKind
  level: string
  line: number
  /** A scorer's experiment (name or id, see byId); the scorer's name is `value`. */
  scorerExperiment?: string
  value: string
}

interface Holder {
  /** A username, or a role's roleKey. */
  key: string
  kind: 'role' | 'user'
  name: string
}

const describeHolder = (holder: Holder) => `${holder.kind} ${holder.name}`

/**
 * The resource an item names: exactly one resource key, except that a scorer names its
 * experiment too (`experiment` or `experiment_id`) unless it is `*`.
 */
function refOf(item: Record<string, unknown>, line: number, problems: Problems): Omit<Ref, 'level'> | undefined {
  const keys = GRANT_RESOURCE_KEYS.filter((key) => key in item)
  if ('scorer' in item) {
    const scorer = item.scorer as string
    const experimentKeys = keys.filter((key) => key === 'experiment' || key === 'experiment_id')
    const others = keys.filter((key) => key !== 'scorer' && key !== 'experiment' && key !== 'experiment_id')
    if (others.length > 0) {
      problems.add(line, `one item names one resource: "scorer" cannot go with ${others.map((key) => `"${key}"`).join(', ')}`)
      return undefined
    }

    if (scorer === ALL_RESOURCES) {
      if (experimentKeys.length > 0) {
        problems.add(line, '"scorer: *" is every scorer of every experiment: give no experiment with it')
        return undefined
      }

      return {byId: false, kind: 'scorer', line, value: ALL_RESOURCES}
    }

    if (experimentKeys.length !== 1) {
      problems.add(line, `scorer ${quoted(scorer)} needs its experiment: "experiment" (a name) or "experiment_id", one of them`)
      return undefined
    }

    const byId = experimentKeys[0] === 'experiment_id'
    const experiment = item[experimentKeys[0]] as string
    if (experiment === ALL_RESOURCES && !byId) {
      problems.add(line, 'a scorer is in one experiment: give its name or id, not "*" (use "scorer: *" alone for every scorer)')
      return undefined
    }

    return {byId, kind: 'scorer', line, scorerExperiment: experiment, value: scorer}
  }

  if (keys.length !== 1) {
    problems.add(
      line,
      keys.length === 0
        ? `name what the grant is on with one of: ${GRANT_RESOURCE_KEYS.join(', ')}`
        : `one item names one resource, not ${keys.map((key) => `"${key}"`).join(' and ')}`,
    )
    return undefined
  }

  const key = keys[0]
  const value = item[key] as string
  if (key === 'experiment_id') return {byId: true, kind: 'experiment', line, value}
  return {byId: false, kind: key as PolicyKind, line, value}
}

/** Version-independent refusals (MLflow's own, in its words), before anything is asked of the server. */
function levelProblem(ref: Ref, holder: Holder): string | undefined {
  const {type} = POLICY_KINDS[ref.kind]
  const pattern = ref.value === ALL_RESOURCES ? WILDCARD : 'x'
  // NO_PERMISSIONS is refused or not by the server's generation, checked with the server.
  const level = ref.level === 'NO_PERMISSIONS' ? 'READ' : ref.level
  if (holder.kind === 'user') {
    if (ref.kind === 'workspace') return 'the workspace slot is for roles: a user is given it through a role'
    return perUserGrantProblem(type, pattern, level)
  }

  if (ref.level === 'NO_PERMISSIONS' && ref.kind === 'workspace') return rowProblem(type, WILDCARD, 'NO_PERMISSIONS')
  return rowProblem(type, pattern, level)
}

interface Unresolved {
  holder: Holder
  ref: Ref
}

interface Draft {
  grants: Unresolved[]
  policy: AccessPolicy
  roleLines: Map<string, number>
  rolesLine?: number
}

/** The whole-file checks; builds the policy with its grants still unresolved. */
function draftOf(data: Record<string, unknown>, lines: Lines, problems: Problems): Draft {
  const policy: AccessPolicy = {roles: new Map(), users: new Map()}
  const grants: Unresolved[] = []
  const roleLines = new Map<string, number>()
  const userLines = new Map<string, number>()

  const readGrants = (items: unknown, path: Path, holder: Holder) => {
    for (const [index, raw] of ((items as Array<Record<string, unknown>> | undefined) ?? []).entries()) {
      const line = lines.of([...path, index])
      const ref = refOf(raw, line, problems)
      if (!ref) continue
      const full = {...ref, level: raw.permission as string}
      const problem = levelProblem(full, holder)
      if (problem) problems.add(lines.of([...path, index, 'permission']), `${describeHolder(holder)}: ${problem}`)
      else grants.push({holder, ref: full})
    }
  }

  for (const [index, raw] of ((data.users as Array<Record<string, unknown>> | undefined) ?? []).entries()) {
    const name = raw.name as string
    const line = lines.of(['users', index])
    const earlier = userLines.get(name)
    if (earlier !== undefined) {
      problems.add(line, `user ${name} is listed twice (also on line ${earlier})`)
      continue
    }

    userLines.set(name, line)
    const user: UserPolicy = {admin: raw.admin === true, grants: new Map(), name, origin: {line}}
    if (raw.password !== undefined) user.password = raw.password as PasswordSource
    policy.users.set(name, user)
    readGrants(raw.grants, ['users', index, 'grants'], {key: name, kind: 'user', name})
  }

  if (Array.isArray(data.roles)) {
    const rolesLine = lines.ofKey([], 'roles')
    for (const [index, raw] of (data.roles as Array<Record<string, unknown>>).entries()) {
      const name = raw.name as string
      const workspace = (raw.workspace as string | undefined) ?? DEFAULT_WORKSPACE
      const line = lines.of(['roles', index])
      const key = roleKey({name, workspace})
      const earlier = roleLines.get(key)
      if (earlier !== undefined) {
        problems.add(line, `role ${name} (workspace ${workspace}) is listed twice (also on line ${earlier})`)
        continue
      }

      roleLines.set(key, line)
      const role: RolePolicy = {
        description: (raw.description as string | undefined) ?? null,
        members: new Set(),
        name,
        origin: {line},
        rows: new Map(),
        workspace,
      }
      policy.roles.set(key, role)
      for (const [memberIndex, member] of ((raw.members as string[] | undefined) ?? []).entries()) {
        const memberLine = lines.of(['roles', index, 'members', memberIndex])
        if (!userLines.has(member)) problems.add(memberLine, `role ${name}: member ${member} is not listed under users`)
        else if (role.members.has(member)) problems.add(memberLine, `role ${name}: member ${member} is listed twice`)
        else role.members.add(member)
      }

      readGrants(raw.grants, ['roles', index, 'grants'], {key, kind: 'role', name})
    }

    return {
      grants: [...grants, ...resourceGrants(data, lines, problems, userLines)],
      policy,
      roleLines,
      rolesLine: policy.roles.size > 0 ? rolesLine : undefined,
    }
  }

  return {grants: [...grants, ...resourceGrants(data, lines, problems, userLines)], policy, roleLines}
}

/** The `resources:` section, as users' grants. */
function resourceGrants(data: Record<string, unknown>, lines: Lines, problems: Problems, userLines: Map<string, number>): Unresolved[] {
  const grants: Unresolved[] = []
  for (const [index, raw] of ((data.resources as Array<Record<string, unknown>> | undefined) ?? []).entries()) {
    const ref = refOf(raw, lines.of(['resources', index]), problems)
    if (!ref) continue
    for (const [username, level] of Object.entries(raw.grants as Record<string, string>)) {
      const line = lines.ofKey(['resources', index, 'grants'], username)
      if (!userLines.has(username)) {
        problems.add(line, `user ${username} is not listed under users`)
        continue
      }

      const holder: Holder = {key: username, kind: 'user', name: username}
      const full = {...ref, level, line}
      const problem = levelProblem(full, holder)
      if (problem) problems.add(line, `${describeHolder(holder)}: ${problem}`)
      else grants.push({holder, ref: full})
    }
  }

  return grants
}

/** The feature a grant needs beyond MLflow 3.12's, if any. */
function featureNeeded(ref: Ref, holder: Holder): Feature | undefined {
  const since = (POLICY_KINDS[ref.kind] as {since?: string}).since
  if (ref.level === 'DENY' || since === DENY_SINCE) return 'deny'
  if (since === '3.15') return 'mcp'
  if (holder.kind === 'user') {
    if (ref.value === ALL_RESOURCES || since === UNIFIED_SINCE) return 'unified'
    return undefined
  }

  // Roles took `*` and the gateway objects from the start (3.12); prompts came with 3.13.
  return ref.kind === 'prompt' ? 'unified' : undefined
}

function unsupportedMessage(ref: Ref, feature: Feature): string {
  if (feature === 'deny' && ref.level === 'DENY') return `this server does not take DENY: MLflow added it in ${DENY_SINCE}`
  if (feature === 'unified' && ref.value === ALL_RESOURCES && POLICY_KINDS[ref.kind].by !== 'wildcard')
    return `this server does not take "*" for all ${POLICY_KINDS[ref.kind].plural} in a user's grants: MLflow added it in ${UNIFIED_SINCE} (a role can hold it)`
  return `this server does not take permissions on ${POLICY_KINDS[ref.kind].plural}: MLflow added them in ${FEATURE_SINCE[feature]}`
}

const LOOKUPS_AT_ONCE = 8

/** A resource as MLflow stores it, looked up where a name must be; undefined (with a problem) when it does not resolve. */
async function resolveRef(ref: Ref, resolver: Resolver, problems: Problems): Promise<Target | undefined> {
  const experiment = async (value: string, byId: boolean): Promise<undefined | {id: string; label: string}> => {
    if (byId) {
      // An id is what MLflow stores: one with no experiment (deleted) is still a grant to manage.
      const name = await resolver.experimentName(value)
      return {id: value, label: name ?? value}
    }

    const id = await resolver.experimentId(value)
    if (id === undefined) {
      problems.add(ref.line, `there is no experiment named ${quoted(value)}${/^\d+$/.test(value) ? ' (for an experiment id, use "experiment_id")' : ''}`)
      return undefined
    }

    return {id, label: value}
  }

  if (ref.value === ALL_RESOURCES && !(ref.kind === 'experiment' && ref.byId)) return {kind: ref.kind, label: ALL_RESOURCES, pattern: ALL_RESOURCES}
  switch (ref.kind) {
    case 'experiment': {
      const found = await experiment(ref.value, ref.byId)
      return found && {kind: 'experiment', label: found.label, pattern: found.id}
    }

    case 'scorer': {
      const found = await experiment(ref.scorerExperiment!, ref.byId)
      return found && {kind: 'scorer', label: `${found.label}/${ref.value}`, pattern: scorerResourceId(found.id, ref.value)}
    }

    case 'model': {
      if (await resolver.modelExists(ref.value)) return {kind: 'model', label: ref.value, pattern: ref.value}
      problems.add(ref.line, `there is no registered model named ${quoted(ref.value)}`)
      return undefined
    }

    case 'prompt': {
      if (await resolver.promptExists(ref.value)) return {kind: 'prompt', label: ref.value, pattern: ref.value}
      problems.add(ref.line, `there is no prompt named ${quoted(ref.value)}`)
      return undefined
    }

    default: {
      // MCP servers and gateway objects have no lookup here; MLflow matches the name or id as given.
      return {kind: ref.kind, label: ref.value, pattern: ref.value}
    }
  }
}

export async function parsePolicy(text: string, resolver: Resolver, fileName: string): Promise<AccessPolicy> {
  const problems = new Problems()
  const counter = new LineCounter()
  const doc = parseDocument(text, {lineCounter: counter, prettyErrors: false, uniqueKeys: true})
  const lines = new Lines(doc, counter)
  for (const error of doc.errors) problems.add(lines.ofOffset(error.pos[0]), `YAML: ${error.message.split('\n')[0]}`)
  problems.throwIfAny(fileName)

  const data: unknown = doc.toJS({maxAliasCount: 100})
  for (const error of validate(data ?? null)) {
    const path = pointerPath(error.instancePath)
    const line =
      error.keyword === 'additionalProperties' ? lines.ofKey(path, String((error.params as {additionalProperty: string}).additionalProperty)) : lines.of(path)
    problems.add(line, schemaMessage(error, path))
  }

  problems.throwIfAny(fileName)
  const draft = draftOf(data as Record<string, unknown>, lines, problems)
  problems.throwIfAny(fileName)

  // The server's features, asked only about what the file uses.
  if (draft.rolesLine !== undefined && !(await resolver.supports('roles'))) {
    problems.add(draft.rolesLine, `this server does not offer roles: MLflow added them to its basic-auth app in ${FEATURE_SINCE.roles}`, true)
  }

  const unified = draft.grants.some(({holder}) => holder.kind === 'user') ? await resolver.supports('unified') : true
  const deny = draft.grants.some(({ref}) => ref.level === 'NO_PERMISSIONS') ? await resolver.supports('deny') : false
  for (const {holder, ref} of draft.grants) {
    const feature = featureNeeded(ref, holder)
    if (feature && !(await resolver.supports(feature))) {
      problems.add(ref.line, `${describeHolder(holder)}: ${unsupportedMessage(ref, feature)}`, true)
    } else if (holder.kind === 'user' && !unified && !['experiment', 'model', 'scorer'].includes(ref.kind)) {
      problems.add(
        ref.line,
        `${describeHolder(holder)}: this server does not take permissions on ${POLICY_KINDS[ref.kind].plural}: MLflow added them in ${UNIFIED_SINCE}`,
        true,
      )
    } else if (ref.level === 'NO_PERMISSIONS' && (holder.kind === 'user' ? unified : deny)) {
      // Since 3.13 (users) and 3.17 (roles) absence is how a resource is withheld; DENY hides it.
      const message =
        holder.kind === 'user'
          ? perUserGrantProblem(POLICY_KINDS[ref.kind].type, 'x', 'NO_PERMISSIONS')
          : rowProblem(POLICY_KINDS[ref.kind].type, 'x', 'NO_PERMISSIONS')
      problems.add(ref.line, `${describeHolder(holder)}: ${message ?? 'NO_PERMISSIONS is not taken here'}`)
    }
  }

  problems.throwIfAny(fileName)

  // Names → what MLflow stores; then duplicates, which only ids can show (a name and an id of one experiment).
  const targets = await mapLimit(draft.grants, LOOKUPS_AT_ONCE, ({ref}) => resolveRef(ref, resolver, problems))
  problems.throwIfAny(fileName)
  for (const [index, {holder, ref}] of draft.grants.entries()) {
    const target = targets[index]!
    const grant: Grant = {level: ref.level, origin: {line: ref.line}, target}
    const held = holder.kind === 'user' ? draft.policy.users.get(holder.key)!.grants : draft.policy.roles.get(holder.key)!.rows
    const key = targetKey(target)
    const earlier = held.get(key)
    if (earlier) {
      problems.add(ref.line, `${describeHolder(holder)} has two grants on ${describeTarget(target)} (also on line ${earlier.origin!.line})`)
      continue
    }

    held.set(key, grant)
  }

  problems.throwIfAny(fileName)
  return draft.policy
}

export async function readPolicyFile(path: string, resolver: Resolver): Promise<AccessPolicy> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UserError(code === 'ENOENT' ? `There is no file ${path}` : `Cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
      code: 'USAGE_ERROR',
      exit: ExitCode.Usage,
    })
  }

  return parsePolicy(text, resolver, path)
}
