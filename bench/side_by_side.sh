#!/usr/bin/env bash
# Side-by-side benchmark: the shared "sync job" workload (../shared/bench/WORKLOAD.md)
# against wsync and the peers (pg-boss, graphile-worker), interleaved in one run.
# See bench/README.md for what it measures and how to read the figures.
#
#   bench/side_by_side.sh [--quick] [--no-peers] [--configs "D:C:N:B ..."] [--rounds R]
#                         [--build DIR] [--out FILE] [--skip-pickup] [--skip-claim] [--help]
set -euo pipefail

# ------------------------------------------------------------------------------------
# What the lead changes as the daemon changes (all overridable from the environment).
#
# How WORKLOAD.md's "concurrency C" (calls in flight) maps onto wsyncd.ini's [engine]
# section: {C} is replaced by C; several lines are separated by '\n'.  Today each worker
# thread makes one call at a time, so C calls in flight = C workers.  With a call pool:
# e.g. 'workers = 2\ncalls_in_flight = {C}'.
WSYNC_ENGINE_FOR_CONCURRENCY=${WSYNC_ENGINE_FOR_CONCURRENCY:-'workers = {C}'}
# Further [engine] lines for every run ('\n'-separated), e.g. 'batch_size = 200'.
WSYNC_ENGINE_EXTRA=${WSYNC_ENGINE_EXTRA:-''}
# Further [plugins] lines ('\n'-separated): 'isolate = false' measures the cost of
# running each plugin in its own process (the default) against running it in wsyncd.
WSYNC_PLUGINS_EXTRA=${WSYNC_PLUGINS_EXTRA:-''}
# Plugin instances loaded by wsyncd (each gets conf.d/<name>.ini pointing at the fake);
# only wahoo has tokens, so only wahoo gets entries.  The RSS target counts 3 plugins.
WSYNC_PLUGINS=${WSYNC_PLUGINS:-"wahoo garmin trainingpeaks"}
# The queue, as the poller sees it: how many entries are not finished yet (0 = drained).
WSYNC_PENDING_SQL=${WSYNC_PENDING_SQL:-"SELECT count(*) FROM (SELECT 1 FROM workout_sync_queue WHERE processed_at IS NULL LIMIT 1) s"}
# Entries finished successfully / with an error (verification after the drain).
WSYNC_OK_SQL=${WSYNC_OK_SQL:-"SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NOT NULL AND error_type IS NULL"}
WSYNC_FAILED_SQL=${WSYNC_FAILED_SQL:-"SELECT count(*) FROM workout_sync_queue WHERE error_type IS NOT NULL"}
# Pickup: > 0 once the entry of workout $1 is processed.
PICKUP_DONE_SQL=${PICKUP_DONE_SQL:-"SELECT count(*) FROM workout_sync_queue WHERE entity_id = \$1::uuid AND processed_at IS NOT NULL"}
# ------------------------------------------------------------------------------------

SRC=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$SRC/bench

