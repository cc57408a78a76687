/**
 * "Did you mean …?" for a command line that names no command. oclif hands over the words it could
 * not match joined with colons (`user:list`, or `perms:grant:experment:1` with the arguments that
 * followed); people type and read them with spaces, so everything here is in spaces.
 */
import type {Config} from '@oclif/core/config'

import {editDistance} from '../core/edit-distance.js'

export interface Suggestion {
  /** The command, as typed: `users list`. */
  command: string
  /** The words after the command that were its arguments, e.g. `1` of `perms grant experment 1`. */
  rest: string[]
}

export {editDistance} from '../core/edit-distance.js'

/**
 * The command closest to what was typed, comparing each command with as many leading words as it
 * has; none when even the closest is too far off to be a typo (so `frobnicate` suggests nothing
 * rather than a random command). Commands win over topics: `perms grant experment` is the command
 * perms grant experiment, though the topic perms grant matches exactly.
 */
export function suggest(typed: string, candidates: {commands: readonly string[]; topics: readonly string[]}): Suggestion | undefined {
  return closest(typed, candidates.commands) ?? closest(typed, candidates.topics)
}

function closest(typed: string, commandIds: readonly string[]): Suggestion | undefined {
  const words = typed.split(/[:\s]+/).filter(Boolean)
  let best: (Suggestion & {distance: number}) | undefined
  for (const id of commandIds) {
    const commandWords = id.split(':')
    if (commandWords.length > words.length) continue
    const command = commandWords.join(' ')
    const distance = editDistance(words.slice(0, commandWords.length).join(' '), command)
    if (distance > Math.max(2, Math.floor(command.length / 3))) continue
    // Ties go to the longer id: `user list` is users list rather than the topic users.
    if (!best || distance < best.distance || (distance === best.distance && commandWords.length > best.command.split(' ').length)) {
      best = {command, distance, rest: words.slice(commandWords.length)}
    }
  }

  return best && {command: best.command, rest: best.rest}
}

/** What to say about a command line naming no command: the message, and the hint with the suggestion. */
export function notFoundMessage(config: Pick<Config, 'bin' | 'commands' | 'topics'>, id: string, argv: readonly string[]): {hint: string; message: string} {
  const {bin} = config
  const typed = id.split(':').join(' ')
  const visible = config.commands.filter((command) => !command.hidden)
  const found = suggest(typed, {
    commands: [...visible.map((command) => command.id), ...visible.flatMap((command) => command.aliases)],
    topics: config.topics.filter((topic) => !topic.hidden).map((topic) => topic.name),
  })
  // The arguments that followed are repeated, the flags only hinted at: a flag's value is never echoed.
  const hint = found
    ? `Did you mean \`${[bin, found.command, ...found.rest].join(' ')}${argv.length > 0 ? ' …' : ''}\`? (\`${bin} ${found.command} --help\` shows how to use it.)`
    : `\`${bin} --help\` lists the commands.`
  return {hint, message: `"${typed}" is not a ${bin} command`}
}
