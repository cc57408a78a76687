import {definePermsCommand} from '../../../lib/perms-command.js'

export default definePermsCommand('get', 'experiment')
