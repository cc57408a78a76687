import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../lib/base-command.js'
import {ExitCode, UserError} from '../lib/errors.js'

export default class Serve extends BaseCommand<typeof Serve> {
  static override description = `Listens for MLflow clients and the MLflow web UI, authenticates every request with HTTP Basic against its own user store, serves MLflow's basic-auth REST API (users, permissions, /signup), and forwards everything else to the MLflow server at --proxy-to, which should not be reachable any other way.

Users and permissions live in a JSON file (--store). On first start the admin user is created from MLFLOW_AUTH_ADMIN_USERNAME / MLFLOW_AUTH_ADMIN_PASSWORD, or admin_username / admin_password in basic_auth.ini (--config or MLFLOW_AUTH_CONFIG_PATH). Without a configured password, MLflow's old default "password1234" is accepted only on a loopback address, with warnings; a password configured at a later start replaces it. An existing admin is otherwise never changed.

While the MLflow server is down, clients get MLflow's JSON error with 503 (not reachable), 502 (a broken answer) or 504 (no answer within --upstream-timeout). A start that fails (port in use, a store file that is invalid, unreadable or locked) changes nothing and says why.

SIGINT and SIGTERM stop accepting connections, finish requests in flight and flush the store.`
  // serve talks to no MLflow server as a client: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override enableJsonFlag = false
  static override examples = [
    'mlflow server --host 127.0.0.1 --port 5001 &\nMLFLOW_AUTH_ADMIN_PASSWORD=… <%= config.bin %> <%= command.id %> --proxy-to http://127.0.0.1:5001',
    '<%= config.bin %> <%= command.id %> --proxy-to http://127.0.0.1:5001 --host 0.0.0.0 --port 5000 --store /var/lib/mlflowctl/auth.json',
  ]
  static override flags = {
    config: Flags.string({description: 'MLflow basic_auth.ini to read default_permission, admin_username and admin_password from. Default: $MLFLOW_AUTH_CONFIG_PATH.'}),
    host: Flags.string({default: '127.0.0.1', description: 'Address to listen on.'}),
    port: Flags.integer({default: 5000, description: 'Port to listen on.', max: 65_535, min: 0}),
    'proxy-to': Flags.url({description: 'URL of the plain MLflow tracking server to protect.', env: 'MLFLOWCTL_PROXY_TO'}),
    'static-prefix': Flags.string({description: 'The MLflow server\'s --static-prefix (e.g. /mlflow), when it has one: serve decides routes below it.'}),
    store: Flags.string({default: 'mlflowctl-auth.json', description: 'JSON file with the users and permissions (created when missing).'}),
    'upstream-timeout': Flags.integer({default: 120, description: 'Seconds the MLflow server may take to answer (after the request body) before the client gets a 504.', max: 86_400, min: 1}),
  }
  static override summary = 'Run an authenticating proxy in front of an MLflow tracking server.'

  public async run(): Promise<void> {
    const {config, host, port, 'proxy-to': proxyTo, 'static-prefix': staticPrefix, store, 'upstream-timeout': upstreamTimeout} = this.flags
    if (!proxyTo) {
      throw new UserError('serve needs the MLflow tracking server to protect', {
        code: 'NO_UPSTREAM',
        exit: ExitCode.Usage,
        hint: 'Start one (e.g. `mlflow server --host 127.0.0.1 --port 5001`) and pass --proxy-to http://127.0.0.1:5001.',
      })
    }

    const {startServe} = await import('../server/serve.js')
    const log = (message: string) => process.stderr.write(`${message}\n`)
    const running = await startServe({configPath: config, env: process.env, host, log, port, proxyTo, staticPrefix, storePath: store, upstreamTimeoutMs: upstreamTimeout * 1000})
    log(`mlflowctl serve listening on ${running.url}, proxying to ${proxyTo.href}, store ${running.storeLocation}`)
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log(`${signal}: finishing requests in flight`)
        running.close().then(resolve, (error: Error) => {
          log(`error while stopping: ${error.message}`)
          process.exitCode = ExitCode.Unexpected
          resolve()
        })
      }

      process.once('SIGINT', () => stop('SIGINT'))
      process.once('SIGTERM', () => stop('SIGTERM'))
    })
  }
}
