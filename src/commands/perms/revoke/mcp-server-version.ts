import {definePermsCommand} from '../../../cli/perms-command.js'

export default definePermsCommand('revoke', 'mcp-server-version')
