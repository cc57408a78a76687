/**
 * Client connections held open on serve, to fill its connection limits: each carries one
 * answered request (so serve has counted it) and stays open until closed.
 */
import {connect, type Socket} from 'node:net'
import {connect as tlsConnect} from 'node:tls'

export interface Held {
  /** Whether serve answered (the connection is open and counted), or closed it unanswered. */
  answered: boolean
  socket: Socket
}

/** Every connection opened here, for closeOpened after each test whatever happened. */
export const opened = new Set<Socket>()

/** A keep-alive connection with one answered request on it, kept open; or closed by serve. */
export function openConnection(port: number, localAddress = '127.0.0.1', tls?: {ca: Buffer}): Promise<Held> {
  return new Promise((resolve) => {
    let received = ''
    const ask = () => socket.write('GET /health HTTP/1.1\r\nHost: serve\r\n\r\n')
    const direct = connect({host: '127.0.0.1', localAddress, port}, tls ? undefined : ask)
    // Over TLS, on that connection (tls.connect has no localAddress of its own).
    const socket: Socket = tls ? tlsConnect({ca: tls.ca, host: '127.0.0.1', socket: direct}, ask) : direct
    opened.add(socket)
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
      if (received.includes('\r\n\r\n')) resolve({answered: received.startsWith('HTTP/1.1 200 '), socket})
    })
    socket.on('error', () => {}) // a reset is a refusal too
    socket.on('close', () => resolve({answered: false, socket}))
  })
}

/** Opens connections until `count` are answered and held (a connection just closed may still count for a moment). */
export async function holdConnections(port: number, count: number, localAddress?: string, tls?: {ca: Buffer}): Promise<Socket[]> {
  const held: Socket[] = []
  while (held.length < count) {
    const next = await openConnection(port, localAddress, tls)
    if (next.answered) held.push(next.socket)
    else await new Promise((resolve) => setTimeout(resolve, 50))
  }

  return held
}

export async function closeAll(sockets: Socket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise((resolve) => {
          if (socket.destroyed) resolve(undefined)
          socket.once('close', resolve)
          socket.destroy()
        }),
    ),
  )
}

/** Closes every connection opened here so far. */
export async function closeOpened(): Promise<void> {
  await closeAll([...opened])
  opened.clear()
}
