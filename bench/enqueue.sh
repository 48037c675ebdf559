#!/usr/bin/env bash
# What the sync triggers add to an application's statements on workouts, on a
# throwaway PostgreSQL cluster (tests/pg_harness.sh), migrated with the built
# wsyncctl.
#
#   bench/enqueue.sh BUILD_DIR [WORKOUTS] [USERS] [LOOP] [ROUNDS]
#
# Defaults: 20,000 workouts over 1,000 users, each user connected to 1-3 of
# the providers wahoo, garmin, tp (2 on average); single-row loops of 2,000
# statements; 3 rounds.  Every round starts from empty tables and times, each
# statement issued by psql and measured with \timing:
#   bulk INSERT   one INSERT ... SELECT of WORKOUTS rows; also, as a floor,
#                 the resulting queue rows written by one plain INSERT
#   bulk UPDATE   one UPDATE of all of them, after they were synced (queue
#                 processed, links written; a quarter of them have an upcoming
#                 linked scheduled workout, which the update re-queues too)
#   bulk DELETE   one DELETE of all of them (cascading to their schedules)
#   loop          LOOP single-row INSERTs, then LOOP UPDATEs of those rows,
#                 then LOOP DELETEs (pending creates cancelled), one psql
#                 session each, autocommit; wall clock of the session
# against three variants: "plain" (bench_plain, a copy of workouts made with
# LIKE ... INCLUDING ALL, no triggers: the application without wsync), "off"
# (workouts with SET LOCAL wsync.triggers = off, rolled back) and "wsync"
# (workouts with the triggers).  Prints the median of the rounds and the
# ratios wsync/plain.  The issue's target: bulk INSERT <= 3x plain.
#
# WSYNC_MIGRATIONS_DIR picks another migrations directory (to measure an
# older schema: a directory holding only some of the files).  The harness
# runs PostgreSQL with fsync off; a single statement's time hardly depends on
# it, the single-row loops do (one commit per statement).
set -euo pipefail

if [ "${WSYNC_BENCH_INNER:-}" != 1 ]; then
  [ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [WORKOUTS] [USERS] [LOOP] [ROUNDS]" >&2; exit 2; }
  build=$(cd "$1" && pwd)
  src=$(cd "$(dirname "$0")/.." && pwd)
  [ -x "$build/core/ctl/wsyncctl" ] || { echo "no $build/core/ctl/wsyncctl: build first" >&2; exit 2; }
  export WSYNC_BENCH_INNER=1 WSYNC_BENCH_BUILD="$build" WSYNC_BENCH_SRC="$src"
  export WSYNC_BENCH_WORKOUTS=${2:-20000} WSYNC_BENCH_USERS=${3:-1000}
  export WSYNC_BENCH_LOOP=${4:-2000} WSYNC_BENCH_ROUNDS=${5:-3}
  export WSYNC_BENCH_MIGRATIONS=${WSYNC_MIGRATIONS_DIR:-$src/migrations}
  export WSYNC_PG_TEMPLATE_DIR=${WSYNC_PG_TEMPLATE_DIR:-$build/pg}
  exec "$src/tests/pg_harness.sh" "$src/bench/enqueue.sh"
fi

# ---- inside the harness: WSYNC_TEST_CONNINFO points at a fresh database ----
build=$WSYNC_BENCH_BUILD
n=$WSYNC_BENCH_WORKOUTS
users=$WSYNC_BENCH_USERS
loop=$WSYNC_BENCH_LOOP
rounds=$WSYNC_BENCH_ROUNDS
PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | head -1)
psql_q() { "$PSQL" "$WSYNC_TEST_CONNINFO" -X -q -v ON_ERROR_STOP=1 "$@"; }

tmp=$(mktemp -d /tmp/wsync-bench.XXXXXX)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

ASAN_OPTIONS=detect_leaks=0 WSYNC_DATABASE_URL=$WSYNC_TEST_CONNINFO \
  "$build/core/ctl/wsyncctl" migrate --dir "$WSYNC_BENCH_MIGRATIONS" >"$tmp/migrate.log" 2>&1 ||
  { cat "$tmp/migrate.log" >&2; exit 1; }
