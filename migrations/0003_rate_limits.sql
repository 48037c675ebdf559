-- 0003_rate_limits.sql: rate limits that hold for the whole cluster.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- Every wsyncd node asks wsync_rate_take() before each provider call, so the
-- limits of a conf.d file ([provider] rate_limit_per_minute per (user,
-- provider), plus the provider's app_rate_limits windows) hold across all
-- nodes on one database, not per node.  When the database cannot answer,
-- wsyncd falls back to its in-process limiter (core/host/ratelimit.c), with
-- the same semantics.
--
-- Semantics: an exact sliding log.  A window of L calls per S seconds admits
-- a call at time t when fewer than L recorded calls of that window have
-- `at > t - S`.  A call is recorded (one row per window) only when every
-- window admits it; otherwise nothing is recorded and the answer is the
-- time until the last window that blocks it frees a slot.

-- One row per admitted call and window.  scope is 'user:<uuid>' for the
-- per-user window (always 60 s) or 'app:<seconds>' for an app-wide window.
-- seq numbers the calls of one (provider, scope) in the order they were
-- taken, and `at` never decreases along seq (a take whose clock reading is
-- older than the scope's last call is stamped with that call's time: later
-- than it really was, which only makes the limit stricter).  So the L-th
-- newest call of a window is one index probe, however large L is, and only
-- the newest L rows of a scope ever matter: older ones are deleted as new
-- ones come in, and a scope idle for longer than its window (plus a minute)
-- is swept now and then.  The table holds at most
-- (users who called in the last two minutes x per-user limit + the app
-- limits) rows per provider.
CREATE TABLE wsync_rate_calls (
    provider text NOT NULL,
    scope    text NOT NULL,
    seq      bigint NOT NULL,
    at       timestamptz NOT NULL,
    PRIMARY KEY (provider, scope, seq)
);
ALTER TABLE wsync_rate_calls SET (autovacuum_vacuum_scale_factor = 0.01);

-- wsync_rate_take(provider, user_id, per_user_per_minute, app_limits[],
--                 app_seconds[], now) -> bigint
--
-- Take one call for (provider, user_id) if every window allows it.  Returns
-- 0 when the call was taken (and recorded), otherwise the milliseconds
-- until it would be allowed (nothing recorded).  per_user_per_minute <= 0
-- means no per-user window; app_limits[i] calls per app_seconds[i] seconds
-- are the app-wide windows of the provider (the two arrays have the same
-- length; a window listed twice keeps its smallest limit).  now NULL means
-- the database's clock_timestamp(), read once the locks are held: wsyncd
-- passes NULL, so every node uses one clock; tests pass an injected clock.
--
-- Concurrency: each window is serialized by a transaction-scoped advisory
-- lock on (provider, scope), all taken before anything is read, in one
-- global order (two takes never deadlock), and released at commit, after
-- the inserted rows became visible: the next holder counts them.  Call it
-- as a statement of its own (autocommit): inside a longer transaction the
-- locks would be held, and every other node kept waiting, until that
-- transaction ends.
--
-- Cost per call: one statement; per window one advisory lock, two index
-- probes, one inserted row and one deleted (the row that left the newest
-- L); then the commit.  Independent of the limits' size.  An app-wide
-- window serializes all takes of the provider for that long (a fraction of
-- a millisecond).
CREATE FUNCTION wsync_rate_take(p_provider text, p_user_id uuid,
                                p_per_user_per_minute integer,
                                p_app_limits integer[], p_app_seconds integer[],
                                p_now timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now    timestamptz;
    v_scopes text[];
    v_limits integer[];
    v_secs   integer[];
    v_seqs   bigint[];
    v_ats    timestamptz[];
    v_seq    bigint;
    v_at     timestamptz;
    v_edge   timestamptz;
    v_wait   bigint := 0;
BEGIN
    IF p_provider IS NULL THEN
        RAISE EXCEPTION 'wsync_rate_take: provider must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF coalesce(cardinality(p_app_limits), 0) <> coalesce(cardinality(p_app_seconds), 0) THEN
        RAISE EXCEPTION 'wsync_rate_take: app_limits has % elements, app_seconds %',
            coalesce(cardinality(p_app_limits), 0), coalesce(cardinality(p_app_seconds), 0)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The windows, in the order their locks are taken.  The usual case, the
    -- per-user window alone, needs no query.
    IF p_per_user_per_minute > 0 AND p_user_id IS NOT NULL THEN
        v_scopes := ARRAY['user:' || p_user_id];
        v_limits := ARRAY[p_per_user_per_minute];
        v_secs := ARRAY[60];
    END IF;
    IF coalesce(cardinality(p_app_limits), 0) > 0 THEN
        SELECT array_agg(w.scope ORDER BY hashtext(w.scope), w.scope),
               array_agg(w.lim ORDER BY hashtext(w.scope), w.scope),
               array_agg(w.secs ORDER BY hashtext(w.scope), w.scope)
          INTO v_scopes, v_limits, v_secs
          FROM (SELECT s.scope, min(s.lim) AS lim, min(s.secs) AS secs
                  FROM (SELECT * FROM unnest(v_scopes, v_limits, v_secs) AS u(scope, lim, secs)
                         WHERE u.scope IS NOT NULL
                        UNION ALL
                        SELECT 'app:' || a.secs, a.lim, a.secs
                          FROM unnest(p_app_limits, p_app_seconds) AS a(lim, secs)
                         WHERE a.lim > 0 AND a.secs > 0) s
                 GROUP BY s.scope) w;
    END IF;
    IF v_scopes IS NULL THEN
        RETURN 0;  -- no limits at all
    END IF;

    FOR i IN 1 .. cardinality(v_scopes) LOOP
        PERFORM pg_advisory_xact_lock(hashtext('wsync_rate:' || p_provider),
                                      hashtext(v_scopes[i]));
    END LOOP;
    v_now := coalesce(p_now, clock_timestamp());

    FOR i IN 1 .. cardinality(v_scopes) LOOP
        -- The scope's last call.  (A new statement, a new snapshot: rows
        -- committed by the previous holder of the lock are seen.)
        SELECT c.seq, c.at INTO v_seq, v_at
          FROM wsync_rate_calls c
         WHERE c.provider = p_provider AND c.scope = v_scopes[i]
         ORDER BY c.seq DESC LIMIT 1;
        v_seqs[i] := coalesce(v_seq, 0);
        v_ats[i] := v_at;
        -- The L-th newest call: while it is inside the window, the window
        -- is full, until it leaves.
        IF v_seq >= v_limits[i] THEN
            SELECT c.at INTO v_edge
              FROM wsync_rate_calls c
             WHERE c.provider = p_provider AND c.scope = v_scopes[i]
               AND c.seq = v_seq - v_limits[i] + 1;
            IF FOUND AND v_edge > v_now - make_interval(secs => v_secs[i]) THEN
                v_wait := greatest(v_wait, ceil(extract(epoch FROM
                              v_edge + make_interval(secs => v_secs[i]) - v_now) * 1000)::bigint);
            END IF;
        END IF;
    END LOOP;
    IF v_wait > 0 THEN
        RETURN v_wait;
    END IF;

    INSERT INTO wsync_rate_calls (provider, scope, seq, at)
        SELECT p_provider, w.scope, w.seq + 1, greatest(v_now, w.at)
          FROM unnest(v_scopes, v_seqs, v_ats) AS w(scope, seq, at);
    -- Only the newest L calls of a scope can ever fill its window.
    DELETE FROM wsync_rate_calls c
     USING unnest(v_scopes, v_seqs, v_limits) AS w(scope, seq, lim)
     WHERE c.provider = p_provider AND c.scope = w.scope AND c.seq <= w.seq + 1 - w.lim;
    -- Now and then, the scopes of users who stopped calling: rows older
    -- than their window plus a minute.  SKIP LOCKED: rows another take is
    -- deleting are left to it (no lock waits, no deadlock).
    IF random() < 0.01 THEN
        DELETE FROM wsync_rate_calls
         WHERE ctid = ANY (ARRAY(
               SELECT c.ctid FROM wsync_rate_calls c
                WHERE c.provider = p_provider
                  AND c.at < v_now - make_interval(secs => 60 +
                          CASE WHEN c.scope LIKE 'app:%'
                               THEN substr(c.scope, 5)::integer ELSE 60 END)
                FOR UPDATE SKIP LOCKED));
    END IF;
    RETURN 0;
END $$;

-- Pinned like the public functions of 0002: wsyncd's sessions may run with
-- another search_path.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION wsync_rate_take(text, uuid, integer, integer[], '
                   'integer[], timestamptz) SET search_path = %I, pg_temp',
                   current_schema());
END $$;
