-- 0010_plugin_quarantine.sql: a node says which of its provider instances
-- it has quarantined (core/host/isolate.h: the plugin crashed or hung too
-- often), so `wsyncctl plugins`, `wsyncctl queue` and the application can
-- see why a provider's entries wait, and `wsyncctl plugins --release NAME`
-- can lift it: the node notices the cleared row (it LISTENs on wsync_queue
-- and looks every few seconds while something is quarantined).  A node
-- clears its own rows when it starts and when it reloads.

ALTER TABLE sync_provider_nodes
    ADD COLUMN quarantined_at timestamptz,
    ADD COLUMN quarantine_reason text;

-- Set or clear (p_reason NULL) the quarantine of one instance on one node.
CREATE FUNCTION wsync_provider_quarantine(p_node text, p_provider text, p_reason text)
RETURNS void LANGUAGE sql AS $$
    UPDATE sync_provider_nodes
       SET quarantined_at = CASE WHEN p_reason IS NULL THEN NULL ELSE now() END,
           quarantine_reason = p_reason
     WHERE node = p_node AND provider = p_provider;
$$;

-- The operator's release: every node's quarantine of the provider; the
-- number of nodes released.  Wakes the nodes.
CREATE FUNCTION wsync_provider_release(p_provider text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    UPDATE sync_provider_nodes SET quarantined_at = NULL, quarantine_reason = NULL
     WHERE provider = p_provider AND quarantined_at IS NOT NULL;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        PERFORM pg_notify('wsync_queue', 'release:' || p_provider);
    END IF;
    RETURN v_n;
END $$;

-- The reason a provider is not served now says so when every node serving
-- it has quarantined its plugin (`wsyncctl queue` and `wsyncctl provider
-- list` show it); one node's quarantine while others serve is in
-- quarantined_nodes.
CREATE OR REPLACE VIEW wsync_provider_state AS
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
           WHEN n.quarantined = cardinality(n.enabled_nodes)
               THEN 'plugin ' || n.last_reason
       END AS reason,
       coalesce(n.quarantined_nodes, '{}') AS quarantined_nodes
  FROM sync_providers sp
  LEFT JOIN (SELECT provider, count(*) AS known_nodes,
                    coalesce(array_agg(node ORDER BY node)
                             FILTER (WHERE state = 'enabled'), '{}') AS enabled_nodes,
                    count(*) FILTER (WHERE state = 'enabled'
                                       AND quarantined_at IS NOT NULL) AS quarantined,
                    coalesce(array_agg(node ORDER BY node)
                             FILTER (WHERE quarantined_at IS NOT NULL), '{}')
                        AS quarantined_nodes,
                    (array_agg(quarantine_reason ORDER BY quarantined_at DESC)
                         FILTER (WHERE quarantined_at IS NOT NULL))[1] AS last_reason
               FROM sync_provider_nodes GROUP BY provider) n
         ON n.provider = sp.name;
