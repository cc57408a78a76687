/**
 * serve's logs (docs/operations.md, "Logs"): pino, as JSON lines (`--log-format json`, for log
 * collectors; the default when stderr is not a terminal) or as plain lines for people (`pretty`:
 * `time warning: message`, the words serve has always written, coloured; the default on a terminal). serve's modules keep logging plain messages through a
 * `(message) => void`; a leading `warning: ` or `error: ` sets the level.
 *
 * Nothing logged may hold a password, hash, token or Authorization header: the messages never do,
 * and structured fields with those names are redacted in case one ever carries them.
 */
import {pino, type Logger, type LevelWithSilent} from 'pino'

export type LogFormat = 'json' | 'pretty'
export const LOG_FORMATS: LogFormat[] = ['json', 'pretty']

/** Without --log-format: plain lines for a person at a terminal, JSON lines for whatever collects them otherwise. */
export function defaultLogFormat(stream: {isTTY?: boolean}): LogFormat {
  return stream.isTTY === true ? 'pretty' : 'json'
}
export const LOG_LEVELS: LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

/** Where log lines go: process.stderr, a file stream, or a test's array. */
export interface LineSink {
  write(line: string): unknown
}

export interface LoggerOptions {
  /** Colour the level words (pretty only); default: whether the sink is a terminal. */
  color?: boolean
  format: LogFormat
  level: LevelWithSilent
  sink: LineSink
}

/** Fields that must never reach a log, at the top level or one object down (a request's headers). */
const REDACT = [
  'authorization',
  'password',
  'passwordHash',
  'token',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.password',
  '*.passwordHash',
  '*.token',
]

/** The word a pretty line gives each level; info has none, as serve's lines always had. */
const PRETTY_LABEL: Record<string, string> = {debug: 'debug: ', error: 'error: ', fatal: 'fatal: ', info: '', trace: 'trace: ', warn: 'warning: '}
const COLOUR: Record<string, string> = {error: '\u001B[31m', fatal: '\u001B[31m', warn: '\u001B[33m'}
const RESET = '\u001B[0m'

/** Turns pino's JSON lines into `time label message key=value…`. */
function prettySink(sink: LineSink, color: boolean): LineSink {
  return {
    write(line: string) {
      const {level, msg, time, ...fields} = JSON.parse(line) as Record<string, unknown>
      const name = String(level)
      const label = PRETTY_LABEL[name] ?? `${name}: `
      const shown = color && COLOUR[name] ? `${COLOUR[name]}${label}${RESET}` : label
      const extra = Object.entries(fields)
        .map(([key, value]) => ` ${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
        .join('')
      return sink.write(`${String(time)} ${shown}${String(msg ?? '')}${extra}\n`)
    },
  }
}

export function createLogger(options: LoggerOptions): Logger {
  const {format, level, sink} = options
  const color = options.color ?? (sink as {isTTY?: boolean}).isTTY === true
  return pino(
    {
      // The pretty form has no use for pid and host; JSON lines keep them for collectors.
      ...(format === 'pretty' ? {base: null} : {}),
      formatters: {level: (label) => ({level: label})},
      level,
      redact: {censor: '[redacted]', paths: REDACT},
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    format === 'pretty' ? prettySink(sink, color) : sink,
  )
}

const PREFIXED = /^(warning|error): /

/** serve's `(message) => void` on a logger: `warning: ` and `error: ` become the level, and leave the message. */
export function messageLog(logger: Logger): (message: string) => void {
  return (message) => {
    const prefix = PREFIXED.exec(message)
    if (!prefix) logger.info(message)
    else if (prefix[1] === 'warning') logger.warn(message.slice(prefix[0].length))
    else logger.error(message.slice(prefix[0].length))
  }
}
