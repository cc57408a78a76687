/**
 * OTLP trace ingest (`POST /v1/traces`) under MLflow's basic-auth app and under serve, one test
 * body: a trace create in the experiment of the `x-mlflow-experiment-id` header (EDIT there, and,
 * on 3.17, `trace *` not denied), whether the body is protobuf or OTLP JSON, compressed or not.
 * Where MLflow decides on the header alone although the spans write elsewhere (into an existing
 * trace of another experiment, a location trace tag, a link to another's run), serve refuses and
 * the test records what MLflow does. Every refusal is checked, as admin, to have written nothing.
 */
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {after, before, describe, it} from 'node:test'
import {gzipSync} from 'node:zlib'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS, PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {fixed64, message} from '../support/protobuf.js'
import {basicAuth, restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

interface Span {
  attributes?: Record<string, string>
  parent?: string
  spanId: string
  traceId: string
}

const START_NS = 1_700_000_000_000_000_000n

// ExportTraceServiceRequest: resource_spans 1 → scope_spans 2 → spans 2: trace_id 1, span_id 2,
// parent_span_id 4, name 5, start 7, end 8, attributes 9.
function protobufExport(spans: Span[]): Buffer {
  const encoded = spans.map((span) =>
    message(
      2,
      Buffer.concat([
        message(1, Buffer.from(span.traceId, 'hex')),
        message(2, Buffer.from(span.spanId, 'hex')),
        ...(span.parent ? [message(4, Buffer.from(span.parent, 'hex'))] : []),
        message(5, Buffer.from('step')),
        fixed64(7, START_NS),
        fixed64(8, START_NS + 1_000_000n),
        ...Object.entries(span.attributes ?? {}).map(([key, value]) =>
          message(9, Buffer.concat([message(1, Buffer.from(key)), message(2, message(1, Buffer.from(value)))])),
        ),
      ]),
    ),
  )
  return message(1, message(2, Buffer.concat(encoded)))
}

function jsonExport(spans: Span[]): string {
  return JSON.stringify({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: spans.map((span) => ({
              attributes: Object.entries(span.attributes ?? {}).map(([key, value]) => ({key, value: {stringValue: value}})),
              endTimeUnixNano: String(START_NS + 1_000_000n),
              name: 'step',
              parentSpanId: span.parent,
              spanId: span.spanId,
              startTimeUnixNano: String(START_NS),
              traceId: span.traceId,
            })),
          },
        ],
      },
    ],
  })
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex')
const rootSpan = (attributes?: Record<string, string>): Span => ({attributes, spanId: hex(8), traceId: hex(16)})

interface Export {
  body?: Buffer | string
  encoding?: string
  experimentId?: string
  json?: boolean
  runId?: string
}

