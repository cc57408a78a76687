/**
 * The access commands' shared parts: naming the resource (as `roles grant` does, one resource,
 * no `*`) and showing verdicts. The computation is api/access.ts.
 */

import {Args} from './oclif-command.js'
import {accessOf, type AccessVerdict} from '../api/access.js'
import {ExitCode, UserError} from '../core/errors.js'
import {type Level} from '../mlflow/permissions.js'
import {CONTAINER_RESOURCE_TYPES, WILDCARD} from '../mlflow/rbac.js'
import {parseResourceType, type PatternTarget, resolvePattern} from './roles.js'
import type {Session} from './session.js'

export const accessResourceArgs = {
  kind: Args.string({description: `What to check: model (registered_model), ${CONTAINER_RESOURCE_TYPES.join(', ')}.`, required: true}),
  resource: Args.string({
    description: 'Its id or name. Experiments: digits are an id, anything else a name (--name for a name of digits). Scorers: the experiment.',
    required: true,
  }),
  scorer: Args.string({description: 'For scorers: the scorer name.'}),
}

export interface AccessResult {
  default_permission: Level
  resource: {experiment_name?: string; resource_id: string; resource_type: string}
}

export async function accessTarget(session: Session, args: {kind: string; resource: string; scorer?: string}, byName: boolean): Promise<PatternTarget> {
  const type = parseResourceType(args.kind)
  if (!(CONTAINER_RESOURCE_TYPES as readonly string[]).includes(type) || args.resource === WILDCARD) {
    throw new UserError(`Access is checked on one resource: ${CONTAINER_RESOURCE_TYPES.join(', ')} (or model), by id or name, not *`, {
      code: 'USAGE_ERROR',
      exit: ExitCode.Usage,
    })
  }

  return resolvePattern(session, args, {byName, mustExist: false})
}

export async function verdicts(session: Session, usernames: string[], target: PatternTarget): Promise<AccessResult & {verdicts: AccessVerdict[]}> {
  const {defaultPermission, verdicts: found} = await accessOf(
    session.roles,
    usernames,
    {resourceId: target.resource_pattern, resourceType: target.resource_type},
    async () => [(await session.whoami()).username],
  )
  return {
    default_permission: defaultPermission,
    resource: {
      ...(target.experiment_name === undefined ? {} : {experiment_name: target.experiment_name}),
      resource_id: target.resource_pattern,
      resource_type: target.resource_type,
    },
    verdicts: found,
  }
}
