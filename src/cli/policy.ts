/**
 * What `plan`, `apply` and `users import` share: reading both sides into a plan, the caller's own
 * admin flag, the confirmation, the run with its progress line, and the report of what was and
 * was not done (with the generated passwords, shown once).
 */
import {type Command} from '@oclif/core/command'

import {ExitCode, UserError} from '../core/errors.js'
import {type ApplyResult, DEFAULT_CONCURRENCY, type NewPassword, runPlan, ServerTarget} from '../policy/apply.js'
import {readPolicyFile} from '../policy/file.js'
import {type AccessPolicy} from '../policy/model.js'
import {type Change, type ChangeJson, changeJson, describeChange, diff, type Plan, type PlanJson, planJson, renderPlan} from '../policy/plan.js'
import {readServerState, serverResolver} from '../policy/server-state.js'
import {BaseCommand} from './base-command.js'
import {Progress} from './progress.js'
import {confirmDestructive} from './prompts.js'
import type {Session} from './session.js'

export interface PlanContext {
  actual: AccessPolicy
  desired: AccessPolicy
  plan: Plan
}

/** The file read and resolved against the server, the server read, and the difference; no change is made. */
export async function planFromFile(session: Session, file: string, prune: boolean): Promise<PlanContext> {
  const desired = await readPolicyFile(file, serverResolver(session))
  const actual = await readServerState(session)
  const plan = diff(desired, actual, {prune})
  await refuseSelfDemotion(session, plan)
  return {actual, desired, plan}
}

/** A plan that would take the caller's own admin flag is refused before any change: nobody could put it back. */
export async function refuseSelfDemotion(session: Session, plan: Plan): Promise<void> {
  const demoted = plan.changes.flatMap((change) => (change.what === 'admin' && !change.to ? [change.user] : []))
  if (demoted.length === 0) return
  const me = await session.whoami()
  if (demoted.includes(me.username)) {
    throw new UserError(`The file would take away your own admin flag (${me.username}); nothing was changed`, {
      code: 'SELF_DEMOTION',
      exit: ExitCode.Usage,
      hint: `Give ${me.username} \`admin: true\` in the file, or leave ${me.username} out of it (users not listed are not changed).`,
    })
  }
}

export interface ApplyJson {
  applied: ChangeJson[]
  error?: {code: string; exit: number; message: string}
  not_applied: ChangeJson[]
  /** Generated passwords of the users created, shown this once. */
  passwords: Array<{password: string; username: string}>
  plan: PlanJson
}

export interface ApplyIo {
  /** Prints on stdout (silent under --json). */
  log: (text: string) => void
  /** Called as the changes start: the command's per-request spinner would fight the progress line. */
  onStart?: () => void
  /** Prints on stderr (silent under --json). */
  status: (text: string) => void
  /** Asks before changing anything; `yes` skips. */
  yes: boolean
}

/**
 * Shows the plan, confirms (exit 9 without a terminal and without --yes), applies it and reports.
 * A failure is not thrown past here until the report and the generated passwords of the users
 * already created are out: the error then carries the failing request's exit code.
 */
export async function applyPlan(session: Session, context: PlanContext, passwords: Map<string, NewPassword>, io: ApplyIo): Promise<ApplyJson> {
  const {actual, plan} = context
  io.log(renderPlan(plan))
  const json: ApplyJson = {applied: [], not_applied: [], passwords: [], plan: planJson(plan)}
  if (plan.changes.length === 0) return json
  await confirmDestructive(`apply ${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'} to ${session.connection.host.value}`, io.yes)

  io.onStart?.()
  const progress = Progress.enabledFor(process.stderr) ? new Progress(process.stderr) : undefined
  let end = progress?.begin(`Applying 0/${plan.changes.length} changes…`)
  const result = await runPlan(plan, actual, new ServerTarget(session.api, session.roles), {
    concurrency: DEFAULT_CONCURRENCY,
    onProgress(done, total) {
      if (!progress) return
      const next = progress.begin(`Applying ${done}/${total} changes…`)
      end?.()
      end = next
    },
    passwords,
  })
  end?.()
  return report(result, passwords, json, io)
}

function report(result: ApplyResult, passwords: Map<string, NewPassword>, json: ApplyJson, io: ApplyIo): ApplyJson {
  json.applied = result.applied.map((change) => changeJson(change))
  json.not_applied = result.notApplied.map((change) => changeJson(change))
  const created = result.applied.filter((change): change is Extract<Change, {what: 'user'}> => change.what === 'user')
  json.passwords = created.flatMap((change) => {
    const entry = passwords.get(change.user)
    return entry?.generated ? [{password: entry.password, username: change.user}] : []
  })

  io.status(`Applied ${result.applied.length} of ${result.applied.length + result.notApplied.length} changes.`)
  if (json.passwords.length > 0) {
    io.status('Generated passwords of the users created (shown this once; store them now):')
    io.log(json.passwords.map((entry) => `${entry.username}\t${entry.password}`).join('\n'))
  }

  if (result.failure) {
    const {change, error} = result.failure
    const failure =
      error instanceof UserError ? error : new UserError(String((error as Error)?.message ?? error), {code: 'UNEXPECTED', exit: ExitCode.Unexpected})
    io.status(`Not applied (${result.notApplied.length}):`)
    for (const item of result.notApplied) io.status(`  ${heading(item)}: ${describeChange(item)}`)
    json.error = {code: failure.code, exit: failure.exit, message: `${heading(change)}: ${describeChange(change)}: ${failure.message}`}
  }

  return json
}

function heading(change: Change): string {
  return 'role' in change ? `role ${change.role.name}` : `user ${change.user}`
}

/** After the report: the failure, if any, as the error the command exits with (the failing request's own code). */
export function failureOf(json: ApplyJson): UserError | undefined {
  if (!json.error) return undefined
  return new UserError(`Stopped at the first failure: ${json.error.message}. Applied ${json.applied.length}, not applied ${json.not_applied.length}`, {
    code: json.error.code,
    exit: json.error.exit as (typeof ExitCode)[keyof typeof ExitCode],
    hint: 'Fix the cause and run apply again: it plans from what the server now holds and finishes the job.',
  })
}

/**
 * `apply` and `users import`: a command that runs a plan. While the changes run, the progress
 * line replaces the per-request spinner; a failure is reported first, then exits with its code
 * (under --json the document is printed and the exit code set).
 */
export abstract class ApplyingCommand<T extends typeof Command> extends BaseCommand<T> {
  private quiet = false

  protected async applyAndReport(session: Session, context: PlanContext, passwords: Map<string, NewPassword>, yes: boolean): Promise<ApplyJson> {
    const json = await applyPlan(session, context, passwords, {
      log: (text) => this.log(text),
      onStart: () => {
        this.quiet = true
      },
      status: (text) => this.status(text),
      yes,
    })
    const failure = failureOf(json)
    if (failure && !this.jsonEnabled()) throw failure
    if (failure) process.exitCode = failure.exit
    return json
  }

  protected override waitingFor(request: {host: string; method: string; path: string}): () => void {
    return this.quiet ? () => {} : super.waitingFor(request)
  }
}
