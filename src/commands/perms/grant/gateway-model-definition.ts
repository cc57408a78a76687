import {definePermsCommand} from '../../../cli/perms-command.js'

export default definePermsCommand('grant', 'gateway-model-definition')
