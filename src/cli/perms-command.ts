/**
 * The perms commands are a grid, verb × resource kind; each command file is one cell made here.
 * The experiment or model is looked up here through the tracking API (api/tracking-api.ts); the
 * permission calls live in api/auth-api.ts.
 */
import * as Args from '@oclif/core/args'
import type {Command} from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import type * as Interfaces from '@oclif/core/interfaces'

import {describeResource, type PermissionRow, type Resource, type ResourceKind} from '../api/auth-api.js'
import {BaseCommand, tableFlags} from './base-command.js'
import {ExitCode, UserError} from '../core/errors.js'
import {permissionFlag, userFlag, yesFlag} from './flags.js'
import {compareCells} from './output.js'
import {confirmDestructive} from './prompts.js'
import type {Session} from './session.js'

export type PermsVerb = 'get' | 'grant' | 'revoke' | 'update'

export interface PermsResult {
  action?: 'created' | 'revoked' | 'updated'
  permission?: string
  resource: {experiment_id?: string; experiment_name?: string; id: string; kind: ResourceKind; name?: string}
  user: string
}

const NOUN: Record<ResourceKind, string> = {experiment: 'an experiment', model: 'a registered model', scorer: 'a scorer'}

const SUMMARY: Record<PermsVerb, (kind: ResourceKind) => string> = {
  get: (kind) => `Show a user's permission on ${NOUN[kind]}.`,
  grant: (kind) => `Give a user a permission on ${NOUN[kind]}, or change the one they have.`,
  revoke: (kind) => `Remove a user's permission on ${NOUN[kind]}.`,
  update: (kind) => `Change a user's existing permission on ${NOUN[kind]}.`,
}

const EXPERIMENT_HELP = 'An argument of digits only is an id, anything else a name; --id and --name say which (an experiment named "2024" needs --name 2024).'

function resourceArgs(kind: ResourceKind): Interfaces.ArgInput {
  switch (kind) {
    case 'experiment': {
      return {experiment: Args.string({description: 'Experiment id or name (or give --id / --name instead).'})}
    }

    case 'model': {
      return {model: Args.string({description: 'Registered model name.', required: true})}
    }

    case 'scorer': {
      return {
        experiment: Args.string({description: 'Experiment id or name the scorer belongs to (leave it out with --experiment-id / --experiment-name).'}),
        scorer: Args.string({description: 'Scorer name.'}),
      }
    }
  }
}

function experimentFlags(kind: ResourceKind): Interfaces.FlagInput {
  switch (kind) {
    case 'experiment': {
      return {
        id: Flags.string({description: 'The experiment, by id.', exclusive: ['name']}),
        name: Flags.string({description: 'The experiment, by name (also a name of digits only).', exclusive: ['id']}),
      }
    }

    case 'scorer': {
      return {
        'experiment-id': Flags.string({description: "The scorer's experiment, by id.", exclusive: ['experiment-name']}),
        'experiment-name': Flags.string({description: "The scorer's experiment, by name (also a name of digits only).", exclusive: ['experiment-id']}),
      }
    }

    case 'model': {
      return {}
    }
  }
}

function examples(verb: PermsVerb, kind: ResourceKind): string[] {
  const level = verb === 'grant' || verb === 'update' ? ' --permission EDIT' : ''
  const run = (target: string) => `<%= config.bin %> <%= command.id %> ${target} --user alice${level}`
  switch (kind) {
    case 'experiment': {
      return [run('42'), run('"My experiment"'), run('--name 2024')]
    }

    case 'model': {
      return [run('churn-model')]
    }

    case 'scorer': {
      return [run('42 relevance'), run('--experiment-name 2024 relevance')]
    }
  }
}

/** How the user named the experiment: an explicit id or name, or a positional that may be either. */
interface ExperimentSelector {
  by: 'argument' | 'id' | 'name'
  value: string
}

function usage(message: string): UserError {
  return new UserError(message, {code: 'USAGE_ERROR', exit: ExitCode.Usage})
}

