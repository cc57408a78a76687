/**
 * The perms commands are a grid, verb × resource kind; each command file is one cell made here.
 * The experiment or model is looked up here through the tracking API (api/tracking-api.ts); the
 * permission calls live in api/auth-api.ts.
 */
import type {Command} from '@oclif/core/command'
import type * as Interfaces from '@oclif/core/interfaces'

import {Args} from './oclif-command.js'
import {Flags} from './oclif.js'
import {describeResource, isAllResources, type PermissionRow, type Resource, type ResourceKind} from '../api/auth-api.js'
import {BaseCommand, tableFlags} from './base-command.js'
import {ExitCode, UserError} from '../core/errors.js'
import {ALL_RESOURCES, DENY_SINCE, PERMISSION_KIND_NAMES, PERMISSION_KINDS} from '../mlflow/resources.js'
import {permissionFlag, userFlag, yesFlag} from './flags.js'
import {confirmDestructive} from './prompts.js'
import type {Session} from './session.js'

export type PermsVerb = 'get' | 'grant' | 'revoke' | 'update'

export interface PermsResult {
  action?: 'created' | 'revoked' | 'updated'
  permission?: string
  resource: {experiment_id?: string; experiment_name?: string; id: string; kind: ResourceKind; name?: string}
  user: string
}

const ALL = ALL_RESOURCES

function article(noun: string): string {
  return /^(?:[aeiou]|MCP)/i.test(noun) ? `an ${noun}` : `a ${noun}`
}

/** What a command of the kind is about: "a prompt (or all: '*')", or "all runs ('*')" for a tier. */
function target(kind: ResourceKind): string {
  const {by, noun, plural} = PERMISSION_KINDS[kind]
  return by === 'wildcard' ? `all ${plural} ('${ALL}')` : `${article(noun)} (or all ${plural}: '${ALL}')`
}

const SUMMARY: Record<PermsVerb, (kind: ResourceKind) => string> = {
  get: (kind) => `Show a user's permission on ${target(kind)}.`,
  grant: (kind) => `Give a user a permission on ${target(kind)}, or change the one they have.`,
  revoke: (kind) => `Remove a user's permission on ${target(kind)}.`,
  update: (kind) => `Change a user's existing permission on ${target(kind)}.`,
}

const EXPERIMENT_HELP = 'An argument of digits only is an id, anything else a name; --id and --name say which (an experiment named "2024" needs --name 2024).'

/** The name of the one argument of kinds other than experiments and scorers. */
function argumentName(kind: ResourceKind): string {
  if (kind === 'model' || kind === 'prompt') return kind
  const {by} = PERMISSION_KINDS[kind]
  return by === 'wildcard' ? 'pattern' : by === 'id' ? 'id' : 'name'
}

function resourceArgs(kind: ResourceKind): Interfaces.ArgInput {
  const {by, noun, plural} = PERMISSION_KINDS[kind]
  switch (kind) {
    case 'experiment': {
      return {experiment: Args.string({description: `Experiment id or name (or give --id / --name instead); '${ALL}' for all experiments.`})}
    }

    case 'scorer': {
      return {
        experiment: Args.string({
          description: `Experiment id or name the scorer belongs to (leave it out with --experiment-id / --experiment-name); '${ALL}' alone for all scorers.`,
        }),
        scorer: Args.string({description: 'Scorer name.'}),
      }
    }

    default: {
      const description =
        by === 'wildcard'
          ? `Only '${ALL}': MLflow grants ${plural} all at once, never one by one.`
          : `${noun[0].toUpperCase()}${noun.slice(1)} ${by === 'id' ? 'id' : 'name'}, or '${ALL}' for all ${plural}.`
      return {[argumentName(kind)]: Args.string({description, required: true})}
    }
  }
}

