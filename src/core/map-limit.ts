/**
 * A map over items with at most `limit` calls in flight: enough to hide a server's latency,
 * few enough not to load it. Results keep the items' order; the first rejection rejects the
 * whole (calls already started finish on their own).
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = Array.from({length: items.length})
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await map(items[index])
    }
  }

  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
  return results
}
