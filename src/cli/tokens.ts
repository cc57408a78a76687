/** What the tokens commands share: the --expires flag and how a token's times read in a table. */

import {Flags} from './oclif.js'
import {ExitCode, UserError} from '../core/errors.js'

const UNIT_SECONDS: Record<string, number> = {d: 86_400, h: 3600, m: 60, w: 604_800}

/** The most a lifetime may be: serve refuses more than about 100 years. */
const MAX_SECONDS = 100 * 366 * 86_400

/**
 * `90d`, `12h`, `30m`, `2w` → seconds; `never` → null. Anything else is a usage error before any
 * request.
 */
export function parseLifetime(input: string): null | number {
  const text = input.trim().toLowerCase()
  if (text === 'never') return null
  const match = /^(\d{1,9})([mhdw])$/.exec(text)
  const seconds = match ? Number(match[1]) * UNIT_SECONDS[match[2]] : Number.NaN
  if (!(seconds >= 60 && seconds <= MAX_SECONDS)) {
    throw new UserError(`Cannot read --expires ${JSON.stringify(input)}: expected a number with m, h, d or w (e.g. 90d, 12h), at least 1m, or "never"`, {
      code: 'INVALID_EXPIRY',
      exit: ExitCode.Usage,
    })
  }

  return seconds
}

export const expiresFlag = Flags.custom<null | number>({
  default: async () => parseLifetime('90d'),
  defaultHelp: async () => '90d',
  description: 'How long the token works: a number with m, h, d or w (30m, 12h, 90d, 2w), or "never".',
  async parse(input) {
    return parseLifetime(input)
  },
})

/** An ISO time as a table shows it (UTC, to the minute); `none` for null. */
export function tableTime(iso: null | string, none: string): string {
  return iso === null ? none : `${iso.slice(0, 16).replace('T', ' ')}Z`
}
