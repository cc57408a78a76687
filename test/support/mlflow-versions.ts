import {homedir} from 'node:os'
import {join} from 'node:path'

/**
 * The MLflow releases the interop tests run against, found by installing and probing:
 * - latest: the newest 3.x release pip can install here (3.18.0 is listed, but its
 *   mlflow-skinny 3.18.0 is not published, so it does not resolve).
 * - legacy: the newest release whose basic-auth app still serves the per-resource permission
 *   endpoints (/api/2.0/mlflow/experiments/permissions/*); 3.13.0 answers them with 404.
 */
export const MLFLOW_VERSIONS = {latest: '3.17.2', legacy: '3.12.0'} as const

export type MlflowVersion = (typeof MLFLOW_VERSIONS)[keyof typeof MLFLOW_VERSIONS]

export const PINNED_VERSIONS: MlflowVersion[] = [MLFLOW_VERSIONS.latest, MLFLOW_VERSIONS.legacy]

/** Virtual environments live outside the repository so a fresh clone reuses them. */
export const CACHE_DIR = process.env.MLFLOWCTL_TEST_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'mlflowctl-test')

export function venvDir(version: string): string {
  return join(CACHE_DIR, `mlflow-${version}`)
}

export function venvBin(version: string, program: string): string {
  return join(venvDir(version), 'bin', program)
}

/**
 * Environment for every MLflow process the tests start (servers, clients): no telemetry. MLflow
 * 3.x's telemetry would send usage events beyond this machine, and its client keeps its session
 * id in an environment variable that a background thread sets and unsets, which races with the
 * test worker's per-call environment ("failed with exception '_MLFLOW_TELEMETRY_SESSION_ID'").
 */
export const MLFLOW_TEST_ENV = {DO_NOT_TRACK: 'true', MLFLOW_DISABLE_TELEMETRY: 'true'} as const