for (const version of PINNED_VERSIONS) {
  const latest = version === MLFLOW_VERSIONS.latest
  for (const kind of ['basic-auth', 'serve'] as const) {
    describe(`OTLP trace ingest on ${targetTitle(kind)} MLflow ${version}`, () => {
      let target: AuthTarget
      const owner = {password: `owner-${uniqueName('pw')}`, username: uniqueName('otlp-owner')}
      const other = {password: `other-${uniqueName('pw')}`, username: uniqueName('otlp-other')}
      const {call, ok} = restClient(() => target.url)
      const admin = (method: string, path: string, body?: unknown) => ok(target.admin, method, path, body)
      const experiment = async (who: Credentials) =>
        (await ok(who, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('otlp')})).experiment_id as string

      async function send(who: Credentials, spans: Span[], {body, encoding, experimentId, json, runId}: Export = {}): Promise<number> {
        const headers: Record<string, string> = {authorization: basicAuth(who), 'content-type': json ? 'application/json' : 'application/x-protobuf'}
        if (experimentId !== undefined) headers['x-mlflow-experiment-id'] = experimentId
        if (runId !== undefined) headers['x-mlflow-run-id'] = runId
        let payload: Buffer | string = body ?? (json ? jsonExport(spans) : protobufExport(spans))
        if (encoding === 'gzip') {
          payload = gzipSync(payload)
          headers['content-encoding'] = 'gzip'
        }

        const response = await fetch(`${target.url}/v1/traces`, {body: payload, headers, method: 'POST'})
        await response.arrayBuffer()
        return response.status
      }

      /** As admin: the experiment of the trace, or undefined when there is none. */
      async function traceExperiment(traceId: string): Promise<string | undefined> {
        const answer = await call(target.admin, 'GET', `/api/2.0/mlflow/traces/tr-${traceId}/info`)
        return answer.status === 200 ? answer.json().trace_info.experiment_id : undefined
      }

      async function spanCount(traceId: string): Promise<number> {
        return (await admin('GET', `/ajax-api/2.0/mlflow/get-trace-artifact?request_id=tr-${traceId}`)).spans.length
      }

      before(async () => {
        target = await authTarget(version, kind, {users: [owner, other]})
      })
      after(async () => {
        await target?.stop()
        await releaseServers()
      })

      it('EDIT on the header experiment ingests, protobuf or JSON, compressed or not; READ or no header is refused', async () => {
        const mine = await experiment(owner)
        for (const options of [{}, {json: true}, {encoding: 'gzip'}, {encoding: 'gzip', json: true}]) {
          const span = rootSpan()
          assert.equal(await send(owner, [span], {...options, experimentId: mine}), 200, JSON.stringify(options))
          assert.equal(await traceExperiment(span.traceId), mine, JSON.stringify(options))
        }

        // default_permission READ: the other user may not write into the owner's experiment.
        const refusedSpan = rootSpan()
        assert.equal(await send(other, [refusedSpan], {experimentId: mine}), 403)
        assert.equal(await send(other, [refusedSpan], {experimentId: mine, json: true}), 403)
        assert.equal(await send(other, [refusedSpan]), 400)
        assert.equal(await traceExperiment(refusedSpan.traceId), undefined, 'a refused export wrote a trace')

        if (latest) {
          // MLflow 3.17: a DENY on the trace tier vetoes every trace create, this one too.
          await admin('POST', '/api/3.0/mlflow/users/permissions/grant', {
            permission: 'DENY',
            resource_id: '*',
            resource_type: 'trace',
            username: owner.username,
          })
          assert.equal(await send(owner, [refusedSpan], {experimentId: mine}), 403)
          await admin('POST', '/api/3.0/mlflow/users/permissions/revoke', {resource_id: '*', resource_type: 'trace', username: owner.username})
          assert.equal(await traceExperiment(refusedSpan.traceId), undefined, 'a refused export wrote a trace')
        }
      })

      it('spans of an existing trace of another experiment: written there by MLflow, refused by serve', async () => {
        const mine = await experiment(owner)
        const theirs = await experiment(other)
        const root = rootSpan()
        assert.equal(await send(owner, [root], {experimentId: mine}), 200)
        const intruder: Span = {parent: root.spanId, spanId: hex(8), traceId: root.traceId}
        for (const json of [false, true]) {
          const status = await send(other, [intruder], {experimentId: theirs, json})
          assert.equal(await traceExperiment(root.traceId), mine)
          if (kind === 'serve') {
            assert.equal(status, 403)
            assert.equal(await spanCount(root.traceId), 1, "a refused export wrote into the owner's trace")
          } else {
            assert.equal(status, 200)
            assert.equal(await spanCount(root.traceId), 2, "MLflow writes a span into the owner's trace")
          }
        }

        // In their own experiment, and in the owner's own trace, the same span is fine.
        const own = rootSpan()
        assert.equal(await send(other, [own, {parent: own.spanId, spanId: hex(8), traceId: own.traceId}], {experimentId: theirs}), 200)
        assert.equal(await spanCount(own.traceId), 2)
        assert.equal(await send(owner, [{parent: root.spanId, spanId: hex(8), traceId: root.traceId}], {experimentId: mine}), 200)
      })

      it('a trace tag saying where the trace data lives, from a span attribute: stored by MLflow, refused by serve', async () => {
        const theirs = await experiment(other)
        const span = rootSpan({'mlflow.traceTag.mlflow.artifactLocation': `mlflow-artifacts:/${theirs}/elsewhere`, 'mlflow.traceTag.team': 'a'})
        const status = await send(other, [span], {experimentId: theirs})
        if (kind === 'serve') {
          assert.equal(status, 403)
          assert.equal(await traceExperiment(span.traceId), undefined, 'a refused export wrote a trace')
        } else {
          assert.equal(status, 200)
          // MLflow 3.17 stores a root span's mlflow.traceTag.* attributes as trace tags; 3.12 did not.
          const {trace_info: info} = await admin('GET', `/api/2.0/mlflow/traces/tr-${span.traceId}/info`)
          assert.equal(JSON.stringify(info.tags).includes('elsewhere'), latest, JSON.stringify(info.tags))
        }

        // Other trace tags are the caller's to set.
        assert.equal(await send(other, [rootSpan({'mlflow.traceTag.team': 'a'})], {experimentId: theirs}), 200)
      })

      if (latest) {
        it("x-mlflow-run-id links the traces to that run: MLflow links another's run, serve asks EDIT on it", async () => {
          const mine = await experiment(owner)
          const theirs = await experiment(other)
          const runId = (await ok(owner, 'POST', '/api/2.0/mlflow/runs/create', {experiment_id: mine})).run.info.run_id as string
          const linked = async () =>
            (
              (
                await admin('POST', '/api/3.0/mlflow/traces/search', {
                  filter: `run_id = '${runId}'`,
                  locations: [{mlflow_experiment: {experiment_id: theirs}, type: 'MLFLOW_EXPERIMENT'}],
                })
              ).traces ?? []
            ).length
          const status = await send(other, [rootSpan()], {experimentId: theirs, runId})
          if (kind === 'serve') {
            assert.equal(status, 403)
            assert.equal(await linked(), 0, 'a refused export linked a trace to the run')
          } else {
            assert.equal(status, 200)
            assert.equal(await linked(), 1, "MLflow links the trace to the owner's run")
          }

          // EDIT on the run's experiment lets the link be made.
          await admin('POST', '/api/3.0/mlflow/users/permissions/grant', {
            permission: 'EDIT',
            resource_id: mine,
            resource_type: 'experiment',
            username: other.username,
          })
          assert.equal(await send(other, [rootSpan()], {experimentId: theirs, runId}), 200)
          assert.equal(await linked(), kind === 'serve' ? 1 : 2)
        })
      }

      if (kind === 'serve') {
        it('serve refuses a body it could read otherwise than MLflow (400), and writes nothing', async () => {
          const theirs = await experiment(other)
          const span = rootSpan()
          const snake = JSON.stringify({resource_spans: [{scope_spans: [{spans: [{name: 'x', span_id: span.spanId, trace_id: span.traceId}]}]}]})
          assert.equal(await send(other, [], {body: snake, experimentId: theirs, json: true}), 400)
          assert.equal(await send(other, [], {body: Buffer.from([0x0a, 0x05, 0x12]), experimentId: theirs}), 400)
          assert.equal(await send(other, [span], {experimentId: `0${theirs}`}), 400)
          assert.equal(await traceExperiment(span.traceId), undefined)
        })
      }
    })
  }
}