function experimentFlags(kind: ResourceKind): Interfaces.FlagInput {
  switch (kind) {
    case 'experiment': {
      return {
        id: Flags.string({description: 'The experiment, by id.', exclusive: ['name']}),
        name: Flags.string({description: 'The experiment, by name (also a name of digits only, or "*").', exclusive: ['id']}),
      }
    }

    case 'scorer': {
      return {
        'experiment-id': Flags.string({description: "The scorer's experiment, by id.", exclusive: ['experiment-name']}),
        'experiment-name': Flags.string({description: "The scorer's experiment, by name (also a name of digits only).", exclusive: ['experiment-id']}),
      }
    }

    default: {
      return {}
    }
  }
}

const EXAMPLE_TARGET: Partial<Record<ResourceKind, string[]>> = {
  experiment: ['42', '"My experiment"', '--name 2024', `'${ALL}'`],
  'gateway-endpoint': ['e-1a2b3c'],
  'gateway-model-definition': ['d-1a2b3c'],
  'gateway-secret': ['s-1a2b3c'],
  'mcp-server': ['docs-search'],
  model: ['churn-model', `'${ALL}'`],
  prompt: ['summarize', `'${ALL}'`],
  scorer: ['42 relevance', '--experiment-name 2024 relevance'],
}

function examples(verb: PermsVerb, kind: ResourceKind): string[] {
  const level = verb === 'grant' || verb === 'update' ? ' --permission EDIT' : ''
  const run = (argument: string) => `<%= config.bin %> <%= command.id %> ${argument} --user alice${level}`
  return (EXAMPLE_TARGET[kind] ?? [`'${ALL}'`]).map((argument) => run(argument))
}

function description(verb: PermsVerb, kind: ResourceKind): string {
  const {by, plural} = PERMISSION_KINDS[kind]
  const since = (PERMISSION_KINDS[kind] as {since?: string}).since
  const checked: Partial<Record<ResourceKind, string>> = {experiment: 'experiment', model: 'registered model', prompt: 'prompt', scorer: "scorer's experiment"}
  return [
    kind === 'experiment' || kind === 'scorer' ? EXPERIMENT_HELP : undefined,
    by === 'wildcard' ? `MLflow keeps ${plural} under their parent's permission, or one row for all of them ('${ALL}').` : undefined,
    verb === 'grant' && checked[kind]
      ? `The ${checked[kind]} must exist: a grant on one that does not exits 5 and stores nothing ('${ALL}' is not checked).`
      : undefined,
    since ? `Needs MLflow ${since} or later (older servers: exit 8).` : undefined,
    (verb === 'grant' || verb === 'update') && since !== DENY_SINCE ? `DENY needs MLflow ${DENY_SINCE} or later.` : undefined,
    verb === 'revoke' ? 'Asks for confirmation on a terminal (also with --json); without a terminal it refuses unless --yes is given.' : undefined,
  ]
    .filter(Boolean)
    .join(' ')
}

/** How the user named the experiment: an explicit id or name, or a positional that may be either. */
interface ExperimentSelector {
  by: 'argument' | 'id' | 'name'
  value: string
}

/** An experiment (and, for scorers, the scorer name), or every one of the kind. */
type Selection = {all: true} | {all?: false; experiment: ExperimentSelector; scorer?: string}

function usage(message: string): UserError {
  return new UserError(message, {code: 'USAGE_ERROR', exit: ExitCode.Usage})
}

