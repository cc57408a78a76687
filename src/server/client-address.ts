/**
 * Who is calling serve: the client's address and whether it reached us over HTTPS.
 *
 * Behind a reverse proxy the socket's peer is the proxy, and the client is named in
 * X-Forwarded-For / X-Forwarded-Proto. Any client can send those headers, so they are believed
 * only from peers the operator listed as trusted proxies (--trusted-proxies), and never from
 * anyone else. Everything in serve that acts per client (forwarded headers, HSTS, and later
 * limits per address) asks this one module, so they can never disagree about who the client is.
 */
import {type IncomingMessage} from 'node:http'
import {BlockList, isIP, type Socket} from 'node:net'

import {ExitCode, UserError} from '../core/errors.js'
import {isLoopback} from './config.js'

export interface Client {
  /** The client's IP address: the socket's peer, or the one a trusted proxy names. */
  address: string
  /** The socket's peer: the client itself, or the nearest proxy. */
  peer: string
  /** How the client reached the first server it talked to (serve, or a trusted proxy). */
  protocol: 'http' | 'https'
}

/** An address as one spelling: IPv4-mapped IPv6 (`::ffff:10.0.0.1`) as IPv4, IPv6 in lower case. */
export function normalizeAddress(address: string): string {
  const lower = address.toLowerCase()
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)
  return mapped ? mapped[1] : lower
}

/** The peer of a connection, normalised; '' when the socket is already gone. */
export function peerAddress(socket: Socket): string {
  return socket.remoteAddress ? normalizeAddress(socket.remoteAddress) : ''
}

/**
 * One X-Forwarded-For entry as an address, or undefined when it is not one. Proxies write bare
 * addresses; some add a port (`10.0.0.1:5123`, `[2001:db8::1]:5123`).
 */
function forwardedAddress(entry: string): string | undefined {
  const bracketed = /^\[([^\]]+)](?::\d+)?$/.exec(entry)
  if (bracketed) return isIP(bracketed[1]) === 6 ? normalizeAddress(bracketed[1]) : undefined
  const withPort = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(entry)
  const bare = withPort ? withPort[1] : entry
  return isIP(bare) ? normalizeAddress(bare) : undefined
}

/** The client as the connection shows it, forwarded headers ignored. */
export function directClient(request: IncomingMessage): Client {
  const peer = peerAddress(request.socket)
  return {address: peer, peer, protocol: (request.socket as {encrypted?: boolean}).encrypted ? 'https' : 'http'}
}

function headerList(value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  return (Array.isArray(value) ? value.join(',') : value).split(',').map((item) => item.trim())
}

/** Headers a proxy adds to name the client it forwards for. */
const FORWARDING_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip']

export class ClientAddresses {
  private readonly list = new BlockList()

  /** The addresses and networks given, as given (for messages). */
  readonly trusted: readonly string[]

  private constructor(trusted: string[]) {
    this.trusted = trusted
    for (const entry of trusted) {
      const [address, prefix] = entry.split('/') as [string, string | undefined]
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4'
      if (prefix === undefined) this.list.addAddress(normalizeAddress(address), type)
      else this.list.addSubnet(normalizeAddress(address), Number(prefix), type)
    }
  }

  /** No proxy is trusted: the client is always the socket's peer. */
  static none(): ClientAddresses {
    return new ClientAddresses([])
  }

  /**
   * The trusted proxies from a comma-separated list of addresses and CIDR networks
   * (`127.0.0.1, 10.0.0.0/8, ::1`). Host names are refused: what they resolve to can change.
   */
  static parse(text: string | undefined, source = '--trusted-proxies'): ClientAddresses {
    const entries = (text ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean)
    for (const entry of entries) {
      const match = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry)
      const family = match ? isIP(match[1]) : 0
      const prefix = match?.[2] === undefined ? undefined : Number(match[2])
      if (!match || family === 0 || (prefix !== undefined && prefix > (family === 4 ? 32 : 128))) {
        throw new UserError(`${source}: "${entry}" is not an IP address or a network like 10.0.0.0/8`, {
          code: 'BAD_TRUSTED_PROXY',
          exit: ExitCode.Usage,
          hint: 'List the addresses (or CIDR networks) of the reverse proxies in front of serve, separated by commas. Host names are not accepted.',
        })
      }
    }

    return new ClientAddresses(entries)
  }

  /**
   * Whether the client is on this host: its address loopback, and no peer serve does not trust
   * sends headers that forward for someone else (a proxy on this host nobody listed in
   * --trusted-proxies, whose clients would all look local).
   */
  isLocal(request: IncomingMessage): boolean {
    const {address, peer} = this.resolve(request)
    if (!isLoopback(address)) return false
    return this.isTrusted(peer) || FORWARDING_HEADERS.every((name) => request.headers[name] === undefined)
  }

  isTrusted(address: string): boolean {
    if (this.trusted.length === 0 || !address) return false
    const normal = normalizeAddress(address)
    return this.list.check(normal, isIP(normal) === 6 ? 'ipv6' : 'ipv4')
  }

  /**
   * The client of a request. From an untrusted peer the forwarded headers are ignored. From a
   * trusted one, X-Forwarded-For is read from the right (the entry the nearest proxy added)
   * past every trusted proxy; the first other address is the client. An entry that is not an
   * address stops the walk at the last proxy known, so a garbled header can only make serve
   * blame a proxy, never a client of the sender's choosing. The protocol is the last
   * X-Forwarded-Proto value (the one the nearest proxy set).
   */
  resolve(request: IncomingMessage): Client {
    const direct = directClient(request)
    const {peer} = direct
    if (!this.isTrusted(peer)) return direct

    let address = peer
    for (const entry of headerList(request.headers['x-forwarded-for']).reverse()) {
      const next = forwardedAddress(entry)
      if (next === undefined) break
      address = next
      if (!this.isTrusted(next)) break
    }

    const proto = headerList(request.headers['x-forwarded-proto']).at(-1)?.toLowerCase()
    return {address, peer, protocol: proto === 'https' || proto === 'http' ? proto : direct.protocol}
  }
}
