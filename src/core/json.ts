/** JSON helpers shared by the client and serve. */

export type JsonObject = Record<string, unknown>

/** The JSON object `text` holds, or undefined for anything else (not JSON, an array, a scalar): for answers read leniently. */
export function jsonObjectOrUndefined(text: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonObject) : undefined
  } catch {
    return undefined
  }
}
