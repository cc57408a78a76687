/**
 * oclif's values for our modules, taken with require(). oclif is CommonJS, and an ES module's
 * `import` of a CommonJS module has Node resolve it again, read its source and scan it for the
 * names it exports: 2 to 5 ms for each of oclif's subpaths on every run, though oclif has already
 * loaded them all by the time a command or the help loads. require() hands over the loaded exports.
 * Types still come from `import type` of the subpaths.
 */
import {createRequire} from 'node:module'

import type * as ArgsModule from '@oclif/core/args'
import type * as CommandModule from '@oclif/core/command'
import type * as ErrorsModule from '@oclif/core/errors'
import type * as FlagsModule from '@oclif/core/flags'
import type * as HelpModule from '@oclif/core/help'

const require = createRequire(import.meta.url)

export const Args = require('@oclif/core/args') as typeof ArgsModule
export const Flags = require('@oclif/core/flags') as typeof FlagsModule
export const {Command} = require('@oclif/core/command') as typeof CommandModule
export const {CLIError} = require('@oclif/core/errors') as typeof ErrorsModule
export const {CommandHelp, Help, loadHelpClass} = require('@oclif/core/help') as typeof HelpModule