usage() {
  cat <<EOF
Usage: bench/side_by_side.sh [OPTIONS]

Runs the shared "sync job" workload (20,000 "create workout at Wahoo" over 1,000 users)
against wsync (real triggers, real wsyncd, real wahoo plugin, fake Wahoo on 127.0.0.1)
and against pg-boss and graphile-worker (../shared/bench/peers/run.sh), interleaved per
configuration, on throwaway PostgreSQL 15 clusters (unix socket, fsync on).  Prints a
table (syncs/s, wsync / best peer, peak RSS, enqueue time and trigger cost, pickup
latency, claim cost with 1,000,000 processed rows) and writes it to a results file.
Needs root (PostgreSQL runs as the postgres user).  Takes about 5 minutes per round.

Options:
  --quick          smoke test (< 1 min): CONFIGS="0:8:2000:50", no peers, 20 pickups,
                   claim cost with 2,000 entries and 100,000 processed rows
  --no-peers       wsync only
  --configs LIST   DELAY_MS:CONCURRENCY:N[:PGBOSS_BATCH] tuples, space-separated
                   (default "0:8:20000:50 0:32:20000:50 50:32:5000:10", as WORKLOAD.md)
  --rounds R       repeat the interleaved configurations R times (default 1)
  --build DIR      wsync build directory (default build/; set up as a release build and
                   built with ninja if it has no wsyncd)
  --out FILE       results file (default bench/results/<UTC date>-<host>.md; the raw
                   records go next to it as .jsonl)
  --skip-pickup    no pickup-latency phase
  --skip-claim     no claim-cost phase
  -h, --help       this help

Environment (defaults in brackets):
  CONFIGS, ROUNDS, BUILD_DIR, OUT      as the options above
  PEERS            peers for run.sh ["pg-boss graphile-worker"]; empty = none
  PEERS_SRC        the peers' harness [../shared/bench/peers next to the checkout,
                   else /work/shared/bench/peers]; copied to PEERS_WORK for npm ci
  PEERS_WORK       writable copy [/var/cache/wsync-bench/peers]
  WSYNCD, WSYNCCTL wsync binaries [BUILD_DIR/core/daemon/wsyncd, .../ctl/wsyncctl]
  WSYNC_RUN_TIMEOUT_S  per wsync drain [300];  RUN_TIMEOUT_S  per peer run [100]
  POLL_MS          wsync drain poll interval [20] (WORKLOAD.md: 100 ms or finer)
  ENQUEUE_REPS [3] the enqueue INSERT (with and without triggers) is timed this many
                   times; the best of each is reported
  PICKUP_N [100], PICKUP_SPACING_MS [150], PICKUP_POLL_US [1000], PICKUP_CONCURRENCY
                   [C of the first config]
  CLAIM_ENTRIES [30000], CLAIM_HISTORY [1000000]   for bench/drain.sh
  WSYNC_PORT [18932], PROVIDER_PORT (peers) [18931]
  KEEP_TMP=1       keep the temp dir (cluster, logs)
  PG_EXTRA_OPTS    more postgres -c options for wsync's cluster (e.g. to load
                   pg_stat_statements while profiling); not for figures you compare
  WSYNC_SEED_EXTRA_SQL  SQL run on wsync's database after the seed, before the
                   enqueue (experiments on the schema); not for figures you compare
  WSYNC_MIGRATIONS_DIR  migrate wsync's database from this directory [the source
                   tree's migrations/]: to measure an older schema, a directory
                   holding only some of the files (as bench/enqueue.sh)
  and the wsync knobs at the top of this script (WSYNC_ENGINE_FOR_CONCURRENCY,
  WSYNC_ENGINE_EXTRA, WSYNC_PLUGINS_EXTRA='isolate = false' for plugins inside wsyncd).

Exit status: 0 every run verified, 1 a run failed or did not verify, 2 usage error.
EOF
}

die_usage() { echo "side_by_side.sh: $*" >&2; echo "Run with --help for usage." >&2; exit 2; }

QUICK=0; NO_PEERS=0; SKIP_PICKUP=0; SKIP_CLAIM=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1;;
    --no-peers) NO_PEERS=1;;
    --configs) [ $# -ge 2 ] || die_usage "--configs needs a value"; CONFIGS=$2; shift;;
    --rounds) [ $# -ge 2 ] || die_usage "--rounds needs a value"; ROUNDS=$2; shift;;
    --build) [ $# -ge 2 ] || die_usage "--build needs a value"; BUILD_DIR=$2; shift;;
    --out) [ $# -ge 2 ] || die_usage "--out needs a value"; OUT=$2; shift;;
    --skip-pickup) SKIP_PICKUP=1;;
    --skip-claim) SKIP_CLAIM=1;;
    -h|--help) usage; exit 0;;
    *) die_usage "unknown argument '$1'";;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  CONFIGS=${CONFIGS:-"0:8:2000:50"}
  NO_PEERS=1
  PICKUP_N=${PICKUP_N:-20}
  CLAIM_ENTRIES=${CLAIM_ENTRIES:-2000}
  CLAIM_HISTORY=${CLAIM_HISTORY:-100000}
fi
CONFIGS=${CONFIGS:-"0:8:20000:50 0:32:20000:50 50:32:5000:10"}
ROUNDS=${ROUNDS:-1}
PEERS=${PEERS-"pg-boss graphile-worker"}
[ "$NO_PEERS" = 1 ] && PEERS=""
BUILD_DIR=${BUILD_DIR:-$SRC/build}
WSYNC_RUN_TIMEOUT_S=${WSYNC_RUN_TIMEOUT_S:-300}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-100}
POLL_MS=${POLL_MS:-20}
PICKUP_N=${PICKUP_N:-100}
ENQUEUE_REPS=${ENQUEUE_REPS:-3}
PICKUP_SPACING_MS=${PICKUP_SPACING_MS:-150}
PICKUP_POLL_US=${PICKUP_POLL_US:-1000}
CLAIM_ENTRIES=${CLAIM_ENTRIES:-30000}
CLAIM_HISTORY=${CLAIM_HISTORY:-1000000}
WSYNC_PORT=${WSYNC_PORT:-18932}
PROVIDER_PORT=${PROVIDER_PORT:-18931}
PEERS_WORK=${PEERS_WORK:-/var/cache/wsync-bench/peers}

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die_usage "--rounds '$ROUNDS': expected a whole number >= 1"
for cfg in $CONFIGS; do
  [[ $cfg =~ ^[0-9]+:[1-9][0-9]*:[1-9][0-9]*(:[1-9][0-9]*)?$ ]] ||
    die_usage "config '$cfg': expected DELAY_MS:CONCURRENCY:N[:PGBOSS_BATCH] (whole numbers)"
