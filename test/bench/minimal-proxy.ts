/**
 * The platform's baseline for the proxy bench: the least a Node reverse proxy does (keep-alive
 * pool, headers copied, bodies piped both ways), no checks at all.
 *   node --import tsx test/bench/minimal-proxy.ts PORT UPSTREAM_PORT
 */
import {Agent, createServer, request} from 'node:http'

const [port, upstreamPort] = process.argv.slice(2).map(Number)
const agent = new Agent({keepAlive: true, maxSockets: 256})
createServer((req, res) => {
  const upstream = request({agent, headers: req.headers, host: '127.0.0.1', method: req.method, path: req.url, port: upstreamPort}, (answer) => {
    res.writeHead(answer.statusCode!, answer.headers)
    answer.pipe(res)
  })
  upstream.on('error', () => res.destroy())
  req.pipe(upstream)
}).listen(port, '127.0.0.1')
// Stopped by a signal: exit normally, so that a --cpu-prof profile is written.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(0))
