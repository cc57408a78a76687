/**
 * The JSON Schema (draft-07) of an access-policy file, shipped in the package: `mlflowctl schema`
 * prints it for editors, and ./file.ts validates every file with it (ajv) before its own checks.
 *
 * Exports: POLICY_SCHEMA (the schema object), GRANT_RESOURCE_KEYS (the keys that name what a
 * grant item is on: the kinds' perms names plus `experiment_id`).
 *
 * The schema checks shape (keys, types, levels); what needs the whole file or the server (one
 * resource key per item, duplicates, users named but not listed, kind/level rules, names that do
 * not resolve) is checked after it, with the same line numbers.
 */
import {ALL_LEVELS} from '../mlflow/rbac.js'
import {POLICY_KIND_NAMES, POLICY_KINDS} from './model.js'

/** The keys that name what a grant item is on. */
export const GRANT_RESOURCE_KEYS = [...POLICY_KIND_NAMES, 'experiment_id'] as const

const level = {
  description:
    'The level, as MLflow spells it: READ < USE < EDIT < MANAGE; NO_PERMISSIONS (MLflow 3.12 and older, per-user grants and role rows) and DENY (MLflow 3.17+: hides what it names even where a `*` or a role allows it). Role rows on `workspace` take USE (member) or MANAGE (workspace admin).',
  enum: [...ALL_LEVELS],
  examples: ['READ', 'EDIT'],
}

const name = (description: string, examples: string[]) => ({description, examples, minLength: 1, type: 'string'})

function kindProperty(kind: (typeof POLICY_KIND_NAMES)[number]): Record<string, unknown> {
  const {by, plural, noun} = POLICY_KINDS[kind]
  const since = 'since' in POLICY_KINDS[kind] ? ` (MLflow ${POLICY_KINDS[kind].since}+)` : ''
  switch (kind) {
    case 'experiment': {
      return name(
        "An experiment by name (looked up on the server; it must exist), or `*` for every experiment (MLflow 3.13+ for users; roles: 3.12+). With `scorer`: the scorer's experiment.",
        ['My experiment', '*'],
      )
    }

    case 'scorer': {
      return name('A scorer by name, with its experiment in `experiment` or `experiment_id`; or `*` alone for every scorer (MLflow 3.13+ for users).', [
        'relevance',
        '*',
      ])
    }

    case 'model': {
      return name('A registered model by name (it must exist), or `*` for every registered model (MLflow 3.13+ for users).', ['churn', '*'])
    }

    case 'workspace': {
      return {
        const: '*',
        description: "Roles only: the workspace slot, `*` only. USE makes the role's holders members of the workspace, MANAGE its admins.",
        examples: ['*'],
        type: 'string',
      }
    }

    default: {
      if (by === 'wildcard') {
        return {const: '*', description: `Every ${noun}: \`*\` only${since}.`, examples: ['*'], type: 'string'}
      }

      return name(`A ${noun} by ${by}, or \`*\` for all ${plural}${since}.`, by === 'id' ? ['d5a0c1e2', '*'] : ['summarize', '*'])
    }
  }
}

const resourceProperties: Record<string, unknown> = {
  ...Object.fromEntries(POLICY_KIND_NAMES.map((kind) => [kind, kindProperty(kind)])),
  experiment_id: {
    description:
      "An experiment by id (digits; quote it in YAML), for one that has no name to give (deleted) or to avoid a lookup. With `scorer`: the scorer's experiment.",
    examples: ['42'],
    pattern: '^(0|[1-9][0-9]*)$',
    type: 'string',
  },
}

const grantItem = {
  additionalProperties: false,
  description:
    'One grant: exactly one resource key (a kind, or `experiment_id`; a `scorer` also takes `experiment` or `experiment_id` for its experiment) and `permission`.',
  examples: [
    {experiment: 'My experiment', permission: 'EDIT'},
    {experiment_id: '42', permission: 'READ'},
    {model: 'churn', permission: 'READ'},
    {experiment: 'My experiment', permission: 'READ', scorer: 'relevance'},
    {permission: 'DENY', run: '*'},
  ],
  properties: {...resourceProperties, permission: level},
  required: ['permission'],
  type: 'object',
}

const grants = {
  description: 'Grants, one item per resource.',
  examples: [[{experiment: '*', permission: 'READ'}]],
  items: grantItem,
  type: 'array',
}

