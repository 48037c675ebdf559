-- 0009_user_windows.sql: per-user windows beyond one minute
-- ([provider] user_rate_limits = 30/1m, 1000/1d), cluster-wide like the
-- others.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- wsync_rate_take() (0003) and wsync_rate_grant() (0008) gain two trailing
-- arrays, p_user_limits[i] calls per p_user_seconds[i] seconds, each a
-- window per (provider, user).  The old arguments keep their place and
-- meaning (p_per_user_per_minute > 0 is the window (N, 60)), so a call
-- written for 0003/0008 (an older wsyncd during a rolling upgrade) resolves
-- to the new function through the defaults and keeps its limits.  The old
-- functions are dropped: one function per name, no overload to resolve.
--
-- Scopes: 'user:<uuid>' for a user's 60 s window (the rows 0003 wrote stay
-- valid), 'user:<uuid>:<seconds>' for any other, 'app:<seconds>' as before.
-- A duration given twice (p_per_user_per_minute and a 60 s entry of the
-- arrays, or twice in one array) keeps its smallest limit.
--
-- Semantics, cost and locking are those of 0003 and 0008: an exact sliding
-- log, per window one advisory lock and two index probes per take; every
-- scope is locked up front in the one global order (hashtext(scope),
-- scope), a grant after its per-provider grant lock, so takes and grants
-- never deadlock.  A daily window keeps its newest L rows per user (L = its
-- limit) for up to a day: the table holds up to (users who called in the
-- last day x daily limit) rows per provider for it, and the occasional
-- sweep of idle scopes reads the provider's rows.

DROP FUNCTION wsync_rate_take(text, uuid, integer, integer[], integer[], timestamptz);
DROP FUNCTION wsync_rate_grant(text, uuid[], integer[], integer, integer[], integer[]);

