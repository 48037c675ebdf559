-- 0013_lean_enqueue.sql: what an application's INSERT of workouts pays for
-- each queue row, cut by a sixth, and fewer index entries per entry.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- Measured (bench/side_by_side.sh's enqueue: one INSERT of 20,000 workouts,
-- 1,000 users, one provider; best of four on the 2-core VM): 362 ms with
-- 0012, 299 ms with this file, against 84 ms for the same INSERT without
-- the triggers.  Profiled, two thirds of the triggers' time went into the
-- queue's index insertions and a per-row foreign-key check.
--
-- 1. The foreign keys from workout_sync_queue.provider and
--    workout_sync_links.provider to sync_providers(name) become
--    statement-level checks.  A foreign key runs one lookup per inserted
--    row (20,000 for that INSERT); a statement-level trigger checks the
--    statement's distinct providers once.  The rule is the same, with the
--    same SQLSTATE (23503 foreign_key_violation), checked at the end of the
--    statement as before:
--      * a queue or link row must name a provider of sync_providers
--        (INSERT, and an UPDATE that sets provider);
--      * a sync_providers row cannot be deleted, or renamed, while a queue
--        or link row names it (NO ACTION, as before; wsync never deletes
--        one: wsync_provider_set_disabled() and the registration of 0007
--        disable), and sync_providers cannot be truncated while the queue
--        or the links have rows (SQLSTATE 0A000, as PostgreSQL's own
--        refusal; TRUNCATE ... CASCADE no longer empties them with it).
-- 2. workout_sync_queue_user_provider_idx (user_id, provider), on every
--    row, served only wsync_retry_failed(user, provider), which reads
--    failed rows.  It becomes a partial index of those rows: the hot path
--    (enqueue, claim, intent, outcome) no longer maintains it.
-- 3. workout_sync_queue gets fillfactor 70.  Each entry is updated three
--    times in its life (claim, intent, outcome).  The intent changes no
--    indexed column, so with room on its page it is a HOT update: no new
--    index entries (four before).  Measured on the benchmark's drain: the
--    intent statement's time -11 %, the outcome's -12 %.  The room costs
--    disk: a page holds 30 % fewer rows (new pages only; existing pages
--    are not rewritten).
--
-- CREATE INDEX reads the whole queue and blocks writes to it meanwhile
-- (seconds per million rows): run the migration when wsyncd is stopped or
-- the queue is small, as for any migration.

ALTER TABLE workout_sync_queue DROP CONSTRAINT workout_sync_queue_provider_fkey;
ALTER TABLE workout_sync_links DROP CONSTRAINT workout_sync_links_provider_fkey;

-- The first provider of new_rows that sync_providers lacks: an error.
CREATE FUNCTION wsync__provider_ref_check()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_bad text;
BEGIN
    SELECT n.provider INTO v_bad
      FROM (SELECT DISTINCT r.provider FROM new_rows r) n
     WHERE NOT EXISTS (SELECT 1 FROM sync_providers p WHERE p.name = n.provider)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "%" names provider %, which is not in sync_providers',
            TG_TABLE_NAME, coalesce(quote_literal(v_bad), 'NULL')
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END $$;

-- The same for one row whose provider an UPDATE changes (PostgreSQL has no
-- transition table for a trigger on a column list).  Only an UPDATE that
-- sets provider runs it: wsyncd's never do.
CREATE FUNCTION wsync__provider_ref_check_row()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM sync_providers p WHERE p.name = NEW.provider) THEN
        RAISE EXCEPTION 'insert or update on table "%" names provider %, which is not in sync_providers',
            TG_TABLE_NAME, coalesce(quote_literal(NEW.provider), 'NULL')
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER wsync_queue_provider_insert AFTER INSERT ON workout_sync_queue
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__provider_ref_check();
CREATE TRIGGER wsync_queue_provider_update AFTER UPDATE OF provider ON workout_sync_queue
    FOR EACH ROW WHEN (OLD.provider IS DISTINCT FROM NEW.provider)
    EXECUTE FUNCTION wsync__provider_ref_check_row();
CREATE TRIGGER wsync_links_provider_insert AFTER INSERT ON workout_sync_links
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__provider_ref_check();
CREATE TRIGGER wsync_links_provider_update AFTER UPDATE OF provider ON workout_sync_links
    FOR EACH ROW WHEN (OLD.provider IS DISTINCT FROM NEW.provider)
    EXECUTE FUNCTION wsync__provider_ref_check_row();

-- A provider name that left sync_providers (deleted or renamed) while a
-- queue or link row still names it: an error.
CREATE FUNCTION wsync__provider_ref_keep()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_gone text;
BEGIN
    SELECT o.name INTO v_gone
      FROM (SELECT DISTINCT r.name FROM old_rows r) o
     WHERE NOT EXISTS (SELECT 1 FROM sync_providers p WHERE p.name = o.name)
       AND (EXISTS (SELECT 1 FROM workout_sync_queue q WHERE q.provider = o.name)
            OR EXISTS (SELECT 1 FROM workout_sync_links l WHERE l.provider = o.name))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'update or delete on table "sync_providers" removes provider %, which workout_sync_queue or workout_sync_links still names',
            quote_literal(v_gone)
            USING ERRCODE = 'foreign_key_violation', TABLE = 'sync_providers';
    END IF;
    RETURN NULL;
END $$;

-- The same for one renamed provider.
CREATE FUNCTION wsync__provider_ref_keep_row()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM workout_sync_queue q WHERE q.provider = OLD.name)
       OR EXISTS (SELECT 1 FROM workout_sync_links l WHERE l.provider = OLD.name) THEN
        RAISE EXCEPTION 'update or delete on table "sync_providers" removes provider %, which workout_sync_queue or workout_sync_links still names',
            quote_literal(OLD.name)
            USING ERRCODE = 'foreign_key_violation', TABLE = 'sync_providers';
    END IF;
    RETURN NULL;
END $$;

-- TRUNCATE fires no DELETE trigger; with the foreign keys it was refused
-- while the queue or the links had rows, and so it stays.
CREATE FUNCTION wsync__provider_ref_truncate()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM workout_sync_queue) OR EXISTS (SELECT 1 FROM workout_sync_links) THEN
        RAISE EXCEPTION 'cannot truncate sync_providers: workout_sync_queue or workout_sync_links has rows that name its providers'
            USING ERRCODE = 'feature_not_supported', TABLE = 'sync_providers';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER wsync_providers_truncate BEFORE TRUNCATE ON sync_providers
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__provider_ref_truncate();
CREATE TRIGGER wsync_providers_delete AFTER DELETE ON sync_providers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wsync__provider_ref_keep();
CREATE TRIGGER wsync_providers_rename AFTER UPDATE OF name ON sync_providers
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION wsync__provider_ref_keep_row();

ALTER TABLE workout_sync_queue SET (fillfactor = 70);

DROP INDEX workout_sync_queue_user_provider_idx;
CREATE INDEX workout_sync_queue_failed_user_idx
    ON workout_sync_queue (user_id, provider)
    WHERE processed_at IS NOT NULL AND error_type IS NOT NULL;

-- ---- pin search_path (as 0002 and 0007 do) ---------------------------------------
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = current_schema()::regnamespace
           AND p.proname IN ('wsync__provider_ref_check', 'wsync__provider_ref_keep',
                             'wsync__provider_ref_check_row', 'wsync__provider_ref_keep_row',
                             'wsync__provider_ref_truncate')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp',
                       f, current_schema());
    END LOOP;
END $$;
