/**
 * serve's JSON store at scale: a file of BENCH_USERS users (default 10,000) holding BENCH_ROWS
 * per-user permission rows (default 200,000). Prints the cold start, the memory held, a decision
 * (rowsOf + decide), then BENCH_GRANTS durable grants one after another (default 1,000) under a
 * read load (decisions every millisecond) with the event loop's delay meanwhile, a burst of concurrent grants (group commit), and a compaction into
 * a new snapshot while grants go on. Not a test: it prints figures, and the machine may be shared.
 *   npm run bench     (or alone: node --expose-gc --import tsx test/bench/store.ts)
 */
import {mkdtemp, open, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {monitorEventLoopDelay, performance} from 'node:perf_hooks'

import {decide} from '../../src/mlflow/rbac.js'
import {serialize} from '../../src/server/store/json-format.js'
import {JsonFileStore} from '../../src/server/store/json-store.js'
import {StoreModel} from '../../src/server/store/model.js'

const users = Number(process.env.BENCH_USERS ?? 10_000)
const rows = Number(process.env.BENCH_ROWS ?? 200_000)
const grants = Number(process.env.BENCH_GRANTS ?? 1000)
const LEVELS = ['READ', 'USE', 'EDIT', 'MANAGE']

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 0)} ms`
const gc = (globalThis as {gc?: () => void}).gc

/** Every figure printed, for test/bench/run.ts (BENCH_JSON names the file to write them to). */
const figures: Array<{label: string; value: string}> = []

function line(label: string, value: string): void {
  figures.push({label: label.trim(), value})
  console.log(`${label.padEnd(58)} ${value}`)
}

function rss(): number {
  gc?.()
  return process.memoryUsage().rss
}

/** A store file as serve would have written it: users, each with their per-user role's rows. */
function buildFile(): string {
  const model = new StoreModel()
  for (let u = 1; u <= users; u++) model.createUser({isAdmin: false, passwordHash: `pbkdf2:sha256:600000$salt${u}$${'0'.repeat(64)}`, username: `user-${u}`})
  for (let r = 0; r < rows; r++) {
    const userId = (r % users) + 1
    const resourceId = String(1000 + Math.floor(r / users))
    model.createGrant({permission: LEVELS[r % LEVELS.length], resourceId, resourceType: 'experiment', userId})
  }

  return serialize(model)
}

/** Delay of the event loop (p99, max) while `body` runs. */
async function withLoopDelay<T>(body: () => Promise<T>): Promise<{max: number; p99: number; value: T}> {
  const histogram = monitorEventLoopDelay({resolution: 1})
  histogram.enable()
  const value = await body()
  histogram.disable()
  return {max: histogram.max / 1e6, p99: histogram.percentile(99) / 1e6, value}
}

const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-bench-store-'))
try {
  const path = join(dir, 'auth.json')
  await writeFile(path, buildFile(), {mode: 0o600})
  console.log(
    `${users} users, ${rows} rows, ${mb((await stat(path)).size)} file, Node ${process.version}${gc ? '' : ' (run with --expose-gc for steadier RSS)'}`,
  )
  const before = rss()
  const started = performance.now()
  const store = await JsonFileStore.open(path)
  line('cold start (open)', ms(performance.now() - started))
  const opened = rss()
  line('RSS after open', `${mb(opened)} (process before open ${mb(before)})`)

  // Decisions: the first rowsOf of a user builds their rows; later ones reuse them until a write.
  const tiers = [{resourceId: '1005', resourceType: 'experiment'}]
  let t = performance.now()
  for (let u = 1; u <= users; u++) decide(store.rowsOf(u), tiers, 'READ')
  line('decision, first for each user (rowsOf builds + decide)', `${(((performance.now() - t) / users) * 1000).toFixed(1)} µs`)
  const decisions = 200_000
  t = performance.now()
  for (let i = 0; i < decisions; i++) decide(store.rowsOf((i % users) + 1), tiers, 'READ')
  line('decision, warm (rowsOf + decide)', `${(((performance.now() - t) / decisions) * 1000).toFixed(2)} µs`)

  // What the disk itself gives: an append of a journal-sized line and its fdatasync, alone.
  const raw: number[] = []
  const probe = await open(join(dir, 'fsync-probe'), 'a')
  for (let i = 0; i < 200; i++) {
    const begin = performance.now()
    await probe.write(Buffer.alloc(300, 120))
    await probe.datasync()
    raw.push(performance.now() - begin)
  }

  await probe.close()
  raw.sort((a, b) => a - b)
  line('the disk alone: 300-byte append + fdatasync, p50 / p99', `${ms(percentile(raw, 0.5))} / ${ms(percentile(raw, 0.99))}`)

  // Durable grants one after another, as an admin script would make them.
  const latencies: number[] = []
  const memory: number[] = [rss()]
  // A read load meanwhile, as requests would make it: every millisecond, a batch of decisions
  // for users spread over the store (the loop delay above is what each of them waits).
  const readLatencies: number[] = []
  let reads = 0
  const reader = setInterval(() => {
    const begin = performance.now()
    for (let k = 0; k < 20; k++, reads++) decide(store.rowsOf(((reads * 7919) % users) + 1), tiers, 'READ')
    readLatencies.push((performance.now() - begin) / 20)
  }, 1)
  const sequential = await withLoopDelay(async () => {
    for (let i = 0; i < grants; i++) {
      const begin = performance.now()
      await store.createGrant({permission: 'READ', resourceId: `bench-${i}`, resourceType: 'experiment', userId: (i % users) + 1})
      latencies.push(performance.now() - begin)
      // Without a forced GC here: it would hold the event loop being measured.
      if ((i + 1) % Math.max(1, Math.floor(grants / 10)) === 0) memory.push(process.memoryUsage().rss)
    }
  })
  latencies.sort((a, b) => a - b)
  line(
    `${grants} durable grants, one at a time: p50 / p99 / max`,
    `${ms(percentile(latencies, 0.5))} / ${ms(percentile(latencies, 0.99))} / ${ms(latencies.at(-1)!)}`,
  )
  clearInterval(reader)
  readLatencies.sort((a, b) => a - b)
  line('event-loop delay meanwhile: p99 / max', `${ms(sequential.p99)} / ${ms(sequential.max)}`)
  line(
    `${reads} decisions meanwhile (a read load): each, p50 / p99`,
    `${(percentile(readLatencies, 0.5) * 1000).toFixed(1)} µs / ${(percentile(readLatencies, 0.99) * 1000).toFixed(1)} µs`,
  )
  memory.push(rss())
  line(
    `RSS over the ${grants} grants (every ${Math.max(1, Math.floor(grants / 10))}; last after a GC)`,
    memory.map((value) => mb(value).replace(' MB', '')).join(' ') + ' MB',
  )

  // Concurrent grants share fsyncs.
  const burst = 200
  const burstStart = performance.now()
  await Promise.all(
    Array.from({length: burst}, (_, i) =>
      store.createGrant({permission: 'EDIT', resourceId: `burst-${i}`, resourceType: 'registered_model', userId: (i % users) + 1}),
    ),
  )
  line(`${burst} concurrent grants (group commit): all durable after`, ms(performance.now() - burstStart))

  // A compaction into a new snapshot, with grants going on meanwhile.
  const compact = (store as unknown as {compact?: () => Promise<void>}).compact?.bind(store)
  if (compact) {
    const during: number[] = []
    let compacting = true
    const compaction = await withLoopDelay(async () => {
      const begin = performance.now()
      const done = compact().finally(() => (compacting = false))
      for (let i = 0; compacting; i++) {
        const at = performance.now()
        await store.createGrant({permission: 'USE', resourceId: `during-${i}`, resourceType: 'experiment', userId: (i % users) + 1})
        during.push(performance.now() - at)
      }

      await done
      return performance.now() - begin
    })
    during.sort((a, b) => a - b)
    line('compaction into a new snapshot (background)', ms(compaction.value))
    line(`  ${during.length} grants meanwhile: p50 / p99`, `${ms(percentile(during, 0.5))} / ${ms(percentile(during, 0.99))}`)
    line('  event-loop delay meanwhile: p99 / max', `${ms(compaction.p99)} / ${ms(compaction.max)}`)
  }

  line('RSS at the end', mb(rss()))
  const closeStart = performance.now()
  await store.close()
  line('close', ms(performance.now() - closeStart))
  const reopenStart = performance.now()
  const again = await JsonFileStore.open(path)
  line('cold start again (after close)', ms(performance.now() - reopenStart))
  await again.close()
  if (process.env.BENCH_JSON) await writeFile(process.env.BENCH_JSON, JSON.stringify({files: {rows, users}, figures}))
} finally {
  await rm(dir, {force: true, recursive: true})
}