applied=$(psql_q -At -c "SELECT string_agg(version::text, ',' ORDER BY version)
                          FROM wsync_schema_migrations")

psql_q <<SQL
INSERT INTO sync_providers (name, plugin) VALUES
  ('wahoo', 'wahoo'), ('garmin', 'garmin'), ('tp', 'trainingpeaks');
CREATE TABLE bench_users AS
  SELECT i, gen_random_uuid() AS id FROM generate_series(0, $users - 1) i;
-- User i is connected to 1 + i % 3 providers.
INSERT INTO provider_tokens (user_id, provider, access_token, upload_workouts_enabled)
  SELECT u.id, p.name, 'tok', true
    FROM bench_users u
    JOIN (VALUES (0, 'wahoo'), (1, 'garmin'), (2, 'tp')) AS p(k, name)
      ON p.k <= u.i % 3;
CREATE TABLE bench_plain (LIKE workouts INCLUDING ALL);
ANALYZE;
SQL

# The SELECT feeding both bulk INSERTs.
rows_sql="SELECT u.id, 'bench ' || g, 'bench workout', '- 10m 70%'
            FROM generate_series(0, $n - 1) g JOIN bench_users u ON u.i = g % $users"

# Runs psql on stdin and prints the time of the statement after the
# "\\timing on" line, in ms.
timed() {
  psql_q | awk '/^Time: / { t = $2 } END { if (t == "") exit 1; print t }'
}

reset_tables() {
  psql_q <<SQL
TRUNCATE workouts, workouts_scheduled, workout_sync_queue, workout_sync_links, bench_plain;
VACUUM ANALYZE;
CHECKPOINT;
SQL
}

bulk_round() {
  reset_tables
  r_plain_ins=$(timed <<SQL
\\timing on
INSERT INTO bench_plain (user_id, name, description, workout_text) $rows_sql;
SQL
)
  r_off_ins=$(timed <<SQL
BEGIN;
SET LOCAL wsync.triggers = off;
\\timing on
INSERT INTO workouts (user_id, name, description, workout_text) $rows_sql;
\\timing off
ROLLBACK;
SQL
)
  # The floor: the same queue rows written by one plain INSERT (no
  # coalescing, no lookups), what any enqueue of them costs.
  r_rows_ins=$(timed <<SQL
BEGIN;
SET LOCAL wsync.triggers = off;
INSERT INTO workouts (user_id, name, description, workout_text) $rows_sql;
\\timing on
INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation, provider)
  SELECT w.user_id, 'workout', w.id, 'create', t.provider
    FROM workouts w JOIN provider_tokens t ON t.user_id = w.user_id;
\\timing off
ROLLBACK;
SQL
)
  psql_q -c "CHECKPOINT"
  r_ins=$(timed <<SQL
\\timing on
INSERT INTO workouts (user_id, name, description, workout_text) $rows_sql;
SQL
)
  queued_ins=$(psql_q -At -c "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL")

  # What a sync leaves behind: every entry processed, every workout linked on
  # its user's providers; a quarter of the workouts scheduled tomorrow and
  # synced too.
  psql_q <<SQL
SET wsync.triggers = off;
UPDATE workout_sync_queue SET processed_at = now(), locked_until = now(), attempts = 1;
INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id, provider_entity_id)
  SELECT t.provider, 'workout', w.id, w.user_id, 'p-' || w.id
    FROM workouts w JOIN provider_tokens t ON t.user_id = w.user_id;
INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date)
  SELECT user_id, id, current_date + 1 FROM workouts WHERE get_byte(uuid_send(id), 0) < 64;
INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id, provider_entity_id)
  SELECT t.provider, 'workout_scheduled', s.id, s.user_id, 'p-' || s.id
    FROM workouts_scheduled s JOIN provider_tokens t ON t.user_id = s.user_id;
VACUUM ANALYZE;
CHECKPOINT;
SQL
  r_plain_upd=$(timed <<SQL
\\timing on
UPDATE bench_plain SET workout_text = workout_text || ' +';
SQL
)
  r_off_upd=$(timed <<SQL
BEGIN;
SET LOCAL wsync.triggers = off;
\\timing on
UPDATE workouts SET workout_text = workout_text || ' +';
\\timing off
ROLLBACK;
SQL
)
  psql_q -c "CHECKPOINT"
  r_upd=$(timed <<SQL
\\timing on
UPDATE workouts SET workout_text = workout_text || ' +';
SQL
)
  queued_upd=$(psql_q -At -c "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL")
  psql_q <<SQL
SET wsync.triggers = off;
UPDATE workout_sync_queue SET processed_at = now(), locked_until = now()
 WHERE processed_at IS NULL;
VACUUM ANALYZE;
CHECKPOINT;
SQL
  r_plain_del=$(timed <<SQL
\\timing on
DELETE FROM bench_plain;
SQL
)
  r_off_del=$(timed <<SQL
BEGIN;
SET LOCAL wsync.triggers = off;
\\timing on
DELETE FROM workouts;
\\timing off
ROLLBACK;
SQL
)
  psql_q -c "CHECKPOINT"
  r_del=$(timed <<SQL
\\timing on
DELETE FROM workouts;
SQL
)
  queued_del=$(psql_q -At -c "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL")
}

