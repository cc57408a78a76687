/**
 * Shell completion in the style of cobra (gh, the Databricks CLI): each shell's script is a few
 * lines that hand the words typed so far to the hidden `mlflowctl __complete -- WORDS…` and offer
 * what it prints, one `value<TAB>description` a line. So completion always matches the installed
 * commands and flags, and can offer stored profile names, with nothing to regenerate.
 */
import type {Command} from '@oclif/core/command'

import {PERMISSION_LEVELS} from '../mlflow/permissions.js'

export type Shell = 'bash' | 'fish' | 'zsh'
export const SHELLS: readonly Shell[] = ['bash', 'fish', 'zsh']

export interface Candidate {
  description?: string
  value: string
}

export interface CompletionContext {
  bin: string
  commands: readonly Command.Loadable[]
  /** Stored login names, read only when a profile is what comes next. */
  profiles: () => Promise<string[]>
  topics: ReadonlyArray<{description?: string; hidden?: boolean; name: string}>
}

/** Flags whose value is a stored login's name. */
const PROFILE_FLAGS = new Set(['profile'])

/** Values of flags that check their input themselves (any case) rather than through oclif's options. */
const FLAG_VALUES: Record<string, readonly string[]> = {permission: PERMISSION_LEVELS}

function describe(text: string | undefined, bin: string): string | undefined {
  return text?.split('\n')[0].replaceAll('<%= config.bin %>', bin)
}

/** The candidates for the last word of `words` (the one being typed; '' for a new word). */
export async function complete(context: CompletionContext, words: readonly string[]): Promise<Candidate[]> {
  const current = words.at(-1) ?? ''
  const before = words.slice(0, -1)
  const visible = context.commands.filter((command) => !command.hidden)
  const byId = new Map(visible.map((command) => [command.id, command]))
  const ids = new Set([...visible.map((command) => command.id), ...context.topics.filter((topic) => !topic.hidden).map((topic) => topic.name)])

  // The command: the leading words that still name a topic or command.
  const path: string[] = []
  for (const word of before) {
    if (!ids.has([...path, word].join(':'))) break
    path.push(word)
  }

  const command = byId.get(path.join(':'))
  const extra = before.slice(path.length)
  const matching = (candidates: Candidate[]) => candidates.filter((candidate) => candidate.value.startsWith(current))

  // A flag's value.
  const previous = before.at(-1)
  if (command && previous?.startsWith('-') && extra.length > 0) {
    const flag = previous.startsWith('--') ? command.flags[previous.slice(2)] : Object.values(command.flags).find((each) => `-${each.char}` === previous)
    if (flag?.type === 'option') {
      if (PROFILE_FLAGS.has(flag.name)) return matching((await context.profiles()).map((value) => ({value})))
      return matching((flag.options ?? FLAG_VALUES[flag.name] ?? []).map((value) => ({value})))
    }
  }

  if (current.startsWith('-')) {
    if (!command) return []
    const flags = Object.values(command.flags)
      .filter((flag) => !flag.hidden)
      .map((flag) => ({description: describe(flag.summary ?? flag.description, context.bin), value: `--${flag.name}`}))
    return matching([...flags, {description: 'Show help.', value: '--help'}])
  }

  if (extra.length > 0 && !(command && extra.every((word) => word.startsWith('-')))) return profileArgument(context, command, extra, current)

  // The next word of a command's name.
  const next = new Map<string, string | undefined>()
  const prefix = path.length === 0 ? '' : `${path.join(':')}:`
  for (const id of ids) {
    if (!id.startsWith(prefix)) continue
    const [word, ...more] = id.slice(prefix.length).split(':')
    if (!word) continue
    const described = more.length === 0 ? (byId.get(id)?.summary ?? context.topics.find((topic) => topic.name === id)?.description) : undefined
    if (!next.has(word) || described) next.set(word, describe(described, context.bin))
  }

  const children = [...next].map(([value, description]) => ({description, value}))
  return matching([...children, ...(await profileArgument(context, command, extra, current))])
}

/** `auth switch NAME`: the stored logins. */
async function profileArgument(
  context: CompletionContext,
  command: Command.Loadable | undefined,
  extra: readonly string[],
  current: string,
): Promise<Candidate[]> {
  if (command?.id !== 'auth:switch' || extra.some((word) => !word.startsWith('-'))) return []
  return (await context.profiles()).filter((name) => name.startsWith(current)).map((value) => ({value}))
}

/** The script each shell sources. */
export function completionScript(shell: Shell, bin: string): string {
  const fn = `_${bin.replaceAll(/\W/g, '_')}_complete`
  switch (shell) {
    case 'bash': {
      return `# ${bin} completion for bash: add to ~/.bashrc
#   eval "$(${bin} completion bash)"
${fn}() {
  local IFS=$'\\n' line
  COMPREPLY=()
  while read -r line; do
    COMPREPLY+=("\${line%%$'\\t'*}")
  done < <("\${COMP_WORDS[0]}" __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
}
complete -o default -F ${fn} ${bin}
`
    }

    case 'fish': {
      return `# ${bin} completion for fish: save as ~/.config/fish/completions/${bin}.fish
#   ${bin} completion fish > ~/.config/fish/completions/${bin}.fish
function ${fn}
  set -l words (commandline -opc)
  set -l current (commandline -ct)
  test (count $current) -eq 0; and set current ''
  $words[1] __complete -- $words[2..-1] $current 2>/dev/null
end
complete -c ${bin} -f -a '(${fn})'
`
    }

    case 'zsh': {
      return `#compdef ${bin}
# ${bin} completion for zsh: add to ~/.zshrc (after compinit)
#   eval "$(${bin} completion zsh)"
${fn}() {
  local -a candidates
  local line
  for line in "\${(@f)$("\${words[1]}" __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}"; do
    [[ -n $line ]] || continue
    if [[ $line == *$'\\t'* ]]; then
      candidates+=("\${\${line%%$'\\t'*}//:/\\\\:}:\${line#*$'\\t'}")
    else
      candidates+=("\${line//:/\\\\:}")
    fi
  done
  _describe -t commands '${bin}' candidates
}
compdef ${fn} ${bin}
`
    }
  }
}
