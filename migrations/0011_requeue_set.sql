-- 0011_requeue_set.sql: fixing the text of many workouts in one statement
-- re-queues their failed schedules in one query, not one per workout.
--
-- 0007's statement-level trigger called wsync__requeue_invalid_schedules()
-- once per changed workout, and each call's plan (cached by plpgsql with
-- "no invalid_workout failures" statistics) read the whole queue: a bulk
-- UPDATE of 20,000 workouts spent 26 s there (bench/enqueue.sh).  The set
-- form reads the changed workouts' schedules through their index and the
-- queue once, for all of them.

-- The upcoming scheduled workouts of p_ids whose last entry on a provider
-- failed as invalid_workout get an update queued there (in provider, id
-- order, like every enqueue).  Returns how many were queued.
CREATE FUNCTION wsync__requeue_invalid_schedules_set(p_ids uuid[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_n integer := 0;
BEGIN
    FOR r IN
        SELECT s.user_id, s.id, q.provider
          FROM workouts_scheduled s
          JOIN workout_sync_queue q
            ON q.entity_type = 'workout_scheduled' AND q.entity_id = s.id
         WHERE s.workout_id = ANY (p_ids)
           AND s.scheduled_date >= (now() AT TIME ZONE 'UTC')::date
           AND q.processed_at IS NOT NULL AND q.error_type = 'invalid_workout'
           AND NOT EXISTS (SELECT 1 FROM workout_sync_queue n
                            WHERE n.entity_type = q.entity_type AND n.entity_id = q.entity_id
                              AND n.provider = q.provider AND n.seq > q.seq)
           AND wsync__enabled(s.user_id, q.provider)
         ORDER BY q.provider, s.id
    LOOP
        v_n := v_n + wsync__enqueue_one(r.user_id, 'workout_scheduled', r.id, 'update',
                                        r.provider);
    END LOOP;
    RETURN v_n;
END $$;

-- The one-workout form of 0007 stays for callers of it, as the set form.
CREATE OR REPLACE FUNCTION wsync__requeue_invalid_schedules(p_workout_id uuid)
RETURNS integer LANGUAGE sql AS $$
    SELECT wsync__requeue_invalid_schedules_set(ARRAY[p_workout_id]);
$$;

CREATE OR REPLACE FUNCTION wsync__workout_text_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[];
BEGIN
    IF wsync__triggers_on() THEN
        SELECT array_agg(n.id ORDER BY n.id) INTO v_ids
          FROM wsync_new_rows n JOIN wsync_old_rows o ON o.id = n.id
         WHERE o.workout_text IS DISTINCT FROM n.workout_text;
        IF v_ids IS NOT NULL THEN
            PERFORM wsync__requeue_invalid_schedules_set(v_ids);
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- ---- pin search_path (as 0002 and 0007 do) ---------------------------------------
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = current_schema()::regnamespace
           AND p.proname IN ('wsync__workout_text_trigger')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp',
                       f, current_schema());
    END LOOP;
END $$;