/** The experiment selector and, for scorers, the scorer name, from the arguments and flags. */
function selection(kind: 'experiment' | 'scorer', args: Record<string, string | undefined>, flags: Record<string, string | undefined>): Selection {
  const [idFlag, nameFlag] = kind === 'experiment' ? ['id', 'name'] : ['experiment-id', 'experiment-name']
  const byFlag: ExperimentSelector | undefined =
    flags[idFlag] === undefined ? (flags[nameFlag] === undefined ? undefined : {by: 'name', value: flags[nameFlag]!}) : {by: 'id', value: flags[idFlag]!}
  let positional = [args.experiment, args.scorer].filter((value): value is string => value !== undefined)
  // '*' as the only argument is every experiment (every scorer); an experiment named "*" is --name '*'.
  if (!byFlag && positional.length === 1 && positional[0] === ALL) return {all: true}
  let scorer: string | undefined
  if (kind === 'scorer') {
    // With the experiment in a flag, the one argument left is the scorer.
    const expected = byFlag ? 1 : 2
    if (positional.length !== expected) {
      throw usage(
        byFlag
          ? `With --${idFlag} or --${nameFlag}, give only the scorer name as an argument`
          : `Give the experiment and the scorer name: EXPERIMENT SCORER (or --experiment-id / --experiment-name and SCORER, or '${ALL}' alone for all scorers)`,
      )
    }

    scorer = positional.at(-1)!
    positional = positional.slice(0, -1)
    if (scorer === ALL) throw usage(`MLflow has no pattern for all scorers of one experiment: '${ALL}' alone means all scorers of all experiments`)
  } else if (byFlag && positional.length > 0) {
    throw usage(`Give the experiment once: as an argument, or with --${idFlag} or --${nameFlag}`)
  }

  const experiment = byFlag ?? (positional[0] === undefined ? undefined : {by: 'argument', value: positional[0]})
  if (!experiment) throw usage(`Which experiment? Give its id or name as an argument, or --${idFlag} / --${nameFlag}`)
  if (experiment.value.trim() === '') throw usage('The experiment id or name is empty')
  if (experiment.by === 'id' && !/^\d+$/.test(experiment.value))
    throw usage(`--${idFlag} takes an experiment id (digits), not "${experiment.value}"; for a name use --${nameFlag}`)
  return {experiment, scorer}
}

export function definePermsCommand(verb: PermsVerb, kind: ResourceKind) {
  const flags = {
    ...experimentFlags(kind),
    ...(verb === 'grant' || verb === 'update' ? {permission: permissionFlag({required: true})} : {}),
    user: userFlag('The user whose permission this is.'),
    ...(verb === 'revoke' ? {yes: yesFlag} : {}),
  }

  return class PermsCommand extends BaseCommand<typeof Command> {
    static override args = resourceArgs(kind)
    static override description = description(verb, kind)
    static override examples = examples(verb, kind)
    static override flags = flags
    static override summary = SUMMARY[verb](kind)

    public async run(): Promise<PermsResult> {
      const args = this.args as Record<string, string | undefined>
      const {permission, user, yes} = this.flags as unknown as {permission?: string; user: string; yes?: boolean}
      const picked = kind === 'experiment' || kind === 'scorer' ? selection(kind, args, this.flags as unknown as Record<string, string | undefined>) : undefined
      const named = picked ? undefined : args[argumentName(kind)]
      if (named !== undefined && named.trim() === '') throw usage(`The ${PERMISSION_KINDS[kind].noun} ${argumentName(kind) === 'id' ? 'id' : 'name'} is empty`)
      if (named !== undefined && PERMISSION_KINDS[kind].by === 'wildcard' && named !== ALL) {
        throw usage(`MLflow grants ${PERMISSION_KINDS[kind].plural} only all at once: give '${ALL}', not "${named}"`)
      }

      const session = await this.session()
      const resource = await resolveResource(session, verb, kind, picked, named, {level: permission, user})
      const result: PermsResult = {resource: resourceJson(resource), user}
      const message = await perform(session, verb, {permission, resource, result, user, yes: Boolean(yes)})
      // What `get` finds is data (stdout); what the others did is status (stderr).
      if (verb === 'get') this.log(message)
      else this.status(message)
      return result
    }
  }
}

