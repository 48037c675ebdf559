-- 0006_bulk_enqueue.sql: set-based enqueue.  The sync triggers become
-- statement-level triggers with transition tables, and every enqueue, one
-- entity or twenty thousand, goes through one set-based function.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- Why: the row-level triggers of 0002/0004 ran wsync__enqueue_one's
-- statements once per row and provider, so one INSERT of 20,000 workouts
-- took 20 s where the INSERT alone takes 0.6 s (bench/enqueue.sh).  Now a
-- statement's rows are enqueued by one INSERT ... ON CONFLICT for all
-- of them, and one pg_notify per provider per statement.
--
-- The rules are those of 0002 (the coalescing table there) and 0004, per
-- (entity, provider), unchanged:
--   * an INSERT queues a create, an UPDATE that changes what providers show
--     (workouts: workout_text, name, description, sport; workouts_scheduled:
--     scheduled_date, scheduled_time, workout_id) an update, a DELETE a
--     delete, for every provider enabled for the row's user;
--   * a workout update re-queues its upcoming (today UTC or later) scheduled
--     workouts on each provider that holds them (wsync_resync_schedules);
--   * a delete of something no provider holds (no link, nothing in flight)
--     cancels the pending entry instead, costing no API call;
--   * an entry a worker claimed is never rewritten (the coalescing index
--     covers never-claimed pending rows only);
--   * SET LOCAL wsync.triggers = off turns them off;
--   * queue rows are locked in (provider, entity_id) order, the order of
--     0002's wsync__enqueue_all and 0004's resync, so concurrent enqueues
--     cannot deadlock on the queue.
-- The trigger names stay those of 0002.  Changing the id or user_id of an
-- existing row is not supported (as before: the provider object belongs to
-- the old id and user); an UPDATE pairs old and new rows by id.

-- ---- the set-based enqueue ---------------------------------------------------

