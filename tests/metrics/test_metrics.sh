#!/usr/bin/env bash
# test_metrics.sh -- wsyncd's [metrics] endpoint, as Prometheus would see it:
# /healthz and /readyz answer, /metrics
# parses with the Prometheus client library's own text parser, and its
# counters move as a drain runs (syncs by outcome, the call-latency
# histogram, queue gauges going from pending to done).
#   run under tests/pg_harness.sh: test_metrics.sh WSYNCD WSYNCCTL FIXTURE_DIR
set -uo pipefail
wsyncd=$1 wsyncctl=$2 fixtures=$3
PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | head -1)
q() { "$PSQL" "$WSYNC_TEST_CONNINFO" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsync-metrics.XXXXXX")
chmod 755 "$tmp"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/conf.d"
cat >"$tmp/wsyncd.ini" <<INI
[database]
conninfo = $WSYNC_TEST_CONNINFO
[engine]
workers = 4
[metrics]
listen = 127.0.0.1:0
[plugins]
dir = $fixtures
conf_dir = $tmp/conf.d
INI
printf '[provider]\nplugin = scripted\n' >"$tmp/conf.d/scripted.ini"
"$wsyncctl" -c "$tmp/wsyncd.ini" migrate >/dev/null || { echo "migrate failed"; exit 1; }
q <<'SQL'
INSERT INTO sync_providers (name, plugin) VALUES ('scripted', 'scripted') ON CONFLICT DO NOTHING;
CREATE TABLE t_users AS SELECT i, gen_random_uuid() AS id FROM generate_series(0, 19) i;
INSERT INTO provider_tokens (user_id, provider, access_token, upload_workouts_enabled)
  SELECT id, 'scripted', 'tok', true FROM t_users;
SQL

# A drain's worth of entries, queued before wsyncd starts: 40 succeed, 3 fail
# for good (the scripted plugin's "answer=invalid" is a 400).
q <<'SQL'
SET wsync.triggers = off;
WITH w AS (
  INSERT INTO workouts (user_id, name, description, workout_text)
  SELECT u.id, 'm ' || g, CASE WHEN g < 3 THEN 'answer=invalid_request' ELSE 'answer=ok' END, '- 10m 70%'
  FROM generate_series(0, 42) g JOIN t_users u ON u.i = g % 20 RETURNING id, user_id)
INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation, provider)
  SELECT user_id, 'workout', id, 'create', 'scripted' FROM w;
SQL

"$wsyncd" -c "$tmp/wsyncd.ini" >"$tmp/wsyncd.log" 2>&1 &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*metrics: serving .* (port \([0-9]*\)).*/\1/p' "$tmp/wsyncd.log" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] && ok "wsyncd logs the metrics port ($port)" || { bad "no metrics port in the log"; cat "$tmp/wsyncd.log"; exit 1; }
base="http://127.0.0.1:$port"

code() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
[ "$(code "$base/healthz")" = 200 ] && ok "/healthz 200" || bad "/healthz $(code "$base/healthz")"
[ "$(code "$base/nope")" = 404 ] && ok "unknown path 404" || bad "unknown path $(code "$base/nope")"
for _ in $(seq 100); do [ "$(code "$base/readyz")" = 200 ] && break; sleep 0.1; done
[ "$(code "$base/readyz")" = 200 ] && ok "/readyz 200 once the database answers" || bad "/readyz $(code "$base/readyz")"

# Wait for the drain: 43 entries processed.
for _ in $(seq 200); do
  [ "$(q -c "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL")" = 0 ] && break
  sleep 0.1
done
sleep 6 # the queue gauges are cached for 5 s
curl -s "$base/metrics" >"$tmp/metrics.txt"

# Debian's python3, which has the python3-prometheus-client package (another
# python3 may come first on PATH).
/usr/bin/python3 - "$tmp/metrics.txt" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = {f.name: f for f in text_string_to_metric_families(text)}   # raises on bad syntax
def val(name, **labels):
    for f in fams.values():
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None
checks = [
    ("parses as Prometheus text, with families", len(fams) >= 8),
    ("build info names the ABI", val("wsync_build_info") == 1),
    ("40 creates ok", val("wsync_syncs_total", provider="scripted", operation="create", outcome="ok") == 40),
    ("3 creates invalid_request", val("wsync_syncs_total", provider="scripted", operation="create", outcome="invalid_request") == 3),
    ("histogram counted 43 calls", val("wsync_provider_call_duration_seconds_count", provider="scripted") == 43),
    ("histogram +Inf bucket equals count", val("wsync_provider_call_duration_seconds_bucket", provider="scripted", le="+Inf") == 43),
    ("nothing pending any more", val("wsync_queue_entries", provider="scripted", state="pending") in (None, 0)),
    ("3 failed in the last day", val("wsync_queue_entries", provider="scripted", state="failed") == 3),
    ("ready", val("wsync_ready") == 1),
    ("the provider is served", val("wsync_provider_served", provider="scripted", reason="") == 1),
    ("counter families are typed counter", fams["wsync_syncs"].type == "counter"),
    ("histogram typed histogram", fams["wsync_provider_call_duration_seconds"].type == "histogram"),
]
bad = 0
for name, okay in checks:
    print(("ok: " if okay else "FAIL: ") + name)
    bad += not okay
sys.exit(1 if bad else 0)
PY
[ $? = 0 ] && ok "/metrics content" || { bad "/metrics content"; cat "$tmp/metrics.txt"; }

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
