/**
 * The stored logins (profiles) of ~/.mlflow/credentials, for `auth profiles`, `auth switch` and
 * what login and logout say. One is current: its pair is in [mlflow], which MLflow's own clients
 * send to whatever server they talk to, so making another current changes what they send.
 */
import {MlflowCredentialsFile} from '../client/mlflow-credentials.js'
import {ExitCode, UserError} from '../core/errors.js'

export interface ProfileSummary {
  current: boolean
  name: string
  tracking_uri: string
  username: string
}

export function summarizeProfiles(file: MlflowCredentialsFile): ProfileSummary[] {
  const current = file.currentProfile
  return file
    .listProfiles()
    .map((login) => ({current: login.profile === current, name: login.profile, tracking_uri: login.trackingUri, username: login.username}))
}

/** How to pick one of the remaining logins, for hints. */
export function switchHint(names: readonly string[]): string {
  return `Stored logins: ${names.join(', ')}. Make one current with \`mlflowctl auth switch NAME\`, or use one for a single command with --profile NAME.`
}

/**
 * The [mlflow] pair when no stored login holds it (written by hand, as MLflow's docs suggest, or
 * by another tool): making a profile current would overwrite it with nothing to restore it from.
 */
export function unsavedActivePair(file: MlflowCredentialsFile): {username?: string} | undefined {
  const active = file.activeCredentials
  if (active.username === undefined && active.password === undefined) return undefined
  const saved = file.listProfiles().some((login) => login.username === (active.username ?? '') && login.password === (active.password ?? ''))
  return saved ? undefined : {username: active.username}
}

export async function listProfiles(): Promise<{current?: string; file: string; profiles: ProfileSummary[]; unsaved?: {username?: string}}> {
  const file = await MlflowCredentialsFile.load()
  return {current: file.currentProfile, file: file.path, profiles: summarizeProfiles(file), unsaved: unsavedActivePair(file)}
}

export interface SwitchResult {
  file: string
  previous?: string
  profile: ProfileSummary
  warnings: string[]
}

/** Makes a stored login current: its pair goes to [mlflow] and it becomes current_profile. */
export async function switchProfile(name: string): Promise<SwitchResult> {
  const file = await MlflowCredentialsFile.load()
  const target = file.getProfile(name)
  if (!target) {
    const names = file.listProfiles().map((login) => login.profile)
    throw new UserError(`No stored login named "${name}"`, {
      code: 'PROFILE_NOT_FOUND',
      exit: ExitCode.NotFound,
      hint: names.length > 0 ? `Stored logins: ${names.join(', ')}.` : `Nothing is stored in ${file.path}: run \`mlflowctl login --profile ${name}\`.`,
    })
  }

  const unsaved = unsavedActivePair(file)
  if (unsaved) {
    throw new UserError(
      `[mlflow] in ${file.path} holds credentials${unsaved.username ? ` for ${unsaved.username}` : ''} that no stored login keeps; switching would overwrite them, so nothing was changed`,
      {
        code: 'UNSAVED_CREDENTIALS',
        exit: ExitCode.Usage,
        hint: 'Keep them as a profile first (`mlflowctl login --profile NAME --user USER`), or remove them from [mlflow] by hand.',
      },
    )
  }

  const previous = file.currentProfile
  file.useProfile(name)
  const {warnings} = await file.save()
  return {
    file: file.path,
    previous,
    profile: {current: true, name, tracking_uri: target.trackingUri, username: target.username},
    warnings,
  }
}
