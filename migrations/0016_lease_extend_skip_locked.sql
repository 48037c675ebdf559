-- 0016_lease_extend_skip_locked.sql: the heartbeat's lease extension never
-- waits for a row lock, so it can no longer deadlock with wsyncd's own
-- writer or starter.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- wsync_lease_extend() (0005) updated every held row in the order of its
-- arrays.  The writer's outcome and the starter's intent statements update
-- some of the same rows in their own orders, so two of them could each hold
-- a row the other waited for: PostgreSQL broke the cycle after
-- deadlock_timeout (1 s of a stalled writer) by failing one of them (seen
-- as "heartbeat: cannot extend leases: ERROR: deadlock detected" during a
-- benchmark drain).  Now the rows are locked with SKIP LOCKED first: a row
-- another transaction is updating right then is being written (its
-- outcome) or started (its intent, which the next heartbeat extends, a
-- third of a lease later), and is left alone.  Same signature and result:
-- the number of leases extended.

CREATE OR REPLACE FUNCTION wsync_lease_extend(p_ids uuid[], p_leases bigint[],
                                              p_lease_seconds integer)
RETURNS integer LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    v_n integer;
BEGIN
    UPDATE workout_sync_queue q
       SET locked_until = now() + make_interval(secs => p_lease_seconds)
     WHERE q.ctid = ANY (ARRAY(
           SELECT l.ctid FROM workout_sync_queue l, unnest(p_ids, p_leases) AS i(id, lease)
            WHERE l.id = i.id AND l.lease_token = i.lease AND l.processed_at IS NULL
              FOR NO KEY UPDATE OF l SKIP LOCKED));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END $$;

-- Pinned like the other public functions (CREATE OR REPLACE keeps only the
-- SET clauses it names).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION wsync_lease_extend(uuid[], bigint[], integer) '
                   'SET search_path = %I, pg_temp', current_schema());
END $$;
