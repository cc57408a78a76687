import {definePermsCommand} from '../../../cli/perms-command.js'

export default definePermsCommand('get', 'scorer-version')
