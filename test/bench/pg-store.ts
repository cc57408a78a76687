/**
 * The PostgreSQL store's figures (not a test: nothing passes or fails on them), on a real
 * PostgreSQL started for the run (test/support/postgres.ts):
 * - propagation: a grant committed through replica A until replica B's memory has it (p50/p99);
 * - grant latency: createGrant on A, call to committed (p50/p99);
 * - cold start: PgStore.open on a database of 200,000 rows.
 *   BENCH_PG_GRANTS grants measured (default 500); BENCH_PG_ROWS rows for the cold start (default 200 000).
 *   BENCH_JSON: also write the figures there.
 */
import {writeFileSync} from 'node:fs'
import {setImmediate as yieldToLoop} from 'node:timers/promises'

import {PgStore} from '../../src/server/store/pg-store.js'
import {startPostgres} from '../support/postgres.js'

const grants = Number(process.env.BENCH_PG_GRANTS ?? 500)
const rows = Number(process.env.BENCH_PG_ROWS ?? 200_000)

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((x, y) => x - y)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

const round = (ms: number) => Math.round(ms * 100) / 100

const postgres = await startPostgres()
try {
  const url = await postgres.database('bench')
  const quiet = {onError: () => {}}
  const a = await PgStore.open(url, quiet)
  const b = await PgStore.open(url, quiet)
  const user = await a.createUser({isAdmin: false, passwordHash: 'scrypt:32768:8:1$x$y', username: 'bench'})
  await a.createGrant({permission: 'READ', resourceId: 'warm-up', resourceType: 'experiment', userId: user.id})

  const latency: number[] = []
  const propagation: number[] = []
  for (let i = 0; i < grants; i++) {
    const resourceId = `e${i}`
    const start = performance.now()
    await a.createGrant({permission: 'READ', resourceId, resourceType: 'experiment', userId: user.id})
    const committed = performance.now()
    latency.push(committed - start)
    while (b.getGrant(user.id, 'experiment', resourceId) === undefined) await yieldToLoop()
    propagation.push(performance.now() - committed)
  }

  await a.close()
  await b.close()

  // 200 000 rows: users, each with a per-user role, its assignment and rows of grants.
  const users = Math.floor(rows / 10)
  const grantRows = rows - 3 * users
  await queryIn(url, [
    'TRUNCATE mlflowctl_assignments, mlflowctl_role_permissions, mlflowctl_roles, mlflowctl_users, mlflowctl_changes',
    `INSERT INTO mlflowctl_users SELECT g, 'user' || g, 'scrypt:32768:8:1$salt$' || md5(g::text), false FROM generate_series(1, ${users}) g`,
    `INSERT INTO mlflowctl_roles SELECT g, 'default', '__user_' || g || '__', NULL FROM generate_series(1, ${users}) g`,
    `INSERT INTO mlflowctl_assignments SELECT g, g, g FROM generate_series(1, ${users}) g`,
    `INSERT INTO mlflowctl_role_permissions SELECT g, 1 + (g % ${users}), 'experiment', g::text, 'READ' FROM generate_series(1, ${grantRows}) g`,
    `UPDATE mlflowctl_state SET seq = 0, next_user_id = ${users + 1}, next_role_id = ${users + 1}, next_role_permission_id = ${grantRows + 1}, next_assignment_id = ${users + 1}`,
  ])
  const start = performance.now()
  const cold = await PgStore.open(url, quiet)
  const coldMs = performance.now() - start
  const loaded = cold.listUsers().length
  await cold.close()

  const figures = {
    cold_start_ms: Math.round(coldMs),
    cold_start_rows: users * 3 + grantRows,
    cold_start_users_loaded: loaded,
    grant_latency_ms: {p50: round(percentile(latency, 50)), p99: round(percentile(latency, 99))},
    grants,
    propagation_ms: {p50: round(percentile(propagation, 50)), p99: round(percentile(propagation, 99))},
  }
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`)
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(figures))
} finally {
  await postgres.stop()
}

async function queryIn(url: string, statements: string[]): Promise<void> {
  const {default: pg} = await import('pg')
  const client = new pg.Client({connectionString: url})
  await client.connect()
  try {
    for (const statement of statements) await client.query(statement)
  } finally {
    await client.end()
  }
}
