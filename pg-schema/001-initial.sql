-- mlflowctl serve's auth store, version 1: the tables of its in-memory model, one row per record,
-- and a log of changes that every replica reads to apply what the others wrote.
-- Unique keys and references are checked at commit: a change's rows are written one by one.

CREATE TABLE mlflowctl_state (
  id integer PRIMARY KEY CHECK (id = 1),
  -- The last change in mlflowctl_changes; a writer holds this row's lock for its whole transaction.
  seq bigint NOT NULL,
  -- Ids are never reused: the next of each kind.
  next_user_id bigint NOT NULL,
  next_role_id bigint NOT NULL,
  next_role_permission_id bigint NOT NULL,
  next_assignment_id bigint NOT NULL
);
INSERT INTO mlflowctl_state VALUES (1, 0, 1, 1, 1, 1);

CREATE TABLE mlflowctl_users (
  id bigint PRIMARY KEY,
  username text NOT NULL,
  password_hash text NOT NULL,
  is_admin boolean NOT NULL,
  CONSTRAINT mlflowctl_users_username_key UNIQUE (username) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE mlflowctl_roles (
  id bigint PRIMARY KEY,
  workspace text NOT NULL CHECK (workspace <> ''),
  name text NOT NULL CHECK (name <> ''),
  description text,
  CONSTRAINT mlflowctl_roles_name_key UNIQUE (workspace, name) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE mlflowctl_role_permissions (
  id bigint PRIMARY KEY,
  role_id bigint NOT NULL REFERENCES mlflowctl_roles (id) DEFERRABLE INITIALLY DEFERRED,
  resource_type text NOT NULL CHECK (resource_type <> ''),
  resource_pattern text NOT NULL,
  permission text NOT NULL CHECK (permission <> ''),
  CONSTRAINT mlflowctl_role_permissions_key UNIQUE (role_id, resource_type, resource_pattern) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE mlflowctl_assignments (
  id bigint PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES mlflowctl_users (id) DEFERRABLE INITIALLY DEFERRED,
  role_id bigint NOT NULL REFERENCES mlflowctl_roles (id) DEFERRABLE INITIALLY DEFERRED,
  CONSTRAINT mlflowctl_assignments_key UNIQUE (user_id, role_id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX mlflowctl_assignments_role ON mlflowctl_assignments (role_id);

-- Each committed change: the records it put and the ids it deleted, as the JSON store's journal
-- writes a batch. Old entries are pruned; a replica further behind than what is kept reloads all.
CREATE TABLE mlflowctl_changes (
  id bigint PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  body text NOT NULL
);