/** Does what the verb says; fills in `result` and returns the message for people. */
async function perform(
  session: Session,
  verb: PermsVerb,
  request: {permission?: string; resource: Resource; result: PermsResult; user: string; yes: boolean},
): Promise<string> {
  const {permission, resource, result, user} = request
  const what = describeResource(resource)
  switch (verb) {
    case 'get': {
      result.permission = await session.api.get(resource, user)
      return `${user} has ${result.permission} on ${what}`
    }

    case 'grant': {
      result.action = await session.api.grant(resource, user, permission!)
      result.permission = permission
      return `${result.action === 'created' ? 'Granted' : 'Updated to'} ${permission} for ${user} on ${what}`
    }

    case 'revoke': {
      await confirmDestructive(`revoke ${user}'s permission on ${what}`, request.yes)
      await session.api.revoke(resource, user)
      result.action = 'revoked'
      return `Revoked ${user}'s permission on ${what}`
    }

    case 'update': {
      await session.api.update(resource, user, permission!)
      result.action = 'updated'
      result.permission = permission
      return `Updated to ${permission} for ${user} on ${what}`
    }
  }
}

function notFound(message: string, hint?: string): UserError {
  return new UserError(message, {code: 'RESOURCE_DOES_NOT_EXIST', exit: ExitCode.NotFound, hint})
}

/**
 * The resource with its experiment's id and, where the server tells us, its name. A grant needs
 * the experiment, model or prompt to exist: MLflow would store a permission on nothing.
 */
async function resolveResource(
  session: Session,
  verb: PermsVerb,
  kind: ResourceKind,
  picked: Selection | undefined,
  named: string | undefined,
  grant: {level?: string; user: string},
): Promise<Resource> {
  if (picked?.all || named === ALL) return kind === 'scorer' ? {id: ALL, kind} : ({id: ALL, kind} as Resource)
  // A server that cannot take the kind at all says so (exit 8) before the lookup would say "no such prompt".
  if (verb === 'grant' && !picked) await session.api.requireSurfaceFor({id: named!, kind} as Resource, grant.user, grant.level)
  if (!picked) {
    if (verb === 'grant' && kind === 'model' && !(await session.tracking.registeredModelExists(named!))) {
      throw notFound(`There is no registered model named "${named}"; nothing was granted`)
    }

    if (verb === 'grant' && kind === 'prompt' && !(await session.tracking.promptExists(named!))) {
      throw notFound(`There is no prompt named "${named}"; nothing was granted`)
    }

    return {id: named!, kind: kind as Exclude<ResourceKind, 'experiment' | 'scorer'>}
  }

  const {experiment: selector, scorer} = picked
  let experiment: {id: string; name?: string}
  if (selector.by === 'name' || (selector.by === 'argument' && !/^\d+$/.test(selector.value))) {
    experiment = await session.tracking.experimentByName(selector.value)
  } else {
    const lookup = await session.tracking.experimentById(selector.value)
    if (lookup.found === false && verb === 'grant') {
      throw notFound(
        `There is no experiment with id ${selector.value}; nothing was granted`,
        selector.by === 'argument'
          ? `For an experiment named "${selector.value}", pass --${kind === 'scorer' ? 'experiment-name' : 'name'} ${selector.value}.`
          : undefined,
      )
    }

    experiment = lookup.found ? lookup.experiment : {id: selector.value}
  }

  return kind === 'experiment'
    ? {experimentName: experiment.name, id: experiment.id, kind}
    : {experimentId: experiment.id, experimentName: experiment.name, kind: 'scorer', name: scorer!}
}

function resourceJson(resource: Resource): PermsResult['resource'] {
  if (!('id' in resource)) {
    return {
      experiment_id: resource.experimentId,
      ...(resource.experimentName === undefined ? {} : {experiment_name: resource.experimentName}),
      id: `${resource.experimentId}/${resource.name}`,
      kind: 'scorer',
      name: resource.name,
    }
  }

  if (isAllResources(resource)) return {id: resource.id, kind: resource.kind}
  if (resource.kind === 'experiment') {
    return {id: resource.id, kind: 'experiment', ...(resource.experimentName === undefined ? {} : {name: resource.experimentName})}
  }

  // Kinds named by name carry it as their id; those named by id have no name we know.
  return {id: resource.id, kind: resource.kind, ...(PERMISSION_KINDS[resource.kind].by === 'name' ? {name: resource.id} : {})}
}

