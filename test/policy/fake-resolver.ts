import {type Feature, type Resolver} from '../../src/policy/file.js'

export interface FakeServer {
  experiments?: Record<string, string>
  features?: Feature[]
  models?: string[]
  prompts?: string[]
}

export interface FakeResolver extends Resolver {
  /** Every lookup made, in order: `kind:value`. */
  asked: string[]
}

/** A server that knows these experiments (id → name), models and prompts, with these features (default: all, as 3.17). */
export function fakeResolver(server: FakeServer = {}): FakeResolver {
  const experiments = server.experiments ?? {}
  const features = server.features ?? ['deny', 'mcp', 'roles', 'unified']
  const asked: string[] = []
  return {
    asked,
    async experimentId(name) {
      asked.push(`experiment:${name}`)
      return Object.entries(experiments).find(([, candidate]) => candidate === name)?.[0]
    },
    async experimentName(id) {
      asked.push(`experiment_id:${id}`)
      return experiments[id]
    },
    async modelExists(name) {
      asked.push(`model:${name}`)
      return (server.models ?? []).includes(name)
    },
    async promptExists(name) {
      asked.push(`prompt:${name}`)
      return (server.prompts ?? []).includes(name)
    },
    async supports(feature) {
      return features.includes(feature)
    },
  }
}

/** The MLflow 3.12 generation: roles, but only the per-resource user grants. */
export const LEGACY_FEATURES: Feature[] = ['roles']
