/**
 * Writes docs/commands.md, the command reference, from oclif.manifest.json (the commands' own
 * summaries, flags, arguments and examples, so it cannot say other than --help does).
 *   npm run manifest && npm run docs:commands
 * test/cli/package.test.ts fails when the committed file differs from what this renders.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'

interface ManifestFlag {
  aliases?: string[]
  char?: string
  default?: unknown
  description?: string
  helpGroup?: string
  hidden?: boolean
  name: string
  options?: string[]
  required?: boolean
  summary?: string
  type: 'boolean' | 'option'
}

interface ManifestCommand {
  aliases: string[]
  args: Record<string, {description?: string; name: string; options?: string[]; required?: boolean}>
  description?: string
  examples?: string[]
  flags: Record<string, ManifestFlag>
  hidden?: boolean
  id: string
  summary?: string
}

export interface Manifest {
  commands: Record<string, ManifestCommand>
}

const ROOT = new URL('..', import.meta.url)
const BIN = 'mlflowctl'

const spaced = (id: string) => id.replaceAll(':', ' ')
const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ')
const anchor = (id: string) => `${BIN}-${id.replaceAll(':', '-')}`

function flagName(flag: ManifestFlag): string {
  const value = flag.type === 'option' ? (flag.options ? ` ${flag.options.join('\\|')}` : ' VALUE') : ''
  return `${flag.char ? `-${flag.char}, ` : ''}--${flag.name}${value}`
}

function usage(command: ManifestCommand): string {
  const args = Object.values(command.args).map((arg) => (arg.required ? arg.name.toUpperCase() : `[${arg.name.toUpperCase()}]`))
  const required = Object.values(command.flags)
    .filter((flag) => flag.required && !flag.hidden)
    .map((flag) => `--${flag.name}${flag.type === 'option' ? ' VALUE' : ''}`)
  return [BIN, spaced(command.id), ...args, ...required, '[FLAGS]'].join(' ')
}

function section(command: ManifestCommand): string {
  const lines = [`## \`${BIN} ${spaced(command.id)}\``, '', command.summary ?? '', '', '```', usage(command), '```', '']
  if (command.description) lines.push(command.description.replaceAll('<%= config.bin %>', BIN), '')
  if (command.aliases.length > 0) lines.push(`Also: ${command.aliases.map((alias) => `\`${BIN} ${spaced(alias)}\``).join(', ')}.`, '')
  const args = Object.values(command.args)
  if (args.length > 0) {
    lines.push('| argument | |', '| --- | --- |')
    for (const arg of args) {
      const options = arg.options ? ` One of: ${arg.options.join(', ')}.` : ''
      lines.push(`| \`${arg.name.toUpperCase()}\`${arg.required ? '' : ' (optional)'} | ${cell((arg.description ?? '') + options)} |`)
    }

    lines.push('')
  }

  const flags = Object.values(command.flags).filter((flag) => !flag.hidden)
  const own = flags.filter((flag) => flag.helpGroup !== 'GLOBAL')
  const global = flags.filter((flag) => flag.helpGroup === 'GLOBAL')
  if (own.length > 0) {
    lines.push('| flag | |', '| --- | --- |')
    for (const flag of own) {
      const extra = [flag.required ? ' Required.' : '', flag.default !== undefined && flag.default !== false ? ` Default: ${String(flag.default)}.` : ''].join(
        '',
      )
      lines.push(`| \`${flagName(flag)}\` | ${cell((flag.summary ?? flag.description ?? '') + extra)} |`)
    }

    lines.push('')
  }

  if (global.length > 0) lines.push(`Global flags: ${global.map((flag) => `\`--${flag.name}\``).join(', ')}.`, '')
  if (command.examples && command.examples.length > 0) {
    lines.push('```sh')
    for (const example of command.examples) lines.push(example.replaceAll('<%= config.bin %>', BIN).replaceAll('<%= command.id %>', spaced(command.id)))
    lines.push('```', '')
  }

  return lines.join('\n')
}

export function renderCommandsDoc(manifest: Manifest): string {
  const commands = Object.values(manifest.commands)
    .filter((command) => !command.hidden)
    .sort((a, b) => a.id.localeCompare(b.id))
  const head = [
    `# ${BIN} commands`,
    '',
    '<!-- Generated from oclif.manifest.json by `npm run docs:commands`: edit the commands, not this file. -->',
    '',
    `Every command takes \`--help\` (or \`-h\`); \`${BIN} help COMMAND\` says the same. \`${BIN} --version\` (or \`-v\`, or \`${BIN} version\`) prints the version.`,
    'Global flags, on every command that talks to a server:',
    '',
    '| flag | |',
    '| --- | --- |',
    '| `--json` | One JSON document on stdout instead of text (also errors: `{error: {code, message, exit, hint?}}`). |',
    '| `--profile VALUE` | The stored login to use. Default: `$MLFLOWCTL_PROFILE`, else the current one (`mlflowctl auth profiles`). |',
    "| `--tracking-uri VALUE` | The MLflow server. Default: `$MLFLOW_TRACKING_URI`, else the profile's. |",
    '',
    '| command | |',
    '| --- | --- |',
    ...commands.map((command) => `| [\`${BIN} ${spaced(command.id)}\`](#${anchor(command.id)}) | ${cell(command.summary ?? '')} |`),
    '',
  ]
  return [...head, ...commands.map((command) => section(command))].join('\n').trimEnd() + '\n'
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const manifest = JSON.parse(await readFile(new URL('oclif.manifest.json', ROOT), 'utf8')) as Manifest
  await writeFile(new URL('docs/commands.md', ROOT), renderCommandsDoc(manifest))
  console.log('wrote docs/commands.md')
}
