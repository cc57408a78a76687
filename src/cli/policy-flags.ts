/** The flags of the access-as-code commands. */
import {Flags} from './oclif.js'

export const policyFileFlag = Flags.string({
  char: 'f',
  description: 'The access policy file (YAML; `mlflowctl schema` prints its JSON Schema).',
  required: true,
})

export const pruneFlag = Flags.boolean({
  default: false,
  description: 'Also remove what the file does not describe: grants (of any user), role rows, memberships and roles. Users are never removed.',
})
