import {definePermsListCommand} from '../../../cli/perms-command.js'

export default definePermsListCommand('review-queue')
