-- mlflowctl serve's auth store, version 3: who submitted each of MLflow's server-side jobs. A plain
-- MLflow behind serve records no creator in its own job table, so serve keeps one row per job it
-- saw submitted, by MLflow's job id; a user's rows go when the user is deleted.

ALTER TABLE mlflowctl_state ADD COLUMN next_job_creator_id bigint NOT NULL DEFAULT 1;

CREATE TABLE mlflowctl_job_creators (
  id bigint PRIMARY KEY,
  job_id text NOT NULL CHECK (job_id ~ '^[!-~]+$' AND length(job_id) <= 256),
  user_id bigint NOT NULL REFERENCES mlflowctl_users (id) DEFERRABLE INITIALLY DEFERRED,
  CONSTRAINT mlflowctl_job_creators_job_id_key UNIQUE (job_id) DEFERRABLE INITIALLY DEFERRED
);
