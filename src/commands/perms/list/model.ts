import {definePermsListCommand} from '../../../lib/perms-command.js'

export default definePermsListCommand('model')