const username = name('A username, listed under `users`.', ['alice'])

export const POLICY_SCHEMA = {
  $id: 'https://github.com/mlflowctl/mlflowctl/schemas/access-policy-v1.json',
  $schema: 'http://json-schema.org/draft-07/schema#',
  additionalProperties: false,
  description:
    'An MLflow access policy for `mlflowctl plan` and `mlflowctl apply` (written by `mlflowctl export`): users, admins, roles and grants of one server.',
  properties: {
    resources: {
      description: "Grants listed per resource, for reading convenience: each is merged into the named users' grants. `export` never writes this section.",
      examples: [[{experiment: 'My experiment', grants: {alice: 'EDIT', bob: 'READ'}}]],
      items: {
        additionalProperties: false,
        description: 'One resource (exactly one resource key, as in a grant item) and who holds what on it.',
        examples: [{grants: {alice: 'EDIT', bob: 'READ'}, model: 'churn'}],
        properties: {
          ...resourceProperties,
          grants: {
            additionalProperties: level,
            description: 'Username → level. Each user must be listed under `users`.',
            examples: [{alice: 'EDIT', bob: 'READ'}],
            minProperties: 1,
            type: 'object',
          },
        },
        required: ['grants'],
        type: 'object',
      },
      type: 'array',
    },
    roles: {
      description: 'Roles (MLflow 3.12+), with their rows and members. Roles on the server but not here are removed by `apply --prune`.',
      examples: [[{description: 'Read every experiment', grants: [{experiment: '*', permission: 'READ'}], members: ['alice'], name: 'readers'}]],
      items: {
        additionalProperties: false,
        description: 'One role, named uniquely within its workspace.',
        examples: [{grants: [{experiment: '*', permission: 'READ'}], members: ['alice', 'bob'], name: 'readers'}],
        properties: {
          description: {description: 'What the role is for.', examples: ['Read every experiment'], type: 'string'},
          grants: {...grants, description: 'The role\'s rows: the same items as a user\'s grants, plus `workspace: "*"` (USE or MANAGE).'},
          members: {
            description: 'Usernames holding the role; each must be listed under `users`.',
            examples: [['alice', 'bob']],
            items: username,
            type: 'array',
          },
          name: {
            ...name("The role's name. Names starting with `__user_` are MLflow's hidden per-user roles, whose rows are users' grants.", ['readers']),
            not: {pattern: '^__user_'},
          },
          workspace: name("The workspace the role belongs to (default: `default`, the only one while MLflow's workspaces are off).", ['default']),
        },
        required: ['name'],
        type: 'object',
      },
      type: 'array',
    },
    users: {
      description:
        'Users, with their admin flag and own grants. A user missing on the server is created; users on the server but not listed here are never created, deleted or promoted.',
      examples: [
        [
          {admin: true, name: 'alice'},
          {grants: [{experiment: 'My experiment', permission: 'EDIT'}], name: 'bob'},
        ],
      ],
      items: {
        additionalProperties: false,
        description: 'One user.',
        examples: [{grants: [{model: 'churn', permission: 'READ'}], name: 'bob', password: {env: 'BOB_PASSWORD'}}],
        properties: {
          admin: {default: false, description: 'Whether the user is an admin (default false).', examples: [true], type: 'boolean'},
          grants: {...grants, description: "The user's own grants (not through roles)."},
          name: name('The username.', ['alice']),
          password: {
            additionalProperties: false,
            description:
              'Only for a user the server lacks: where its first password comes from. An environment variable by name, stdin, or generated and printed once at the end. Never a password itself.',
            examples: [{env: 'ALICE_PASSWORD'}, {stdin: true}, {generate: true}],
            maxProperties: 1,
            minProperties: 1,
            properties: {
              env: {
                description: 'The name of an environment variable holding the password.',
                examples: ['ALICE_PASSWORD'],
                pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
                type: 'string',
              },
              generate: {const: true, description: 'Generate a password and print it once, at the end.', examples: [true]},
              stdin: {const: true, description: 'Read the password from stdin (one line per such user, in file order).', examples: [true]},
            },
            type: 'object',
          },
        },
        required: ['name'],
        type: 'object',
      },
      type: 'array',
    },
    version: {const: 1, description: "The file format's version: 1.", examples: [1]},
  },
  required: ['version'],
  title: 'mlflowctl access policy',
  type: 'object',
} as const
