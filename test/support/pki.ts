/**
 * A throwaway certificate authority for TLS tests, made with openssl in a temp directory: a CA,
 * and server or client certificates it signs (EC P-256, valid two days).
 */
import {execFile} from 'node:child_process'
import {createHash, X509Certificate} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

const exec = promisify(execFile)

export interface Issued {
  /** PEM certificate file. */
  cert: string
  /** PEM private key file. */
  key: string
  /** Certificate then key in one PEM file (what MLFLOW_TRACKING_CLIENT_CERT_PATH takes). */
  pem: string
}

export interface TestCa {
  /** The CA certificate file (PEM). */
  cert: string
  dir: string
  /** A certificate signed by this CA; `server` ones are for IP 127.0.0.1 and localhost. */
  issue(name: string, kind: 'client' | 'server'): Promise<Issued>
  remove(): Promise<void>
}

/** A new CA in a fresh temp directory (or `dir`). */
export async function createTestCa(name = 'mlflowctl test CA', dir?: string): Promise<TestCa> {
  const where = dir ?? (await mkdtemp(join(tmpdir(), 'mlflowctl-pki-')))
  const run = (...args: string[]) => exec('openssl', args, {cwd: where})
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await run(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  )
  let serial = 0
  return {
    cert: join(where, 'ca.pem'),
    dir: where,
    async issue(subject, kind) {
      serial++
      const base = `${subject}-${serial}`
      await run('req', ...ec, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${subject}`)
      const ext = kind === 'server' ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n'
      await writeFile(join(where, `${base}.ext`), ext)
      await run(
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        String(Date.now() * 100 + serial),
        '-out',
        `${base}.crt`,
        '-days',
        '2',
        '-extfile',
        `${base}.ext`,
      )
      const cert = join(where, `${base}.crt`)
      const key = join(where, `${base}.key`)
      const pem = join(where, `${base}.pem`)
      await writeFile(pem, (await readFile(cert, 'utf8')) + (await readFile(key, 'utf8')))
      return {cert, key, pem}
    },
    remove: () => rm(where, {force: true, recursive: true}),
  }
}

/** The SHA-256 fingerprint of a PEM certificate file, as Node prints it (AA:BB:…). */
export async function fingerprint(certFile: string): Promise<string> {
  return new X509Certificate(await readFile(certFile)).fingerprint256
}

/** Base64 SHA-256 of the certificate's public key (SPKI): what Chromium's --ignore-certificate-errors-spki-list takes. */
export async function spkiHash(certFile: string): Promise<string> {
  const der = new X509Certificate(await readFile(certFile)).publicKey.export({format: 'der', type: 'spki'})
  return createHash('sha256').update(der).digest('base64')
}
