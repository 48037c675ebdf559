#!/usr/bin/env bash
# Drain rate of `wsyncd --once`: 10,000 queue entries for the scripted test
# plugin (answering ok at once) over 1,000 users, workers=4, batch_size=200,
# on a throwaway PostgreSQL cluster (tests/pg_harness.sh).
#
#   bench/drain.sh BUILD_DIR [ENTRIES] [USERS]
#
# Prints entries/second, timed around the wsyncd run only.
set -euo pipefail

if [ "${WSYNC_BENCH_INNER:-}" != 1 ]; then
  [ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [ENTRIES] [USERS]" >&2; exit 2; }
  build=$(cd "$1" && pwd)
  src=$(cd "$(dirname "$0")/.." && pwd)
  [ -x "$build/core/wsyncd" ] || { echo "no $build/core/wsyncd: build first" >&2; exit 2; }
  [ -f "$build/tests/fixtures/scripted.so" ] || { echo "no scripted.so in $build/tests/fixtures" >&2; exit 2; }
  export WSYNC_BENCH_INNER=1 WSYNC_BENCH_BUILD="$build" WSYNC_BENCH_SRC="$src"
  export WSYNC_BENCH_ENTRIES=${2:-10000} WSYNC_BENCH_USERS=${3:-1000}
  export WSYNC_PG_TEMPLATE_DIR=${WSYNC_PG_TEMPLATE_DIR:-$build/pg}
  exec "$src/tests/pg_harness.sh" "$src/bench/drain.sh"
fi

# ---- inside the harness: WSYNC_TEST_CONNINFO points at a fresh database ----
build=$WSYNC_BENCH_BUILD
src=$WSYNC_BENCH_SRC
n=$WSYNC_BENCH_ENTRIES
users=$WSYNC_BENCH_USERS
PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | head -1)
psql_q() { "$PSQL" "$WSYNC_TEST_CONNINFO" -X -q -v ON_ERROR_STOP=1 "$@"; }

tmp=$(mktemp -d /tmp/wsync-bench.XXXXXX)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/conf.d"
cat >"$tmp/wsyncd.ini" <<INI
[database]
conninfo = $WSYNC_TEST_CONNINFO
[engine]
workers = 4
batch_size = 200
[log]
level = warn
[plugins]
dir = $build/tests/fixtures
conf_dir = $tmp/conf.d
INI
printf '[provider]\nplugin = scripted\n' >"$tmp/conf.d/scripted.ini"

for f in "$src"/migrations/*.sql; do
  psql_q -f "$f" >/dev/null
done
psql_q <<SQL
SET wsync.triggers = off;
INSERT INTO sync_providers (name, plugin) VALUES ('scripted', 'scripted')
  ON CONFLICT DO NOTHING;
CREATE TEMP TABLE u AS
  SELECT i, gen_random_uuid() AS id FROM generate_series(0, $users - 1) i;
INSERT INTO provider_tokens (user_id, provider, access_token, upload_workouts_enabled)
  SELECT id, 'scripted', 'tok', true FROM u;
INSERT INTO workouts (user_id, name, description, workout_text)
  SELECT u.id, 'bench ' || g, 'answer=ok', '- 10m 70%'
  FROM generate_series(0, $n - 1) g JOIN u ON u.i = g % $users;
INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation, provider)
  SELECT user_id, 'workout', id, 'create', 'scripted' FROM workouts;
ANALYZE;
SQL

start=$(date +%s.%N)
"$build/core/wsyncd" -c "$tmp/wsyncd.ini" --once >"$tmp/wsyncd.log" 2>&1 || {
  echo "wsyncd failed:" >&2; tail -20 "$tmp/wsyncd.log" >&2; exit 1; }
end=$(date +%s.%N)

done_n=$(psql_q -At -c "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NOT NULL AND error_type IS NULL")
left=$(psql_q -At -c "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL")
awk -v n="$done_n" -v s="$start" -v e="$end" -v left="$left" -v total="$n" -v users="$users" 'BEGIN {
  t = e - s;
  printf "drained %d of %d entries (%d users, workers=4, batch_size=200) in %.2f s: %.0f entries/s", n, total, users, t, n / t;
  if (left > 0) printf " (%d still pending)", left;
  printf "\n";
}'
