import {definePermsCommand} from '../../../cli/perms-command.js'

export default definePermsCommand('revoke', 'logged-model')
