/**
 * oclif's values for our modules, taken with require(). oclif is CommonJS, and an ES module's
 * `import` of a CommonJS module has Node resolve it again, read its source and scan it for the
 * names it exports: 2 to 5 ms for each of oclif's subpaths on every run, though oclif has already
 * loaded them. require() hands over the loaded exports. Types still come from `import type` of the
 * subpaths. This module takes only what oclif loads at every start (help included: the help path
 * loads nothing more); Command and Args, which a run of a command loads, are in oclif-command.ts.
 */
import {createRequire} from 'node:module'

import type * as ErrorsModule from '@oclif/core/errors'
import type * as FlagsModule from '@oclif/core/flags'
import type * as HelpModule from '@oclif/core/help'

const require = createRequire(import.meta.url)

export const Flags = require('@oclif/core/flags') as typeof FlagsModule
export const {CLIError} = require('@oclif/core/errors') as typeof ErrorsModule
export const {CommandHelp, Help, loadHelpClass} = require('@oclif/core/help') as typeof HelpModule