export interface PermsListResult {
  permissions: PermissionRow[]
  user: string
}

export function definePermsListCommand(kind?: ResourceKind) {
  return class PermsListCommand extends BaseCommand<typeof Command> {
    static override description =
      "Grouped by kind, '*' first, then by id or name (ids as numbers), the user's own rows before their roles'; experiments show their names beside their ids."
    static override examples = [
      `<%= config.bin %> <%= command.id %> --user alice`,
      `<%= config.bin %> <%= command.id %> --user alice --columns resource,permission --no-header`,
      `<%= config.bin %> <%= command.id %> --user alice --json=resource,permission`,
    ]
    static override flags = {...tableFlags, user: Flags.string({char: 'u', description: 'The user whose permissions to list. Default: you.'})}
    static override summary = kind
      ? `List a user's permissions on ${PERMISSION_KINDS[kind].plural}.`
      : 'List everything a user holds (experiments, registered models, prompts, scorers, gateway and MCP objects, the sub-resource tiers), grouped by kind.'
    static tableHead = ['KIND', 'RESOURCE', 'NAME', 'PERMISSION', 'VIA']

    public async run(): Promise<PermsListResult> {
      const session = await this.session()
      const user = (this.flags as unknown as {user?: string}).user ?? (await session.whoami()).username
      const permissions = sortRows((await session.api.list(user)).filter((row) => !kind || row.kind === kind))
      await addExperimentNames(session, permissions)
      if (permissions.length === 0) this.status(`${user} holds no ${kind ? `${PERMISSION_KINDS[kind].noun} ` : ''}permissions of their own`)
      else this.table(permissions.map((row) => [row.kind, row.resource, displayName(row), row.permission, row.via]))
      return {permissions, user}
    }
  }
}

/**
 * Rows grouped by kind in a fixed order (kinds mlflowctl does not know last, by name); within a
 * kind '*' first, then by resource (ids as numbers), the user's own rows before their roles'.
 */
function sortRows(rows: PermissionRow[]): PermissionRow[] {
  const rank = (kind: string) => {
    const index = (PERMISSION_KIND_NAMES as readonly string[]).indexOf(kind)
    return index < 0 ? PERMISSION_KIND_NAMES.length : index
  }

  const text = (a: string, b: string) => a.localeCompare(b, 'en', {numeric: true})
  return rows.toSorted(
    (a, b) =>
      rank(a.kind) - rank(b.kind) ||
      text(a.kind, b.kind) ||
      Number(b.resource === ALL) - Number(a.resource === ALL) ||
      text(a.resource, b.resource) ||
      Number(b.via === 'direct') - Number(a.via === 'direct') ||
      text(a.via, b.via),
  )
}

/** The experiment id a row is on (an experiment's own, or a scorer's), when it names one. */
function experimentIdOf(row: PermissionRow): string | undefined {
  const id = row.kind === 'experiment' ? row.resource : row.kind === 'scorer' ? row.resource.split('/')[0] : undefined
  return id !== undefined && /^\d+$/.test(id) ? id : undefined
}

async function addExperimentNames(session: Session, rows: PermissionRow[]): Promise<void> {
  const names = await session.tracking.experimentNames(rows.map((row) => experimentIdOf(row)).filter((id): id is string => id !== undefined))
  for (const row of rows) {
    const name = names.get(experimentIdOf(row) ?? '')
    if (name === undefined) continue
    if (row.kind === 'experiment') row.name = name
    else row.experiment_name = name
  }
}

function displayName(row: PermissionRow): string | undefined {
  if (row.kind !== 'scorer' || row.experiment_name === undefined) return row.name
  return `${row.name ?? '?'} (experiment ${JSON.stringify(row.experiment_name)})`
}
