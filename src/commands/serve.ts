import {Flags} from '../cli/oclif.js'
import {BaseCommand} from '../cli/base-command.js'
import {ExitCode, UserError} from '../core/errors.js'

export default class Serve extends BaseCommand<typeof Serve> {
  static override description = `Listens for MLflow clients and the MLflow web UI, authenticates every request with HTTP Basic against its own user store, serves MLflow's basic-auth REST API (users, permissions, /signup), and forwards everything else to the MLflow server at --proxy-to, which should not be reachable any other way.

Users and permissions live in a JSON file (--store), or in a PostgreSQL database (--store postgresql://…) that several serve replicas share: each decides from memory, and a change made through one is in force on every other within a second. On first start the admin user is created from MLFLOW_AUTH_ADMIN_USERNAME / MLFLOW_AUTH_ADMIN_PASSWORD, or admin_username / admin_password in basic_auth.ini (--config or MLFLOW_AUTH_CONFIG_PATH). Without a configured password, MLflow's old default "password1234" is accepted only on a loopback address, with warnings; a password configured at a later start replaces it. An existing admin is otherwise never changed.

While the MLflow server is down, clients get MLflow's JSON error with 503 (not reachable), 502 (a broken answer) or 504 (no answer within --upstream-timeout). A start that fails (port in use, a store file that is invalid, unreadable or locked) changes nothing and says why.

HTTPS: --tls-cert and --tls-key (TLS 1.2 and 1.3 only); SIGHUP re-reads them for new connections, without dropping the open ones. --tls-client-ca asks every client for a certificate signed by that CA (mutual TLS). Plain HTTP is refused on any address but loopback unless --insecure-http says a TLS-terminating proxy on this host protects it; list that proxy in --trusted-proxies so its X-Forwarded-For / X-Forwarded-Proto are believed.

Slow clients: --header-timeout, --idle-timeout and --keepalive-timeout close a client that stops sending or reading (nginx's defaults); none limits a request's total time.

Failed logins: --lockout-per-address and --lockout-per-user-address failures within --lockout-window refuse that address, or that username from that address, with 429 and Retry-After for --lockout-duration, doubling with each further lock up to --lockout-max; --lockout-per-user failures of one username from anywhere make its logins with credentials not verified before wait up to --lockout-delay-max, never refused, so a guesser cannot lock the real user out. An invalid Bearer token counts as a failed login of its address. Each lock is logged, audited and counted (mlflowctl_lockouts_total). Counts are per serve process.

Limits: --max-connections overall and --max-connections-per-client per client address (behind a trusted proxy: that client's requests in flight, more get 503) close connections beyond them as they arrive, with a log line; a request with more than --max-header-size bytes or --max-headers fields of headers gets 431.

Operations: GET /-/live and /-/ready (no login) say whether serve runs and whether it can serve (its store in step, MLflow answering). --metrics-address serves Prometheus metrics at /metrics (and the same checks) on an address of its own. Logs go to stderr as plain lines on a terminal, else as JSON lines (--log-format, --log-level); --access-log writes one JSON line per request.

Audit log: --audit-log FILE (or - for standard output) records, one JSON object per line, every failed login (Bearer tokens too; repeats of one reason, address and name counted, one line a minute; a name that is no user's as a digest), every lockout that begins, every change of users, roles, permissions and access tokens, and every request refused with 403 (who, from where, what, and the rule that refused it; never a password, hash or Authorization header). The file is appended to and created 0600; SIGHUP reopens it, for log rotation. A file serve cannot open stops the start.

SIGINT and SIGTERM stop accepting connections, finish requests in flight and flush the store and the audit log.`
  // serve talks to no MLflow server as a client: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override enableJsonFlag = false
  static override examples = [
    'mlflow server --host 127.0.0.1 --port 5001 &\nMLFLOW_AUTH_ADMIN_PASSWORD=… <%= config.bin %> <%= command.id %> --proxy-to http://127.0.0.1:5001',
    '<%= config.bin %> <%= command.id %> --proxy-to http://127.0.0.1:5001 --host 0.0.0.0 --port 5000 --tls-cert /etc/mlflowctl/tls.crt --tls-key /etc/mlflowctl/tls.key --store /var/lib/mlflowctl/auth.json',
    '# behind a TLS-terminating proxy on this host\n<%= config.bin %> <%= command.id %> --proxy-to http://127.0.0.1:5001 --host 0.0.0.0 --insecure-http --trusted-proxies 127.0.0.1',
  ]
  static override flags = {
    'access-log': Flags.string({
      description:
        'Write one JSON line per request (time, client, user, method, path without query, status, bytes, duration, decision, route) to this file (appended, created 0600), or to standard output with "-". Default: none.',
      env: 'MLFLOWCTL_ACCESS_LOG',
    }),
    'audit-log': Flags.string({
      description:
        'Audit log: a file that failed logins, changes of users, roles and permissions, and refused requests are appended to as JSON lines (created 0600; reopened on SIGHUP), or - for standard output. Default: none.',
      env: 'MLFLOWCTL_AUDIT_LOG',
    }),
    config: Flags.string({
      description: 'MLflow basic_auth.ini to read default_permission, admin_username and admin_password from. Default: $MLFLOW_AUTH_CONFIG_PATH.',
    }),
    'header-timeout': Flags.integer({
      default: 60,
      description: "Seconds a client may take from connecting (and the TLS handshake) to the end of a request's headers; then 408 and closed.",
      env: 'MLFLOWCTL_HEADER_TIMEOUT',
      max: 86_400,
      min: 1,
    }),
    host: Flags.string({default: '127.0.0.1', description: 'Address to listen on. Beyond loopback: HTTPS (--tls-cert, --tls-key), or --insecure-http.'}),
    hsts: Flags.string({
      description: 'Strict-Transport-Security header of answers to clients that came over HTTPS; "off" for none. Default: max-age=31536000 (a year).',
      env: 'MLFLOWCTL_HSTS',
    }),
    'insecure-http': Flags.boolean({
      default: false,
      description: 'Listen over plain HTTP beyond loopback, e.g. behind a TLS-terminating proxy on this host; passwords cross the network in clear otherwise.',
      env: 'MLFLOWCTL_INSECURE_HTTP',
    }),
    'idle-timeout': Flags.integer({
      default: 60,
      description:
        'Seconds a client may go without sending a byte of its request body (then 408 and closed; nothing is passed on) or reading a byte of an answer (then closed). Not a limit on the total: a slow, steady upload completes.',
      env: 'MLFLOWCTL_IDLE_TIMEOUT',
      max: 86_400,
      min: 1,
    }),
    'keepalive-timeout': Flags.integer({
      default: 75,
      description: 'Seconds an idle keep-alive connection is kept open between requests.',
      env: 'MLFLOWCTL_KEEPALIVE_TIMEOUT',
      max: 86_400,
      min: 1,
    }),
    'lockout-delay-max': Flags.integer({
      default: 10,
      description:
        'Most seconds a login for a username under attack (--lockout-per-user) waits before its check, when its credentials were not verified before; verified ones never wait.',
      env: 'MLFLOWCTL_LOCKOUT_DELAY_MAX',
      max: 60,
      min: 1,
    }),
    'lockout-duration': Flags.integer({
      default: 60,
      description: "Seconds of a client's first lock for failed logins; each further lock of the same address or pair doubles it, up to --lockout-max.",
      env: 'MLFLOWCTL_LOCKOUT_DURATION',
      max: 86_400,
      min: 1,
    }),
    'lockout-max': Flags.integer({
      default: 900,
      description: 'Longest lock for failed logins, in seconds; a key quiet this long after its lock is forgotten.',
      env: 'MLFLOWCTL_LOCKOUT_MAX',
      max: 86_400,
      min: 1,
    }),
    'lockout-per-address': Flags.integer({
      default: 30,
      description:
        'Failed logins from one client address (IPv6: one /64) within --lockout-window that refuse its logins (429 with Retry-After) for a while; 0: no limit.',
      env: 'MLFLOWCTL_LOCKOUT_PER_ADDRESS',
      max: 1_000_000,
      min: 0,
    }),
    'lockout-per-user': Flags.integer({
      default: 100,
      description:
        'Failed logins for one username from all addresses within --lockout-window that make its unverified logins wait (up to --lockout-delay-max) for a while; never refused. 0: no limit.',
      env: 'MLFLOWCTL_LOCKOUT_PER_USER',
      max: 1_000_000,
      min: 0,
    }),
    'lockout-per-user-address': Flags.integer({
      default: 10,
      description:
        'Failed logins for one username from one client address within --lockout-window that refuse that pair (429 with Retry-After) for a while; 0: no limit.',
      env: 'MLFLOWCTL_LOCKOUT_PER_USER_ADDRESS',
      max: 1_000_000,
      min: 0,
    }),
    'lockout-window': Flags.integer({
      default: 300,
      description: 'Seconds of the sliding window failed logins are counted in.',
      env: 'MLFLOWCTL_LOCKOUT_WINDOW',
      max: 86_400,
      min: 1,
    }),
    'max-connections': Flags.integer({
      default: 4096,
      description: 'Client connections open at once, overall; more are closed as they arrive (logged).',
      env: 'MLFLOWCTL_MAX_CONNECTIONS',
      max: 1_000_000,
      min: 1,
    }),
    'max-connections-per-client': Flags.integer({
      default: 256,
      description:
        'Connections open at once from one client address; more are closed as they arrive (logged). For clients behind --trusted-proxies: their requests in flight; more get 503.',
      env: 'MLFLOWCTL_MAX_CONNECTIONS_PER_CLIENT',
      max: 1_000_000,
      min: 1,
    }),
    'max-header-size': Flags.integer({
      default: 16_384,
      description: "Bytes of a request's line and header fields together; more get 431.",
      env: 'MLFLOWCTL_MAX_HEADER_SIZE',
      max: 1_048_576,
      min: 1024,
    }),
    'max-headers': Flags.integer({
      default: 100,
      description: 'Header fields in a request; more get 431.',
      env: 'MLFLOWCTL_MAX_HEADERS',
      max: 10_000,
      min: 16,
    }),
    'log-format': Flags.string({
      description:
        'Log lines on stderr: "pretty" (time, level word, message; coloured on a terminal) or "json" (one JSON object per line, for log collectors). Default: pretty when stderr is a terminal, else json.',
      env: 'MLFLOWCTL_LOG_FORMAT',
      options: ['json', 'pretty'],
    }),
    'log-level': Flags.string({
      default: 'info',
      description: 'Least important log lines written.',
      env: 'MLFLOWCTL_LOG_LEVEL',
      options: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    }),
    'metrics-address': Flags.string({
      description:
        'Serve Prometheus metrics at /metrics, and /-/live and /-/ready, on this address apart from clients: PORT (on 127.0.0.1), HOST:PORT or [IPv6]:PORT. No login there. Default: none.',
      env: 'MLFLOWCTL_METRICS_ADDRESS',
    }),
    'password-min-length': Flags.integer({
      default: 12,
      description:
        "The shortest new password users/create, users/update-password and /signup take, in characters. At least 12, MLflow's own rule: serve can ask for more, never less.",
      env: 'MLFLOWCTL_PASSWORD_MIN_LENGTH',
      max: 1024,
      min: 12,
    }),
    port: Flags.integer({default: 5000, description: 'Port to listen on.', max: 65_535, min: 0}),
    'proxy-to': Flags.url({description: 'URL of the plain MLflow tracking server to protect.', env: 'MLFLOWCTL_PROXY_TO'}),
    'refused-passwords': Flags.string({
      description:
        'A text file of passwords no new password may be (e.g. leaked or common ones): one per line, compared case-insensitively; blank lines and lines starting with # are skipped. A password equal to the username is always refused. Read at start.',
      env: 'MLFLOWCTL_REFUSED_PASSWORDS',
    }),
    'static-prefix': Flags.string({description: "The MLflow server's --static-prefix (e.g. /mlflow), when it has one: serve decides routes below it."}),
    store: Flags.string({
      default: 'mlflowctl-auth.json',
      description:
        'Where the users and permissions live: a JSON file (created when missing), or a PostgreSQL database, postgresql://USER@HOST:PORT/DB (password in the URL or PGPASSWORD; tables created at first start), which several serve replicas may share.',
      env: 'MLFLOWCTL_STORE',
    }),
    'store-max-stale': Flags.integer({
      default: 60,
      description:
        'With a PostgreSQL store: seconds serve keeps deciding from the last state it knew while the database is out of reach (changes are refused meanwhile). Beyond, it refuses every request that needs a decision (503) until the database is back.',
      env: 'MLFLOWCTL_STORE_MAX_STALE',
      max: 86_400,
      min: 0,
    }),
    'upstream-timeout': Flags.integer({
      default: 120,
      description: 'Seconds the MLflow server may take to answer (after the request body) before the client gets a 504.',
      env: 'MLFLOWCTL_UPSTREAM_TIMEOUT',
      max: 86_400,
      min: 1,
    }),
    'tls-cert': Flags.string({
      description: 'PEM file with the server certificate (and any intermediates): serve speaks HTTPS. Re-read on SIGHUP.',
      env: 'MLFLOWCTL_TLS_CERT',
    }),
    'tls-client-ca': Flags.string({
      description: 'PEM file with the CA certificates client certificates must be signed by: clients without one are refused (mutual TLS). Re-read on SIGHUP.',
      env: 'MLFLOWCTL_TLS_CLIENT_CA',
    }),
    'tls-key': Flags.string({description: "PEM file with the certificate's unencrypted private key. Re-read on SIGHUP.", env: 'MLFLOWCTL_TLS_KEY'}),
    'trusted-proxies': Flags.string({
      description:
        'Comma-separated addresses or CIDR networks of reverse proxies in front of serve, whose X-Forwarded-For and X-Forwarded-Proto name the client. Default: none (the headers are ignored).',
      env: 'MLFLOWCTL_TRUSTED_PROXIES',
    }),
  }
  static override summary = 'Run an authenticating proxy in front of an MLflow tracking server.'

