import {readFile} from 'node:fs/promises'

import {Args} from '../../cli/oclif-command.js'
import {yesFlag} from '../../cli/flags.js'
import {type ApplyJson, ApplyingCommand, refuseSelfDemotion} from '../../cli/policy.js'
import {checkNewPassword} from '../../cli/prompts.js'
import {ExitCode, UserError} from '../../core/errors.js'
import {generatePassword, type NewPassword} from '../../policy/apply.js'
import {diff} from '../../policy/plan.js'
import {readServerState} from '../../policy/server-state.js'
import {accountsOf, readUsersCsv, usersPolicy} from '../../policy/users-csv.js'

export default class UsersImport extends ApplyingCommand<typeof UsersImport> {
  static override args = {file: Args.string({description: 'CSV file with the header username,admin or username,admin,password.', required: true})}
  static override description = `Admins only. Creates the users the server lacks and sets every listed user's admin flag (true/false, yes/no, 1/0; empty is false); users not in the file, and everyone's grants and roles, are left alone. A new user's password is the password column's, or, where it is empty or absent, generated and printed once at the end with the username (stdout; --json: passwords). The file is checked whole before any change (exit 2, with the line). Shows the plan and asks for confirmation on a terminal (else --yes). The same engine as \`mlflowctl apply\`.`
  static override examples = ['<%= config.bin %> <%= command.id %> users.csv', '<%= config.bin %> <%= command.id %> users.csv --yes --json']
  static override flags = {yes: yesFlag}
  static override summary = 'Create users and set admin flags from a CSV file.'

  public async run(): Promise<ApplyJson> {
    const {file} = this.args
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new UserError(error.code === 'ENOENT' ? `There is no file ${file}` : `Cannot read ${file}: ${error.message}`, {exit: ExitCode.Usage})
    })
    const users = readUsersCsv(text, file)
    const session = await this.session()
    const desired = usersPolicy(users)
    const actual = accountsOf(await readServerState(session))
    const plan = diff(desired, actual, {prune: false})
    await refuseSelfDemotion(session, plan)
    const passwords = new Map<string, NewPassword>()
    for (const user of users) {
      if (actual.users.has(user.username)) continue
      if (user.password === undefined) {
        passwords.set(user.username, {generated: true, password: generatePassword()})
        continue
      }

      const verdict = checkNewPassword(user.password)
      if (verdict !== true)
        throw new UserError(`${file}:${user.line}: the password for ${user.username}: ${verdict}; nothing was changed`, {
          code: 'INVALID_PASSWORD',
          exit: ExitCode.Usage,
        })
      passwords.set(user.username, {generated: false, password: user.password})
    }

    return this.applyAndReport(session, {actual, desired, plan}, passwords, this.flags.yes)
  }
}