done
[ -n "${CONFIGS// /}" ] || die_usage "no configuration in CONFIGS"
for v in POLL_MS PICKUP_N PICKUP_POLL_US CLAIM_ENTRIES WSYNC_RUN_TIMEOUT_S WSYNC_PORT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die_usage "$v='${!v}': expected a whole number >= 1"
done
[[ $CLAIM_HISTORY =~ ^[0-9]+$ ]] || die_usage "CLAIM_HISTORY='$CLAIM_HISTORY': expected a whole number"
[[ $PICKUP_SPACING_MS =~ ^[0-9]+$ ]] || die_usage "PICKUP_SPACING_MS='$PICKUP_SPACING_MS': expected a whole number"
[ "$(id -u)" = 0 ] || { echo "side_by_side.sh: run as root (PostgreSQL runs as the postgres user)" >&2; exit 2; }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { echo "side_by_side.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- dependencies + build
# Build and run dependencies of wsync (a no-op when present), then node/npm for the fake
# provider and the peers.
bash "$SRC/scripts/install-deps.sh"
need_pkgs=()
command -v node >/dev/null || need_pkgs+=(nodejs)
command -v npm >/dev/null || need_pkgs+=(npm)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
find_pg_bin() {
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  dirname "$(command -v initdb)"
}
PGBIN=$(find_pg_bin)
PSQL_BIN=$PGBIN/psql; [ -x "$PSQL_BIN" ] || PSQL_BIN=$(command -v psql)
# run.sh finds initdb/pg_ctl/postgres on PATH
export PATH="$PGBIN:$PATH"

if [ ! -x "${WSYNCD:-$BUILD_DIR/core/daemon/wsyncd}" ]; then
  log "building wsync (release) in $BUILD_DIR"
  [ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" "$SRC" --buildtype=release >/dev/null
  ninja -C "$BUILD_DIR" >/dev/null
fi
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
WSYNCD=${WSYNCD:-$BUILD_DIR/core/daemon/wsyncd}
WSYNCCTL=${WSYNCCTL:-$BUILD_DIR/core/ctl/wsyncctl}
[ -x "$WSYNCD" ] || fail "no wsyncd at $WSYNCD"
[ -x "$WSYNCCTL" ] || fail "no wsyncctl at $WSYNCCTL"
plugin_so() { # the built plugin NAME.so (not a test fixture)
  find "$BUILD_DIR" -name "$1.so" -not -path '*/tests/*' | head -1
}

# ---------------------------------------------------------------- temp dir + cleanup
TMP=$(mktemp -d -t wsync-side.XXXXXX)
chmod 755 "$TMP"
DATA=$TMP/data; SOCK=$TMP/sock
mkdir -p "$DATA" "$SOCK" "$TMP/pglog" "$TMP/plugins" "$TMP/conf.d"
chown postgres:postgres "$DATA" "$SOCK" "$TMP/pglog"; chmod 700 "$DATA"
PG_STARTED=0; FAKE_PID=""; DAEMON_PID=""

stop_pid() { # TERM, up to 10 s, then KILL
  local p=$1; [ -n "$p" ] || return 0
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
cleanup() {
  set +e
  stop_pid "$DAEMON_PID"; stop_pid "$FAKE_PID"
  [ "$PG_STARTED" = 1 ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1
  if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "compiling bench/wsbench.c"
read -r -a LIBPQ_FLAGS <<<"$(pkg-config --cflags --libs libpq)"
cc -O2 -std=c11 -Wall -Wextra -o "$TMP/wsbench" "$BENCH/wsbench.c" "${LIBPQ_FLAGS[@]}" ||
  fail "cannot compile bench/wsbench.c (libpq-dev?)"
WSBENCH=$TMP/wsbench

# ---------------------------------------------------------------- peers' harness copy
if [ -n "$PEERS" ]; then
  if [ -z "${PEERS_SRC:-}" ]; then
    for d in "$SRC/../shared/bench/peers" /work/shared/bench/peers; do
      [ -x "$d/run.sh" ] && { PEERS_SRC=$(cd "$d" && pwd); break; }
    done
  fi
  if [ -z "${PEERS_SRC:-}" ] || [ ! -x "$PEERS_SRC/run.sh" ]; then
    fail "no peers' harness (run.sh) found: set PEERS_SRC, or --no-peers"
  fi
  # The shared folder is read-only and run.sh runs npm ci and writes results/ in its own
  # folder: run an exact copy (node_modules and results excluded).
  mkdir -p "$PEERS_WORK"
  find "$PEERS_WORK" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
  (cd "$PEERS_SRC" && find . -mindepth 1 -maxdepth 1 ! -name node_modules ! -name results -exec cp -r {} "$PEERS_WORK/" \;)
  chmod -R u+w "$PEERS_WORK"
  log "peers' harness: $PEERS_SRC (run from $PEERS_WORK)"
fi

# ---------------------------------------------------------------- wsync's cluster (WORKLOAD.md settings)
log "initdb + start PostgreSQL for wsync in $TMP"
runuser -u postgres -- "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$TMP/initdb.log"
PG_OPTS="-c listen_addresses='' -k $SOCK -c max_connections=100 -c shared_buffers=256MB ${PG_EXTRA_OPTS:-}"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -l "$TMP/pglog/postgres.log" -w -t 30 -o "$PG_OPTS" start >/dev/null
PG_STARTED=1
V_PG_SERVER=$("$PSQL_BIN" -X -At -h "$SOCK" -U postgres -d postgres -c 'SHOW server_version')
conninfo() { echo "host=$SOCK port=5432 user=postgres dbname=$1"; }
psql_db() { local db=$1; shift; PGOPTIONS='-c client_min_messages=warning' "$PSQL_BIN" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -U postgres -d "$db" "$@"; }
scalar() { psql_db "$1" -At -c "$2"; }

fresh_db() { # fresh_db NAME: empty database with wsync's migrations (wsyncctl migrate)
  psql_db postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  printf '[database]\nconninfo = %s\n[plugins]\ndir = %s\nconf_dir = %s\n' \
    "$(conninfo "$1")" "$TMP/plugins" "$TMP/conf.d" >"$TMP/ctl.ini"
  "$WSYNCCTL" -c "$TMP/ctl.ini" migrate --dir "${WSYNC_MIGRATIONS_DIR:-$SRC/migrations}" >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; fail "wsyncctl migrate failed"; }
}

# Users and tokens exactly as the peers' seed.sql (same ids and tokens); wsync's
# provider_tokens also has expires_at, set far ahead so that no refresh is ever due.
seed_users() {
  psql_db "$1" <<'SQL'
CREATE TABLE users (id uuid PRIMARY KEY);
INSERT INTO users (id) SELECT md5('user-' || u)::uuid FROM generate_series(1, 1000) AS u;
INSERT INTO sync_providers (name, plugin) VALUES ('wahoo', 'wahoo') ON CONFLICT DO NOTHING;
INSERT INTO provider_tokens (user_id, provider, access_token, expires_at, upload_workouts_enabled)
  SELECT md5('user-' || u)::uuid, 'wahoo', 'wahoo_at_' || md5('token-' || u),
         now() + interval '10 years', true
  FROM generate_series(1, 1000) AS u;
VACUUM ANALYZE users;
VACUUM ANALYZE provider_tokens;
SQL
}

# The workouts of seed.sql, as one INSERT into table $1 (N = $2).
workouts_insert() {
  cat <<SQL
INSERT INTO $1 (id, user_id, name, workout_text, updated_at)
  SELECT md5('workout-' || i)::uuid,
         md5('user-' || (((i - 1) % 1000) + 1))::uuid,
         'Threshold intervals #' || i,
         'Warmup' || E'\n' ||
         '- ' || (8 + i % 5) || 'm ramp 50-75%' || E'\n' ||
         'Main Set ' || (3 + i % 4) || 'x' || E'\n' ||
         '- ' || (3 + i % 3) || 'm ' || (100 + i % 10) || '%' || E'\n' ||
         '- ' || (2 + i % 3) || 'm 55%' || E'\n' ||
         'Cooldown' || E'\n' ||
         '- 10m 50%',
         timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => i)
  FROM generate_series(1, $2) AS i;
SQL
}

min_of() { # min_of A B: the smaller (A may be empty)
  if [ -z "$1" ]; then echo "$2"; else awk -v a="$1" -v b="$2" 'BEGIN { print (b < a ? b : a) }'; fi
}

# Seconds psql's \timing gives for the last timed statements of stdin (summed).
timed_sql() { # timed_sql DB  (SQL on stdin, with \timing on around what is timed)
  psql_db "$1" | awk '/^Time: / { s += $2 } END { printf "%.3f", s / 1000 }'
}

write_config() { # write_config DB CONCURRENCY
  local engine
  engine=$(printf '%b' "${WSYNC_ENGINE_FOR_CONCURRENCY//\{C\}/$2}")
  cat >"$TMP/wsyncd.ini" <<INI
[database]
conninfo = $(conninfo "$1")
[engine]
$engine
$(printf '%b' "$WSYNC_ENGINE_EXTRA")
[log]
level = warning
[plugins]
dir = $TMP/plugins
conf_dir = $TMP/conf.d
$(printf '%b' "$WSYNC_PLUGINS_EXTRA")
INI
  rm -f "$TMP"/conf.d/*.ini "$TMP"/plugins/*.so
  local p so
  for p in $WSYNC_PLUGINS; do
    so=$(plugin_so "$p"); [ -n "$so" ] || fail "no $p.so under $BUILD_DIR"
    cp "$so" "$TMP/plugins/$p.so"   # the loader refuses symlinks
    printf '[provider]\nplugin = %s\nbase_url = http://127.0.0.1:%s\nallow_insecure_http = true\n' "$p" "$WSYNC_PORT" >"$TMP/conf.d/$p.ini"
  done
  "$WSYNCD" -c "$TMP/wsyncd.ini" --check >"$TMP/check.log" 2>&1 ||
    { cat "$TMP/check.log" >&2; fail "wsyncd --check refused the benchmark's configuration"; }
}

start_fake() { # start_fake DELAY_MS
  DELAY_MS=$1 PORT=$WSYNC_PORT node "$BENCH/fake_wahoo.js" >"$TMP/fake.log" 2>&1 &
  FAKE_PID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$WSYNC_PORT/count" >/dev/null 2>&1 && return 0; sleep 0.1; done
  cat "$TMP/fake.log" >&2; fail "fake Wahoo did not start (port $WSYNC_PORT busy?)"
}
stop_fake() { stop_pid "$FAKE_PID"; FAKE_PID=""; }
fake_count() { curl -fs "http://127.0.0.1:$WSYNC_PORT/count"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

RESULTS=$TMP/results.jsonl; : >"$RESULTS"
V_WSYNC=$("$WSYNCD" --version 2>/dev/null | awk 'NR == 1 { print $2 }' || true)
V_COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "?")
FAILED_RUNS=0

# ---------------------------------------------------------------- one wsync run
wsync_run() { # wsync_run ROUND DELAY CONC N
  local round=$1 delay=$2 conc=$3 n=$4 db=wsync_bench
  log "wsync delay=${delay}ms concurrency=$conc N=$n: seed + enqueue"
  fresh_db "$db"
  seed_users "$db"
  [ -z "${WSYNC_SEED_EXTRA_SQL:-}" ] || psql_db "$db" -c "$WSYNC_SEED_EXTRA_SQL"
  # 1. The same INSERT into a copy of workouts without wsync's triggers (same columns,
  #    defaults and indexes), 2. into workouts with the triggers turned off for the
  #    transaction, 3. the measured one: into workouts, triggers on, one statement.
  #    Each of 1 and 3 is the best of ENQUEUE_REPS runs: one INSERT of 0.1-0.4 s moves
  #    by 20 % on a busy 2-core box, and their ratio is the figure.
  local plain_s off_s enq_s rep t
  plain_s=
  for ((rep = 0; rep < ENQUEUE_REPS; rep++)); do
    t=$({ echo 'CREATE TABLE bench_workouts_plain (LIKE workouts INCLUDING ALL);'
          echo 'CHECKPOINT;'; echo '\timing on'; workouts_insert bench_workouts_plain "$n"
          echo '\timing off'; echo 'DROP TABLE bench_workouts_plain;'; } | timed_sql "$db")
    plain_s=$(min_of "$plain_s" "$t")
  done
  off_s=$({ echo 'CHECKPOINT;'; echo '\timing on'; echo 'BEGIN;'
            echo 'SET LOCAL wsync.triggers = off;'; workouts_insert workouts "$n"; echo 'COMMIT;'
            echo '\timing off'; } | timed_sql "$db")
  local leaked; leaked=$(scalar "$db" "SELECT count(*) FROM workout_sync_queue")
  [ "$leaked" = 0 ] || fail "wsync.triggers = off still enqueued $leaked entries"
  enq_s=
  for ((rep = 0; rep < ENQUEUE_REPS; rep++)); do
    psql_db "$db" -c 'TRUNCATE workouts CASCADE' -c 'TRUNCATE workout_sync_queue' \
      -c 'VACUUM ANALYZE workouts' -c 'VACUUM ANALYZE workout_sync_queue' -c 'CHECKPOINT'
    t=$({ echo '\timing on'; workouts_insert workouts "$n"; echo '\timing off'; } | timed_sql "$db")
    enq_s=$(min_of "$enq_s" "$t")
  done
  local queued; queued=$(scalar "$db" "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL")
  [ "$queued" = "$n" ] || fail "the triggers enqueued $queued entries for $n workouts"
  psql_db "$db" -c 'VACUUM ANALYZE' -c 'CHECKPOINT'
  write_config "$db" "$conc"
  curl -fs -XPOST "http://127.0.0.1:$WSYNC_PORT/reset" >/dev/null
  local load; load=$(loadavg)
  log "wsync delay=${delay}ms concurrency=$conc N=$n: drain (load $load)"
  local out rc=0
  out=$("$WSBENCH" drain "$(conninfo "$db")" "$WSYNC_PENDING_SQL" "$WSYNC_RUN_TIMEOUT_S" "$POLL_MS" \
        "$TMP/wsyncd.log" -- "$WSYNCD" -c "$TMP/wsyncd.ini") || rc=$?
  [ -n "$out" ] || fail "wsbench drain failed (rc $rc)"
  local kv d_ok=0 d_secs=0 d_rss_kb=0 d_cpu_s=0 d_exit=0 d_plugins_pss_kb=0
  for kv in $out; do
    case ${kv%%=*} in ok|secs|rss_kb|cpu_s|exit|plugins_pss_kb) printf -v "d_${kv%%=*}" '%s' "${kv#*=}";; esac
  done
  local ok=$d_ok secs=$d_secs rss=$d_rss_kb cpu=$d_cpu_s dexit=$d_exit ppss=$d_plugins_pss_kb
  local done_ok failed links fake
  done_ok=$(scalar "$db" "$WSYNC_OK_SQL")
  failed=$(scalar "$db" "$WSYNC_FAILED_SQL")
  links=$(scalar "$db" "SELECT count(*) FROM workout_sync_links WHERE provider = 'wahoo'")
  fake=$(fake_count)
  if [ -s "$TMP/wsyncd.log" ]; then log "wsyncd log (last lines):"; tail -5 "$TMP/wsyncd.log" >&2; fi
  node -e '
    const [round, version, delay, conc, n, engine, ok, secs, rss, cpu, dexit, doneOk, failed, links, fake,
           enq, plain, off, load, ppss] = process.argv.slice(1);
    const f = JSON.parse(fake);
    const verified = ok === "1" && +doneOk === +n && +failed === 0 && +links === +n && f.count === +n && f.dups === 0 && f.bad === 0;
    console.log(JSON.stringify({ kind: "wsync", system: "wsync", version, round: +round, delay_ms: +delay,
      concurrency: +conc, n: +n, extra: engine, ok: verified, timed_out: ok !== "1", secs: +secs,
      syncs_s: +(+doneOk / +secs).toFixed(1), rss_kb: +rss, plugins_pss_kb: +ppss, cpu_s: +cpu,
      daemon_exit: +dexit,
      done_ok: +doneOk, failed: +failed, links: +links, provider_count: f.count, provider_dups: f.dups,
      provider_bad: f.bad, enqueue_s: +enq, plain_insert_s: +plain, triggers_off_s: +off, load }));
  ' "$round" "$V_WSYNC" "$delay" "$conc" "$n" "$(printf '%b' "${WSYNC_ENGINE_FOR_CONCURRENCY//\{C\}/$conc}" | tr '\n' ' ')" \
    "$ok" "$secs" "$rss" "$cpu" "$dexit" "$done_ok" "$failed" "$links" "$fake" \
    "$enq_s" "$plain_s" "$off_s" "$load" "$ppss" >>"$RESULTS"
  log "  -> $(tail -1 "$RESULTS")"
  grep -q '"ok":true' <(tail -1 "$RESULTS") || FAILED_RUNS=$((FAILED_RUNS + 1))
  psql_db postgres -c "DROP DATABASE $db"
}

# ---------------------------------------------------------------- one peers run (run.sh)
peers_run() { # peers_run ROUND DELAY CONC N BATCH
  local round=$1 cfg="$2:$3:$4:$5" load before after rc=0
  load=$(loadavg)
  log "peers ($PEERS) $cfg (load $load)"
  before=$(ls "$PEERS_WORK"/results/run-*.jsonl 2>/dev/null | sort | tail -1 || true)
  (cd "$PEERS_WORK" && PEERS="$PEERS" CONFIGS="$cfg" RUN_TIMEOUT_S="$RUN_TIMEOUT_S" \
     PROVIDER_PORT="$PROVIDER_PORT" ./run.sh) >"$TMP/peers.out" 2>"$TMP/peers.err" || rc=$?
  after=$(ls "$PEERS_WORK"/results/run-*.jsonl 2>/dev/null | sort | tail -1 || true)
  if [ "$rc" != 0 ] || [ -z "$after" ] || [ "$after" = "$before" ]; then
    tail -20 "$TMP/peers.err" >&2
    fail "peers' run.sh failed (rc $rc)"
  fi
  node -e '
    const fs = require("fs");
    const [file, round, load] = process.argv.slice(1);
    for (const l of fs.readFileSync(file, "utf8").split("\n").filter(Boolean)) {
      const r = JSON.parse(l), w = r.work || {};
      console.log(JSON.stringify({ kind: "peer", system: r.peer, version: r.version, round: +round,
        delay_ms: r.delay_ms, concurrency: r.concurrency, n: r.n, extra: r.extra || "",
        ok: r.rc === 0 && !!w.ok, timed_out: !!w.timed_out, secs: w.secs, syncs_s: w.jobs_per_s,
        rss_kb: r.rss_kb, done_ok: w.completed, failed: w.failed, links: w.links,
        provider_count: w.provider_count, enqueue_s: r.enqueue_s, load }));
    }' "$after" "$round" "$load" >>"$RESULTS"
  if grep '"kind":"peer"' "$RESULTS" | tail -n "$(wc -w <<<"$PEERS")" | grep -q '"ok":false'; then
    FAILED_RUNS=$((FAILED_RUNS + 1))
  fi
  log "  -> $(grep '"kind":"peer"' "$RESULTS" | tail -n "$(wc -w <<<"$PEERS")" | tr '\n' ' ')"
}

# ---------------------------------------------------------------- pickup latency
pickup_run() { # pickup_run CONC
  local conc=$1 db=wsync_pickup out rc=0
  log "pickup: $PICKUP_N single INSERTs ~${PICKUP_SPACING_MS} ms apart, idle wsyncd (concurrency $conc, LISTEN on)"
  fresh_db "$db"
  seed_users "$db"
  write_config "$db" "$conc"
  start_fake 0
  "$WSYNCD" -c "$TMP/wsyncd.ini" >"$TMP/wsyncd-pickup.log" 2>&1 &
  DAEMON_PID=$!
  local load; load=$(loadavg)
  out=$("$WSBENCH" pickup "$(conninfo "$db")" "$PICKUP_N" "$PICKUP_SPACING_MS" "$PICKUP_POLL_US" \
    "INSERT INTO workouts (id, user_id, name, workout_text) VALUES (md5('pickup-' || \$1::text)::uuid, md5('user-' || (((\$1::int - 1) % 1000) + 1))::uuid, 'Pickup #' || \$1::text, E'Warmup\\n- 10m 50%') RETURNING id" \
    "$PICKUP_DONE_SQL") || rc=$?
  stop_pid "$DAEMON_PID"; DAEMON_PID=""
  stop_fake
  [ "$rc" = 0 ] || { tail -5 "$TMP/wsyncd-pickup.log" >&2; fail "pickup measurement failed (rc $rc)"; }
  local failed; failed=$(scalar "$db" "$WSYNC_FAILED_SQL")
  node -e '
    const [out, conc, load, failed] = process.argv.slice(1);
    const o = Object.fromEntries(out.trim().split(" ").map((kv) => kv.split("=")).map(([k, v]) => [k, +v]));
    console.log(JSON.stringify({ kind: "pickup", system: "wsync", concurrency: +conc, load, failed: +failed, ...o }));
  ' "$out" "$conc" "$load" "$failed" >>"$RESULTS"
  log "  -> $(tail -1 "$RESULTS")"
  psql_db postgres -c "DROP DATABASE $db"
}

# ---------------------------------------------------------------- claim cost (bench/drain.sh)
claim_run() {
  local db=wsync_claim out rc=0
  if [ ! -f "$BUILD_DIR/tests/fixtures/scripted.so" ]; then
    log "claim cost: skipped (no tests/fixtures/scripted.so in $BUILD_DIR: built with -Dtests=false?)"
    return 0
  fi
  log "claim cost: bench/drain.sh, $CLAIM_ENTRIES entries, without and with $CLAIM_HISTORY processed rows"
  psql_db postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  local load; load=$(loadavg)
  # drain.sh's inner half, against this run's cluster (WORKLOAD.md's settings) instead of
  # the test harness's (fsync off).
  out=$(WSYNC_BENCH_INNER=1 WSYNC_BENCH_BUILD="$BUILD_DIR" WSYNC_BENCH_SRC="$SRC" \
        WSYNC_BENCH_ENTRIES="$CLAIM_ENTRIES" WSYNC_BENCH_USERS=1000 WSYNC_BENCH_HISTORY="$CLAIM_HISTORY" \
        WSYNC_TEST_CONNINFO="$(conninfo "$db")" bash "$BENCH/drain.sh" 2>"$TMP/drain.err") || rc=$?
  echo "$out" >&2
  [ "$rc" = 0 ] || { cat "$TMP/drain.err" >&2; fail "bench/drain.sh failed (rc $rc)"; }
  node -e '
    const [out, entries, history, load] = process.argv.slice(1);
    const rates = [/empty table: best of \d+: (\d+)/, /with history: best of \d+: (\d+)/]
      .map((re) => { const m = re.exec(out); return m ? +m[1] : null; });
    const ratio = /ratio with history \/ without: ([\d.]+)/.exec(out);
    console.log(JSON.stringify({ kind: "claim", system: "wsync", entries: +entries, history: +history,
      empty_rate: rates[0], history_rate: rates[1], ratio: ratio ? +ratio[1] : null, load }));
  ' "$out" "$CLAIM_ENTRIES" "$CLAIM_HISTORY" "$load" >>"$RESULTS"
  log "  -> $(tail -1 "$RESULTS")"
  psql_db postgres -c "DROP DATABASE $db"
}

# ---------------------------------------------------------------- the run
T_START=$(date +%s)
FIRST_CONC=$(cut -d: -f2 <<<"${CONFIGS%% *}")
for round in $(seq "$ROUNDS"); do
  for cfg in $CONFIGS; do
    IFS=: read -r delay conc n batch <<<"$cfg"
    batch=${batch:-50}
    # Interleaved, and the order flips every round so neither side always goes first.
    if [ -n "$PEERS" ] && [ $((round % 2)) = 1 ]; then peers_run "$round" "$delay" "$conc" "$n" "$batch"; fi
    start_fake "$delay"
    wsync_run "$round" "$delay" "$conc" "$n"
    stop_fake
    if [ -n "$PEERS" ] && [ $((round % 2)) = 0 ]; then peers_run "$round" "$delay" "$conc" "$n" "$batch"; fi
  done
  if [ "$round" = 1 ] && [ "$SKIP_PICKUP" = 0 ]; then pickup_run "${PICKUP_CONCURRENCY:-$FIRST_CONC}"; fi
done
[ "$SKIP_CLAIM" = 0 ] && claim_run
T_TOTAL=$(( $(date +%s) - T_START ))

# ---------------------------------------------------------------- report
HOST=$(hostname -s 2>/dev/null || hostname)
OUT=${OUT:-$BENCH/results/$(date -u +%Y-%m-%d)-$HOST.md}
mkdir -p "$(dirname "$OUT")"
RAW=${OUT%.md}.jsonl
{
  echo "# Side-by-side benchmark, $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
  echo
  echo "- machine: $HOST, nproc=$(nproc), CPU: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), RAM: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "- PostgreSQL $V_PG_SERVER (unix socket; $PG_OPTS; everything else default, fsync and synchronous_commit on)"
  echo "- wsync: $V_WSYNC, commit $V_COMMIT, wsyncd $WSYNCD; plugins loaded: $WSYNC_PLUGINS; [engine] per concurrency C: '$WSYNC_ENGINE_FOR_CONCURRENCY'${WSYNC_ENGINE_EXTRA:+, plus '$WSYNC_ENGINE_EXTRA'}${WSYNC_PLUGINS_EXTRA:+; [plugins] '$WSYNC_PLUGINS_EXTRA'}"
  echo "- peers: ${PEERS:-none}$([ -n "$PEERS" ] && echo " (run.sh from $PEERS_SRC, node $(node -v))")"
  echo "- CONFIGS=\"$CONFIGS\" ROUNDS=$ROUNDS POLL_MS=$POLL_MS; the whole run took ${T_TOTAL}s"
  echo
  node "$BENCH/report.js" "$RESULTS"
} >"$OUT"
cp "$RESULTS" "$RAW"
cat "$OUT"
log "results written to $OUT (raw records: $RAW)"
[ "$FAILED_RUNS" = 0 ] || { log "$FAILED_RUNS run(s) failed or did not verify"; exit 1; }