-- The scope of a user's window of p_secs seconds.  Pure, touches no table
-- (so no enable_seqscan attribute: it would only cost a GUC swap per call).
CREATE FUNCTION wsync__rate_user_scope(p_user uuid, p_secs integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'user:' || p_user || CASE WHEN p_secs = 60 THEN '' ELSE ':' || p_secs END
$$;

-- The per-user windows of a call: (N, 60) for p_per_user_per_minute > 0 and
-- the arrays' pairs, invalid ones (<= 0) dropped, one per duration keeping
-- its smallest limit, ordered by duration.  Pure too.
CREATE FUNCTION wsync__rate_user_windows(p_per_user_per_minute integer,
                                         p_user_limits integer[], p_user_seconds integer[],
                                         OUT lims integer[], OUT secs integer[])
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_agg(w.lim ORDER BY w.secs), array_agg(w.secs ORDER BY w.secs)
      FROM (SELECT min(u.lim) AS lim, u.secs
              FROM (SELECT p_per_user_per_minute AS lim, 60 AS secs
                    UNION ALL
                    SELECT a.lim, a.secs FROM unnest(p_user_limits, p_user_seconds) AS a(lim, secs)) u
             WHERE u.lim > 0 AND u.secs > 0
             GROUP BY u.secs) w
$$;

-- wsync_rate_take(provider, user_id, per_user_per_minute, app_limits[],
--                 app_seconds[], now, user_limits[], user_seconds[]) -> bigint
--
-- As in 0003: 0 when the call was taken (and recorded in every window),
-- otherwise the milliseconds until every window admits it (nothing
-- recorded).  now NULL = the database's clock once the locks are held.
CREATE FUNCTION wsync_rate_take(p_provider text, p_user_id uuid,
                                p_per_user_per_minute integer,
                                p_app_limits integer[], p_app_seconds integer[],
                                p_now timestamptz DEFAULT NULL,
                                p_user_limits integer[] DEFAULT NULL,
                                p_user_seconds integer[] DEFAULT NULL)
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
    IF coalesce(cardinality(p_user_limits), 0) <> coalesce(cardinality(p_user_seconds), 0) THEN
        RAISE EXCEPTION 'wsync_rate_take: user_limits has % elements, user_seconds %',
            coalesce(cardinality(p_user_limits), 0), coalesce(cardinality(p_user_seconds), 0)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The windows, in the order their locks are taken.  The usual case of
    -- 0003, the minute window alone, needs no query.
    IF coalesce(cardinality(p_app_limits), 0) = 0 AND coalesce(cardinality(p_user_limits), 0) = 0
    THEN
        IF p_per_user_per_minute > 0 AND p_user_id IS NOT NULL THEN
            v_scopes := ARRAY['user:' || p_user_id];
            v_limits := ARRAY[p_per_user_per_minute];
            v_secs := ARRAY[60];
        END IF;
    ELSE
        SELECT array_agg(w.scope ORDER BY hashtext(w.scope), w.scope),
               array_agg(w.lim ORDER BY hashtext(w.scope), w.scope),
               array_agg(w.secs ORDER BY hashtext(w.scope), w.scope)
          INTO v_scopes, v_limits, v_secs
          FROM (SELECT s.scope, min(s.lim) AS lim, min(s.secs) AS secs
                  FROM (SELECT wsync__rate_user_scope(p_user_id, u.secs) AS scope, u.lim, u.secs
                          FROM wsync__rate_user_windows(p_per_user_per_minute, p_user_limits,
                                                        p_user_seconds) uw,
                               unnest(uw.lims, uw.secs) AS u(lim, secs)
                         WHERE p_user_id IS NOT NULL
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
        -- The scope's last call (a new statement, a new snapshot: rows
        -- committed by the previous holder of the lock are seen).
        SELECT c.seq, c.at INTO v_seq, v_at
          FROM wsync_rate_calls c
         WHERE c.provider = p_provider AND c.scope = v_scopes[i]
         ORDER BY c.seq DESC LIMIT 1;
        v_seqs[i] := coalesce(v_seq, 0);
        v_ats[i] := v_at;
        -- The L-th newest call: while it is inside the window, the window
        -- is full.
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
    DELETE FROM wsync_rate_calls c
     USING unnest(v_scopes, v_seqs, v_limits) AS w(scope, seq, lim)
     WHERE c.provider = p_provider AND c.scope = w.scope AND c.seq <= w.seq + 1 - w.lim;
    -- Now and then, the scopes nobody called lately: rows older than their
    -- window plus a minute.  The window is in the scope's name: 'app:<s>',
    -- 'user:<uuid>:<s>', or 60 s for 'user:<uuid>'.  SKIP LOCKED: rows
    -- another take is deleting are left to it.
    IF random() < 0.01 THEN
        DELETE FROM wsync_rate_calls
         WHERE ctid = ANY (ARRAY(
               SELECT c.ctid FROM wsync_rate_calls c
                WHERE c.provider = p_provider
                  AND c.at < v_now - make_interval(secs => 60 +
                          CASE WHEN c.scope LIKE 'app:%' THEN substr(c.scope, 5)::integer
                               ELSE coalesce(nullif(split_part(c.scope, ':', 3), '')::integer, 60)
                          END)
                FOR UPDATE SKIP LOCKED));
    END IF;
    RETURN 0;
END $$;

-- wsync_rate_grant(provider, users[], wanted[], per_user_per_minute,
--                  app_limits[], app_seconds[], user_limits[], user_seconds[],
--                  now) -> (user_id, granted)
--
-- As in 0008, with every per-user window: a user is granted what each of
-- its windows and every app window still admit, and the grant is recorded
-- in all of them.  now NULL = the database's clock once the locks are held
-- (wsyncd); tests inject one.
CREATE FUNCTION wsync_rate_grant(p_provider text, p_users uuid[], p_wanted integer[],
                                 p_per_user_per_minute integer,
                                 p_app_limits integer[], p_app_seconds integer[],
                                 p_user_limits integer[] DEFAULT NULL,
                                 p_user_seconds integer[] DEFAULT NULL,
                                 p_now timestamptz DEFAULT NULL)
RETURNS TABLE (user_id uuid, granted integer) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now      timestamptz;
    v_app      record;
    v_app_left integer := NULL;    -- calls every app window still admits
    v_total    integer;
    v_g        integer;
    v_ulims    integer[];
    v_usecs    integer[];
    r          record;
BEGIN
    IF p_provider IS NULL OR coalesce(cardinality(p_users), 0) <> coalesce(cardinality(p_wanted), 0)
       OR coalesce(cardinality(p_app_limits), 0) <> coalesce(cardinality(p_app_seconds), 0)
       OR coalesce(cardinality(p_user_limits), 0) <> coalesce(cardinality(p_user_seconds), 0) THEN
        RAISE EXCEPTION 'wsync_rate_grant: a NULL provider or arrays of different lengths'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT uw.lims, uw.secs INTO v_ulims, v_usecs
      FROM wsync__rate_user_windows(p_per_user_per_minute, p_user_limits, p_user_seconds) uw;
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(hashtext('wsync_rate_grant:' || p_provider), 0);
    PERFORM pg_advisory_xact_lock(hashtext('wsync_rate:' || p_provider), hashtext(s.scope))
       FROM (SELECT DISTINCT wsync__rate_user_scope(u, w.secs) AS scope
               FROM unnest(p_users) u, unnest(v_usecs) AS w(secs)
              WHERE u IS NOT NULL
             UNION
             SELECT DISTINCT 'app:' || a.secs FROM unnest(p_app_limits, p_app_seconds) AS a(lim, secs)
              WHERE a.lim > 0 AND a.secs > 0) s
      ORDER BY hashtext(s.scope), s.scope;
    v_now := coalesce(p_now, clock_timestamp());
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
        -- What every window of the user still admits (room() never grants
        -- more than asked, so the windows narrow it one after the other).
        FOR i IN 1 .. coalesce(cardinality(v_ulims), 0) LOOP
            EXIT WHEN v_g <= 0;
            v_g := wsync__rate_room(p_provider, wsync__rate_user_scope(r.u, v_usecs[i]),
                                    v_ulims[i], v_usecs[i], v_now, v_g);
        END LOOP;
        IF v_g > 0 THEN
            FOR i IN 1 .. coalesce(cardinality(v_ulims), 0) LOOP
                PERFORM wsync__rate_record(p_provider, wsync__rate_user_scope(r.u, v_usecs[i]),
                                           v_g, v_ulims[i], v_now);
            END LOOP;
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

-- Every statement is a primary-key probe: keep the plans off sequential
-- scans, as 0008 explains (long-lived sessions cache plans made while the
-- table was nearly empty).  wsync__rate_room and wsync__rate_record keep
-- the attribute 0008 gave them.
ALTER FUNCTION wsync_rate_take(text, uuid, integer, integer[], integer[], timestamptz,
                               integer[], integer[])
    SET enable_seqscan = off;
ALTER FUNCTION wsync_rate_grant(text, uuid[], integer[], integer, integer[], integer[],
                                integer[], integer[], timestamptz)
    SET enable_seqscan = off;

-- Pinned like the public functions of 0002: wsyncd's sessions may run with
-- another search_path.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION wsync_rate_take(text, uuid, integer, integer[], integer[], '
                   'timestamptz, integer[], integer[]) SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION wsync_rate_grant(text, uuid[], integer[], integer, '
                   'integer[], integer[], integer[], integer[], timestamptz) '
                   'SET search_path = %I, pg_temp', current_schema());
END $$;
