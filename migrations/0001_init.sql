-- 0001_init.sql: the tables wsync owns and the reference application tables.
-- Forward-only: never edit a migration that has been released; add a new file.

-- Providers are rows, not a CHECK list: wsyncd registers every loaded plugin
-- instance here at start, so a new plugin needs no migration.
CREATE TABLE sync_providers (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    plugin        text NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    registered_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Reference application tables (an application with its own tables maps onto
-- these, views are fine).
CREATE TABLE workouts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL,
    name         text NOT NULL DEFAULT '',
    description  text,
    sport        text NOT NULL DEFAULT 'bike',
    workout_text text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workouts_user_idx ON workouts (user_id);

CREATE TABLE workouts_scheduled (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL,
    workout_id     uuid NOT NULL REFERENCES workouts (id) ON DELETE CASCADE,
    scheduled_date date NOT NULL,
    scheduled_time time,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workouts_scheduled_workout_idx ON workouts_scheduled (workout_id);

-- One row per connected provider account.  "Enabled" means a row exists and
-- upload_workouts_enabled is true.  needs_reconnect is set by wsyncd when a
-- token refresh fails: the user must authorize again.
CREATE TABLE provider_tokens (
    user_id                 uuid NOT NULL,
    provider                text NOT NULL,
    access_token            text,
    refresh_token           text,
    expires_at              timestamptz,
    upload_workouts_enabled boolean NOT NULL DEFAULT true,
    needs_reconnect         boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);

-- The id each provider gave our entity.  Outlives the entity row, so a
-- delete can still name the provider object after the workout is gone.
CREATE TABLE workout_sync_links (
    provider           text NOT NULL REFERENCES sync_providers (name),
    entity_type        text NOT NULL CHECK (entity_type IN ('workout', 'workout_scheduled')),
    entity_id          uuid NOT NULL,
    user_id            uuid NOT NULL,
    provider_entity_id text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, entity_type, entity_id)
);

-- The queue.  The seed's columns, plus what safe claiming needs:
--   seq           FIFO order (uuids do not sort by age)
--   locked_by     "host:pid:worker" of the claimer
--   locked_until  lease end; NULL = never claimed.  A row once claimed keeps
--                 a non-NULL value (release sets it to now()), which keeps it
--                 out of the coalescing index below: a claimed row is never
--                 rewritten by a later enqueue.
--   lease_token   changes at every claim; completion must present it
--   attempts      counted at claim time, so an entry that kills its worker
--                 cannot loop forever
CREATE SEQUENCE workout_sync_lease_seq;
CREATE TABLE workout_sync_queue (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    user_id         uuid NOT NULL,
    entity_type     text NOT NULL CHECK (entity_type IN ('workout', 'workout_scheduled')),
    entity_id       uuid NOT NULL,
    operation       text NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
    provider        text NOT NULL REFERENCES sync_providers (name),
    retry_count     integer NOT NULL DEFAULT 0,
    next_retry_at   timestamptz NOT NULL DEFAULT now(),
    error_type      text,
    error_message   text,
    processed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    locked_by       text,
    locked_until    timestamptz,
    lease_token     bigint,
    attempts        integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    -- The provider's own id for a delete, captured at enqueue time, so a
    -- delete still knows what to delete after the link row is gone.
    provider_entity_id text
) WITH (fillfactor = 90);

-- Claim: only pending rows, so a million processed rows cost nothing.
CREATE INDEX workout_sync_queue_claim_idx
    ON workout_sync_queue (next_retry_at, seq)
    WHERE processed_at IS NULL;
-- Per-entity order and in-flight probes.
CREATE INDEX workout_sync_queue_entity_idx
    ON workout_sync_queue (entity_type, entity_id, provider, seq)
    WHERE processed_at IS NULL;
-- Coalescing: at most one never-claimed pending entry per entity and provider.
CREATE UNIQUE INDEX workout_sync_queue_coalesce_idx
    ON workout_sync_queue (entity_type, entity_id, provider)
    WHERE processed_at IS NULL AND locked_until IS NULL;
-- Reports and pruning.
CREATE INDEX workout_sync_queue_processed_idx
    ON workout_sync_queue (processed_at) WHERE processed_at IS NOT NULL;
CREATE INDEX workout_sync_queue_user_provider_idx
    ON workout_sync_queue (user_id, provider);
ALTER TABLE workout_sync_queue SET (autovacuum_vacuum_scale_factor = 0.02);
