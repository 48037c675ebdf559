-- 0014_enqueue_fast_path.sql: an application's INSERT of new workouts pays
-- for one plain INSERT into the queue, and each queue row for one index
-- entry fewer.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- Measured (bench/side_by_side.sh's enqueue: one INSERT of 20,000 workouts,
-- 1,000 users, one provider; best of three on the 2-core VM): 311 ms with
-- 0013, 241 ms with this file, against 92 ms for the same INSERT without
-- the triggers (3.4x -> 2.6x).
--
-- 1. Creates take a fast path.  A create of a new entity almost never
--    meets a pending entry of the same entity and provider (only an entity
--    deleted and inserted again under the same id while its delete waits),
--    so wsync__enqueue_set first tries a plain INSERT of all the rows in a
--    subtransaction.  If one of them does meet one, the coalescing index
--    raises unique_violation, the subtransaction is rolled back and the
--    rows go through the folding path of 0006 (renamed
--    wsync__enqueue_folding), with the same result as before.  The plain
--    INSERT skips what only folding needs: ON CONFLICT's speculative
--    insertion, the link and in-flight probes and the RETURNING rows.
--    Rows are inserted in provider, entity order, as the folding path
--    locks them, so the two paths cannot deadlock each other.
-- 2. The wake-up moves to the queue: the statement-level AFTER INSERT
--    trigger that checks the providers of the new rows (0013) also sends
--    pg_notify('wsync_queue', provider) for each of them, so every writer
--    of queue rows wakes wsyncd.  The folding path still notifies for the
--    rows it folds into; PostgreSQL delivers one notification per channel
--    and payload per transaction, at commit.
-- 3. One per-entity index instead of two.  workout_sync_queue_entity_idx
--    (entity, provider, seq; pending rows) and _entity_all_idx (the same
--    columns, every row) become workout_sync_queue_entity_open_idx on
--    (entity_type, entity_id, provider, (processed_at IS NULL), seq).  The
--    claim's probes ("an older pending entry of this entity") name
--    processed_at IS NULL, which PostgreSQL matches to the boolean column,
--    so they read pending entries only, as before; the reports and
--    wsync_sync_status read all of an entity's rows through the first
--    three columns.  An insertion, a claim and an outcome each write one
--    index entry fewer.
--
-- CREATE INDEX reads the whole queue and blocks writes to it meanwhile
-- (seconds per million rows): run the migration when wsyncd is stopped or
-- the queue is small, as for any migration.

ALTER FUNCTION wsync__enqueue_set(text, text, uuid[], uuid[], text[], text[])
    RENAME TO wsync__enqueue_folding;

-- Same arguments, rules and result as 0006's wsync__enqueue_set, which is
-- now wsync__enqueue_folding: every caller (the triggers, wsync_enqueue,
-- the retries, the re-syncs of schedules, the backfill) comes through here.
CREATE FUNCTION wsync__enqueue_set(p_entity_type text, p_operation text,
                                   p_user_ids uuid[], p_entity_ids uuid[],
                                   p_providers text[] DEFAULT NULL,
                                   p_hint_ids text[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    IF p_operation = 'create' AND coalesce(cardinality(p_entity_ids), 0) > 0 THEN
        BEGIN
            -- The entries of wsync__enqueue_folding's src: the given
            -- providers, else every provider enabled for the user.
            INSERT INTO workout_sync_queue
                   (user_id, entity_type, entity_id, operation, provider)
            SELECT s.user_id, p_entity_type, s.entity_id, 'create', s.provider
              FROM (SELECT s.user_id, s.entity_id, s.provider
                      FROM unnest(p_user_ids, p_entity_ids, p_providers)
                           AS s(user_id, entity_id, provider)
                     WHERE p_providers IS NOT NULL
                    UNION ALL
                    SELECT s.user_id, s.entity_id, p.name
                      FROM unnest(p_user_ids, p_entity_ids) AS s(user_id, entity_id)
                      JOIN provider_tokens t
                        ON t.user_id = s.user_id AND t.upload_workouts_enabled
                      JOIN sync_providers p ON p.name = t.provider AND p.enabled
                     WHERE p_providers IS NULL) s
             ORDER BY s.provider, s.entity_id;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            RETURN v_n;
        EXCEPTION WHEN unique_violation THEN
            -- A pending entry to fold into: nothing of the INSERT is left.
            NULL;
        END;
    END IF;
    RETURN wsync__enqueue_folding(p_entity_type, p_operation, p_user_ids, p_entity_ids,
                                  p_providers, p_hint_ids);
END $$;

-- 0013's check of the new rows' providers, which also wakes wsyncd when
-- the new rows are queue entries (TG_ARGV[0] = 'notify').
CREATE OR REPLACE FUNCTION wsync__provider_ref_check()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_providers text[];
    v_bad text;
BEGIN
    SELECT array_agg(DISTINCT r.provider) INTO v_providers FROM new_rows r;
    SELECT n.provider INTO v_bad
      FROM unnest(v_providers) AS n(provider)
     WHERE NOT EXISTS (SELECT 1 FROM sync_providers p WHERE p.name = n.provider)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "%" names provider %, which is not in sync_providers',
            TG_TABLE_NAME, coalesce(quote_literal(v_bad), 'NULL')
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    IF TG_NARGS > 0 AND TG_ARGV[0] = 'notify' THEN
        -- Delivered at commit, never for a rolled-back insert.
        PERFORM pg_notify('wsync_queue', x) FROM unnest(v_providers) AS x;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER wsync_queue_provider_insert ON workout_sync_queue;
CREATE TRIGGER wsync_queue_provider_insert AFTER INSERT ON workout_sync_queue
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__provider_ref_check('notify');

DROP INDEX workout_sync_queue_entity_idx;
DROP INDEX workout_sync_queue_entity_all_idx;
CREATE INDEX workout_sync_queue_entity_open_idx
    ON workout_sync_queue (entity_type, entity_id, provider, (processed_at IS NULL), seq);

-- ---- pin search_path (as 0013 does; CREATE OR REPLACE drops the SET clause) ----
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION wsync__provider_ref_check() SET search_path = %I, pg_temp',
                   current_schema());
END $$;
