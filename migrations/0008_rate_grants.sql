-- 0008_rate_grants.sql: the rate limiter's budget taken for a whole batch
-- in one statement, spent in memory.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- wsync_rate_take() (0003) costs a round trip and a commit per provider
-- call.  wsyncd's store thread instead asks, once per claimed batch and
-- provider, for as many calls as each user's entries need:
-- wsync_rate_grant() records the granted calls exactly as that many
-- wsync_rate_take() calls made now would (same rows, same windows), so
-- every node still sees them and the limits hold for the cluster.  A grant
-- a job does not use still counts until it leaves its window: the limit is
-- never exceeded, only (briefly) under-used.  A call beyond its job's
-- grant (a lookup before a create, a GET before a PUT) takes one call with
-- wsync_rate_take() as before.
--
-- Locks: every scope involved (each user's, the app windows) is locked up
-- front in the one global order of wsync_rate_take() (hashtext(scope),
-- scope), after a per-provider lock that only grants take, so grants and
-- single takes never deadlock.  The commit is asynchronous: an OS crash may
-- forget the last fraction of a second of grants (a slightly generous
-- window after the crash), never a process crash.

-- How many of `wanted` new calls the window (p_lim calls per p_secs) of one
-- scope admits at p_now.  `at` never decreases along seq, so g calls fit
-- when the call that would become the (p_lim)-th newest after them, seq
-- last - p_lim + g, has left the window: a binary search of primary-key
-- probes, as wsync_rate_take() probes (no scan, whatever the statistics).
CREATE OR REPLACE FUNCTION wsync__rate_room(p_provider text, p_scope text, p_lim integer,
                                            p_secs integer, p_now timestamptz,
                                            p_wanted integer)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_last bigint;
    v_lo   integer := 0;   -- admitted for sure
    v_hi   integer;        -- upper bound
    v_mid  integer;
    v_at   timestamptz;
BEGIN
    SELECT c.seq INTO v_last FROM wsync_rate_calls c
     WHERE c.provider = p_provider AND c.scope = p_scope ORDER BY c.seq DESC LIMIT 1;
    v_last := coalesce(v_last, 0);
    v_hi := least(greatest(p_wanted, 0), p_lim);
    WHILE v_lo < v_hi LOOP
        v_mid := (v_lo + v_hi + 1) / 2;
        v_at := NULL;
        IF v_last - p_lim + v_mid > 0 THEN
            SELECT c.at INTO v_at FROM wsync_rate_calls c
             WHERE c.provider = p_provider AND c.scope = p_scope
               AND c.seq = v_last - p_lim + v_mid;
        END IF;
        IF v_at IS NULL OR v_at <= p_now - make_interval(secs => p_secs) THEN
            v_lo := v_mid;
        ELSE
            v_hi := v_mid - 1;
        END IF;
    END LOOP;
    RETURN v_lo;
END $$;

CREATE OR REPLACE FUNCTION wsync_rate_grant(p_provider text, p_users uuid[],
                                            p_wanted integer[],
                                            p_per_user_per_minute integer,
                                            p_app_limits integer[],
                                            p_app_seconds integer[])
RETURNS TABLE (user_id uuid, granted integer) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now      timestamptz;
    v_app      record;
    v_app_left integer := NULL;    -- calls every app window still admits
    v_total    integer;
    v_g        integer;
    r          record;
BEGIN
    IF p_provider IS NULL OR coalesce(cardinality(p_users), 0) <> coalesce(cardinality(p_wanted), 0)
       OR coalesce(cardinality(p_app_limits), 0) <> coalesce(cardinality(p_app_seconds), 0) THEN
        RAISE EXCEPTION 'wsync_rate_grant: a NULL provider or arrays of different lengths'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(hashtext('wsync_rate_grant:' || p_provider), 0);
    PERFORM pg_advisory_xact_lock(hashtext('wsync_rate:' || p_provider), hashtext(s.scope))
       FROM (SELECT DISTINCT 'user:' || u AS scope FROM unnest(p_users) u
              WHERE p_per_user_per_minute > 0
             UNION
             SELECT DISTINCT 'app:' || a.secs FROM unnest(p_app_limits, p_app_seconds) AS a(lim, secs)
              WHERE a.lim > 0 AND a.secs > 0) s
      ORDER BY hashtext(s.scope), s.scope;
    v_now := clock_timestamp();
    SELECT coalesce(sum(greatest(w, 0)), 0)::integer INTO v_total FROM unnest(p_wanted) w;

    FOR v_app IN SELECT 'app:' || a.secs AS scope, min(a.lim) AS lim, min(a.secs) AS secs
                   FROM unnest(p_app_limits, p_app_seconds) AS a(lim, secs)
                  WHERE a.lim > 0 AND a.secs > 0 GROUP BY 1 LOOP
        v_app_left := least(coalesce(v_app_left, v_total),
                            wsync__rate_room(p_provider, v_app.scope, v_app.lim, v_app.secs,
                                             v_now, v_total));
    END LOOP;

    FOR r IN SELECT w.u, sum(w.n)::integer AS n
               FROM unnest(p_users, p_wanted) AS w(u, n) WHERE w.u IS NOT NULL
              GROUP BY w.u ORDER BY w.u LOOP
        v_g := greatest(r.n, 0);
        IF v_app_left IS NOT NULL THEN
            v_g := least(v_g, v_app_left);
        END IF;
        IF p_per_user_per_minute > 0 AND v_g > 0 THEN
            v_g := wsync__rate_room(p_provider, 'user:' || r.u, p_per_user_per_minute, 60,
                                    v_now, v_g);
        END IF;
        IF v_g > 0 THEN
            IF p_per_user_per_minute > 0 THEN
                PERFORM wsync__rate_record(p_provider, 'user:' || r.u, v_g,
                                           p_per_user_per_minute, v_now);
            END IF;
            FOR v_app IN SELECT 'app:' || a.secs AS scope, min(a.lim) AS lim
                           FROM unnest(p_app_limits, p_app_seconds) AS a(lim, secs)
                          WHERE a.lim > 0 AND a.secs > 0 GROUP BY 1 LOOP
                PERFORM wsync__rate_record(p_provider, v_app.scope, v_g, v_app.lim, v_now);
            END LOOP;
            IF v_app_left IS NOT NULL THEN
                v_app_left := v_app_left - v_g;
            END IF;
        END IF;
        user_id := r.u;
        granted := v_g;
        RETURN NEXT;
    END LOOP;
END $$;

-- Record n calls of one scope at `now` (as n wsync_rate_take() calls would:
-- consecutive seqs, `at` never decreasing) and keep only its newest `lim`
-- (the rows that fall out are exactly n: deleted by primary key).
CREATE OR REPLACE FUNCTION wsync__rate_record(p_provider text, p_scope text, p_n integer,
                                              p_lim integer, p_now timestamptz)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_seq bigint;
    v_at  timestamptz;
BEGIN
    SELECT c.seq, c.at INTO v_seq, v_at
      FROM wsync_rate_calls c
     WHERE c.provider = p_provider AND c.scope = p_scope
     ORDER BY c.seq DESC LIMIT 1;
    v_seq := coalesce(v_seq, 0);
    INSERT INTO wsync_rate_calls (provider, scope, seq, at)
        SELECT p_provider, p_scope, v_seq + k, greatest(p_now, coalesce(v_at, p_now))
          FROM generate_series(1, p_n) k;
    DELETE FROM wsync_rate_calls c
     WHERE c.provider = p_provider AND c.scope = p_scope
       AND c.seq = ANY (ARRAY(SELECT v_seq - p_lim + k FROM generate_series(1, p_n) k
                               WHERE v_seq - p_lim + k > 0));
END $$;

-- wsyncd's sessions live long and cache each function's plans: planned
-- while wsync_rate_calls was nearly empty, a plan would scan it whole for
-- every probe ever after.  Every statement here is a primary-key probe.
ALTER FUNCTION wsync_rate_grant(text, uuid[], integer[], integer, integer[], integer[])
    SET enable_seqscan = off;
ALTER FUNCTION wsync__rate_room(text, text, integer, integer, timestamptz, integer)
    SET enable_seqscan = off;
ALTER FUNCTION wsync__rate_record(text, text, integer, integer, timestamptz)
    SET enable_seqscan = off;
ALTER FUNCTION wsync_rate_take(text, uuid, integer, integer[], integer[], timestamptz)
    SET enable_seqscan = off;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION wsync_rate_grant(text, uuid[], integer[], integer, '
                   'integer[], integer[]) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION wsync__rate_record(text, text, integer, integer, '
                   'timestamptz) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION wsync__rate_room(text, text, integer, integer, '
                   'timestamptz, integer) SET search_path = %I, pg_temp', current_schema());
END $$;
