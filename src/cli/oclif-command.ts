/** oclif's Command and Args, by require() for the reason oclif.ts gives; loaded when a command runs, not for help. */
import {createRequire} from 'node:module'

import type * as ArgsModule from '@oclif/core/args'
import type * as CommandModule from '@oclif/core/command'

const require = createRequire(import.meta.url)

export const Args = require('@oclif/core/args') as typeof ArgsModule
export const {Command} = require('@oclif/core/command') as typeof CommandModule
