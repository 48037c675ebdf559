-- 0007_provider_lifecycle.sql: which wsyncd nodes serve a provider, the
-- operator's override, backfill of a provider added later, a workout's
-- delete after its calendar entries' deletes (see core/daemon/queue.c), and
-- scheduled workouts re-queued when their workout's text is fixed.
-- Forward-only: never edit a migration that has been released; add a new file.
--
-- Public functions (docs/applications.md, docs/operators.md):
--   wsync_providers_register(node, names[], plugins[], enabled[], keep[])
--                                                    -> setof (provider, queued, note)
--   wsync_provider_set_disabled(provider, disabled)  -> setof (provider, queued, note)
--   wsync_backfill(provider, entity_type, after, limit, since, users[])
--                                                    -> (queued, scanned, last_id)
--   view wsync_provider_state: per provider, whether it is served and why not
--
-- ---- who serves a provider ---------------------------------------------------
--
-- sync_providers.enabled stays the one flag the triggers and wsync_enqueue
-- read (wsync__enabled, 0002).  Since this migration it is derived, for a
-- provider some wsyncd has registered, from two sources:
--
--   sync_provider_nodes   one row per (provider, node) that ever registered
--                         it.  A node is "<hostname>:<absolute config path>",
--                         so it is stable across restarts and two daemons
--                         with different configurations on one host are two
--                         nodes.  state: 'enabled' (its conf.d file loads it
--                         with enabled = true), 'disabled' (enabled = false),
--                         'removed' (the node's configuration no longer has
--                         it: the INI was deleted).  Rows are kept when an
--                         INI goes away, so "every node dropped it" is told
--                         apart from "never registered by a daemon".
--   operator_disabled     set by `wsyncctl provider disable NAME`, cleared
--                         by `enable NAME`; no daemon start or reload
--                         touches it, so a reload never undoes it.
--
--   enabled = NOT operator_disabled
--             AND (some node has it 'enabled' OR no node ever registered it)
--
-- So with several nodes on one database, removing the INI from one node
-- stops enqueueing only once no node has it enabled any more; a node that
-- merely stops (crash, restart, upgrade) changes nothing, so changes made
-- while daemons are down are still queued.  A provider no daemon ever
-- registered (inserted by an application, or registered before this
-- migration and not since) keeps the flag it was written with.

ALTER TABLE sync_providers
    ADD COLUMN operator_disabled boolean NOT NULL DEFAULT false,
    ADD COLUMN operator_changed_at timestamptz;

CREATE TABLE sync_provider_nodes (
    provider      text NOT NULL REFERENCES sync_providers (name) ON DELETE CASCADE,
    node          text NOT NULL,
    state         text NOT NULL CHECK (state IN ('enabled', 'disabled', 'removed')),
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, node)
);

