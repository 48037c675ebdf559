-- 0015_rate_wait.sql: how long each of many users must wait for its next
-- call, read in one statement, recording nothing.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- wsyncd grants a claimed batch its calls in one wsync_rate_grant().  A job
-- the grant left without a call used to start anyway (an intent, an
-- attempt), run its plugin and ask wsync_rate_take() from inside its
-- request, only to learn its wait and be deferred.  With this function the
-- claimer asks once per batch for the users the grant denied and defers
-- those whose wait is long before anything starts; a short wait is still
-- waited for by the call, through wsync_rate_take(), which alone records.
--
-- The wait is wsync_rate_take()'s, without its locks: for each window, the
-- L-th newest call's time plus the window, when that is still ahead (the
-- window is full); wait_ms the most of a user's windows and the app's,
-- app_wait_ms the most of the app's alone (when it is the larger, the app
-- holds the user back: wsyncd then spreads the provider's backlog, not the
-- user's).  An estimate for when to come back, never a permission: the
-- entry is granted its call (or deferred again) when it is claimed again.

CREATE FUNCTION wsync_rate_wait(p_provider text, p_users uuid[],
                                p_app_limits integer[], p_app_seconds integer[],
                                p_user_limits integer[], p_user_seconds integer[],
                                p_now timestamptz DEFAULT NULL)
RETURNS TABLE (user_id uuid, wait_ms bigint, app_wait_ms bigint) LANGUAGE sql VOLATILE
SET enable_seqscan = off
AS $$
    WITH users AS (
        SELECT DISTINCT u FROM unnest(p_users) AS u WHERE u IS NOT NULL),
    win AS (               -- every window asked: each user's, then the app's
        SELECT us.u, wsync__rate_user_scope(us.u, w.secs) AS scope, w.lim, w.secs
          FROM users us,
               wsync__rate_user_windows(0, p_user_limits, p_user_seconds) uw,
               unnest(uw.lims, uw.secs) AS w(lim, secs)
        UNION ALL
        SELECT NULL::uuid, 'app:' || a.secs, min(a.lim), a.secs
          FROM unnest(p_app_limits, p_app_seconds) AS a(lim, secs)
         WHERE a.lim > 0 AND a.secs > 0
         GROUP BY a.secs),
    full_until AS (        -- a full window: when its L-th newest call leaves it
        SELECT w.u, e.at + make_interval(secs => w.secs) AS free_at
          FROM win w
          CROSS JOIN LATERAL (
               SELECT c.seq FROM wsync_rate_calls c
                WHERE c.provider = p_provider AND c.scope = w.scope
                ORDER BY c.seq DESC LIMIT 1) l
          CROSS JOIN LATERAL (
               SELECT c.at FROM wsync_rate_calls c
                WHERE c.provider = p_provider AND c.scope = w.scope
                  AND c.seq = l.seq - w.lim + 1) e),
    now_ AS (SELECT coalesce(p_now, clock_timestamp()) AS t)
    SELECT us.u, coalesce(max(f.ms), 0), coalesce(max(f.ms) FILTER (WHERE f.app), 0)
      FROM users us
      LEFT JOIN (SELECT f.u, f.u IS NULL AS app,
                        greatest(0, ceil(extract(epoch FROM f.free_at - n.t) * 1000))::bigint AS ms
                   FROM full_until f, now_ n) f ON f.u = us.u OR f.app
     GROUP BY us.u
     ORDER BY us.u
$$;

-- Pinned like the other public functions: wsyncd's sessions may run with
-- another search_path.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION wsync_rate_wait(text, uuid[], integer[], integer[], '
                   'integer[], integer[], timestamptz) SET search_path = %I, pg_temp',
                   current_schema());
END $$;