/** The experiment selector and, for scorers, the scorer name, from the arguments and flags. */
function selection(
  kind: 'experiment' | 'scorer',
  args: Record<string, string | undefined>,
  flags: Record<string, string | undefined>,
): {experiment: ExperimentSelector; scorer?: string} {
  const [idFlag, nameFlag] = kind === 'experiment' ? ['id', 'name'] : ['experiment-id', 'experiment-name']
  const byFlag: ExperimentSelector | undefined =
    flags[idFlag] === undefined ? (flags[nameFlag] === undefined ? undefined : {by: 'name', value: flags[nameFlag]!}) : {by: 'id', value: flags[idFlag]!}
  let positional = [args.experiment, args.scorer].filter((value): value is string => value !== undefined)
  let scorer: string | undefined
  if (kind === 'scorer') {
    // With the experiment in a flag, the one argument left is the scorer.
    const expected = byFlag ? 1 : 2
    if (positional.length !== expected) {
      throw usage(
        byFlag
          ? `With --${idFlag} or --${nameFlag}, give only the scorer name as an argument`
          : 'Give the experiment and the scorer name: EXPERIMENT SCORER (or --experiment-id / --experiment-name and SCORER)',
      )
    }

    scorer = positional.at(-1)!
    positional = positional.slice(0, -1)
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
    static override description = [
      kind === 'model' ? undefined : EXPERIMENT_HELP,
      verb === 'grant'
        ? `The ${kind === 'scorer' ? "scorer's experiment" : kind === 'model' ? 'registered model' : 'experiment'} must exist: a grant on one that does not exits 5 and stores nothing.`
        : undefined,
      verb === 'revoke' ? 'Asks for confirmation on a terminal (also with --json); without a terminal it refuses unless --yes is given.' : undefined,
    ]
      .filter(Boolean)
      .join(' ')
    static override examples = examples(verb, kind)
    static override flags = flags
    static override summary = SUMMARY[verb](kind)

    public async run(): Promise<PermsResult> {
      const args = this.args as Record<string, string | undefined>
      const {permission, user, yes} = this.flags as unknown as {permission?: string; user: string; yes?: boolean}
      const picked = kind === 'model' ? undefined : selection(kind, args, this.flags as unknown as Record<string, string | undefined>)
      const session = await this.session()
      const resource = await resolveResource(session, verb, kind, picked, args.model)
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

/**
 * The resource with its experiment's id and, where the server tells us, its name. A grant needs
 * the experiment (or model) to exist: MLflow would store a permission on nothing.
 */
async function resolveResource(
  session: Session,
  verb: PermsVerb,
  kind: ResourceKind,
  picked: ReturnType<typeof selection> | undefined,
  model: string | undefined,
): Promise<Resource> {
  if (kind === 'model') {
    if (verb === 'grant' && !(await session.tracking.registeredModelExists(model!))) {
      throw new UserError(`There is no registered model named "${model}"; nothing was granted`, {code: 'RESOURCE_DOES_NOT_EXIST', exit: ExitCode.NotFound})
    }

    return {id: model!, kind: 'model'}
  }

  const {experiment: selector, scorer} = picked!
  let experiment: {id: string; name?: string}
  if (selector.by === 'name' || (selector.by === 'argument' && !/^\d+$/.test(selector.value))) {
    experiment = await session.tracking.experimentByName(selector.value)
  } else {
    const lookup = await session.tracking.experimentById(selector.value)
    if (lookup.found === false && verb === 'grant') {
      throw new UserError(`There is no experiment with id ${selector.value}; nothing was granted`, {
        code: 'RESOURCE_DOES_NOT_EXIST',
        exit: ExitCode.NotFound,
        hint:
          selector.by === 'argument'
            ? `For an experiment named "${selector.value}", pass --${kind === 'scorer' ? 'experiment-name' : 'name'} ${selector.value}.`
            : undefined,
      })
    }

    experiment = lookup.found ? lookup.experiment : {id: selector.value}
  }

  return kind === 'experiment'
    ? {experimentName: experiment.name, id: experiment.id, kind}
    : {experimentId: experiment.id, experimentName: experiment.name, kind: 'scorer', name: scorer!}
}

function resourceJson(resource: Resource): PermsResult['resource'] {
  switch (resource.kind) {
    case 'experiment': {
      return {id: resource.id, kind: 'experiment', ...(resource.experimentName === undefined ? {} : {name: resource.experimentName})}
    }

    case 'model': {
      return {id: resource.id, kind: 'model', name: resource.id}
    }

    case 'scorer': {
      return {
        experiment_id: resource.experimentId,
        ...(resource.experimentName === undefined ? {} : {experiment_name: resource.experimentName}),
        id: `${resource.experimentId}/${resource.name}`,
        kind: 'scorer',
        name: resource.name,
      }
    }
  }
}

export interface PermsListResult {
  permissions: PermissionRow[]
  user: string
}

export function definePermsListCommand(kind?: ResourceKind) {
  return class PermsListCommand extends BaseCommand<typeof Command> {
    static override description =
      'Sorted by kind (experiments, registered models, scorers), then by experiment id or name; experiments show their names beside their ids.'
    static override examples = [
      `<%= config.bin %> <%= command.id %> --user alice`,
      `<%= config.bin %> <%= command.id %> --user alice --columns resource,permission --no-header`,
      `<%= config.bin %> <%= command.id %> --user alice --json=resource,permission`,
    ]
    static override flags = {...tableFlags, user: Flags.string({char: 'u', description: 'The user whose permissions to list. Default: you.'})}
    static override summary = kind
      ? `List a user's permissions on ${kind === 'model' ? 'registered models' : `${kind}s`}.`
      : 'List everything a user holds: experiments, registered models, scorers.'
    static tableHead = ['KIND', 'RESOURCE', 'NAME', 'PERMISSION', 'VIA']

    public async run(): Promise<PermsListResult> {
      const session = await this.session()
      const user = (this.flags as unknown as {user?: string}).user ?? (await session.whoami()).username
      const permissions = (await session.api.list(user)).filter((row) => !kind || row.kind === kind)
      await addExperimentNames(session, permissions)
      permissions.sort(comparePermissions)
      if (permissions.length === 0) this.status(`${user} holds no ${kind ?? ''} permissions of their own`.replace('  ', ' '))
      else this.table(permissions.map((row) => [row.kind, row.resource, displayName(row), row.permission, row.via]))
      return {permissions, user}
    }
  }
}

const KIND_ORDER = ['experiment', 'model', 'scorer']

/** Grouped by kind, then by resource (experiment ids as numbers), then direct grants before roles. */
function comparePermissions(a: PermissionRow, b: PermissionRow): number {
  const rank = (row: PermissionRow) => (KIND_ORDER.includes(row.kind) ? KIND_ORDER.indexOf(row.kind) : KIND_ORDER.length)
  return (
    rank(a) - rank(b) ||
    a.kind.localeCompare(b.kind) ||
    compareCells(a.resource, b.resource) ||
    (a.via === 'direct' ? -1 : 0) - (b.via === 'direct' ? -1 : 0) ||
    a.via.localeCompare(b.via)
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
