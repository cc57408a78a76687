/**
 * What the roles, `users roles` and `access` commands share: naming a role (by name in a
 * workspace, or --id), naming what a row is on (a resource type and an id, a name or `*`), and
 * showing roles. The calls themselves are in api/roles-api.ts.
 */
import {type ChalkInstance} from 'chalk'

import {Args} from './oclif-command.js'
import {Flags} from './oclif.js'
import {DEFAULT_WORKSPACE, isPerUserRole, type Role, type RolePermission} from '../api/roles-api.js'
import {ExitCode, UserError} from '../core/errors.js'
import {ROLE_RESOURCE_TYPES, type RoleResourceType, rowProblem, WILDCARD} from '../mlflow/rbac.js'
import {scorerResourceId} from '../mlflow/resources.js'
import type {Cell} from './output.js'
import {renderRecord, renderTable} from './render.js'
import type {Session} from './session.js'

// ---- naming a role ----

export const roleArg = Args.string({description: 'The role, by name (or give --id instead).'})

export const roleFlags = {
  id: Flags.integer({description: 'The role, by id (instead of its name).', min: 1}),
  workspace: Flags.string({default: DEFAULT_WORKSPACE, description: 'The workspace the role belongs to (MLflow without workspaces: default).'}),
}

function usage(message: string, hint?: string): UserError {
  return new UserError(message, {code: 'USAGE_ERROR', exit: ExitCode.Usage, hint})
}

/**
 * The role the arguments name. `forChange`: a per-user role (a user's own grants, kept by MLflow
 * as a hidden role) is refused, since changing it as a role would change that user's grants
 * behind `perms`'s back.
 */
export async function pickRole(session: Session, name: string | undefined, flags: {id?: number; workspace: string}, forChange: boolean): Promise<Role> {
  if (name !== undefined && flags.id !== undefined) throw usage('Give the role once: by name, or with --id')
  if (name === undefined && flags.id === undefined) throw usage('Which role? Give its name, or --id')
  if (name !== undefined && name.trim() === '') throw usage('The role name is empty')
  const role = await session.roles.find(flags.id === undefined ? {name: name!, workspace: flags.workspace} : {id: flags.id})
  if (forChange && isPerUserRole(role)) {
    throw usage(
      `Role "${role.name}" holds one user's own permissions and is changed with \`mlflowctl perms\`, not as a role`,
      'Use `mlflowctl perms grant|update|revoke … --user USER`.',
    )
  }

  return role
}

// ---- naming what a row is on ----

/** `model` is MLflow's registered_model; dashes are accepted for underscores. */
export function parseResourceType(input: string): RoleResourceType {
  const type = input.trim().toLowerCase().replaceAll('-', '_')
  const resolved = type === 'model' ? 'registered_model' : type
  if (!(ROLE_RESOURCE_TYPES as readonly string[]).includes(resolved)) {
    throw usage(`Unknown resource type "${input}". Expected one of: model, ${ROLE_RESOURCE_TYPES.join(', ')}`)
  }

  return resolved as RoleResourceType
}

/**
 * ROLE KIND RESOURCE [SCORER]; with --id the role is not an argument and the rest move up one,
 * so every argument is optional to oclif and checked here.
 */
export const rowArgs = {
  role: Args.string({description: 'The role, by name (leave it out with --id).'}),
  kind: Args.string({description: `What the permission is on: model (registered_model), ${ROLE_RESOURCE_TYPES.join(', ')}.`}),
  resource: Args.string({
    description:
      'An id or name, or * for every one of the kind. Experiments: digits are an id, anything else a name (--name for a name of digits). Scorers: the experiment.',
  }),
  scorer: Args.string({description: 'For scorers: the scorer name (leave it out with *).'}),
}

export interface RowArgs {
  kind: string
  resource: string
  role?: string
  scorer?: string
}

export function rowArgsOf(args: {kind?: string; resource?: string; role?: string; scorer?: string}, id: number | undefined): RowArgs {
  const given = [args.role, args.kind, args.resource, args.scorer].filter((value): value is string => value !== undefined)
  const [role, kind, resource, scorer, ...rest] = id === undefined ? given : [undefined, ...given]
  if (rest.length > 0) throw usage(`Too many arguments: ${rest.join(' ')}`)
  if (kind === undefined || resource === undefined) {
    throw usage(id === undefined ? 'Give the role, the kind and the resource: ROLE KIND RESOURCE' : 'With --id, give the kind and the resource: KIND RESOURCE')
  }

  return {kind, resource, role, scorer}
}

export const resourceNameFlag = {
  name: Flags.boolean({default: false, description: "RESOURCE (a scorer's experiment too) is an experiment name, even if it is all digits."}),
}

export interface PatternTarget {
  /** The experiment's name (of an experiment, or of a scorer's experiment), when known. */
  experiment_name?: string
  resource_pattern: string
  resource_type: RoleResourceType
}

/**
 * The row's pattern from what the user typed. An experiment named by name is looked up (patterns
 * hold ids); `mustExist` (grants) refuses an experiment or model the server says does not exist,
 * as `perms grant` does: MLflow itself would store a row on nothing.
 */