  public async run(): Promise<void> {
    const {
      'access-log': accessLogPath,
      'audit-log': auditLog,
      config,
      'header-timeout': headerTimeout,
      host,
      hsts,
      'idle-timeout': idleTimeout,
      'insecure-http': insecureHttp,
      'keepalive-timeout': keepAliveTimeout,
      'lockout-delay-max': lockoutDelayMax,
      'lockout-duration': lockoutDuration,
      'lockout-max': lockoutMax,
      'lockout-per-address': perAddress,
      'lockout-per-user': perUser,
      'lockout-per-user-address': perUserAddress,
      'lockout-window': lockoutWindow,
      'log-format': logFormat,
      'log-level': logLevel,
      'max-connections': maxConnections,
      'max-connections-per-client': maxConnectionsPerClient,
      'max-header-size': maxHeaderSize,
      'max-headers': maxHeaders,
      'metrics-address': metricsAddress,
      'password-min-length': passwordMinLength,
      port,
      'proxy-to': proxyTo,
      'refused-passwords': refusedPasswordsFile,
      'static-prefix': staticPrefix,
      store,
      'store-max-stale': storeMaxStale,
      'tls-cert': cert,
      'tls-client-ca': clientCa,
      'tls-key': key,
      'trusted-proxies': trustedProxies,
      'upstream-timeout': upstreamTimeout,
    } = this.flags
    if (!proxyTo) {
      throw new UserError('serve needs the MLflow tracking server to protect', {
        code: 'NO_UPSTREAM',
        exit: ExitCode.Usage,
        hint: 'Start one (e.g. `mlflow server --host 127.0.0.1 --port 5001`) and pass --proxy-to http://127.0.0.1:5001.',
      })
    }

    const {lockoutSettings} = await import('../server/lockout.js')
    const lockout = lockoutSettings({
      delayMaxMs: lockoutDelayMax * 1000,
      lockMaxMs: lockoutMax * 1000,
      lockMs: lockoutDuration * 1000,
      perAddress,
      perUser,
      perUserAddress,
      windowMs: lockoutWindow * 1000,
    })
    const {startServe} = await import('../server/serve.js')
    const {createLogger, defaultLogFormat, messageLog} = await import('../server/logger.js')
    const {openAccessLog} = await import('../server/access-log.js')
    const {parseListenAddress} = await import('../server/ops-endpoint.js')
    const format = (logFormat as 'json' | 'pretty' | undefined) ?? defaultLogFormat(process.stderr)
    const logger = createLogger({format, level: logLevel as 'info', sink: process.stderr})
    const log = messageLog(logger)
    const accessLog = accessLogPath === undefined ? undefined : await openAccessLog(accessLogPath, (error) => log(`error: access log: ${error.message}`))
    const running = await startServe({
      accessLog: accessLog?.sink,
      auditLog,
      clientLimits: {maxConnections, maxConnectionsPerClient, maxHeaderSize, maxHeaders},
      clientTimeouts: {headerMs: headerTimeout * 1000, idleMs: idleTimeout * 1000, keepAliveMs: keepAliveTimeout * 1000},
      configPath: config,
      credentialCheck: {lockout},
      env: process.env,
      host,
      hsts,
      insecureHttp,
      log,
      metricsAddress: metricsAddress === undefined ? undefined : parseListenAddress(metricsAddress),
      passwordMinLength,
      port,
      proxyTo,
      refusedPasswordsFile,
      staticPrefix,
      storeMaxStaleMs: storeMaxStale * 1000,
      storePath: store,
      tls: {cert, clientCa, key},
      trustedProxies,
      upstreamTimeoutMs: upstreamTimeout * 1000,
    })
    if (running.tlsSummary) log(`TLS: ${running.tlsSummary}`)
    log(`mlflowctl serve listening on ${running.url}, proxying to ${proxyTo.href}, store ${running.storeLocation}`)
    if (running.metricsUrl) log(`metrics on ${running.metricsUrl}/metrics`)
    // Certificates and logs rotate: SIGHUP re-reads the certificate (a bad new file keeps the
    // current one serving) and reopens the audit log (one that cannot be opened keeps the current
    // file). A reload (e.g. systemctl reload) never stops serve, also over plain HTTP.
    const reload = () => {
      if (auditLog !== undefined) {
        running.reopenAuditLog().then(
          (summary) => summary && log(`SIGHUP: ${summary}`),
          (error: Error) => log(`error: SIGHUP: ${error.message}; still writing to the previous audit log`),
        )
      }

      if (!running.tls) {
        if (auditLog === undefined) log('SIGHUP: serve listens over plain HTTP: no certificate to reload')
        return
      }

      running.reloadTls().then(
        (summary) => log(`SIGHUP: TLS ${summary} for new connections`),
        (error: Error) => log(`error: SIGHUP: ${error.message}; still serving the previous certificate`),
      )
    }

    process.on('SIGHUP', reload)
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        process.off('SIGHUP', reload)
        log(`${signal}: finishing requests in flight`)
        running
          .close()
          .then(() => accessLog?.close())
          .then(resolve, (error: Error) => {
            log(`error: while stopping: ${error.message}`)
            process.exitCode = ExitCode.Unexpected
            resolve()
          })
      }

      process.once('SIGINT', () => stop('SIGINT'))
      process.once('SIGTERM', () => stop('SIGTERM'))
    })
  }
}
