#!/usr/bin/env bash
# The main job, end to end on this machine: install what is missing, build,
# start a private PostgreSQL under .run/ (unix socket only), migrate, write
# a few users' workouts through the application tables (the triggers
# enqueue them), run wsyncd until the queue is drained, and print a status
# table of what synced where.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

run=$top/.run
mkdir -p "$run"
chmod 755 "$run"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A private cluster, owned by postgres when run as root (initdb refuses root).
if [ ! -f "$run/pg/PG_VERSION" ]; then
  rm -rf "$run/pg"; mkdir -p "$run/pg" "$run/sock" "$run/log"
  [ "$(id -u)" = 0 ] && chown postgres: "$run/pg" "$run/sock"
  as_pg "$pgbin/initdb" -D "$run/pg" -U postgres -A trust --no-locale -E UTF8 >/dev/null
fi
mkdir -p "$run/log"; [ "$(id -u)" = 0 ] && chown postgres: "$run/sock" "$run/log"
if ! as_pg "$pgbin/pg_ctl" -D "$run/pg" status >/dev/null 2>&1; then
  as_pg "$pgbin/pg_ctl" -D "$run/pg" -w -l "$run/log/pg.log" \
    -o "-c listen_addresses='' -c unix_socket_directories=$run/sock" start >/dev/null
fi
as_pg "$pgbin/psql" -h "$run/sock" -U postgres -qtAc "SELECT 1 FROM pg_database WHERE datname='wsync'" | grep -q 1 ||
  as_pg "$pgbin/createdb" -h "$run/sock" -U postgres wsync
export WSYNC_DATABASE_URL="host=$run/sock user=postgres dbname=wsync"

# Configuration: the example plugin stands in for the providers.
mkdir -p "$run/conf.d" "$run/plugins"
chmod 755 "$run/conf.d" "$run/plugins"
install -m 755 build/plugins/example/example.so "$run/plugins/example.so"
cp conf.d/example.ini "$run/conf.d/example.ini"
cat > "$run/wsyncd.ini" <<INI
[database]
conninfo = $WSYNC_DATABASE_URL
[engine]
workers = 2
[plugins]
dir = plugins
conf_dir = conf.d
INI

ctl="build/core/wsyncctl -c $run/wsyncd.ini"
$ctl migrate --dir "$top/migrations"
build/core/wsyncd -c "$run/wsyncd.ini" --check >/dev/null
psql() { as_pg "$pgbin/psql" -h "$run/sock" -U postgres -d wsync -v ON_ERROR_STOP=1 -qtA "$@"; }
psql -c "INSERT INTO sync_providers (name, plugin) VALUES ('example', 'example') ON CONFLICT DO NOTHING"
psql <<'SQL'
-- Three athletes with the example provider connected, each saving a workout
-- and scheduling it: the triggers enqueue inside these transactions.
WITH u AS (SELECT gen_random_uuid() AS id FROM generate_series(1, 3))
INSERT INTO provider_tokens (user_id, provider, access_token, upload_workouts_enabled)
SELECT id, 'example', 'demo-token', true FROM u;
INSERT INTO workouts (user_id, name, sport, workout_text)
SELECT user_id, 'Sweet spot 3x10', 'bike',
       E'Warmup\n- 10m ramp 50-75% 90rpm\n\nMain Set 3x\n- 10m 90%\n- 3m 55%\n\nCooldown\n- 8m 50%'
FROM provider_tokens WHERE provider = 'example'
  AND user_id NOT IN (SELECT user_id FROM workouts);
INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date)
SELECT w.user_id, w.id, current_date + 1 FROM workouts w
WHERE NOT EXISTS (SELECT 1 FROM workouts_scheduled s WHERE s.workout_id = w.id);
SQL
echo "queue before the drain:"
$ctl queue
build/core/wsyncd -c "$run/wsyncd.ini" --once
echo
echo "status (what synced where):"
psql -F ' | ' <<'SQL'
SELECT 'entity_type | entity_id | provider | state | provider id';
SELECT q.entity_type, q.entity_id, q.provider,
       CASE WHEN q.processed_at IS NULL THEN 'pending'
            WHEN q.error_type IS NULL THEN 'synced' ELSE 'failed: ' || q.error_type END,
       coalesce(l.provider_entity_id, '-')
FROM workout_sync_queue q
LEFT JOIN workout_sync_links l USING (provider, entity_type, entity_id)
ORDER BY q.entity_type, q.created_at;
SQL
