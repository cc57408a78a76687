/** Reading Prometheus exposition text in tests. */

/** The value of the first series of `name` whose labels include `labels` (in any order), or undefined. */
export function seriesValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((part) => [part[1], part[2]]))
    if (Object.entries(labels).every(([key, value]) => have[key] === value)) return Number(match[3])
  }

  return undefined
}
