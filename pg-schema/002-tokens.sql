-- mlflowctl serve's auth store, version 2: users' access tokens. Only the SHA-256 of a token's text
-- is kept, never the token. A revoke is a change in mlflowctl_changes like any other, so every
-- replica drops the token when it applies it.

ALTER TABLE mlflowctl_state ADD COLUMN next_token_id bigint NOT NULL DEFAULT 1;

CREATE TABLE mlflowctl_tokens (
  id bigint PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES mlflowctl_users (id) DEFERRABLE INITIALLY DEFERRED,
  name text NOT NULL CHECK (name <> ''),
  digest text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
  created_at text NOT NULL,
  expires_at text,
  last_used_at text,
  CONSTRAINT mlflowctl_tokens_name_key UNIQUE (user_id, name) DEFERRABLE INITIALLY DEFERRED,
  CONSTRAINT mlflowctl_tokens_digest_key UNIQUE (digest) DEFERRABLE INITIALLY DEFERRED
);