-- Enqueue p_operation of p_entity_type for a set of entities, arguments
-- already checked.  Row i of the arrays is one entity: p_user_ids[i],
-- p_entity_ids[i], and
--   p_providers NULL      every provider enabled for the user (as
--                         wsync__enqueue_all);
--   p_providers[i]        that provider, without looking at "enabled" (as
--                         wsync__enqueue_one; callers check);
--   p_hint_ids[i]         for a delete: a provider id known from elsewhere (a
--                         failed delete retried after its link went away).
-- (entity, provider) pairs must be distinct (an ON CONFLICT statement cannot
-- touch one row twice); every caller passes rows of one table or one entity.
-- Returns the number of (entity, provider) entries inserted, folded or
-- cancelled, like the sum of wsync__enqueue_one over the rows.
CREATE FUNCTION wsync__enqueue_set(p_entity_type text, p_operation text,
                                   p_user_ids uuid[], p_entity_ids uuid[],
                                   p_providers text[] DEFAULT NULL,
                                   p_hint_ids text[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n integer := 0;
    v_k integer;
    v_notify text[];
    v_users uuid[] := p_user_ids;
    v_ids uuid[] := p_entity_ids;
    v_provs text[] := p_providers;
    v_hints text[] := p_hint_ids;
BEGIN
    IF coalesce(cardinality(p_entity_ids), 0) = 0 THEN
        RETURN 0;
    END IF;
    -- Pass 1 runs over every row; pass 2 only over deletes that pass 1 meant
    -- to cancel but whose pending entry a worker claimed meanwhile (as the
    -- two passes of 0002's wsync__enqueue_one).
    FOR v_pass IN 1..2 LOOP
        WITH src AS (
            SELECT s.user_id, s.entity_id, s.provider, s.hint
              FROM unnest(v_users, v_ids, v_provs, v_hints)
                   AS s(user_id, entity_id, provider, hint)
             WHERE v_provs IS NOT NULL
            UNION ALL
            SELECT s.user_id, s.entity_id, p.name, NULL::text
              FROM unnest(v_users, v_ids) AS s(user_id, entity_id)
              JOIN provider_tokens t
                ON t.user_id = s.user_id AND t.upload_workouts_enabled
              JOIN sync_providers p ON p.name = t.provider AND p.enabled
             WHERE v_provs IS NULL
        ), info AS (
            -- The link's provider id and whether a create/update is in flight
            -- (claimed, running or waiting for a retry), read in one
            -- statement so that a worker committing in between cannot hide
            -- both.  A create needs neither (wsync__fold(NULL, 'create')).
            SELECT s.user_id, s.entity_id, s.provider,
                   CASE WHEN p_operation <> 'create' THEN coalesce(
                       (SELECT l.provider_entity_id FROM workout_sync_links l
                         WHERE l.provider = s.provider AND l.entity_type = p_entity_type
                           AND l.entity_id = s.entity_id),
                       s.hint) END AS link,
                   CASE WHEN p_operation <> 'create' THEN EXISTS (
                       SELECT 1 FROM workout_sync_queue q
                        WHERE q.entity_type = p_entity_type AND q.entity_id = s.entity_id
                          AND q.provider = s.provider AND q.processed_at IS NULL
                          AND q.locked_until IS NOT NULL
                          AND q.operation IN ('create', 'update'))
                   ELSE false END AS in_flight
              FROM src s
        ), ins AS (
            -- A concurrent claim of the conflicting row takes it out of the
            -- partial index; ON CONFLICT then retries and inserts a new row
            -- behind it.  Rows are inserted (and conflicting rows locked) in
            -- provider, entity order.
            INSERT INTO workout_sync_queue AS q
                   (user_id, entity_type, entity_id, operation, provider,
                    provider_entity_id)
            SELECT i.user_id, p_entity_type, i.entity_id,
                   wsync__fold(NULL, p_operation, i.link IS NOT NULL, i.in_flight),
                   i.provider,
                   CASE WHEN p_operation = 'delete' THEN i.link END
              FROM info i
             WHERE p_operation <> 'delete' OR i.link IS NOT NULL OR i.in_flight
             ORDER BY i.provider, i.entity_id
            ON CONFLICT (entity_type, entity_id, provider)
               WHERE processed_at IS NULL AND locked_until IS NULL
            DO UPDATE SET
                -- wsync__fold(pending, new, link, in_flight): with a pending
                -- entry, in_flight does not matter and link only for a new
                -- create after a pending update or delete; it is read here,
                -- in the statement's snapshot, like info's.
                operation = wsync__fold(q.operation, p_operation,
                    CASE WHEN p_operation = 'create' AND q.operation <> 'create'
                         THEN EXISTS (SELECT 1 FROM workout_sync_links l
                                       WHERE l.provider = q.provider
                                         AND l.entity_type = q.entity_type
                                         AND l.entity_id = q.entity_id)
                         ELSE false END,
                    false),
                -- Whether the fold gives 'delete' does not depend on link.
                provider_entity_id =
                    CASE WHEN wsync__fold(q.operation, p_operation, false, false) = 'delete'
                         THEN coalesce(EXCLUDED.provider_entity_id, q.provider_entity_id) END,
                user_id = EXCLUDED.user_id,
                updated_at = now()
            RETURNING q.provider
        )
        SELECT (SELECT count(*) FROM ins),
               (SELECT array_agg(DISTINCT provider ORDER BY provider) FROM ins),
               -- Deletes the provider never saw: to cancel (pass 1) or
               -- nothing to do (pass 2).
               array_agg(i.user_id), array_agg(i.entity_id), array_agg(i.provider)
          INTO v_k, v_notify, v_users, v_ids, v_provs
          FROM info i
         WHERE p_operation = 'delete' AND i.link IS NULL AND NOT i.in_flight;
        v_n := v_n + v_k;

        -- Delivered at commit, once per provider per transaction (PostgreSQL
        -- folds identical notifications), never for a rolled-back change.
        PERFORM pg_notify('wsync_queue', x) FROM unnest(v_notify) AS x;

        EXIT WHEN v_ids IS NULL OR v_pass = 2;
        v_hints := NULL;

        -- A delete the provider never saw: drop what is pending for it.  Row
        -- locks in provider, entity order.  A row a worker claimed since
        -- pass 1 read fails the recheck of locked_until and stays; the rows
        -- left are looked at again in pass 2 (a new statement, a new
        -- snapshot), where the claim counts as in flight.
        WITH gone AS (
            DELETE FROM workout_sync_queue d
             WHERE d.id IN (
                SELECT q.id FROM workout_sync_queue q
                  JOIN unnest(v_ids, v_provs) AS c(entity_id, provider)
                    ON q.entity_type = p_entity_type AND q.entity_id = c.entity_id
                   AND q.provider = c.provider
                 WHERE q.processed_at IS NULL AND q.locked_until IS NULL
                 ORDER BY q.provider, q.entity_id
                   FOR UPDATE OF q)
            RETURNING d.entity_id, d.provider
        ), rest AS (
            SELECT c.user_id, c.entity_id, c.provider
              FROM unnest(v_users, v_ids, v_provs) AS c(user_id, entity_id, provider)
             WHERE NOT EXISTS (SELECT 1 FROM gone g
                                WHERE g.entity_id = c.entity_id AND g.provider = c.provider)
        )
        SELECT (SELECT count(*) FROM gone), array_agg(r.user_id), array_agg(r.entity_id),
               array_agg(r.provider)
          INTO v_k, v_users, v_ids, v_provs
          FROM rest r;
        v_n := v_n + v_k;
        EXIT WHEN v_ids IS NULL;
    END LOOP;
    RETURN v_n;
END $$;

-- The single-entity forms of 0002 now share it, so one implementation holds
-- the rules (wsync_enqueue, wsync_retry, wsync_retry_failed and
-- wsync_resync_schedules call these).
CREATE OR REPLACE FUNCTION wsync__enqueue_one(p_user_id uuid, p_entity_type text,
                                              p_entity_id uuid, p_operation text,
                                              p_provider text, p_hint_id text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN wsync__enqueue_set(p_entity_type, p_operation, ARRAY[p_user_id],
                              ARRAY[p_entity_id], ARRAY[p_provider], ARRAY[p_hint_id]);
END $$;

CREATE OR REPLACE FUNCTION wsync__enqueue_all(p_user_id uuid, p_entity_type text,
                                              p_entity_id uuid, p_operation text)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN wsync__enqueue_set(p_entity_type, p_operation, ARRAY[p_user_id],
                              ARRAY[p_entity_id]);
END $$;

-- ---- schedules of changed workouts (0004), set-based -----------------------------

-- Queue an update of every upcoming scheduled workout of p_workout_ids on
-- each provider that holds it (a link) and is enabled for its user;
-- p_provider NULL: every provider.  Returns the entries written.
CREATE FUNCTION wsync__resync_schedules_set(p_workout_ids uuid[], p_provider text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_users uuid[];
    v_ids uuid[];
    v_provs text[];
BEGIN
    SELECT array_agg(s.user_id), array_agg(s.id), array_agg(l.provider)
      INTO v_users, v_ids, v_provs
      FROM workouts_scheduled s
      JOIN workout_sync_links l
        ON l.entity_type = 'workout_scheduled' AND l.entity_id = s.id
      JOIN sync_providers p ON p.name = l.provider AND p.enabled
      JOIN provider_tokens t
        ON t.user_id = s.user_id AND t.provider = l.provider AND t.upload_workouts_enabled
     WHERE s.workout_id IN (SELECT unnest(p_workout_ids))
       AND (p_provider IS NULL OR l.provider = p_provider)
       AND s.scheduled_date >= (now() AT TIME ZONE 'UTC')::date;
    RETURN wsync__enqueue_set('workout_scheduled', 'update', v_users, v_ids, v_provs);
END $$;

CREATE OR REPLACE FUNCTION wsync_resync_schedules(p_workout_id uuid,
                                                  p_provider text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN wsync__resync_schedules_set(ARRAY[p_workout_id], p_provider);
END $$;

-- ---- statement-level triggers ------------------------------------------------------

-- INSERT and DELETE of either table: TG_ARGV[0] is the entity type; both
-- tables have id and user_id.  The transition table is new_rows or
-- old_rows.
CREATE FUNCTION wsync__insert_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_users uuid[];
    v_ids uuid[];
BEGIN
    IF NOT wsync__triggers_on() THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(n.user_id), array_agg(n.id) INTO v_users, v_ids FROM new_rows n;
    PERFORM wsync__enqueue_set(TG_ARGV[0], 'create', v_users, v_ids);
    RETURN NULL;
END $$;

-- A delete is queued only where the provider has the object (link or
-- in-flight create); a pending create is cancelled.
CREATE FUNCTION wsync__delete_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_users uuid[];
    v_ids uuid[];
BEGIN
    IF NOT wsync__triggers_on() THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(o.user_id), array_agg(o.id) INTO v_users, v_ids FROM old_rows o;
    PERFORM wsync__enqueue_set(TG_ARGV[0], 'delete', v_users, v_ids);
    RETURN NULL;
END $$;

-- Providers show the name, description and sport as well as the steps, so a
-- change to any of them is an update; updated_at alone is not.  A changed
-- workout's upcoming schedules follow (0004).
CREATE FUNCTION wsync__workouts_update_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_users uuid[];
    v_ids uuid[];
BEGIN
    IF NOT wsync__triggers_on() THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(n.user_id), array_agg(n.id) INTO v_users, v_ids
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE o.workout_text IS DISTINCT FROM n.workout_text
        OR o.name IS DISTINCT FROM n.name
        OR o.description IS DISTINCT FROM n.description
        OR o.sport IS DISTINCT FROM n.sport;
    IF v_ids IS NOT NULL THEN
        PERFORM wsync__enqueue_set('workout', 'update', v_users, v_ids);
        PERFORM wsync__resync_schedules_set(v_ids);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION wsync__workouts_scheduled_update_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_users uuid[];
    v_ids uuid[];
BEGIN
    IF NOT wsync__triggers_on() THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(n.user_id), array_agg(n.id) INTO v_users, v_ids
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE o.scheduled_date IS DISTINCT FROM n.scheduled_date
        OR o.scheduled_time IS DISTINCT FROM n.scheduled_time
        OR o.workout_id IS DISTINCT FROM n.workout_id;
    PERFORM wsync__enqueue_set('workout_scheduled', 'update', v_users, v_ids);
    RETURN NULL;
END $$;

-- Same names as 0002's row triggers, so applications that disable one by
-- name keep working.  (A transition table needs one trigger per event.)
DROP TRIGGER wsync_workouts_insert ON workouts;
DROP TRIGGER wsync_workouts_update ON workouts;
DROP TRIGGER wsync_workouts_delete ON workouts;
DROP TRIGGER wsync_workouts_scheduled_insert ON workouts_scheduled;
DROP TRIGGER wsync_workouts_scheduled_update ON workouts_scheduled;
DROP TRIGGER wsync_workouts_scheduled_delete ON workouts_scheduled;

CREATE TRIGGER wsync_workouts_insert
    AFTER INSERT ON workouts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__insert_trigger('workout');
CREATE TRIGGER wsync_workouts_update
    AFTER UPDATE ON workouts REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__workouts_update_trigger();
CREATE TRIGGER wsync_workouts_delete
    AFTER DELETE ON workouts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__delete_trigger('workout');

CREATE TRIGGER wsync_workouts_scheduled_insert
    AFTER INSERT ON workouts_scheduled REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__insert_trigger('workout_scheduled');
CREATE TRIGGER wsync_workouts_scheduled_update
    AFTER UPDATE ON workouts_scheduled REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__workouts_scheduled_update_trigger();
CREATE TRIGGER wsync_workouts_scheduled_delete
    AFTER DELETE ON workouts_scheduled REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__delete_trigger('workout_scheduled');

-- ---- pin search_path -------------------------------------------------------------

-- As 0002: the entry points that run in the application's sessions (the
-- trigger functions, and the public function replaced above; CREATE OR
-- REPLACE drops its SET clause) are pinned to this schema; the wsync__*
-- helpers inherit it.
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['wsync__insert_trigger()', 'wsync__delete_trigger()',
                             'wsync__workouts_update_trigger()',
                             'wsync__workouts_scheduled_update_trigger()',
                             'wsync_resync_schedules(uuid, text)']
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp',
                       f, current_schema());
    END LOOP;
END $$;