# Wall clock in ms of one psql session running file $1.
session_ms() {
  local s e
  s=$(date +%s%N)
  psql_q -f "$1" >/dev/null
  e=$(date +%s%N)
  echo $(( (e - s) / 1000000 ))
}

# LOOP single-row statements on table $1 into $tmp/{ins,upd,del}.sql.
loop_files() {
  psql_q -At >"$tmp/ins.sql" <<SQL
SELECT format('INSERT INTO $1 (id, user_id, name, workout_text) VALUES (%L, %L, %L, %L);',
              gen_random_uuid(), u.id, 'loop ' || g, '- 5m 60%')
  FROM generate_series(0, $loop - 1) g JOIN bench_users u ON u.i = g % $users;
SQL
  sed -n "s/^INSERT INTO $1 (id, user_id, name, workout_text) VALUES ('\([^']*\)'.*/UPDATE $1 SET workout_text = '- 6m 60%' WHERE id = '\1';/p" \
    "$tmp/ins.sql" >"$tmp/upd.sql"
  sed -n "s/^UPDATE $1 SET .* WHERE id = \('[^']*'\);/DELETE FROM $1 WHERE id = \1;/p" \
    "$tmp/upd.sql" >"$tmp/del.sql"
}

loop_round() {
  reset_tables
  loop_files bench_plain
  l_plain_ins=$(session_ms "$tmp/ins.sql")
  l_plain_upd=$(session_ms "$tmp/upd.sql")
  l_plain_del=$(session_ms "$tmp/del.sql")
  loop_files workouts
  l_ins=$(session_ms "$tmp/ins.sql")
  l_queued_ins=$(psql_q -At -c "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL")
  l_upd=$(session_ms "$tmp/upd.sql")
  l_queued_upd=$(psql_q -At -c "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL")
  l_del=$(session_ms "$tmp/del.sql")
  l_queued_del=$(psql_q -At -c "SELECT count(*) FROM workout_sync_queue")
}

declare -A all
keys=(r_plain_ins r_off_ins r_rows_ins r_ins r_plain_upd r_off_upd r_upd r_plain_del r_off_del r_del
      l_plain_ins l_ins l_plain_upd l_upd l_plain_del l_del)
for ((round = 1; round <= rounds; round++)); do
  bulk_round
  loop_round
  for k in "${keys[@]}"; do all[$k]+="${!k} "; done
  printf 'round %d: insert plain %s off %s queue rows alone %s wsync %s ms | update %s %s %s | delete %s %s %s | loop ins %s/%s upd %s/%s del %s/%s ms\n' \
    "$round" "$r_plain_ins" "$r_off_ins" "$r_rows_ins" "$r_ins" "$r_plain_upd" "$r_off_upd" "$r_upd" \
    "$r_plain_del" "$r_off_del" "$r_del" "$l_plain_ins" "$l_ins" "$l_plain_upd" "$l_upd" \
    "$l_plain_del" "$l_del"
done

median() { tr ' ' '\n' <<<"${all[$1]}" | grep . | sort -g | awk '{ v[NR] = $1 } END {
  printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
line() { # label plain off wsync queued
  awk -v l="$1" -v p="$2" -v o="$3" -v w="$4" -v q="$5" 'BEGIN {
    printf "%-34s plain %7.0f ms  off %7s  wsync %7.0f ms  wsync/plain %5.2fx  (%s pending after)\n",
      l, p, (o == "" ? "-" : sprintf("%.0f ms", o)), w, w / p, q }'
}

echo
echo "migrations $applied; $n workouts, $users users, $(psql_q -At -c 'SELECT count(*) FROM provider_tokens') provider connections; median of $rounds rounds"
line "bulk INSERT of $n (one statement)" "$(median r_plain_ins)" "$(median r_off_ins)" "$(median r_ins)" "$queued_ins"
echo "  (the $queued_ins queue rows alone, one plain INSERT ... SELECT into workout_sync_queue: $(median r_rows_ins) ms)"
line "bulk UPDATE of $n" "$(median r_plain_upd)" "$(median r_off_upd)" "$(median r_upd)" "$queued_upd"
line "bulk DELETE of $n" "$(median r_plain_del)" "$(median r_off_del)" "$(median r_del)" "$queued_del"
line "$loop single-row INSERTs" "$(median l_plain_ins)" "" "$(median l_ins)" "$l_queued_ins"
line "$loop single-row UPDATEs" "$(median l_plain_upd)" "" "$(median l_upd)" "$l_queued_upd"
line "$loop single-row DELETEs" "$(median l_plain_del)" "" "$(median l_del)" "$l_queued_del"