-- The derived flag of one provider (NULL for an unknown name).
CREATE FUNCTION wsync__provider_effective(p_provider text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT sp.operator_disabled
           AND (EXISTS (SELECT 1 FROM sync_provider_nodes n
                         WHERE n.provider = sp.name AND n.state = 'enabled')
                OR NOT EXISTS (SELECT 1 FROM sync_provider_nodes n
                                WHERE n.provider = sp.name))
      FROM sync_providers sp WHERE sp.name = p_provider
$$;

-- Per provider: is anything served, and if not, why (reason NULL = served
-- as far as the database knows: some node has it enabled, or none ever
-- registered it but it is enabled).  nodes_enabled lists the nodes whose
-- configuration loads it.  wsyncctl status/queue and metrics read this.
CREATE VIEW wsync_provider_state AS
SELECT sp.name AS provider, sp.plugin, sp.enabled, sp.operator_disabled,
       sp.operator_changed_at,
       coalesce(n.enabled_nodes, '{}') AS nodes_enabled,
       coalesce(n.known_nodes, 0) AS nodes_known,
       CASE
           WHEN sp.operator_disabled
               THEN 'disabled by an operator (wsyncctl provider enable '
                    || sp.name || ' resumes it)'
           WHEN coalesce(n.known_nodes, 0) = 0 AND NOT sp.enabled
               THEN 'disabled in sync_providers'
           WHEN coalesce(n.known_nodes, 0) = 0
               THEN 'no wsyncd has registered it (no conf.d file loads it)'
           WHEN cardinality(n.enabled_nodes) = 0
               THEN 'no wsyncd serves it (its conf.d file was removed or sets enabled = false)'
       END AS reason
  FROM sync_providers sp
  LEFT JOIN (SELECT provider, count(*) AS known_nodes,
                    coalesce(array_agg(node ORDER BY node)
                             FILTER (WHERE state = 'enabled'), '{}') AS enabled_nodes
               FROM sync_provider_nodes GROUP BY provider) n
         ON n.provider = sp.name;

-- Set the derived flag of the given providers; returns nothing.
CREATE FUNCTION wsync__provider_refresh(p_providers text[])
RETURNS void LANGUAGE sql AS $$
    UPDATE sync_providers sp
       SET enabled = wsync__provider_effective(sp.name), updated_at = now()
     WHERE sp.name = ANY(p_providers)
       AND sp.enabled IS DISTINCT FROM wsync__provider_effective(sp.name)
$$;

-- What a node says about one provider after a change (one log line).
CREATE FUNCTION wsync__provider_note(p_provider text, p_node text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN s.operator_disabled
            THEN 'disabled by an operator: nothing is queued for it (wsyncctl provider enable '
                 || s.provider || ' resumes it)'
        WHEN NOT s.enabled
            THEN 'no wsyncd has it enabled: nothing is queued for it any more'
        WHEN NOT (p_node = ANY(s.nodes_enabled))
            THEN 'not served by this node; still queued for, enabled on '
                 || array_to_string(s.nodes_enabled, ', ')
    END
      FROM wsync_provider_state s WHERE s.provider = p_provider
$$;

-- Called by wsyncd at start and at every reload with what its configuration
-- loads: names[i] is an instance (provider name), plugins[i] its plugin,
-- enabled[i] its [provider] enabled.  keep: instances configured but whose
-- plugin did not load this time; their rows stay as they were (a plugin
-- that fails to load must not stop enqueueing: its entries wait).  Every
-- other provider this node had registered and no longer configures is
-- marked 'removed'.  Returns, for each provider the node had or has: the
-- derived flag ("queued": the triggers enqueue for it) and a note when
-- nothing is queued for it or this node does not serve it (NULL otherwise).
CREATE FUNCTION wsync_providers_register(p_node text, p_names text[], p_plugins text[],
                                         p_enabled boolean[], p_keep text[] DEFAULT '{}')
RETURNS TABLE (provider_name text, queued boolean, note text)
LANGUAGE plpgsql AS $$
DECLARE
    v_touched text[];
BEGIN
    IF p_node IS NULL OR p_node = '' THEN
        RAISE EXCEPTION 'wsync_providers_register: node must not be empty'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF cardinality(coalesce(p_names, '{}')) <> cardinality(coalesce(p_plugins, '{}'))
       OR cardinality(coalesce(p_names, '{}')) <> cardinality(coalesce(p_enabled, '{}')) THEN
        RAISE EXCEPTION 'wsync_providers_register: names, plugins and enabled differ in length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    p_names := coalesce(p_names, '{}');
    p_keep := coalesce(p_keep, '{}');
    -- Two nodes reloading at once would each read the other's rows half
    -- written; registrations are rare, so serialize them.
    PERFORM pg_advisory_xact_lock(7813029143258114408);

    -- New providers start disabled; the refresh below derives the flag.
    INSERT INTO sync_providers AS sp (name, plugin, enabled)
    SELECT u.n, u.pl, false FROM unnest(p_names, p_plugins) AS u(n, pl)
    ON CONFLICT (name) DO UPDATE SET plugin = EXCLUDED.plugin, updated_at = now()
     WHERE sp.plugin IS DISTINCT FROM EXCLUDED.plugin;

    INSERT INTO sync_provider_nodes AS x (provider, node, state)
    SELECT u.n, p_node, CASE WHEN u.e THEN 'enabled' ELSE 'disabled' END
      FROM unnest(p_names, p_enabled) AS u(n, e)
    ON CONFLICT (provider, node) DO UPDATE SET state = EXCLUDED.state, registered_at = now();

    UPDATE sync_provider_nodes x SET state = 'removed', registered_at = now()
     WHERE x.node = p_node AND x.state <> 'removed'
       AND NOT (x.provider = ANY(p_names)) AND NOT (x.provider = ANY(p_keep));

    SELECT array_agg(x.provider ORDER BY x.provider) INTO v_touched
      FROM sync_provider_nodes x WHERE x.node = p_node;
    PERFORM wsync__provider_refresh(coalesce(v_touched, '{}'));

    RETURN QUERY
    SELECT sp.name, sp.enabled, wsync__provider_note(sp.name, p_node)
      FROM sync_providers sp
     WHERE sp.name = ANY(coalesce(v_touched, '{}'))
       -- A provider this node removed long ago is not news at every reload.
       AND (sp.name = ANY(p_names) OR sp.name = ANY(p_keep)
            OR EXISTS (SELECT 1 FROM sync_provider_nodes x
                        WHERE x.provider = sp.name AND x.node = p_node
                          AND x.registered_at = now()))
     ORDER BY sp.name;
END $$;

-- The operator's override (wsyncctl provider disable|enable).  Returns the
-- provider's derived flag and a note when nothing is queued for it.
CREATE FUNCTION wsync_provider_set_disabled(p_provider text, p_disabled boolean)
RETURNS TABLE (provider_name text, queued boolean, note text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM wsync__check_provider('wsync_provider_set_disabled', p_provider);
    IF p_disabled IS NULL THEN
        RAISE EXCEPTION 'wsync_provider_set_disabled: disabled must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pg_advisory_xact_lock(7813029143258114408);
    UPDATE sync_providers
       SET operator_disabled = p_disabled, operator_changed_at = now(), updated_at = now()
     WHERE name = p_provider AND operator_disabled IS DISTINCT FROM p_disabled;
    -- A provider no node registered keeps its own flag unless the
    -- operator speaks: then it follows the override.
    UPDATE sync_providers SET enabled = NOT p_disabled, updated_at = now()
     WHERE name = p_provider AND enabled IS DISTINCT FROM NOT p_disabled
       AND NOT EXISTS (SELECT 1 FROM sync_provider_nodes n WHERE n.provider = p_provider);
    PERFORM wsync__provider_refresh(ARRAY[p_provider]);
    RETURN QUERY
    SELECT s.provider, s.enabled,
           CASE WHEN NOT s.enabled OR s.reason IS NOT NULL THEN s.reason END
      FROM wsync_provider_state s WHERE s.provider = p_provider;
END $$;

-- ---- backfill ------------------------------------------------------------------
--
-- Queue a provider's `create` for what it has never had: workouts, then
-- scheduled workouts dated today (UTC) or later.  One call handles one
-- batch of at most p_limit entities of one type, in id order after p_after
-- (NULL: from the start); the caller runs each batch in its own transaction
-- (locks stay short) and goes on with last_id until last_id is NULL.  Run
-- every workout batch before the scheduled ones: the engine runs a
-- scheduled workout after older entries of its workout, so the workout is
-- created first.
--
-- Only users enabled for the provider (a provider_tokens row with
-- upload_workouts_enabled, and the provider enabled) are scanned.  An
-- entity is skipped when the provider has it (a link) or an entry for it is
-- pending on that provider, so running backfill twice queues nothing new.
-- p_since: only rows created or changed (created_at/updated_at) at or after
-- it.  p_users: only these users (NULL: everyone).
-- Returns queued (entries written), scanned (entities looked at) and the
-- last id scanned (NULL: nothing left).
CREATE FUNCTION wsync_backfill(p_provider text, p_entity_type text, p_after uuid DEFAULT NULL,
                               p_limit integer DEFAULT 500,
                               p_since timestamptz DEFAULT NULL,
                               p_users uuid[] DEFAULT NULL)
RETURNS TABLE (queued integer, scanned integer, last_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_queued integer := 0;
    v_scanned integer := 0;
    v_last uuid;
BEGIN
    PERFORM wsync__check_provider('wsync_backfill', p_provider);
    PERFORM wsync__check_entity_type('wsync_backfill', p_entity_type);
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000000 THEN
        RAISE EXCEPTION 'wsync_backfill: limit must be from 1 to 1000000, not %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (SELECT enabled FROM sync_providers WHERE name = p_provider) THEN
        RETURN QUERY SELECT 0, 0, NULL::uuid;
        RETURN;
    END IF;
    FOR r IN
        SELECT e.id, e.user_id,
               EXISTS (SELECT 1 FROM workout_sync_links l
                        WHERE l.provider = p_provider AND l.entity_type = p_entity_type
                          AND l.entity_id = e.id)
            OR EXISTS (SELECT 1 FROM workout_sync_queue q
                        WHERE q.entity_type = p_entity_type AND q.entity_id = e.id
                          AND q.provider = p_provider AND q.processed_at IS NULL) AS has
          FROM (SELECT w.id, w.user_id, w.created_at, w.updated_at
                  FROM workouts w WHERE p_entity_type = 'workout'
                UNION ALL
                SELECT s.id, s.user_id, s.created_at, s.updated_at
                  FROM workouts_scheduled s
                 WHERE p_entity_type = 'workout_scheduled'
                   AND s.scheduled_date >= (now() AT TIME ZONE 'UTC')::date) e
         WHERE (p_after IS NULL OR e.id > p_after)
           AND (p_users IS NULL OR e.user_id = ANY(p_users))
           AND (p_since IS NULL OR greatest(e.created_at, e.updated_at) >= p_since)
           AND EXISTS (SELECT 1 FROM provider_tokens t
                        WHERE t.user_id = e.user_id AND t.provider = p_provider
                          AND t.upload_workouts_enabled)
         ORDER BY e.id
         LIMIT p_limit
    LOOP
        v_scanned := v_scanned + 1;
        v_last := r.id;
        IF NOT r.has THEN
            v_queued := v_queued + wsync__enqueue_one(r.user_id, p_entity_type, r.id,
                                                      'create', p_provider);
        END IF;
    END LOOP;
    RETURN QUERY SELECT v_queued, v_scanned,
                        CASE WHEN v_scanned = p_limit THEN v_last END;
END $$;

-- ---- a fixed workout re-queues its failed schedules ----------------------------
--
-- A scheduled workout fails with invalid_workout when its workout's text
-- cannot be parsed, and invalid_workout is permanent.  When the workout's
-- text changes, each of its scheduled workouts dated today (UTC) or later
-- whose current entry on a provider (the newest, processed) failed with
-- invalid_workout gets a fresh entry there, through the usual rules: an
-- update, which becomes a create where the provider has no link.  A
-- separate trigger, named to fire after wsync_workouts_update (triggers of
-- one event fire in name order), so the workout's own update is queued
-- first and the engine runs the schedules after it.
CREATE FUNCTION wsync__requeue_invalid_schedules(p_workout_id uuid)
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
         WHERE s.workout_id = p_workout_id
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

-- Statement-level, like the enqueue triggers of 0006, and named to fire
-- after wsync_workouts_update (triggers of one event fire in name order), so
-- the workout's own entry is queued before its schedules'.
CREATE FUNCTION wsync__workout_text_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF wsync__triggers_on() THEN
        PERFORM wsync__requeue_invalid_schedules(n.id)
           FROM wsync_new_rows n JOIN wsync_old_rows o ON o.id = n.id
          WHERE o.workout_text IS DISTINCT FROM n.workout_text
          ORDER BY n.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER wsync_workouts_update_requeue_invalid
    AFTER UPDATE ON workouts
    REFERENCING OLD TABLE AS wsync_old_rows NEW TABLE AS wsync_new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION wsync__workout_text_trigger();

-- ---- pin search_path (as 0002 does for its entry points) -----------------------
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = current_schema()::regnamespace
           AND p.proname IN ('wsync_providers_register', 'wsync_provider_set_disabled',
                             'wsync_backfill', 'wsync__workout_text_trigger')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp',
                       f, current_schema());
    END LOOP;
END $$;

-- ---- deletes: calendar entries before their workout ------------------------------
--
-- The claim (core/daemon/queue.c) holds a workout's delete while a delete of
-- a scheduled workout of the same user is unfinished on that provider.  The
-- schedule rows are gone by then (ON DELETE CASCADE, or the application
-- deleted them), so nothing names their workout: the rule covers all of the
-- user's scheduled deletes on that provider, which are few and short-lived
-- (a retrying one holds the user's workout deletes at most until it
-- succeeds or fails for good).  This index makes that probe cheap.
CREATE INDEX workout_sync_queue_sched_delete_idx
    ON workout_sync_queue (user_id, provider)
    WHERE processed_at IS NULL AND entity_type = 'workout_scheduled' AND operation = 'delete';
