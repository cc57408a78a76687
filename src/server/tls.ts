/**
 * How serve listens: HTTPS with a certificate read from files (re-read on demand, so certificates
 * can rotate without a restart), optional client certificates (mutual TLS), HSTS, and the rule
 * that plain HTTP beyond loopback needs the operator's explicit --insecure-http: every request
 * carries a password, which must not cross a network in clear.
 */
import {X509Certificate} from 'node:crypto'
import {readFile, stat} from 'node:fs/promises'
import {createServer as createHttpServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse} from 'node:http'
import {createServer as createHttpsServer, type Server as HttpsServer} from 'node:https'
import {createSecureContext, type SecureContextOptions} from 'node:tls'

import {ExitCode, UserError} from '../core/errors.js'
import {isLoopback} from './config.js'

/** The certificate files, as paths. */
export interface TlsFiles {
  /** PEM: the server certificate, then any intermediates. */
  cert: string
  /** PEM: CA certificates that sign acceptable client certificates; set, clients must present one. */
  clientCa?: string
  /** PEM: the certificate's private key (unencrypted). */
  key: string
}

export interface ListenerSettings {
  host: string
  /** The Strict-Transport-Security value for HTTPS answers; 'off' sends none. */
  hsts?: string
  /** Plain HTTP beyond loopback, on the operator's word that something else protects it. */
  insecureHttp?: boolean
  tls?: Partial<TlsFiles>
}

/** A year, as commonly recommended; browsers then refuse plain HTTP to this host for that long. */
export const DEFAULT_HSTS = 'max-age=31536000'

/**
 * TLS 1.2 and 1.3 only; for 1.2 only forward-secret AEAD suites (the widely used "intermediate"
 * profile). Set explicitly, so Node's --tls-min-v1.0 or a changed default cannot weaken serve.
 */
const TLS_PROFILE = {
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  maxVersion: 'TLSv1.3',
  minVersion: 'TLSv1.2',
} as const satisfies SecureContextOptions

/** Where each setting comes from, for messages. */
const SOURCE = {
  cert: '--tls-cert (MLFLOWCTL_TLS_CERT)',
  clientCa: '--tls-client-ca (MLFLOWCTL_TLS_CLIENT_CA)',
  key: '--tls-key (MLFLOWCTL_TLS_KEY)',
} as const

/** The HSTS header value to send, or undefined for none; refuses values browsers would ignore. */
export function parseHsts(value: string | undefined): string | undefined {
  if (value === undefined) return DEFAULT_HSTS
  const trimmed = value.trim()
  if (trimmed.toLowerCase() === 'off') return undefined
  const directives = trimmed.split(';').map((part) => part.trim())
  const maxAge = directives.filter((part) => /^max-age=\d+$/i.test(part))
  const known = directives.every((part) => /^max-age=\d+$/i.test(part) || /^(includesubdomains|preload)$/i.test(part))
  if (maxAge.length !== 1 || !known) {
    throw new UserError(`--hsts "${value}" is not a Strict-Transport-Security value`, {
      code: 'BAD_HSTS',
      exit: ExitCode.Usage,
      hint: `Give max-age=SECONDS, optionally with "; includeSubDomains" and "; preload" (default ${DEFAULT_HSTS}), or "off".`,
    })
  }

  return directives.join('; ')
}

async function readSetting(which: keyof TlsFiles, path: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'cannot be read (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory'
            : `cannot be read (${code ?? (error as Error).message})`
    throw new UserError(`The file ${path} given by ${SOURCE[which]} ${why}`, {code: 'TLS_FILE', exit: ExitCode.Usage})
  }
}

function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  return blocks.map((block) => new X509Certificate(block))
}

