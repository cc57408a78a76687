/**
 * Review queues (MLflow 3.17+) as MLflow's basic-auth app decides them. A queue lives in an
 * experiment and is decided on the `review_queue` tier there (READ on the experiment addresses
 * it; the tier, falling back to the experiment, gives the level); beyond the level, MLflow asks
 * what the caller is to the queue: its owner (`created_by`), one of its assigned users, or
 * neither. It also applies two rules in its handlers that feed on the authenticated user, which
 * a plain MLflow behind serve never sees: a queue's owner is the user who created it, and a
 * review is attributed to its reviewer. serve applies those itself, for every caller.
 */
import {type UpstreamResponse} from '../proxy.js'
import {ApiError} from '../responses.js'
import {type Store} from '../store/store.js'
import {type Access} from './access.js'
import {type Exchange, type Json, parseAnswer} from './exchange.js'

/** What MLflow's auth layer reads of a queue. */
export interface ReviewQueueFacts {
  custom: boolean
  experimentId: string
  owner: string
  users: string[]
}

/** What a caller must be to a queue, beyond the level on its tier (see ReviewQueueCheck). */
export type QueueRelation = 'custom-owner' | 'member' | 'owner' | 'viewer'

const QUEUES = '/api/3.0/mlflow/review-queues'
const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value)

/** A user name as MLflow compares them with a queue's owner and users: trimmed, in lower case. */
const identity = (name: string) => name.trim().toLowerCase()

/** A queue from an answer of the upstream (`review_queue`), or undefined. */
export function queueFacts(queue: unknown): ReviewQueueFacts | undefined {
  if (!isObject(queue) || typeof queue.experiment_id !== 'string' || queue.experiment_id === '') return undefined
  return {
    custom: queue.queue_type === 'CUSTOM',
    experimentId: queue.experiment_id,
    owner: typeof queue.created_by === 'string' ? queue.created_by : '',
    users: Array.isArray(queue.users) ? queue.users.filter((user): user is string => typeof user === 'string') : [],
  }
}

export function isMember(queue: Pick<ReviewQueueFacts, 'users'>, username: string): boolean {
  return queue.users.includes(identity(username))
}

export function isOwner(queue: ReviewQueueFacts, username: string): boolean {
  const owner = identity(queue.owner)
  return owner !== '' && owner === identity(username)
}

/**
 * Whether the caller may act on a queue. `need` is the level asked of the queue tier; the
 * relation adds MLflow's conditions: `member`, one of its users (reviewing); `owner`, MANAGE, or
 * the level and ownership (changing the queue; MANAGE only when `managerOnly`, a new owner);
 * `custom-owner`, the same for a custom queue only (deleting it, removing items: a user's own
 * queue is a manager's to prune); `viewer`, the level and then MANAGE, membership, or EDIT and
 * ownership (reading it and its items).
 */
export function queueAllows(
  access: Access,
  queue: ReviewQueueFacts,
  need: 'read' | 'update',
  relation: QueueRelation | undefined,
  managerOnly = false,
): boolean {
  const can = (level: 'manage' | 'read' | 'update') => access.canInReviewQueues(level, queue.experimentId)
  const {username} = access
  switch (relation) {
    case undefined: {
      return can(need)
    }

    case 'member': {
      return can(need) && isMember(queue, username)
    }

    case 'owner':
    case 'custom-owner': {
      if (can('manage')) return true
      if (managerOnly) return false
      return can(need) && isOwner(queue, username) && (relation === 'owner' || queue.custom)
    }

    case 'viewer': {
      return can(need) && (can('manage') || isMember(queue, username) || (can('update') && isOwner(queue, username)))
    }
  }
}

/** An enum of a proto JSON body: its name, or its number (both accepted by MLflow's parser). */
const enumIs = (value: unknown, name: string, number: number) => value === name || value === number

/**
 * A custom queue may not be named (or renamed) after a registered user, in any case: it would
 * shadow that user's own queue. MLflow applies this to admins too, after the permission check.
 */
export async function checkQueueName(exchange: Exchange, store: Store): Promise<void> {
  const {json, params} = exchange
  const name = json.name
  if (typeof name !== 'string' || name.trim() === '') return
  const creating = exchange.match.template.endsWith('/create')
  if (creating) {
    if (!enumIs(json.queue_type ?? json.queueType, 'CUSTOM', 2)) return
  } else {
    const queue = await exchange.access.reviewQueue(params.required('queue_id'))
    if (!queue?.custom) return
  }

  const matched = store.listUsers().find((user) => identity(user.username) === identity(name))
  if (matched === undefined) return
  throw new ApiError(
    'INVALID_PARAMETER_VALUE',
    creating
      ? `'${matched.username}' is a registered user. A custom review queue cannot use a username as its name; assign that user to a queue instead.`
      : `'${matched.username}' is a registered user. A custom review queue cannot be renamed to a username; assign that user to a queue instead.`,
  )
}

/**
 * A review's `completed_by` is its reviewer, never what the client says: MLflow binds it to the
 * authenticated user, and clears it when an item is reopened (PENDING). The body forwarded says so.
 */
export function bindReviewer(exchange: Exchange): void {
  const {json} = exchange
  delete json.completed_by
  delete json.completedBy
  if (!enumIs(json.status, 'PENDING', 1)) json.completed_by = exchange.user.username
  exchange.body = Buffer.from(JSON.stringify(json))
}

/**
 * MLflow records a queue's creator as its owner; a plain MLflow behind serve knows no user, so
 * serve names the owner right after the create, as the upstream's own update does, and answers
 * with the queue as it then is. Throws when the upstream refuses (the caller's log says so).
 */
export async function stampOwner(exchange: Exchange, answer: UpstreamResponse): Promise<UpstreamResponse> {
  const queue = parseAnswer(answer)?.review_queue as Json | undefined
  // A user's own queue is owned by that user, and MLflow refuses to change its owner.
  if (typeof queue?.queue_id !== 'string' || queue.queue_type !== 'CUSTOM') return answer
  const queueId = queue.queue_id
  const stamped = await exchange.upstream.request('POST', `${QUEUES}/update`, {
    body: {new_owner: exchange.user.username, queue_id: queueId},
    identity: exchange.user.username,
  })
  if (stamped.status !== 200) throw new Error(`MLflow answered ${stamped.status} to naming the owner`)
  return stamped
}

/**
 * A queue listing as MLflow shows it to a non-admin: every queue with EDIT on the queue tier of
 * the experiment, else (READ) the queues the caller is assigned to, else none. Not refilled, as
 * MLflow.
 */
export function listedQueues(answer: Json, access: Access, experimentId: string): boolean {
  if (access.canInReviewQueues('read', experimentId) && access.canInReviewQueues('update', experimentId)) return false
  const queues = Array.isArray(answer.review_queues) ? answer.review_queues : []
  const readable = access.canInReviewQueues('read', experimentId)
  const kept = readable ? queues.filter((queue) => isObject(queue) && isMember(queueFacts({...queue, experiment_id: experimentId})!, access.username)) : []
  if (kept.length === queues.length) return false
  answer.review_queues = kept
  return true
}
