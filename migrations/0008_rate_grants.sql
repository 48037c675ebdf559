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
    v_left     integer;
    v_g        integer;
    v_seq      bigint;
    v_at       timestamptz;
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

    -- What the app windows still admit now (their newest L calls only).
    FOR v_app IN SELECT 'app:' || a.secs AS scope, min(a.lim) AS lim, min(a.secs) AS secs
                   FROM unnest(p_app_limits, p_app_seconds) AS a(lim, secs)
                  WHERE a.lim > 0 AND a.secs > 0 GROUP BY 1 LOOP
        SELECT v_app.lim - count(*) INTO v_left
          FROM wsync_rate_calls c
         WHERE c.provider = p_provider AND c.scope = v_app.scope
           AND c.at > v_now - make_interval(secs => v_app.secs);
        v_app_left := least(coalesce(v_app_left, v_left), greatest(v_left, 0));
    END LOOP;

    FOR r IN SELECT w.u, sum(w.n)::integer AS n
               FROM unnest(p_users, p_wanted) AS w(u, n) WHERE w.u IS NOT NULL
              GROUP BY w.u ORDER BY w.u LOOP
        v_g := greatest(r.n, 0);
        IF v_app_left IS NOT NULL THEN
            v_g := least(v_g, v_app_left);
        END IF;
        IF p_per_user_per_minute > 0 THEN
            SELECT p_per_user_per_minute - count(*) INTO v_left
              FROM wsync_rate_calls c
             WHERE c.provider = p_provider AND c.scope = 'user:' || r.u
               AND c.at > v_now - interval '60 seconds';
            v_g := least(v_g, greatest(v_left, 0));
        END IF;
        IF v_g > 0 THEN
            PERFORM wsync__rate_record(p_provider, 'user:' || r.u, v_g, p_per_user_per_minute, v_now)
              WHERE p_per_user_per_minute > 0;
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
-- consecutive seqs, `at` never decreasing) and keep only its newest `lim`.
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
     WHERE c.provider = p_provider AND c.scope = p_scope AND c.seq <= v_seq + p_n - p_lim;
END $$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION wsync_rate_grant(text, uuid[], integer[], integer, '
                   'integer[], integer[]) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION wsync__rate_record(text, text, integer, integer, '
                   'timestamptz) SET search_path = %I, pg_temp', current_schema());
END $$;
