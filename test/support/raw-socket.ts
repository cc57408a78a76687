/**
 * One request as raw bytes over a TCP socket, for the fuzz tests: nothing in between normalises
 * the request line, the headers or the framing, so every shape a hostile client could send
 * reaches serve as it is. The answer is read until serve closes the connection.
 */
import {connect} from 'node:net'

export interface RawAnswer {
  /** The body of the first final answer (as far as it came, and whatever followed it). */
  body: string
  /** The status line and header fields of the first final answer. */
  head: string
  /** Everything serve sent, as latin1 (bytes kept one for one). */
  raw: string
  /** The status of the first final answer (1xx skipped); undefined: closed without answering. */
  status: number | undefined
}

export interface RawOptions {
  /** Close our side right after the bytes (a client that goes away mid-request). */
  endAfter?: boolean
  /** A guard only: no answer and no close within this many ms is reported as a hang. */
  hangAfterMs: number
}

export class Hang extends Error {}

/** Sends `bytes` to host:port and resolves with what came back once serve closed the connection. */
export function sendRaw(port: number, bytes: Buffer, options: RawOptions): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect({host: '127.0.0.1', port}, () => {
      socket.write(bytes)
      if (options.endAfter) socket.end()
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(
        new Hang(`no answer and no close within ${options.hangAfterMs} ms; got: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 300))}`),
      )
    }, options.hangAfterMs)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    // A reset after an answer (serve closing on unread bytes) still leaves the answer to read.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      const raw = Buffer.concat(chunks).toString('latin1')
      resolve({raw, ...firstFinalAnswer(raw)})
    })
  })
}

function firstFinalAnswer(raw: string): {body: string; head: string; status: number | undefined} {
  for (const match of raw.matchAll(/(?:^|\r\n\r\n)(HTTP\/1\.[01] (\d{3}))/g)) {
    const status = Number(match[2])
    if (status < 200) continue
    const start = match.index + match[0].length - match[1].length
    const end = raw.indexOf('\r\n\r\n', start)
    return end === -1 ? {body: '', head: raw.slice(start), status} : {body: raw.slice(end + 4), head: raw.slice(start, end), status}
  }

  return {body: '', head: '', status: undefined}
}
