/** Traces for interop tests, logged as MLflow's client logs a finished one (its v3 start-trace). */
import {randomBytes} from 'node:crypto'

/**
 * Logs a new finished trace in the experiment through `send` (a REST call as whoever may, an admin
 * usually); resolves with its id.
 */
export async function newTrace(send: (method: string, path: string, body: unknown) => Promise<unknown>, experimentId: string): Promise<string> {
  const traceId = `tr-${randomBytes(16).toString('hex')}`
  await send('POST', '/api/3.0/mlflow/traces', {
    trace: {
      trace_info: {
        request_time: '2024-01-01T00:00:00Z',
        state: 'OK',
        trace_id: traceId,
        trace_location: {mlflow_experiment: {experiment_id: experimentId}, type: 'MLFLOW_EXPERIMENT'},
      },
    },
  })
  return traceId
}