function certificates(which: 'cert' | 'clientCa', path: string, data: Buffer): X509Certificate[] {
  let found: X509Certificate[]
  try {
    found = pemCertificates(data.toString('latin1'))
  } catch (error) {
    throw new UserError(`The file ${path} given by ${SOURCE[which]} holds a damaged certificate: ${(error as Error).message}`, {
      code: 'TLS_FILE',
      exit: ExitCode.Usage,
    })
  }

  if (found.length === 0)
    throw new UserError(`The file ${path} given by ${SOURCE[which]} holds no PEM certificate`, {
      code: 'TLS_FILE',
      exit: ExitCode.Usage,
      hint: 'Give a PEM file ("-----BEGIN CERTIFICATE-----").',
    })
  return found
}

/** One line about a certificate, for the log: never the key. */
export function describeCertificate(certificate: X509Certificate): string {
  return `certificate "${certificate.subject.replaceAll('\n', ', ')}" (SHA-256 ${certificate.fingerprint256}, valid until ${certificate.validTo})`
}

export interface LoadedTls {
  /** The server certificate (the first in the file). */
  certificate: X509Certificate
  options: SecureContextOptions
  warnings: string[]
}

/** Reads and checks the files; throws a UserError that names the file and what is wrong with it. */
export async function loadTls(files: TlsFiles): Promise<LoadedTls> {
  const [cert, key, clientCa] = await Promise.all([
    readSetting('cert', files.cert),
    readSetting('key', files.key),
    files.clientCa === undefined ? undefined : readSetting('clientCa', files.clientCa),
  ])
  const [certificate] = certificates('cert', files.cert, cert)
  if (clientCa !== undefined) certificates('clientCa', files.clientCa!, clientCa)
  const options: SecureContextOptions = {...TLS_PROFILE, cert, key, ...(clientCa === undefined ? {} : {ca: clientCa})}
  try {
    createSecureContext(options)
  } catch (error) {
    const message = (error as Error).message
    if (/key values mismatch/.test(message))
      throw new UserError(`The private key in ${files.key} does not belong to the certificate in ${files.cert}`, {
        code: 'TLS_KEY_MISMATCH',
        exit: ExitCode.Usage,
      })
    throw new UserError(`The certificate ${files.cert} and key ${files.key} cannot be used: ${message}`, {
      code: 'TLS_FILE',
      exit: ExitCode.Usage,
      hint: 'Give PEM files, the key unencrypted (serve has no way to ask for a passphrase).',
    })
  }

  const warnings: string[] = []
  const now = Date.now()
  if (Date.parse(certificate.validTo) < now) warnings.push(`the TLS certificate in ${files.cert} expired on ${certificate.validTo}; clients will refuse it`)
  else if (Date.parse(certificate.validFrom) > now)
    warnings.push(`the TLS certificate in ${files.cert} is not valid before ${certificate.validFrom}; clients will refuse it until then`)
  const mode = (await stat(files.key).catch(() => undefined))?.mode
  if (mode !== undefined && (mode & 0o004) !== 0)
    warnings.push(`the TLS private key ${files.key} is readable by every user of this machine; make it 0600 (or 0640 for a group that needs it)`)
  return {certificate, options, warnings}
}

/** What a serve listens with: checked and read before serve touches anything else. */
export interface Listener {
  /** Makes the HTTP or HTTPS server. */
  createServer(options: ServerOptions, handler: (request: IncomingMessage, response: ServerResponse) => void): Server
  /** The HSTS value for answers to clients that came over HTTPS (directly or through a trusted proxy). */
  hsts?: string
  protocol: 'http' | 'https'
  /**
   * Re-reads the certificate, key and client CA for connections made from now on (connections
   * open keep theirs). Throws, keeping the current certificate, when the new files are unusable.
   */
  reload(): Promise<string>
  /** One line about the certificate served, for the start-up log; undefined over HTTP. */
  tlsSummary?: string
  warnings: string[]
}

