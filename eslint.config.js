import {dirname, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

const root = dirname(fileURLToPath(import.meta.url))
const src = resolve(root, 'src')

// The layer rule: each folder of src/ may import only the folders named
// for it, so imports point one way: commands → cli → policy → api → client → mlflow → core, and
// server → mlflow → core. Commands sit on top of both (the serve command starts the server).
// A folder missing here is an error, so a new one has to be placed.
const LAYERS = {
  commands: ['cli', 'policy', 'api', 'client', 'server', 'mlflow', 'core'],
  hooks: ['cli', 'core'],
  cli: ['policy', 'api', 'client', 'mlflow', 'core'],
  policy: ['api', 'client', 'mlflow', 'core'],
  api: ['client', 'mlflow', 'core'],
  client: ['mlflow', 'core'],
  server: ['mlflow', 'core'],
  mlflow: ['core'],
  core: [],
}

function layerOf(path) {
  const rel = relative(src, path)
  if (rel.startsWith('..') || !rel.includes('/')) return undefined
  return rel.split('/')[0]
}

// no-restricted-imports sees neither dynamic import() nor where a relative path lands, so the
// rule resolves each relative specifier and names both layers.
const layerRule = {
  meta: {
    type: 'problem',
    schema: [],
    messages: {
      wrong: 'src/{{from}} may import only {{allowed}}: this imports src/{{to}} (the layer rule in eslint.config.js)',
      unknown: 'src/{{from}} is not a layer: add it to LAYERS in eslint.config.js',
    },
  },
  create(context) {
    const from = layerOf(context.filename)
    if (from === undefined) return {}
    if (!Object.hasOwn(LAYERS, from)) {
      return {Program: (node) => context.report({node, messageId: 'unknown', data: {from}})}
    }

    const check = (node) => {
      const source = node.source
      if (source?.type !== 'Literal' || typeof source.value !== 'string' || !source.value.startsWith('.')) return
      const to = layerOf(resolve(dirname(context.filename), source.value))
      if (to === undefined || to === from || LAYERS[from].includes(to)) return
      const allowed = LAYERS[from].length > 0 ? LAYERS[from].join(', ') : 'nothing outside itself'
      context.report({node: source, messageId: 'wrong', data: {from, to, allowed}})
    }

    return {ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check}
  },
}

export default tseslint.config(
  {ignores: ['dist/', 'node_modules/', '.test-artifacts/', 'test-output/']},
  {linterOptions: {reportUnusedDisableDirectives: 'error'}},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: globals.node},
    rules: {
      // `catch {}` is this code's way to say "try, and fall back to undefined": the variable
      // left unset says what happens; other empty blocks are still errors.
      'no-empty': ['error', {allowEmptyCatch: true}],
      // A `let` written once after a closure that reads it (a handler set when the server is
      // ready) cannot be a const: the closure may run first.
      'prefer-const': ['error', {ignoreReadBeforeAssign: true}],
      // A leading underscore marks a binding kept on purpose (a rest sibling, a callback's slot).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_'},
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: {mlflowctl: {rules: {layers: layerRule}}},
    rules: {'mlflowctl/layers': 'error'},
  },
)
