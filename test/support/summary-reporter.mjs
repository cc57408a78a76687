/**
 * A node:test reporter that ends the run with the line `N passed, N failed` (CI reads it).
 * Suites are not counted, only tests. Plain JavaScript: the runner loads reporters without tsx.
 * With MLFLOWCTL_TEST_COUNTS it also adds the counts to that file, for test/run.ts to sum passes.
 */
import {appendFileSync} from 'node:fs'

export default async function* summaryReporter(source) {
  let passed = 0
  let failed = 0
  let skipped = 0
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue
    if (event.data.details?.type === 'suite') continue
    if (event.type === 'test:fail') failed++
    else if (event.data.skip || event.data.todo) skipped++
    else passed++
  }

  if (process.env.MLFLOWCTL_TEST_COUNTS) appendFileSync(process.env.MLFLOWCTL_TEST_COUNTS, `${JSON.stringify({failed, passed, skipped})}\n`)
  yield `\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`
}
