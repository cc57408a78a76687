#!/usr/bin/env node
// require(), not import: an ES module's import of CommonJS oclif has Node scan its source for export names first.
import {createRequire} from 'node:module'

const {execute} = createRequire(import.meta.url)('@oclif/core/execute')
await execute({dir: import.meta.url})
