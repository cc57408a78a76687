/**
 * Administration of a store without serve, for the day no admin can log in (the last admin's
 * password lost, or no admin left): reset a user's password, create an admin, make an existing
 * user an admin. Each is one ordinary store write, so it takes the store's own locking (the JSON
 * file's cross-process lock, the database's transaction) whether serve runs on the store or not,
 * and a running serve applies it at once (the file's journal, the database's change log). Nothing
 * here demotes or deletes: that stays with the API, which keeps the last admin.
 */
import {ExitCode, UserError} from '../../core/errors.js'
import {type PasswordPolicy, passwordProblem} from '../../mlflow/password-policy.js'
import {hashPassword} from '../passwords.js'
import {openStore} from './open.js'
import {redactUrl, type Store, StoreError, type UserRecord} from './store.js'

export type BreakGlassAction = 'admin-created' | 'password-reset' | 'promoted'

export interface BreakGlassResult {
  action: BreakGlassAction
  is_admin: boolean
  /** The store, a URL without its password. */
  store: string
  username: string
}

/**
 * Told of every change made, for an audit trail (never a password or hash). A hook for whatever
 * records administrative events; the commands pass none yet.
 */
export type BreakGlassAudit = (event: {action: BreakGlassAction; store: string; username: string}) => void

export interface BreakGlassOptions {
  audit?: BreakGlassAudit
  /** The store: a JSON file that exists, or a postgresql:// URL of a database that holds one. */
  location: string
}

/** A store refusal as the command's error: not found 5, already exists 6, anything else 2. */
function refusal(error: unknown): unknown {
  if (!(error instanceof StoreError)) return error
  const exit = error.code === 'RESOURCE_DOES_NOT_EXIST' ? ExitCode.NotFound : error.code === 'RESOURCE_ALREADY_EXISTS' ? ExitCode.AlreadyExists : ExitCode.Usage
  return new UserError(`${error.message.replace(/\.?$/, '.')} Nothing was changed.`, {code: error.code, exit})
}

/** The policy's verdict on a new password, as an error that names the rule, never the password. */
export function checkBreakGlassPassword(policy: PasswordPolicy, password: string, username: string): void {
  const problem = passwordProblem(policy, password, username)
  if (problem) throw new UserError(`${problem} Nothing was changed.`, {code: 'INVALID_PASSWORD', exit: ExitCode.Usage})
}

/** Opens the store, runs `change`, closes it (after the write is durable); store refusals become UserErrors. */
async function withStore(options: BreakGlassOptions, action: BreakGlassAction, change: (store: Store) => Promise<UserRecord>): Promise<BreakGlassResult> {
  const store = await openStore(options.location, {mustExist: true})
  let user: UserRecord
  try {
    user = await change(store)
  } catch (error) {
    throw refusal(error)
  } finally {
    await store.close()
  }

  const location = redactUrl(options.location)
  options.audit?.({action, store: location, username: user.username})
  return {action, is_admin: user.isAdmin, store: location, username: user.username}
}

/** Whether the store holds `username` (asked before a password is prompted for, so nobody types one in vain). */
export async function describeUser(location: string, username: string): Promise<undefined | {isAdmin: boolean; serviceAccount: boolean}> {
  const store = await openStore(location, {mustExist: true})
  try {
    const user = store.getUser(username)
    return user && {isAdmin: user.isAdmin, serviceAccount: user.passwordHash === ''}
  } finally {
    await store.close()
  }
}

/** As serve's API: a service account has no password to reset (it signs in with its tokens). */
export function serviceAccountRefusal(username: string): UserError {
  return new UserError(`${username} is a service account: it has no password, only access tokens. Nothing was changed.`, {
    exit: ExitCode.Usage,
    hint: 'Create it a token through serve as an admin: mlflowctl tokens create --user NAME --name LABEL',
  })
}

/** Sets a user's password (admin or not); their admin flag is unchanged. */
export function resetPassword(options: BreakGlassOptions & {password: string; policy: PasswordPolicy; username: string}): Promise<BreakGlassResult> {
  checkBreakGlassPassword(options.policy, options.password, options.username)
  return withStore(options, 'password-reset', async (store) => {
    if (store.getUser(options.username)?.passwordHash === '') throw serviceAccountRefusal(options.username)
    return store.updateUser(options.username, {passwordHash: await hashPassword(options.password)})
  })
}

/** Creates a new user who is an admin. */
export function createAdmin(options: BreakGlassOptions & {password: string; policy: PasswordPolicy; username: string}): Promise<BreakGlassResult> {
  checkBreakGlassPassword(options.policy, options.password, options.username)
  if (!options.username.trim()) throw new UserError('The username cannot be empty.', {exit: ExitCode.Usage})
  return withStore(options, 'admin-created', async (store) =>
    store.createUser({isAdmin: true, passwordHash: await hashPassword(options.password), username: options.username}),
  )
}

/** Makes an existing user an admin; their password is unchanged. */
export function makeAdmin(options: BreakGlassOptions & {username: string}): Promise<BreakGlassResult> {
  return withStore(options, 'promoted', async (store) => store.updateUser(options.username, {isAdmin: true}))
}
