-- 0005_exactly_once.sql: the intent before every provider call, and
-- attempts counted when a call starts rather than at claim.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- intent_at  set (durably) just before the entry's plugin call starts and
--            kept until the entry succeeds.  A claim that finds it set knows
--            an earlier call may have reached the provider (the process
--            died, the database went away, or the answer was ambiguous), so
--            the plugin is told to reconcile (look the object up by its
--            external key) before creating: exactly once toward providers
--            does not depend on a provider rejecting duplicates.
-- attempts   now the number of calls started (wsync_call_start), so a crash
--            costs an attempt only to the entry that was inside the plugin;
--            batch-mates that never started lose nothing.
ALTER TABLE workout_sync_queue ADD COLUMN intent_at timestamptz;

COMMENT ON COLUMN workout_sync_queue.intent_at IS
    'set before a provider call starts, cleared on success: a re-run reconciles first';
COMMENT ON COLUMN workout_sync_queue.attempts IS
    'provider calls started for this entry (counted at call start)';

-- Record that the calls of these claimed entries are starting.  Only rows
-- whose lease is still the caller's are touched; returns their ids.  The
-- commit is asynchronous (synchronous_commit = off for this transaction
-- only): it survives the process dying, which is what the intent guards
-- against, and costs no WAL flush on the hot path.  An OS crash may lose
-- the last fraction of a second of intents; the outcome commits that follow
-- are synchronous and flush every earlier intent with them.
CREATE OR REPLACE FUNCTION wsync_call_start(p_ids uuid[], p_leases bigint[])
RETURNS SETOF uuid LANGUAGE plpgsql
-- A session caches this function's plans; planned while the queue was
-- small they would scan it whole.  Probing by id is always right here.
SET enable_seqscan = off AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN QUERY
    UPDATE workout_sync_queue q
       SET intent_at = now(), attempts = q.attempts + 1,
           last_attempt_at = now(), updated_at = now()
      FROM unnest(p_ids, p_leases) AS i(id, lease)
     WHERE q.id = i.id AND q.lease_token = i.lease AND q.processed_at IS NULL
    RETURNING q.id;
END $$;

-- Extend the leases of entries a live process still holds (its heartbeat),
-- so a call that outlasts lease_seconds is never claimed twice, while a dead
-- process's entries fall free within lease_seconds.
CREATE OR REPLACE FUNCTION wsync_lease_extend(p_ids uuid[], p_leases bigint[],
                                              p_lease_seconds integer)
RETURNS integer LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    v_n integer;
BEGIN
    UPDATE workout_sync_queue q
       SET locked_until = now() + make_interval(secs => p_lease_seconds)
      FROM unnest(p_ids, p_leases) AS i(id, lease)
     WHERE q.id = i.id AND q.lease_token = i.lease AND q.processed_at IS NULL;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END $$;
