-- 0012_rate_grant_set.sql: wsync_rate_grant() in a few statements per
-- grant instead of a few per user and window.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- The grant of 0009 looped over the users in PL/pgSQL and called
-- wsync__rate_room() (a binary search of probes) and wsync__rate_record()
-- (a probe, an INSERT, a DELETE) per user and window, each call with its
-- own GUC save/restore (SET enable_seqscan): ~135 us per entry, ~13 ms per
-- batch of 95.  Same signature, same results, same rows in
-- wsync_rate_calls, same locks in the same order; now one statement reads
-- every window, computes every grant and writes every row (200 grants of 95
-- users with a 30/60 s window each: ~1.6 ms a grant where 0009 took 7-15).
--
-- Why one statement suffices (the semantics of 0003, 0008 and 0009):
--   * `at` never decreases along seq, so the calls a window admits are a
--     prefix: of the seqs last-L+1 .. last-L+h (h = min(wanted, L)) those
--     absent (deleted, or <= 0) or with at <= now - S come first, and
--     their number is the room wsync__rate_room() found by binary search:
--     h minus the rows of that range still inside the window, one
--     primary-key range scan.  A user's windows narrow the grant one after
--     the other: the least room of them.
--   * The app windows cap the sum of the grants at A (the least room of
--     every app window for the total wanted); the users are served in uuid
--     order, each getting min(m_i, what is left of A), m_i what its own
--     windows admit.  Then the first i users got min(A, m_1+..+m_i) in all:
--     a running sum, no loop.
--   * Each scope is written once: a user's scopes by that user alone, and
--     an app scope by every granted user in turn, which amounts to one
--     record of the sum (consecutive seqs, all at greatest(now, at of the
--     scope's last call)).  Recording n calls deletes the seqs that leave
--     the newest L, last-L+1 .. last-L+n: a subset of the range the room
--     was read from (n <= room <= h), so their row ids come from that read
--     and the DELETE is a TID scan.
-- Every read of wsync_rate_calls is a primary-key probe (a backward probe
-- for the last call, a seq range per window) through a LATERAL subquery,
-- which is a per-window probe whatever the plan cache made of the
-- statistics, and the DELETE goes by row id; the table can be large (a
-- daily window keeps L rows per user for a day).
--
-- wsync__rate_room() and wsync__rate_record() (0008) have no other caller:
-- dropped.

-- The scope of a user's window (0009), now inlined into the statements that
-- use it instead of called once per user and window: uuid and integer are
-- turned into text by explicit casts (immutable), where 0009's `text ||
-- anything` goes through the stable anytextcat, which keeps the planner from
-- inlining an immutable function.  Same text.
CREATE OR REPLACE FUNCTION wsync__rate_user_scope(p_user uuid, p_secs integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'user:' || p_user::text || CASE WHEN p_secs = 60 THEN '' ELSE ':' || p_secs::text END
$$;

CREATE OR REPLACE FUNCTION wsync_rate_grant(p_provider text, p_users uuid[], p_wanted integer[],
                                            p_per_user_per_minute integer,
                                            p_app_limits integer[], p_app_seconds integer[],
                                            p_user_limits integer[] DEFAULT NULL,
                                            p_user_seconds integer[] DEFAULT NULL,
                                            p_now timestamptz DEFAULT NULL)
RETURNS TABLE (user_id uuid, granted integer) LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
AS $$
DECLARE
    v_now   timestamptz;
    v_ulims integer[];
    v_usecs integer[];
    v_total integer;      -- every entry's wanted calls: what the app windows are asked for
BEGIN
    IF p_provider IS NULL OR coalesce(cardinality(p_users), 0) <> coalesce(cardinality(p_wanted), 0)
       OR coalesce(cardinality(p_app_limits), 0) <> coalesce(cardinality(p_app_seconds), 0)
       OR coalesce(cardinality(p_user_limits), 0) <> coalesce(cardinality(p_user_seconds), 0) THEN
        RAISE EXCEPTION 'wsync_rate_grant: a NULL provider or arrays of different lengths'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Pure: reads no table, so it may come before the locks.
    SELECT uw.lims, uw.secs,
           (SELECT coalesce(sum(greatest(w, 0)), 0)::integer FROM unnest(p_wanted) w)
      INTO v_ulims, v_usecs, v_total
      FROM wsync__rate_user_windows(p_per_user_per_minute, p_user_limits, p_user_seconds) uw;
    PERFORM set_config('synchronous_commit', 'off', true);
    -- The locks of 0008/0009, in the one global order, before anything is read.
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

    -- (Column names avoid user_id and granted: they are this function's
    -- output variables.)
    RETURN QUERY
    WITH want AS (         -- each distinct user and what its entries want
        SELECT w.u, greatest(sum(w.n)::integer, 0) AS n
          FROM unnest(p_users, p_wanted) AS w(u, n)
         WHERE w.u IS NOT NULL
         GROUP BY w.u),
    win AS (               -- every window asked: a wanting user's, then the app's
        SELECT w.u, wsync__rate_user_scope(w.u, s.secs) AS scope, s.lim, s.secs,
               least(w.n, s.lim) AS h
          FROM want w, unnest(v_ulims, v_usecs) AS s(lim, secs)
         WHERE w.n > 0
        UNION ALL
        SELECT NULL::uuid, 'app:' || a.secs, min(a.lim), a.secs, least(v_total, min(a.lim))
          FROM unnest(p_app_limits, p_app_seconds) AS a(lim, secs)
         WHERE a.lim > 0 AND a.secs > 0
         GROUP BY a.secs),
    probe AS (             -- each window's last call and room (two PK probes)
        SELECT w.u, w.scope, w.lim, coalesce(l.seq, 0) AS last,
               greatest(v_now, l.at) AS at, w.h - r.busy AS room, r.seqs, r.tids
          FROM win w
          LEFT JOIN LATERAL (
               SELECT c.seq, c.at FROM wsync_rate_calls c
                WHERE c.provider = p_provider AND c.scope = w.scope
                ORDER BY c.seq DESC LIMIT 1) l ON true
          CROSS JOIN LATERAL (
               SELECT count(*) FILTER (WHERE c.at > v_now - make_interval(secs => w.secs))::integer
                          AS busy,
                      array_agg(c.seq) AS seqs, array_agg(c.ctid) AS tids
                 FROM wsync_rate_calls c
                WHERE c.provider = p_provider AND c.scope = w.scope
                  AND c.seq > coalesce(l.seq, 0) - w.lim
                  AND c.seq <= coalesce(l.seq, 0) - w.lim + w.h) r),
    fit AS (               -- what each user's own windows admit, served in uuid order
        SELECT w.u, least(w.n, min(p.room)) AS m
          FROM want w LEFT JOIN probe p ON p.u = w.u
         GROUP BY w.u, w.n),
    cap AS (               -- what every app window admits (NULL: no app window)
        SELECT min(p.room) AS a FROM probe p WHERE p.u IS NULL),
    served AS (
        SELECT f.u, (CASE WHEN c.a IS NULL THEN f.m
                          ELSE least(c.a, f.upto) - least(c.a, f.upto - f.m) END)::integer AS g
          FROM (SELECT f.u, f.m, sum(f.m) OVER (ORDER BY f.u) AS upto FROM fit f) f, cap c),
    rec AS (               -- calls recorded per scope
        SELECT p.scope, p.last, p.lim, p.at, p.seqs, p.tids, s.g AS n
          FROM probe p JOIN served s ON s.u = p.u
        UNION ALL
        SELECT p.scope, p.last, p.lim, p.at, p.seqs, p.tids, t.n::integer
          FROM probe p, (SELECT sum(s.g) AS n FROM served s) t
         WHERE p.u IS NULL),
    ins AS (
        INSERT INTO wsync_rate_calls (provider, scope, seq, at)
        SELECT p_provider, r.scope, r.last + k, r.at
          FROM rec r, generate_series(1, r.n) k
         WHERE r.n > 0),
    del AS (               -- the calls that leave the newest L
        DELETE FROM wsync_rate_calls c
         WHERE c.ctid = ANY (ARRAY(
               SELECT d.tid FROM rec r, unnest(r.seqs, r.tids) AS d(seq, tid)
                WHERE r.n > 0 AND d.seq <= r.last - r.lim + r.n)))
    SELECT s.u, s.g FROM served s ORDER BY s.u;
END $$;

-- Pinned like the other public functions: wsyncd's sessions may run with
-- another search_path.  (CREATE OR REPLACE resets what 0009 set.)
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION wsync_rate_grant(text, uuid[], integer[], integer, '
                   'integer[], integer[], integer[], integer[], timestamptz) '
                   'SET search_path = %I, pg_temp', current_schema());
END $$;

DROP FUNCTION wsync__rate_room(text, text, integer, integer, timestamptz, integer);
DROP FUNCTION wsync__rate_record(text, text, integer, integer, timestamptz);
