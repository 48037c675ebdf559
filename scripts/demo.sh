#!/usr/bin/env bash
# The main job, end to end on this machine: install what is missing, build,
# start a private PostgreSQL under .run/ (unix socket only) and the sandbox
# that plays Wahoo, Garmin and TrainingPeaks on 127.0.0.1, migrate, connect
# a few athletes, write their workouts and scheduled workouts through the
# application tables (the triggers enqueue them), run wsyncd until the
# queue is drained, and print a status table of what synced where.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bash scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

run=$top/.run
mkdir -p "$run" "$run/log" "$run/sock" "$run/secrets"
chmod 755 "$run"
chmod 700 "$run/secrets"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A private cluster, owned by postgres when run as root (initdb refuses root).
if [ ! -f "$run/pg/PG_VERSION" ]; then
  rm -rf "$run/pg"; mkdir -p "$run/pg"
  [ "$(id -u)" = 0 ] && chown postgres: "$run/pg"
  as_pg "$pgbin/initdb" -D "$run/pg" -U postgres -A trust --no-locale -E UTF8 >/dev/null
fi
[ "$(id -u)" = 0 ] && chown postgres: "$run/sock" "$run/log"
if ! as_pg "$pgbin/pg_ctl" -D "$run/pg" status >/dev/null 2>&1; then
  as_pg "$pgbin/pg_ctl" -D "$run/pg" -w -l "$run/log/pg.log" \
    -o "-c listen_addresses='' -c unix_socket_directories=$run/sock" start >/dev/null
fi
psql() { as_pg "$pgbin/psql" -h "$run/sock" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
psql -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'wsync'" | grep -q 1 ||
  as_pg "$pgbin/createdb" -h "$run/sock" -U postgres wsync
export WSYNC_DATABASE_URL="host=$run/sock user=postgres dbname=wsync"

# The sandbox providers, fresh for every run.
[ -f "$run/sandbox.pid" ] && kill "$(cat "$run/sandbox.pid")" 2>/dev/null || true
rm -f "$run/sandbox.port"
build/tests/sandbox/wsync-sandbox --port-file "$run/sandbox.port" --log "$run/log/sandbox.log" 2>/dev/null &
echo $! > "$run/sandbox.pid"
trap 'kill "$(cat "$run/sandbox.pid")" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$run/sandbox.port" ] && break; sleep 0.05; done
sandbox="http://127.0.0.1:$(cat "$run/sandbox.port")"

# Configuration: one instance per provider, all pointed at the sandbox.
rm -rf "$run/conf.d" "$run/plugins"
mkdir -p "$run/conf.d" "$run/plugins"
chmod 755 "$run/conf.d" "$run/plugins"
for so in build/plugins/wahoo/wahoo.so build/plugins/garmin/garmin.so \
          build/subprojects/trainingpeaks/trainingpeaks.so; do
  install -m 755 "$so" "$run/plugins/"
done
printf 'demo-secret\n' > "$run/secrets/client"
chmod 600 "$run/secrets/client"
for p in wahoo garmin trainingpeaks; do
  cat > "$run/conf.d/$p.ini" <<INI
[provider]
plugin = $p
base_url = $sandbox
; the demo sandbox speaks plain http on 127.0.0.1: development only
allow_insecure_http = true
[oauth]
token_url = $sandbox/oauth/token
client_id = demo-client
client_secret_file = $run/secrets/client
INI
done
cat > "$run/wsyncd.ini" <<INI
[database]
conninfo = $WSYNC_DATABASE_URL
[engine]
workers = 4
[plugins]
dir = plugins
conf_dir = conf.d
INI

ctl="build/core/ctl/wsyncctl -c $run/wsyncd.ini"
$ctl migrate --dir "$top/migrations"
build/core/daemon/wsyncd -c "$run/wsyncd.ini" --check >/dev/null
# Register the providers now so the athletes' connections below enqueue
# (wsyncd does the same at start).
for p in wahoo garmin trainingpeaks; do
  psql -d wsync -c "INSERT INTO sync_providers (name, plugin) VALUES ('$p', '$p') ON CONFLICT DO NOTHING"
done
psql -d wsync <<'SQL'
-- Three athletes, each connected to all three providers, save a workout and
-- schedule it for tomorrow: the triggers enqueue inside these transactions.
CREATE TEMP TABLE athletes AS SELECT gen_random_uuid() AS id FROM generate_series(1, 3);
INSERT INTO provider_tokens (user_id, provider, access_token, refresh_token, expires_at)
SELECT a.id, p, 'demo-token-' || p, 'demo-refresh', now() + interval '1 hour'
FROM athletes a, unnest(ARRAY['wahoo', 'garmin', 'trainingpeaks']) p;
INSERT INTO workouts (user_id, name, sport, workout_text)
SELECT id, 'Sweet spot 3x10', 'bike',
       E'Warmup\n- 10m ramp 50-75% 90rpm\n\nMain Set 3x\n- 10m 90%\n- Recovery 3m 55%\n\nCooldown\n- 8m 50%'
FROM athletes;
INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date, scheduled_time)
SELECT w.user_id, w.id, current_date + 1, '06:30' FROM workouts w
JOIN athletes a ON a.id = w.user_id;
SQL
echo "queue before the drain:"
$ctl queue
build/core/daemon/wsyncd -c "$run/wsyncd.ini" --once 2>"$run/log/wsyncd.log"
grep -E 'Batch sync complete|failed' "$run/log/wsyncd.log" | tail -3
echo
echo "status (what synced where; provider ids come from the sandbox):"
psql -d wsync -F ' | ' <<'SQL'
SELECT 'entity_type       | provider      | state   | provider id';
SELECT rpad(q.entity_type, 17), rpad(q.provider, 13),
       rpad(CASE WHEN q.processed_at IS NULL THEN 'pending'
                 WHEN q.error_type IS NULL THEN 'synced' ELSE q.error_type END, 7),
       coalesce(l.provider_entity_id, '- (no library on this provider)')
FROM workout_sync_queue q
LEFT JOIN workout_sync_links l USING (provider, entity_type, entity_id)
WHERE q.seq IN (SELECT max(seq) FROM workout_sync_queue GROUP BY entity_type, entity_id, provider)
ORDER BY q.entity_type, q.provider, q.created_at;
SQL
echo
$ctl success-rate --since 1h
echo
echo "PostgreSQL keeps running under .run/ (WSYNC_DATABASE_URL=\"$WSYNC_DATABASE_URL\");"
echo "stop it with: $pgbin/pg_ctl -D $run/pg stop"
