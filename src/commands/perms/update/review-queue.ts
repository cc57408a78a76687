import {definePermsCommand} from '../../../cli/perms-command.js'

export default definePermsCommand('update', 'review-queue')
