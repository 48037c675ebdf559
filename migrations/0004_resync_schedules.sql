-- 0004_resync_schedules.sql: a workout change reaches its scheduled
-- workouts too.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- Providers copy part of the workout into the scheduled object (Wahoo: the
-- name and minutes of a workout; TrainingPeaks: the whole structure, since
-- it has no workout library), so when a workout's text, name, description
-- or sport changes, each of its scheduled workouts that a provider already
-- has is queued for an update on that provider.  Only schedules from today
-- (UTC) on: past sessions are history, and TrainingPeaks refuses most of them.
-- The engine runs a scheduled workout's entry only after older entries of
-- its workout on the same provider (core/daemon/queue.c), so the schedule is
-- pushed with the workout's new state.

-- p_provider NULL: every provider; wsyncd passes one after it re-created a
-- workout that had vanished on that provider (new provider id).
CREATE OR REPLACE FUNCTION wsync_resync_schedules(p_workout_id uuid,
                                                  p_provider text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_n integer := 0;
BEGIN
    -- Provider then id order, like wsync__enqueue_all, so concurrent
    -- transactions take their row locks in one order.
    FOR r IN
        SELECT s.user_id, s.id, l.provider
          FROM workouts_scheduled s
          JOIN workout_sync_links l
            ON l.entity_type = 'workout_scheduled' AND l.entity_id = s.id
         WHERE s.workout_id = p_workout_id
           AND (p_provider IS NULL OR l.provider = p_provider)
           AND s.scheduled_date >= (now() AT TIME ZONE 'UTC')::date
           AND wsync__enabled(s.user_id, l.provider)
         ORDER BY l.provider, s.id
    LOOP
        v_n := v_n + wsync__enqueue_one(r.user_id, 'workout_scheduled', r.id, 'update',
                                        r.provider);
    END LOOP;
    RETURN v_n;
END $$;

CREATE OR REPLACE FUNCTION wsync__entity_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT wsync__triggers_on() THEN
        RETURN NULL;
    END IF;
    -- The arguments are valid by construction (NOT NULL columns, a fixed
    -- entity type), so skip wsync_enqueue's checks: this runs once per row.
    IF TG_OP = 'INSERT' THEN
        PERFORM wsync__enqueue_all(NEW.user_id, TG_ARGV[0], NEW.id, 'create');
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM wsync__enqueue_all(NEW.user_id, TG_ARGV[0], NEW.id, 'update');
        IF TG_ARGV[0] = 'workout' THEN
            PERFORM wsync_resync_schedules(NEW.id);
        END IF;
    ELSE
        -- A delete is queued only where the provider has the object (link
        -- or in-flight create); a pending create is cancelled.
        PERFORM wsync__enqueue_all(OLD.user_id, TG_ARGV[0], OLD.id, 'delete');
    END IF;
    RETURN NULL;
END $$;

-- CREATE OR REPLACE keeps the function's settings: re-pin the search path
-- as 0002 does for every entry point.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION wsync__entity_trigger() SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION wsync_resync_schedules(uuid, text) SET search_path = %I, pg_temp',
                   current_schema());
END $$;
