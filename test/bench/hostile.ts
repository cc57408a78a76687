/**
 * serve under hostile clients, in process in front of a fake MLflow: a verified user's latency
 * idle, beside 300 slow or stalled sockets, and beside a flood of wrong passwords (a real user's
 * and unknown users'), with the CPU time serve's process spent. Not a test: it prints figures.
 *   npx tsx test/bench/hostile.ts     (BENCH_SECONDS per scenario, default 5)
 */
import {Agent, request} from 'node:http'
import {connect, type Socket} from 'node:net'

import {answerJson, basicAuth, type Pipeline, startPipeline} from '../support/serve-pipeline.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const ALICE = {password: 'alice-bench-password', username: 'alice'}

function get(agent: Agent, base: string, who: {password: string; username: string}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/api/2.0/mlflow/experiments/get?experiment_id=1', base), {agent, headers: {authorization: basicAuth(who)}}, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode!))
    })
    req.on('error', reject)
    req.end()
  })
}

async function latency(pipeline: Pipeline): Promise<{p50: number; p99: number; rps: number}> {
  const agent = new Agent({keepAlive: true, maxSockets: 4})
  const latencies: number[] = []
  const deadline = Date.now() + seconds * 1000
  await Promise.all(
    Array.from({length: 4}, async () => {
      while (Date.now() < deadline) {
        const started = process.hrtime.bigint()
        const status = await get(agent, pipeline.url, ALICE)
        if (status !== 200) throw new Error(`verified user got ${status}`)
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6)
      }
    }),
  )
  agent.destroy()
  latencies.sort((a, b) => a - b)
  const at = (q: number) => Number(latencies[Math.floor(latencies.length * q)].toFixed(2))
  return {p50: at(0.5), p99: at(0.99), rps: Math.round(latencies.length / seconds)}
}

async function measure(label: string, pipeline: Pipeline, during?: () => () => void): Promise<void> {
  const stop = during?.()
  const cpu = process.cpuUsage()
  const figures = await latency(pipeline)
  const used = process.cpuUsage(cpu)
  stop?.()
  console.log(
    `${label.padEnd(44)} p50 ${figures.p50} ms, p99 ${figures.p99} ms, ${figures.rps} req/s, CPU ${((used.user + used.system) / 1e6 / seconds).toFixed(2)} cores`,
  )
}

const pipeline = await startPipeline({
  handler: (_request, response) => answerJson(response, 200, {experiment: {experiment_id: '1'}}),
  // The 300 slow sockets share one loopback address: the limit per client must not close them first.
  serve: {clientLimits: {maxConnectionsPerClient: 1000}, clientTimeouts: {headerMs: 2000, idleMs: 2000, keepAliveMs: 5000}},
})
await pipeline.createUser(ALICE, {1: 'READ'})
const port = Number(new URL(pipeline.url).port)
await get(new Agent(), pipeline.url, ALICE)

await measure('idle', pipeline)

await measure('beside 300 slow/stalled sockets (2 s timeouts)', pipeline, () => {
  let open = true
  const sockets = new Set<Socket>()
  let closedByServe = 0
  const slow = (i: number) => {
    if (!open) return
    const socket = connect(port, '127.0.0.1', () => {
      if (i % 2) socket.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ')
      else
        socket.write(
          `PUT /api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/x HTTP/1.1\r\nHost: x\r\nAuthorization: ${basicAuth(ALICE)}\r\nContent-Length: 100\r\n\r\nabc`,
        )
    })
    const trickle = setInterval(() => i % 2 && socket.write('a'), 500)
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(trickle)
      sockets.delete(socket)
      if (open) closedByServe++
      slow(i) // keep 300 open
    })
  }

  for (let i = 0; i < 300; i++) slow(i)
  return () => {
    open = false
    for (const socket of sockets) socket.destroy()
    console.log(`  (slow sockets closed by serve's timeouts meanwhile: ${closedByServe})`)
  }
})

await measure('beside a flood of wrong passwords (32 at once)', pipeline, () => {
  let open = true
  let sent = 0
  const statuses = new Map<number, number>()
  const agent = new Agent({keepAlive: true, maxSockets: 32})
  const flood = async (worker: number) => {
    while (open) {
      // Distinct guesses: nothing to remember, every one needs a key derivation.
      const who = worker % 2 ? {password: `guess-${sent++}`, username: 'alice'} : {password: `guess-${sent++}`, username: `nobody-${sent}`}
      const status = await get(agent, pipeline.url, who).catch(() => 0)
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }
  }

  const workers = Array.from({length: 32}, (_, i) => flood(i))
  return () => {
    open = false
    void Promise.all(workers).then(() => agent.destroy())
    console.log(`  (wrong-password answers: ${[...statuses].map(([status, count]) => `${count}× ${status}`).join(', ')})`)
  }
})

await new Promise((resolve) => setTimeout(resolve, 1500))
await pipeline.close()
