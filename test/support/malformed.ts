/** Requests with values MLflow fails on (500) or refuses (400), for a non-admin with EDIT on experiment 1 and READ on model `m`. */
export interface Malformed {
  /** Sent as JSON unless a string (then as it is). */
  body?: unknown
  method: string
  path: string
  /** Plain MLflow answers 400 with this exact message; serve must say the same. */
  sameAsMlflow?: boolean
}

const TOO_BIG = '9223372036854775808'

export const MALFORMED: Malformed[] = [
  {method: 'GET', path: `/api/2.0/mlflow/experiments/get?experiment_id=${TOO_BIG}`},
  {method: 'GET', path: '/api/2.0/mlflow/experiments/get?experiment_id=abc'},
  {method: 'GET', path: `/api/2.0/mlflow/model-versions/get?name=m&version=${TOO_BIG}`},
  {method: 'GET', path: '/api/2.0/mlflow/model-versions/get?name=m&version=abc'},
  {body: {experiment_ids: [TOO_BIG]}, method: 'POST', path: '/api/2.0/mlflow/runs/search'},
  {body: {experiment_id: TOO_BIG, name: 'x'}, method: 'POST', path: '/api/2.0/mlflow/experiments/update'},
  {method: 'GET', path: `/api/2.0/mlflow-artifacts/artifacts/${TOO_BIG}/r/artifacts/x`},
  {body: {max_results: 'abc'}, method: 'POST', path: '/api/2.0/mlflow/experiments/search', sameAsMlflow: true},
  {body: {max_results: -1}, method: 'POST', path: '/api/2.0/mlflow/experiments/search', sameAsMlflow: true},
  {body: `{"max_results":${TOO_BIG}}`, method: 'POST', path: '/api/2.0/mlflow/experiments/search'},
  {method: 'GET', path: '/api/2.0/mlflow/registered-models/search?max_results=abc', sameAsMlflow: true},
  {method: 'GET', path: `/api/2.0/mlflow/registered-models/search?max_results=${TOO_BIG}`},
  {body: '5', method: 'POST', path: '/api/2.0/mlflow/experiments/search'},
  {body: '[]', method: 'POST', path: '/api/2.0/mlflow/runs/search'},
  {body: '{"query":null}', method: 'POST', path: '/graphql'},
  {body: '{"query":5}', method: 'POST', path: '/graphql'},
  {body: '{}', method: 'POST', path: '/graphql'},
  {body: '[]', method: 'POST', path: '/graphql'},
  {body: {query: `query { mlflowGetExperiment(input: {experimentId: "${TOO_BIG}"}) { experiment { name } } }`}, method: 'POST', path: '/graphql'},
]
