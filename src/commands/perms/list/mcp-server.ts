import {definePermsListCommand} from '../../../cli/perms-command.js'

export default definePermsListCommand('mcp-server')
