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
