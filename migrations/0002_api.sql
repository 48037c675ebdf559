-- 0002_api.sql: the SQL API for applications (any language), the sync
-- triggers on the two entity tables, sync status and retry.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- Public functions (docs/applications.md describes them for application
-- developers):
--   wsync_provider_enabled(user_id, provider)                 -> boolean
--   wsync_enqueue(user_id, entity_type, entity_id, operation) -> integer
--   wsync_enqueue(user_id, entity_type, entity_id, operation, provider)
--   wsync_sync_status(entity_type, entity_id [, provider])    -> setof rows
--   wsync_retry(queue_id)                                     -> integer
--   wsync_retry_failed(user_id, provider)                     -> integer
--   wsync_iso8601(timestamptz)                                -> text (reports)
-- Functions named wsync__* are internal: do not call them.
--
-- Coalescing rules (at most one never-claimed pending entry per
-- (entity_type, entity_id, provider), enforced by workout_sync_queue_coalesce_idx):
--
--   pending + new        -> pending entry becomes
--   create  + update     -> create
--   update  + update     -> update
--   delete  + update     -> delete   (the entity is gone; an update cannot revive it)
--   any     + delete     -> delete   if the provider has (or is about to have) the
--                                    object: a link exists or a create/update
--                                    is in flight;
--                           otherwise the pending entry is removed and
--                           nothing is enqueued (no API call)
--   create  + create     -> create
--   update/delete + create -> update if a link exists, else create
--   (nothing) + update   -> create when there is no link and nothing in
--                           flight (the provider has never seen the entity)
--   (nothing) + delete   -> delete only where a link exists or a create /
--                           update is in flight; otherwise nothing
--
-- An entry already claimed by a worker (locked_until IS NOT NULL) is never
-- rewritten: a new entry is queued behind it, and the engine runs entries of
-- one key in seq order.  A delete queued behind an in-flight create has
-- provider_entity_id NULL: the engine reads the link when the delete runs
-- (the create will have written it), and a delete that finds no link has
-- nothing to delete and succeeds.

-- Status and failure reports look at processed rows of one entity too; the
-- claim indexes of 0001 cover pending rows only.
CREATE INDEX workout_sync_queue_entity_all_idx
    ON workout_sync_queue (entity_type, entity_id, provider, seq);

-- ---- argument checks ------------------------------------------------------

-- Raise invalid_parameter_value (or null_value_not_allowed) with a message
-- that names the function and the argument, so any client library shows
-- the caller what to fix.
CREATE FUNCTION wsync__check_args(p_fn text, p_user_id uuid, p_entity_type text,
                                  p_entity_id uuid, p_operation text)
RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION '%: user_id must not be NULL', p_fn
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_entity_id IS NULL THEN
        RAISE EXCEPTION '%: entity_id must not be NULL', p_fn
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_entity_type IS NULL OR p_entity_type NOT IN ('workout', 'workout_scheduled') THEN
        PERFORM wsync__check_entity_type(p_fn, p_entity_type);
    END IF;
    IF p_operation IS NULL THEN
        RAISE EXCEPTION '%: operation must not be NULL', p_fn
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'expected create, update or delete';
    END IF;
    IF p_operation NOT IN ('create', 'update', 'delete') THEN
        RAISE EXCEPTION '%: unknown operation "%"', p_fn, p_operation
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'expected create, update or delete';
    END IF;
END $$;

CREATE FUNCTION wsync__check_entity_type(p_fn text, p_entity_type text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_entity_type IS NULL THEN
        RAISE EXCEPTION '%: entity_type must not be NULL', p_fn
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'expected workout or workout_scheduled';
    END IF;
    IF p_entity_type NOT IN ('workout', 'workout_scheduled') THEN
        RAISE EXCEPTION '%: unknown entity_type "%"', p_fn, p_entity_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'expected workout or workout_scheduled';
    END IF;
END $$;

CREATE FUNCTION wsync__check_provider(p_fn text, p_provider text)
RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_provider IS NULL THEN
        RAISE EXCEPTION '%: provider must not be NULL', p_fn
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM sync_providers WHERE name = p_provider) THEN
        RAISE EXCEPTION '%: unknown provider "%"', p_fn, p_provider
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'providers are the rows of sync_providers; wsyncd registers '
                         'each loaded plugin instance there at start';
    END IF;