function incomplete(tls: Partial<TlsFiles>): UserError | undefined {
  if (tls.cert && !tls.key)
    return new UserError("--tls-cert needs --tls-key: the certificate's private key", {
      code: 'TLS_INCOMPLETE',
      exit: ExitCode.Usage,
      hint: 'Pass --tls-key FILE (or set MLFLOWCTL_TLS_KEY).',
    })
  if (tls.key && !tls.cert)
    return new UserError('--tls-key needs --tls-cert: the certificate it belongs to', {
      code: 'TLS_INCOMPLETE',
      exit: ExitCode.Usage,
      hint: 'Pass --tls-cert FILE (or set MLFLOWCTL_TLS_CERT).',
    })
  if (tls.clientCa && !tls.cert)
    return new UserError('--tls-client-ca needs HTTPS: client certificates are only asked for over TLS', {
      code: 'TLS_INCOMPLETE',
      exit: ExitCode.Usage,
      hint: 'Pass --tls-cert and --tls-key as well.',
    })
  return undefined
}

/**
 * Checks the settings and reads the certificate files. Plain HTTP is refused beyond loopback
 * unless the operator passed --insecure-http, and then started with a warning.
 */
export async function prepareListener(settings: ListenerSettings): Promise<Listener> {
  const tls = settings.tls ?? {}
  const problem = incomplete(tls)
  if (problem) throw problem
  const hsts = parseHsts(settings.hsts)
  if (!tls.cert || !tls.key) return httpListener(settings, hsts)
  if (settings.insecureHttp) {
    throw new UserError('--insecure-http and --tls-cert contradict each other: serve would listen over HTTPS', {
      code: 'TLS_CONFLICT',
      exit: ExitCode.Usage,
      hint: 'Drop --insecure-http (or MLFLOWCTL_INSECURE_HTTP).',
    })
  }

  return httpsListener({cert: tls.cert, clientCa: tls.clientCa || undefined, key: tls.key}, hsts)
}

/** Plain HTTP: on loopback, or beyond it only with --insecure-http (and a warning). */
function httpListener(settings: ListenerSettings, hsts: string | undefined): Listener {
  const warnings: string[] = []
  if (!isLoopback(settings.host)) {
    if (!settings.insecureHttp) {
      throw new UserError(`serve would listen on ${settings.host} over plain HTTP: every request carries a password, and it would cross the network in clear`, {
        code: 'PLAIN_HTTP_BEYOND_LOOPBACK',
        exit: ExitCode.Usage,
        hint: 'Serve HTTPS with --tls-cert FILE --tls-key FILE; or, if a TLS-terminating proxy on this host is the only way in, pass --insecure-http (and --trusted-proxies with its address).',
      })
    }

    warnings.push(
      `serve listens on ${settings.host} over plain HTTP (--insecure-http): passwords cross the network in clear unless a TLS-terminating proxy on this host is the only way to reach it`,
    )
  }

  return {
    createServer: (options, handler) => createHttpServer(options, handler),
    // A trusted TLS-terminating proxy can still report that the client came over HTTPS.
    hsts,
    protocol: 'http',
    async reload() {
      throw new UserError('serve listens over plain HTTP: there is no certificate to reload', {code: 'NO_TLS', exit: ExitCode.Usage})
    },
    warnings,
  }
}

/** HTTPS with the certificate files read now, and re-read by reload(). */
async function httpsListener(files: TlsFiles, hsts: string | undefined): Promise<Listener> {
  const loaded = await loadTls(files)
  let server: HttpsServer | undefined
  return {
    createServer(options, handler) {
      server = createHttpsServer(
        {
          ...options,
          ...loaded.options,
          // With a client CA, the handshake itself refuses a client without an acceptable certificate.
          rejectUnauthorized: files.clientCa !== undefined,
          requestCert: files.clientCa !== undefined,
        },
        handler,
      )
      return server
    },
    hsts,
    protocol: 'https',
    async reload() {
      const next = await loadTls(files)
      if (!server) throw new Error('reload before the server was created')
      // Only new handshakes use the new context; connections open (and requests on them) go on.
      server.setSecureContext(next.options)
      return [describeCertificate(next.certificate), ...next.warnings.map((warning) => `warning: ${warning}`)].join('; ')
    },
    tlsSummary: `${describeCertificate(loaded.certificate)}${files.clientCa ? `, client certificates required (CA ${files.clientCa})` : ''}`,
    warnings: loaded.warnings,
  }
}