export async function resolvePattern(
  session: Session,
  args: {kind: string; resource: string; scorer?: string},
  options: {byName: boolean; mustExist: boolean; permission?: string},
): Promise<PatternTarget> {
  const type = parseResourceType(args.kind)
  const {resource, scorer} = args
  if (resource.trim() === '') throw usage('The resource is empty')
  if (type !== 'scorer' && scorer !== undefined) throw usage(`Only scorers take a second name; for ${type} give one RESOURCE`)
  if (resource === WILDCARD) {
    if (scorer !== undefined) throw usage('With *, give no scorer name')
    return checked({resource_pattern: WILDCARD, resource_type: type}, options.permission)
  }

  if (type === 'experiment' || type === 'scorer') {
    if (type === 'scorer' && scorer === undefined) throw usage('Give the experiment and the scorer name: scorer EXPERIMENT SCORER (or scorer *)')
    const experiment = await experimentOf(session, resource, options)
    const pattern = type === 'scorer' ? scorerResourceId(experiment.id, scorer!) : experiment.id
    return checked(
      {...(experiment.name === undefined ? {} : {experiment_name: experiment.name}), resource_pattern: pattern, resource_type: type},
      options.permission,
    )
  }

  const target = checked({resource_pattern: resource, resource_type: type}, options.permission)
  if (type === 'registered_model' && options.mustExist && !(await session.tracking.registeredModelExists(resource))) {
    throw new UserError(`There is no registered model named "${resource}"; nothing was granted`, {code: 'RESOURCE_DOES_NOT_EXIST', exit: ExitCode.NotFound})
  }

  return target
}

async function experimentOf(session: Session, value: string, options: {byName: boolean; mustExist: boolean}): Promise<{id: string; name?: string}> {
  if (options.byName || !/^\d+$/.test(value)) return session.tracking.experimentByName(value)
  const lookup = await session.tracking.experimentById(value)
  if (lookup.found === false && options.mustExist) {
    throw new UserError(`There is no experiment with id ${value}; nothing was granted`, {
      code: 'RESOURCE_DOES_NOT_EXIST',
      exit: ExitCode.NotFound,
      hint: `For an experiment named "${value}", pass --name.`,
    })
  }

  return lookup.found ? lookup.experiment : {id: value}
}

/** MLflow's own refusal, in its words, before any request: a wildcard-only type, a level the type does not take. */
function checked(target: PatternTarget, permission: string | undefined): PatternTarget {
  // Without a level (revoke), only the pattern is checked: any level the type takes will do.
  const problem = rowProblem(target.resource_type, target.resource_pattern, permission ?? (target.resource_type === 'workspace' ? 'USE' : 'READ'))
  if (problem) throw new UserError(problem, {code: 'INVALID_PARAMETER_VALUE', exit: ExitCode.Usage})
  return target
}

/** The row of `role` on the target; NotFound when it has none. */
export function rowOn(role: Role, target: PatternTarget): RolePermission {
  const row = role.permissions.find((candidate) => candidate.resource_type === target.resource_type && candidate.resource_pattern === target.resource_pattern)
  if (!row) {
    throw new UserError(`Role "${role.name}" has no permission on ${describeTarget(target)}`, {
      code: 'RESOURCE_DOES_NOT_EXIST',
      exit: ExitCode.NotFound,
      hint: `\`mlflowctl roles get ${role.name}\` lists its permissions.`,
    })
  }

  return row
}

export function describeTarget(target: PatternTarget): string {
  const what = `${target.resource_type} ${target.resource_pattern}`
  return target.experiment_name === undefined ? what : `${what} (experiment ${JSON.stringify(target.experiment_name)})`
}

// ---- showing roles ----

export interface RoleJson {
  description: null | string
  id: number
  name: string
  permissions: Array<Omit<RolePermission, 'role_id'>>
  workspace: string
}

export function roleJson(role: Role): RoleJson {
  return {
    description: role.description ?? null,
    id: role.id,
    name: role.name,
    permissions: role.permissions.map(({id, permission, resource_pattern: pattern, resource_type: type}) => ({
      id,
      permission,
      resource_pattern: pattern,
      resource_type: type,
    })),
    workspace: role.workspace,
  }
}

export function renderRole(role: Role, color: ChalkInstance): string {
  const record = renderRecord(
    [
      ['name', role.name],
      ['id', role.id],
      ['workspace', role.workspace],
      ['description', role.description ?? undefined],
    ],
    color,
  )
  if (role.permissions.length === 0) return `${record}\n(no permissions)`
  return `${record}\n${renderTable(
    ['RESOURCE TYPE', 'PATTERN', 'PERMISSION', 'ROW ID'],
    role.permissions.map((row) => [row.resource_type, row.resource_pattern, row.permission, row.id]),
    color,
  )}`
}

export const ROLES_TABLE_HEAD = ['NAME', 'ID', 'WORKSPACE', 'PERMISSIONS', 'DESCRIPTION'] as const

/** One table row per role, in ROLES_TABLE_HEAD's columns. */
export function roleTableRows(roles: Role[]): Cell[][] {
  return roles.map((role) => [
    role.name,
    role.id,
    role.workspace,
    role.permissions.map((row) => `${row.resource_type} ${row.resource_pattern} ${row.permission}`).join(', '),
    role.description ?? undefined,
  ])
}