END $$;

-- ---- enabled ---------------------------------------------------------------

-- The provider is registered and enabled, and the user connected it with
-- uploads on.  needs_reconnect does not count: changes made while a user
-- must reconnect are still queued (they fail with auth_error and are
-- re-queued with wsync_retry_failed after the user reconnects).
-- wsync__enabled is the inlinable form the other functions use.
CREATE FUNCTION wsync__enabled(p_user_id uuid, p_provider text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1
          FROM sync_providers p
          JOIN provider_tokens t ON t.provider = p.name
         WHERE p.name = p_provider AND p.enabled
           AND t.user_id = p_user_id AND t.upload_workouts_enabled)
$$;

CREATE FUNCTION wsync_provider_enabled(p_user_id uuid, p_provider text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT wsync__enabled(p_user_id, p_provider)
$$;

-- ---- coalescing ------------------------------------------------------------

-- The operation a pending entry should carry after `p_new` arrives.
-- p_old NULL = no pending entry yet.  p_link: a link exists (the provider
-- holds the object); p_in_flight: a claimed create/update is running or
-- waiting for a retry (the provider may hold the object soon).
CREATE FUNCTION wsync__fold(p_old text, p_new text, p_link boolean, p_in_flight boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_new = 'delete' THEN 'delete'
        -- The provider has never seen it: an update has to create it.
        WHEN p_old IS NULL AND p_new = 'update' AND NOT (p_link OR p_in_flight)
            THEN 'create'
        WHEN p_old IS NULL THEN p_new
        WHEN p_new = 'update' THEN p_old
        -- p_new = 'create' after a pending create, update or delete
        WHEN p_old = 'create' THEN 'create'
        WHEN p_link THEN 'update'
        -- Not linked yet: create, which the engine turns into an update if a
        -- link exists by the time it runs.
        ELSE 'create'
    END
$$;

-- Enqueue for one provider, arguments already checked, without looking at
-- "enabled".  p_hint_id: a provider id known from elsewhere (a failed
-- delete being retried after its link went away).  Returns the number of
-- queue rows written: 1 when an entry was inserted, folded or cancelled,
-- 0 when nothing needed doing.
CREATE FUNCTION wsync__enqueue_one(p_user_id uuid, p_entity_type text, p_entity_id uuid,
                                   p_operation text, p_provider text,
                                   p_hint_id text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_link text;
    v_in_flight boolean;
BEGIN
    FOR v_pass IN 1..2 LOOP
        -- The link's provider id and whether a create/update is in flight
        -- (claimed, running or waiting for a retry), read in one statement
        -- so that a worker committing in between cannot hide both.
        SELECT (SELECT l.provider_entity_id FROM workout_sync_links l
                 WHERE l.provider = p_provider AND l.entity_type = p_entity_type
                   AND l.entity_id = p_entity_id),
               EXISTS (SELECT 1 FROM workout_sync_queue q
                        WHERE q.entity_type = p_entity_type AND q.entity_id = p_entity_id
                          AND q.provider = p_provider AND q.processed_at IS NULL
                          AND q.locked_until IS NOT NULL
                          AND q.operation IN ('create', 'update'))
          INTO v_link, v_in_flight;
        v_link := coalesce(v_link, p_hint_id);
        EXIT WHEN p_operation <> 'delete' OR v_link IS NOT NULL OR v_in_flight;
        IF v_pass = 2 THEN
            RETURN 0;
        END IF;
        -- A delete the provider never saw: drop what is pending for it.
        DELETE FROM workout_sync_queue
         WHERE entity_type = p_entity_type AND entity_id = p_entity_id
           AND provider = p_provider
           AND processed_at IS NULL AND locked_until IS NULL;
        IF FOUND THEN
            RETURN 1;
        END IF;
        -- Nothing was pending, or a worker claimed the pending create just
        -- before our DELETE: look again (a new statement, a new snapshot).
    END LOOP;

    -- A concurrent claim of the conflicting row takes it out of the partial
    -- index; ON CONFLICT then retries and inserts a new row behind it.
    INSERT INTO workout_sync_queue AS q
           (user_id, entity_type, entity_id, operation, provider, provider_entity_id)
    VALUES (p_user_id, p_entity_type, p_entity_id,
            wsync__fold(NULL, p_operation, v_link IS NOT NULL, v_in_flight), p_provider,
            CASE WHEN p_operation = 'delete' THEN v_link END)
    ON CONFLICT (entity_type, entity_id, provider)
       WHERE processed_at IS NULL AND locked_until IS NULL
    DO UPDATE SET
        operation = wsync__fold(q.operation, p_operation, v_link IS NOT NULL, v_in_flight),
        provider_entity_id =
            CASE WHEN wsync__fold(q.operation, p_operation, v_link IS NOT NULL,
                                  v_in_flight) = 'delete'
                 THEN coalesce(EXCLUDED.provider_entity_id, q.provider_entity_id) END,
        user_id = EXCLUDED.user_id,
        updated_at = now();

    -- Delivered at commit, once per provider per transaction (PostgreSQL
    -- folds identical notifications), never for a rolled-back change.
    PERFORM pg_notify('wsync_queue', p_provider);
    RETURN 1;
END $$;

-- ---- public enqueue ----------------------------------------------------------

-- Enqueue for one provider.  Returns 0 without queuing anything when the
-- provider is not enabled for the user (see wsync_provider_enabled).
CREATE FUNCTION wsync_enqueue(p_user_id uuid, p_entity_type text, p_entity_id uuid,
                              p_operation text, p_provider text)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM wsync__check_args('wsync_enqueue', p_user_id, p_entity_type, p_entity_id,
                              p_operation);
    PERFORM wsync__check_provider('wsync_enqueue', p_provider);
    IF NOT wsync__enabled(p_user_id, p_provider) THEN
        RETURN 0;
    END IF;
    RETURN wsync__enqueue_one(p_user_id, p_entity_type, p_entity_id, p_operation,
                              p_provider);
END $$;

-- Every provider enabled for the user, arguments already checked.
CREATE FUNCTION wsync__enqueue_all(p_user_id uuid, p_entity_type text, p_entity_id uuid,
                                   p_operation text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_provider text;
    v_n integer := 0;
BEGIN
    -- Name order: two transactions enqueueing for the same entity take
    -- their row locks in the same order and cannot deadlock.
    FOR v_provider IN
        SELECT p.name
          FROM sync_providers p
          JOIN provider_tokens t ON t.provider = p.name
         WHERE p.enabled AND t.user_id = p_user_id AND t.upload_workouts_enabled
         ORDER BY p.name
    LOOP
        v_n := v_n + wsync__enqueue_one(p_user_id, p_entity_type, p_entity_id,
                                        p_operation, v_provider);
    END LOOP;
    RETURN v_n;
END $$;

-- Enqueue for every provider enabled for the user (the seed's router).
-- Returns the number of queue rows written over all providers.
CREATE FUNCTION wsync_enqueue(p_user_id uuid, p_entity_type text, p_entity_id uuid,
                              p_operation text)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM wsync__check_args('wsync_enqueue', p_user_id, p_entity_type, p_entity_id,
                              p_operation);
    RETURN wsync__enqueue_all(p_user_id, p_entity_type, p_entity_id, p_operation);
END $$;

-- ---- triggers ------------------------------------------------------------------

-- The application turns the triggers off for a transaction with
--   SET LOCAL wsync.triggers = off;
-- (or for a role / database with ALTER ROLE ... SET wsync.triggers = off)
-- and then calls wsync_enqueue itself.
CREATE FUNCTION wsync__triggers_on()
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(lower(current_setting('wsync.triggers', true)), 'on')
           NOT IN ('off', 'false', 'no', '0')
$$;

-- One function for both tables: TG_ARGV[0] is the entity type; both tables
-- have id and user_id.  The WHEN clauses of the UPDATE triggers decide what
-- counts as a change.
CREATE FUNCTION wsync__entity_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT wsync__triggers_on() THEN
        RETURN NULL;
    END IF;
    -- The arguments are valid by construction (NOT NULL columns, a fixed
    -- entity type), so skip wsync_enqueue's checks: this runs once per row.
    IF TG_OP = 'INSERT' THEN
        PERFORM wsync__enqueue_all(NEW.user_id, TG_ARGV[0], NEW.id, 'create');
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM wsync__enqueue_all(NEW.user_id, TG_ARGV[0], NEW.id, 'update');
    ELSE
        -- A delete is queued only where the provider has the object (link
        -- or in-flight create); a pending create is cancelled.
        PERFORM wsync__enqueue_all(OLD.user_id, TG_ARGV[0], OLD.id, 'delete');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER wsync_workouts_insert
    AFTER INSERT ON workouts
    FOR EACH ROW EXECUTE FUNCTION wsync__entity_trigger('workout');
-- Providers show the name, description and sport as well as the steps, so a
-- change to any of them is an update; updated_at alone is not.
CREATE TRIGGER wsync_workouts_update
    AFTER UPDATE ON workouts
    FOR EACH ROW
    WHEN (OLD.workout_text IS DISTINCT FROM NEW.workout_text
       OR OLD.name IS DISTINCT FROM NEW.name
       OR OLD.description IS DISTINCT FROM NEW.description
       OR OLD.sport IS DISTINCT FROM NEW.sport)
    EXECUTE FUNCTION wsync__entity_trigger('workout');
CREATE TRIGGER wsync_workouts_delete
    AFTER DELETE ON workouts
    FOR EACH ROW EXECUTE FUNCTION wsync__entity_trigger('workout');

CREATE TRIGGER wsync_workouts_scheduled_insert
    AFTER INSERT ON workouts_scheduled
    FOR EACH ROW EXECUTE FUNCTION wsync__entity_trigger('workout_scheduled');
CREATE TRIGGER wsync_workouts_scheduled_update
    AFTER UPDATE ON workouts_scheduled
    FOR EACH ROW
    WHEN (OLD.scheduled_date IS DISTINCT FROM NEW.scheduled_date
       OR OLD.scheduled_time IS DISTINCT FROM NEW.scheduled_time
       OR OLD.workout_id IS DISTINCT FROM NEW.workout_id)
    EXECUTE FUNCTION wsync__entity_trigger('workout_scheduled');
CREATE TRIGGER wsync_workouts_scheduled_delete
    AFTER DELETE ON workouts_scheduled
    FOR EACH ROW EXECUTE FUNCTION wsync__entity_trigger('workout_scheduled');

-- ---- status --------------------------------------------------------------------

-- One row per registered provider (or just p_provider).  The "current
-- entry" is the oldest unprocessed entry (the one the engine works on next)
-- or, when nothing is pending, the newest processed one.  state:
--   pending       the current entry is unprocessed and has not failed
--   retrying      the current entry is unprocessed and its last attempt
--                 failed (error_type says why; next_retry_at says when)
--   failed        nothing pending; the newest processed entry failed
--                 permanently (record_not_found, auth_error, invalid_*, or
--                 retries exhausted)
--   synced        nothing pending, the newest entry succeeded, and the
--                 provider holds the object (a link exists)
--   never_synced  nothing pending, nothing failed, no link: the provider has
--                 never had the object (or it was deleted there)
-- synced/pending/failed are the seed's booleans: synced = state 'synced';
-- pending = state 'pending' or 'retrying'; failed = state 'failed'.
-- enabled: wsync_provider_enabled() for the entity's user (from the entity
-- row, else the newest queue entry, else the link; false when unknown).
CREATE FUNCTION wsync_sync_status(p_entity_type text, p_entity_id uuid,
                                  p_provider text DEFAULT NULL)
RETURNS TABLE (provider text, state text, synced boolean, pending boolean,
               failed boolean, enabled boolean, user_id uuid, operation text,
               error_type text, error_message text, last_attempt timestamptz,
               next_retry_at timestamptz, retry_count integer,
               provider_entity_id text, queue_id uuid)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    PERFORM wsync__check_entity_type('wsync_sync_status', p_entity_type);
    IF p_entity_id IS NULL THEN
        RAISE EXCEPTION 'wsync_sync_status: entity_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_provider IS NOT NULL THEN
        PERFORM wsync__check_provider('wsync_sync_status', p_provider);
    END IF;
    RETURN QUERY
    WITH owner AS (
        SELECT coalesce(
            (SELECT w.user_id FROM workouts w
              WHERE p_entity_type = 'workout' AND w.id = p_entity_id),
            (SELECT s.user_id FROM workouts_scheduled s
              WHERE p_entity_type = 'workout_scheduled' AND s.id = p_entity_id),
            (SELECT q.user_id FROM workout_sync_queue q
              WHERE q.entity_type = p_entity_type AND q.entity_id = p_entity_id
              ORDER BY q.seq DESC LIMIT 1),
            (SELECT l.user_id FROM workout_sync_links l
              WHERE l.entity_type = p_entity_type AND l.entity_id = p_entity_id
              LIMIT 1)) AS uid
    ), cur AS (
        SELECT sp.name AS prov, l.provider_entity_id AS link_id, e.*, att.last_at
          FROM sync_providers sp
          LEFT JOIN workout_sync_links l
                 ON l.provider = sp.name AND l.entity_type = p_entity_type
                AND l.entity_id = p_entity_id
          LEFT JOIN LATERAL (
                SELECT q.id AS qid, q.operation AS op, q.error_type AS etype,
                       q.error_message AS emsg, q.retry_count AS retries,
                       q.next_retry_at AS next_at, q.processed_at IS NULL AS open
                  FROM workout_sync_queue q
                 WHERE q.entity_type = p_entity_type AND q.entity_id = p_entity_id
                   AND q.provider = sp.name
                 ORDER BY q.processed_at IS NULL DESC,
                          CASE WHEN q.processed_at IS NULL THEN q.seq ELSE -q.seq END
                 LIMIT 1) e ON true
          LEFT JOIN LATERAL (
                SELECT max(coalesce(q.last_attempt_at, q.processed_at)) AS last_at
                  FROM workout_sync_queue q
                 WHERE q.entity_type = p_entity_type AND q.entity_id = p_entity_id
                   AND q.provider = sp.name) att ON true
         WHERE p_provider IS NULL OR sp.name = p_provider
    ), st AS (
        SELECT c.*, CASE
                WHEN c.open AND c.etype IS NOT NULL THEN 'retrying'
                WHEN c.open THEN 'pending'
                WHEN c.etype IS NOT NULL THEN 'failed'
                WHEN c.link_id IS NOT NULL THEN 'synced'
                ELSE 'never_synced' END AS s
          FROM cur c
    )
    SELECT st.prov, st.s, st.s = 'synced', st.s IN ('pending', 'retrying'),
           st.s = 'failed',
           coalesce(wsync__enabled(o.uid, st.prov), false), o.uid,
           st.op,
           CASE WHEN st.s IN ('retrying', 'failed') THEN st.etype END,
           CASE WHEN st.s IN ('retrying', 'failed') THEN st.emsg END,
           st.last_at,
           CASE WHEN st.open THEN st.next_at END,
           coalesce(st.retries, 0), st.link_id, st.qid
      FROM st CROSS JOIN owner o
     ORDER BY st.prov;
END $$;

-- ---- retry -------------------------------------------------------------------

-- Re-queue one permanently failed entry.  The failed row stays as history;
-- a fresh entry goes through wsync_enqueue's rules (coalescing, "enabled"),
-- so the engine does what the entity needs now, after any later changes.
-- Returns the number of queue rows written (0: provider not enabled for
-- the user, or a delete whose object is already gone).
CREATE FUNCTION wsync_retry(p_queue_id uuid)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r workout_sync_queue%ROWTYPE;
BEGIN
    IF p_queue_id IS NULL THEN
        RAISE EXCEPTION 'wsync_retry: queue_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO r FROM workout_sync_queue WHERE id = p_queue_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'wsync_retry: no queue entry %', p_queue_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF r.processed_at IS NULL THEN
        RAISE EXCEPTION 'wsync_retry: entry % is still pending', p_queue_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'only permanently failed entries are re-queued';
    END IF;
    IF r.error_type IS NULL THEN
        RAISE EXCEPTION 'wsync_retry: entry % succeeded; nothing to retry', p_queue_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT wsync__enabled(r.user_id, r.provider) THEN
        RETURN 0;
    END IF;
    RETURN wsync__enqueue_one(r.user_id, r.entity_type, r.entity_id, r.operation,
                              r.provider,
                              CASE WHEN r.operation = 'delete' THEN r.provider_entity_id END);
END $$;

-- Re-queue every current permanent failure of a user on a provider (after
-- the user reconnected, say).  "Current": the failed entry is the newest
-- entry of its entity on that provider, so a failure already superseded by
-- a later entry is not repeated, and running this twice queues nothing
-- new.  record_not_found is skipped: the entity no longer exists.
CREATE FUNCTION wsync_retry_failed(p_user_id uuid, p_provider text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_n integer := 0;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'wsync_retry_failed: user_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM wsync__check_provider('wsync_retry_failed', p_provider);
    IF NOT wsync__enabled(p_user_id, p_provider) THEN
        RETURN 0;
    END IF;
    FOR r IN
        SELECT q.* FROM workout_sync_queue q
         WHERE q.user_id = p_user_id AND q.provider = p_provider
           AND q.processed_at IS NOT NULL AND q.error_type IS NOT NULL
           AND q.error_type <> 'record_not_found'
           AND NOT EXISTS (SELECT 1 FROM workout_sync_queue n
                            WHERE n.entity_type = q.entity_type
                              AND n.entity_id = q.entity_id
                              AND n.provider = q.provider AND n.seq > q.seq)
         ORDER BY q.seq
    LOOP
        v_n := v_n + wsync__enqueue_one(r.user_id, r.entity_type, r.entity_id,
                                        r.operation, r.provider,
                                        CASE WHEN r.operation = 'delete'
                                             THEN r.provider_entity_id END);
    END LOOP;
    RETURN v_n;
END $$;

-- ---- ISO-8601 for reports ------------------------------------------------------

CREATE FUNCTION wsync_iso8601(p_ts timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(p_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- ---- pin search_path -------------------------------------------------------------

-- Triggers fire in the application's sessions, whose search_path may differ
-- from the one this migration ran with: pin the entry points (public
-- functions and the trigger function) to the schema the tables were created
-- in.  The wsync__* helpers run inside them and inherit it; leaving them
-- unpinned keeps them inlinable and cheap (a SET clause costs a GUC save and
-- restore per call, which matters in a per-row trigger).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = current_schema()::regnamespace
           AND p.proname IN ('wsync_provider_enabled', 'wsync_enqueue',
                             'wsync__entity_trigger', 'wsync_sync_status',
                             'wsync_retry', 'wsync_retry_failed')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp',
                       f, current_schema());
    END LOOP;
END $$;
