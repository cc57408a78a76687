/**
 * AWS Signature Version 4 for MLFLOW_TRACKING_AWS_SIGV4 (service execute-api), with the AWS SDK's
 * signer and credential chain. Imported lazily by http.ts: the AWS SDK is heavy to load.
 */
import {Hash} from '@smithy/hash-node'
import {SignatureV4} from '@smithy/signature-v4'

import {ExitCode, UserError} from '../core/errors.js'
import type {SigV4Settings} from './connection.js'

export interface AwsCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

export interface SignableRequest {
  body?: string
  headers: Record<string, string>
  method: string
  url: URL
}

export interface SignOptions {
  /**
   * Add and sign x-amz-content-sha256 as requests-auth-aws-sigv4 does (default true). AWS's
   * published test vectors are computed without it.
   */
  applyChecksum?: boolean
  credentials: (() => Promise<AwsCredentials>) | AwsCredentials
  region: string
  service: string
  signingDate?: Date
}

/** Returns the headers to send: the given ones plus authorization, x-amz-date and friends. */
export async function signRequest(request: SignableRequest, options: SignOptions): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    applyChecksum: options.applyChecksum ?? true,
    credentials: options.credentials,
    region: options.region,
    service: options.service,
    sha256: Hash.bind(null, 'sha256'),
  })
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value
  // fetch sends Host as url.host (port included unless default), so sign exactly that.
  headers.host = request.url.host
  // Like requests-auth-aws-sigv4, sign only host and x-amz-*: a proxy may rewrite the others.
  const unsignable = new Set(Object.keys(headers).filter((name) => name !== 'host' && !name.startsWith('x-amz-')))
  const signed = await signer.sign(
    {
      body: request.body,
      headers,
      hostname: request.url.hostname,
      method: request.method.toUpperCase(),
      path: request.url.pathname,
      port: request.url.port ? Number(request.url.port) : undefined,
      protocol: request.url.protocol,
      query: queryRecord(request.url.searchParams),
    },
    {signingDate: options.signingDate, unsignableHeaders: unsignable},
  )
  return signed.headers
}

/** A signer for one connection; credentials come from the environment or the standard AWS chain. */
export async function createSigV4Signer(settings: SigV4Settings): Promise<(request: SignableRequest) => Promise<Record<string, string>>> {
  let credentials: (() => Promise<AwsCredentials>) | AwsCredentials
  if (settings.credentials) {
    const {accessKeyId, secretAccessKey, sessionToken} = settings.credentials
    credentials = {accessKeyId, secretAccessKey, sessionToken}
  } else {
    const {defaultProvider} = await import('@aws-sdk/credential-provider-node')
    const chain = defaultProvider(settings.profile ? {profile: settings.profile} : {})
    credentials = async () => {
      try {
        return await chain()
      } catch (error) {
        throw new UserError(`MLFLOW_TRACKING_AWS_SIGV4 is on but no AWS credentials were found: ${(error as Error).message}`, {
          code: 'AWS_CREDENTIALS_MISSING',
          exit: ExitCode.Unauthenticated,
          hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials or ~/.aws/config.',
        })
      }
    }
  }

  return (request) => signRequest(request, {credentials, region: settings.region.value, service: settings.service})
}

function queryRecord(params: URLSearchParams): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {}
  for (const [key, value] of params) {
    const existing = query[key]
    query[key] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value]
  }

  return query
}
