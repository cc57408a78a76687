/**
 * The fetch that carries mlflowctl's TLS settings (MLFLOW_TRACKING_INSECURE_TLS, _SERVER_CERT_PATH,
 * _CLIENT_CERT_PATH): they need their own connection pool, an undici Agent used with undici's own
 * fetch. Without TLS settings the global fetch is used.
 */
import {readFile} from 'node:fs/promises'

import {ExitCode, UserError} from '../core/errors.js'
import type {Connection, Sourced} from './connection.js'

export interface Transport {
  close(): Promise<void>
  fetch: typeof fetch
}

/** undefined: no TLS settings, the global fetch will do. */
export async function createTransport(connection: Connection): Promise<Transport | undefined> {
  const {tls} = connection
  if (!tls.insecure && !tls.serverCertPath && !tls.clientCertPath) return undefined
  const connect: {ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean} = {}
  if (tls.serverCertPath) connect.ca = await readPem(tls.serverCertPath)
  if (tls.clientCertPath) {
    const pem = await readPem(tls.clientCertPath)
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) {
      throw new UserError(`${tls.clientCertPath.source} (${tls.clientCertPath.value}) has no private key`, {
        code: 'INVALID_CLIENT_CERT',
        exit: ExitCode.Usage,
        hint: 'Give one PEM file with the client certificate followed by its unencrypted private key, as MLflow (Python requests) expects.',
      })
    }

    // One PEM holds both; Node picks the certificate and the key blocks out of it.
    connect.cert = pem
    connect.key = pem
  }

  if (tls.insecure) connect.rejectUnauthorized = false
  const undici = await import('undici')
  const agent = new undici.Agent({connect})
  // ky hands over a global Request, which undici's fetch does not recognise: pass its parts instead.
  const fetchWithAgent = async (input: Request): Promise<Response> => {
    const body = input.method === 'GET' || input.method === 'HEAD' ? undefined : await input.arrayBuffer()
    const response = await undici.fetch(input.url, {
      body,
      dispatcher: agent,
      headers: [...input.headers],
      method: input.method,
      redirect: input.redirect,
      signal: input.signal,
    })
    return response as unknown as Response
  }

  return {close: () => agent.close(), fetch: fetchWithAgent as typeof fetch}
}

async function readPem(path: Sourced): Promise<Buffer> {
  try {
    return await readFile(path.value)
  } catch (error) {
    throw new UserError(`Cannot read ${path.source} (${path.value}): ${(error as Error).message}`, {
      code: 'INVALID_CERT_PATH',
      exit: ExitCode.Usage,
      hint: `Fix or unset ${path.source}.`,
    })
  }
}
