/**
 * The perms commands are a grid, verb × resource kind; each command file is one cell made here.
 * Experiment names are resolved by the session (lib/session.ts); the REST calls live in
 * api/auth-api.ts, not here.
 */
import * as Args from '@oclif/core/args'
import type {Command} from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import type * as Interfaces from '@oclif/core/interfaces'

import {describeResource, type PermissionRow, type Resource, type ResourceKind} from '../api/auth-api.js'
import {BaseCommand} from './base-command.js'
import {permissionFlag, userFlag, yesFlag} from './flags.js'
import {renderTable} from './output.js'
import {confirmDestructive} from './prompts.js'

export type PermsVerb = 'get' | 'grant' | 'revoke' | 'update'

export interface PermsResult {
  action?: 'created' | 'revoked' | 'updated'
  permission?: string
  resource: {experiment_id?: string; id: string; kind: ResourceKind; name?: string}
  user: string
}

const NOUN: Record<ResourceKind, string> = {experiment: 'an experiment', model: 'a registered model', scorer: 'a scorer'}

const SUMMARY: Record<PermsVerb, (kind: ResourceKind) => string> = {
  get: (kind) => `Show a user's permission on ${NOUN[kind]}.`,
  grant: (kind) => `Give a user a permission on ${NOUN[kind]}, or change the one they have.`,
  revoke: (kind) => `Remove a user's permission on ${NOUN[kind]}.`,
  update: (kind) => `Change a user's existing permission on ${NOUN[kind]}.`,
}

function resourceArgs(kind: ResourceKind): Interfaces.ArgInput {
  switch (kind) {
    case 'experiment': {
      return {experiment: Args.string({description: 'Experiment id, or experiment name (anything not all digits is looked up by name).', required: true})}
    }

    case 'model': {
      return {model: Args.string({description: 'Registered model name.', required: true})}
    }

    case 'scorer': {
      return {
        experiment: Args.string({description: 'Experiment id or name the scorer belongs to.', required: true}),
        scorer: Args.string({description: 'Scorer name.', required: true}),
      }
    }
  }
}

function example(verb: PermsVerb, kind: ResourceKind): string {
  const target = {experiment: '42', model: 'churn-model', scorer: '42 relevance'}[kind]
  const level = verb === 'grant' || verb === 'update' ? ' --permission EDIT' : ''
  return `<%= config.bin %> <%= command.id %> ${target} --user alice${level}`
}

export function definePermsCommand(verb: PermsVerb, kind: ResourceKind) {
  const flags = {
    ...(verb === 'grant' || verb === 'update' ? {permission: permissionFlag({required: true})} : {}),
    user: userFlag('The user whose permission this is.'),
    ...(verb === 'revoke' ? {yes: yesFlag} : {}),
  }

  return class PermsCommand extends BaseCommand<typeof Command> {
    static override args = resourceArgs(kind)
    static override examples = [example(verb, kind)]
    static override flags = flags
    static override summary = SUMMARY[verb](kind)

    public async run(): Promise<PermsResult> {
      const args = this.args as Record<string, string>
      const {permission, user, yes} = this.flags as unknown as {permission?: string; user: string; yes?: boolean}
      const session = await this.session()
      const experimentId = kind === 'model' ? undefined : await session.experimentId(args.experiment)
      const resource: Resource =
        kind === 'experiment' ? {id: experimentId!, kind} : kind === 'model' ? {id: args.model, kind} : {experimentId: experimentId!, kind, name: args.scorer}
      const result: PermsResult = {resource: resourceJson(resource, args), user}
      const what = describeResource(resource)
      switch (verb) {
        case 'get': {
          result.permission = await session.api.get(resource, user)
          this.log(`${user} has ${result.permission} on ${what}`)
          break
        }

        case 'grant': {
          result.action = await session.api.grant(resource, user, permission!)
          result.permission = permission
          this.status(`${result.action === 'created' ? 'Granted' : 'Updated to'} ${permission} for ${user} on ${what}`)
          break
        }

        case 'revoke': {
          await confirmDestructive(`revoke ${user}'s permission on ${what}`, Boolean(yes) || this.jsonEnabled())
          await session.api.revoke(resource, user)
          result.action = 'revoked'
          this.status(`Revoked ${user}'s permission on ${what}`)
          break
        }

        case 'update': {
          await session.api.update(resource, user, permission!)
          result.action = 'updated'
          result.permission = permission
          this.status(`Updated to ${permission} for ${user} on ${what}`)
          break
        }
      }

      return result
    }
  }
}

function resourceJson(resource: Resource, args: Record<string, string>): PermsResult['resource'] {
  switch (resource.kind) {
    case 'experiment': {
      return {id: resource.id, kind: 'experiment', ...(args.experiment === resource.id ? {} : {name: args.experiment})}
    }

    case 'model': {
      return {id: resource.id, kind: 'model', name: resource.id}
    }

    case 'scorer': {
      return {experiment_id: resource.experimentId, id: `${resource.experimentId}/${resource.name}`, kind: 'scorer', name: resource.name}
    }
  }
}

export interface PermsListResult {
  permissions: PermissionRow[]
  user: string
}

export function definePermsListCommand(kind?: ResourceKind) {
  return class PermsListCommand extends BaseCommand<typeof Command> {
    static override examples = [`<%= config.bin %> <%= command.id %> --user alice`]
    static override flags = {user: Flags.string({char: 'u', description: 'The user whose permissions to list. Default: you.'})}
    static override summary = kind ? `List a user's permissions on ${kind === 'model' ? 'registered models' : `${kind}s`}.` : 'List everything a user holds: experiments, registered models, scorers.'

    public async run(): Promise<PermsListResult> {
      const session = await this.session()
      const user = (this.flags as unknown as {user?: string}).user ?? (await session.whoami()).username
      const permissions = (await session.api.list(user)).filter((row) => !kind || row.kind === kind)
      if (permissions.length === 0) this.status(`${user} holds no ${kind ?? ''} permissions of their own`.replace('  ', ' '))
      else this.log(renderTable(['KIND', 'RESOURCE', 'PERMISSION', 'VIA'], permissions.map((row) => [row.kind, row.resource, row.permission, row.via]), this.stdoutColors()))
      return {permissions, user}
    }
  }
}
