/**
 * Password hashes in Werkzeug's format, so a store can hold hashes made by MLflow's basic-auth app
 * (`werkzeug.security.generate_password_hash`) and MLflow can check ours.
 *
 * Format: `<method>$<salt>$<hex digest>`. The salt is used as its UTF-8 bytes, never decoded.
 * - `scrypt:N:r:p` (Werkzeug 3's default is `scrypt:32768:8:1`, 64-byte key); plain `scrypt` means
 *   those defaults.
 * - `pbkdf2:<digest>:<iterations>`; `pbkdf2:<digest>` and plain `pbkdf2` (sha256) use Werkzeug's
 *   default iterations, which is 1,000,000 since Werkzeug 3.1.
 *
 * Hash parameters come from the store, which is trusted like Werkzeug trusts them; scrypt still
 * refuses parameters that would need more than SCRYPT_MAX_MEMORY, so one bad row cannot exhaust
 * memory. Both functions run on libuv's thread pool (async scrypt/pbkdf2), never on the event loop.
 */
import {pbkdf2, randomInt, scrypt, type ScryptOptions, timingSafeEqual} from 'node:crypto'

const SALT_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
const SALT_LENGTH = 16

const SCRYPT_DEFAULTS = {n: 32_768, p: 1, r: 8}
const SCRYPT_KEY_LENGTH = 64
/** 8× what Werkzeug's default parameters need. */
const SCRYPT_MAX_MEMORY = 256 * 1024 * 1024

/** Werkzeug 3.1's DEFAULT_PBKDF2_ITERATIONS. */
const PBKDF2_DEFAULT_ITERATIONS = 1_000_000

/** hashlib names (lower-cased, as OpenSSL matches them case-insensitively) → node:crypto names. */
const PBKDF2_DIGESTS = new Map([
  ['md5', 'md5'],
  ['sha1', 'sha1'],
  ['sha224', 'sha224'],
  ['sha256', 'sha256'],
  ['sha384', 'sha384'],
  ['sha512', 'sha512'],
  ['sha512_224', 'sha512-224'],
  ['sha512_256', 'sha512-256'],
  ['sha3_224', 'sha3-224'],
  ['sha3_256', 'sha3-256'],
  ['sha3_384', 'sha3-384'],
  ['sha3_512', 'sha3-512'],
])

/** Digest size in bytes: hashlib.pbkdf2_hmac's default key length. */
const DIGEST_SIZES: Record<string, number> = {
  md5: 16,
  sha1: 20,
  sha224: 28,
  sha256: 32,
  'sha3-224': 28,
  'sha3-256': 32,
  'sha3-384': 48,
  'sha3-512': 64,
  sha384: 48,
  sha512: 64,
  'sha512-224': 28,
  'sha512-256': 32,
}

/** A lone surrogate has no UTF-8 form: Python's str.encode() raises where Buffer.from would substitute U+FFFD. */
const LONE_SURROGATE = /\p{Cs}/u

function scryptAsync(password: Buffer, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key)))
  })
}

function pbkdf2Async(password: Buffer, salt: Buffer, iterations: number, keyLength: number, digest: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, keyLength, digest, (error, key) => (error ? reject(error) : resolve(key)))
  })
}

function positiveInteger(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined
  const value = Number(text)
  return value >= 1 && value <= 0x7f_ff_ff_ff ? value : undefined
}

async function scryptHex(password: Buffer, salt: Buffer, n: number, r: number, p: number): Promise<string> {
  // OpenSSL needs 128·r·(N + p + 2) bytes; node's default cap (32 MiB) is just short of Werkzeug's defaults.
  const needed = 128 * r * (n + p + 2)
  if (needed > SCRYPT_MAX_MEMORY) throw new RangeError(`scrypt parameters need ${needed} bytes`)
  const key = await scryptAsync(password, salt, SCRYPT_KEY_LENGTH, {N: n, maxmem: needed + 1024 * 1024, p, r})
  return key.toString('hex')
}

/** The hex digest `method` gives for `password` and `salt`, or undefined for a method Werkzeug would reject. */
async function digestHex(method: string, salt: Buffer, password: Buffer): Promise<string | undefined> {
  const [name, ...args] = method.split(':')
  if (name === 'scrypt') {
    if (args.length === 0) return scryptHex(password, salt, SCRYPT_DEFAULTS.n, SCRYPT_DEFAULTS.r, SCRYPT_DEFAULTS.p)
    if (args.length !== 3) return undefined
    const [n, r, p] = args.map((arg) => positiveInteger(arg))
    if (n === undefined || r === undefined || p === undefined) return undefined
    return scryptHex(password, salt, n, r, p)
  }

  if (name === 'pbkdf2') {
    if (args.length > 2) return undefined
    const digest = PBKDF2_DIGESTS.get((args[0] ?? 'sha256').toLowerCase())
    const iterations = args.length === 2 ? positiveInteger(args[1]) : PBKDF2_DEFAULT_ITERATIONS
    if (digest === undefined || iterations === undefined) return undefined
    return (await pbkdf2Async(password, salt, iterations, DIGEST_SIZES[digest], digest)).toString('hex')
  }

  return undefined
}

function generateSalt(): string {
  let salt = ''
  for (let i = 0; i < SALT_LENGTH; i++) salt += SALT_CHARS[randomInt(SALT_CHARS.length)]
  return salt
}

/** `scrypt:32768:8:1$<salt>$<128 hex>`, exactly what Werkzeug 3's generate_password_hash makes. */
export async function hashPassword(password: string): Promise<string> {
  if (LONE_SURROGATE.test(password)) throw new TypeError('The password is not valid Unicode (it has a lone surrogate).')
  const {n, p, r} = SCRYPT_DEFAULTS
  const salt = generateSalt()
  const hex = await scryptHex(Buffer.from(password, 'utf8'), Buffer.from(salt, 'utf8'), n, r, p)
  return `scrypt:${n}:${r}:${p}$${salt}$${hex}`
}

/**
 * Whether `password` matches a Werkzeug hash (scrypt or pbkdf2 forms). False, never an exception,
 * for a wrong password and for a malformed hash or a method Werkzeug 3 does not support.
 */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    if (typeof hash !== 'string' || typeof password !== 'string' || LONE_SURROGATE.test(password)) return false
    // Werkzeug splits on the first two `$`: the digest is everything after the second.
    const first = hash.indexOf('$')
    const second = first === -1 ? -1 : hash.indexOf('$', first + 1)
    if (second === -1) return false
    const method = hash.slice(0, first)
    const salt = hash.slice(first + 1, second)
    const expected = Buffer.from(hash.slice(second + 1), 'utf8')
    const actual = await digestHex(method, Buffer.from(salt, 'utf8'), Buffer.from(password, 'utf8'))
    if (actual === undefined) return false
    // Compared as text, like Werkzeug's hmac.compare_digest on the hex strings.
    const computed = Buffer.from(actual, 'utf8')
    return computed.length === expected.length && timingSafeEqual(computed, expected)
  } catch {
    return false
  }
}
