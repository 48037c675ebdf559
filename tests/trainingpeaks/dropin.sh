#!/usr/bin/env bash
# The drop-in test: an operator adds TrainingPeaks to a RUNNING wsyncd by
# dropping two files and sending SIGHUP, and a third party builds the plugin
# with nothing but the installed SDK.
#
#   tests/pg_harness.sh tests/trainingpeaks/dropin.sh SANDBOX_EXE
#
# Environment (set by meson): WSYNC_BUILD_ROOT (a configured, built tree),
# WSYNC_TP_SOURCE (plugins/trainingpeaks), WSYNC_TEST_CONNINFO and
# WSYNC_TEST_PGCTL (pg_harness.sh).
#
#  1. `meson install --destdir` the build into a temp dir, without the
#     trainingpeaks subproject: an installation that has never heard of it;
#  2. build trainingpeaks.so from its folder, stand-alone, with meson and
#     pkg-config pointed at the installed wsync-plugin.pc only (and once more
#     with the single cc line of the guide);
#  3. migrate, start the INSTALLED wsyncd (LISTEN on) with only the example
#     instance;
#  4. copy trainingpeaks.so (0755) into the installed plugin dir and
#     trainingpeaks.ini into the conf dir, SIGHUP;
#  5. connect a user, insert scheduled workouts: they appear on the sandbox's
#     TrainingPeaks within 20 s;
#  6. no installed core file changed, no migration ran, SIGTERM -> exit 0.
set -euo pipefail

sandbox_exe=${1:?usage: dropin.sh SANDBOX_EXE}
build=${WSYNC_BUILD_ROOT:?}
tp_src=${WSYNC_TP_SOURCE:?}
psql_bin="$(dirname "${WSYNC_TEST_PGCTL:?}")/psql"
conninfo=${WSYNC_TEST_CONNINFO:?}

tmp=$(mktemp -d /tmp/wsync-dropin.XXXXXX)
chmod 700 "$tmp"
sandbox_pid=
wsyncd_pid=
cleanup() {
  [ -n "$wsyncd_pid" ] && kill -KILL "$wsyncd_pid" 2>/dev/null || true
  [ -n "$sandbox_pid" ] && kill -TERM "$sandbox_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${keep:-${DROPIN_KEEP:-0}}" = 1 ]; then echo "dropin: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

step() { echo "== $(date -u +%T.%N | cut -c1-12) $*"; }
fail() {
  echo "FAIL: $*" >&2
  for f in "$tmp/wsyncd.log" "$tmp/sandbox.log"; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 60 "$f" >&2; }
  done
  keep=1
  exit 1
}
q() { "$psql_bin" "$conninfo" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }

# ---- 1. install ---------------------------------------------------------------
step "install into $tmp/d (without the trainingpeaks subproject)"
meson install -C "$build" --destdir "$tmp/d" --no-rebuild --skip-subprojects trainingpeaks \
  >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "meson install"; }

pc=$(find "$tmp/d" -name wsync-plugin.pc -type f | head -n 1)
[ -n "$pc" ] || fail "wsync-plugin.pc was not installed"
wsyncd=$(find "$tmp/d" -path '*/bin/wsyncd' -type f | head -n 1)
wsyncctl=$(find "$tmp/d" -path '*/bin/wsyncctl' -type f | head -n 1)
[ -x "$wsyncd" ] && [ -x "$wsyncctl" ] || fail "wsyncd/wsyncctl not installed"
example_so=$(find "$tmp/d" -path '*/wsync/plugins/example.so' | head -n 1)
[ -n "$example_so" ] || fail "the example plugin was not installed"
plugin_dir=$(dirname "$example_so")
[ ! -e "$plugin_dir/trainingpeaks.so" ] || fail "trainingpeaks.so installed although skipped"
migrations=$(find "$tmp/d" -path '*/share/wsync/migrations' -type d | head -n 1)
[ -n "$migrations" ] || fail "migrations not installed"
# The installed conf.d (sysconfdir/wsync/conf.d); made when no sample was installed.
prefix_dir=$(dirname "$(dirname "$wsyncd")")
conf_dir=$(find "$tmp/d" -path '*/wsync/conf.d' -type d | head -n 1)
[ -n "$conf_dir" ] || conf_dir="$prefix_dir/etc/wsync/conf.d"
mkdir -p "$conf_dir"
# Start from the example instance only (samples of other providers need secrets).
find "$conf_dir" -maxdepth 1 -name '*.ini' -delete
echo "plugins: $plugin_dir  conf.d: $conf_dir"

# ---- 2. build TrainingPeaks against the installed SDK only ----------------------
step "build trainingpeaks.so stand-alone with pkg-config"
# The installed .pc names the prefix the build was configured for; a staged
# (destdir) install lives elsewhere, so use a copy whose prefix points into
# the stage -- what installing into that prefix would have written.
pc_prefix=$(sed -n 's/^prefix=//p' "$pc")
mkdir -p "$tmp/pc"
sed "s|^prefix=.*|prefix=$tmp/d$pc_prefix|" "$pc" >"$tmp/pc/wsync-plugin.pc"
export PKG_CONFIG_PATH="$tmp/pc"
pkg-config --exists wsync-plugin || fail "pkg-config does not find wsync-plugin"
cflags=$(pkg-config --cflags wsync-plugin)
case "$cflags" in *"$tmp/d"*) ;; *) fail "wsync-plugin cflags do not point into the install: $cflags" ;; esac
[ -f "$tmp/d$pc_prefix/include/wsync/plugin.h" ] || fail "plugin.h not installed under the prefix"
# A copy of the folder, away from the source tree and its headers.
cp -r "$tp_src" "$tmp/src"
rm -rf "$tmp/src/build"
( unset CFLAGS LDFLAGS
  meson setup "$tmp/tpbuild" "$tmp/src" >"$tmp/tpsetup.log" 2>&1 &&
  ninja -C "$tmp/tpbuild" >"$tmp/tpbuild.log" 2>&1 ) ||
  { cat "$tmp/tpsetup.log" "$tmp/tpbuild.log" >&2 2>/dev/null; fail "stand-alone meson build"; }
built="$tmp/tpbuild/trainingpeaks.so"
[ -f "$built" ] || fail "no trainingpeaks.so from the stand-alone build"
# Resolved include directories, compared by path component: a checkout at
# /src must not match the copy under $tmp/src (tests/sdk/include_dirs.py).
include_dirs="$tp_src/../../tests/sdk/include_dirs.py"
rc=0; python3 "$include_dirs" "$tmp/tpbuild/compile_commands.json" "$tmp/d" >/dev/null || rc=$?
[ "$rc" = 0 ] || fail "the stand-alone build did not use the installed headers (include_dirs.py: $rc)"
src_root=$(cd "$tp_src/../.." && pwd -P)
rc=0; reached=$(python3 "$include_dirs" "$tmp/tpbuild/compile_commands.json" "$src_root") || rc=$?
[ "$rc" = 1 ] || fail "the stand-alone build reached into the source tree $src_root: $reached (include_dirs.py: $rc)"
# The guide's one-line form.
cc -std=c11 -Wall -Wextra -Wpedantic -Werror -shared -fPIC -fvisibility=hidden \
   $(pkg-config --cflags wsync-plugin json-c) "$tmp/src/trainingpeaks.c" \
   "$tmp/src/trainingpeaks_map.c" \
   -o "$tmp/trainingpeaks-cc.so" $(pkg-config --libs json-c) -lm -pthread \
   -Wl,--no-undefined || fail "one-line cc build"
nm -D --defined-only "$built" | grep -q ' wsync_plugin_v1$' || fail "entry symbol missing"
[ "$(nm -D --defined-only "$built" | grep -c ' T ')" = 1 ] || fail "exports more than the entry"

# ---- 3. sandbox, database, installed wsyncd with the example only ----------------
step "start the sandbox"
"$sandbox_exe" --port 0 --port-file "$tmp/sandbox.port" --log "$tmp/sandbox.log" \
  2>>"$tmp/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 200); do [ -s "$tmp/sandbox.port" ] && break; sleep 0.05; done
[ -s "$tmp/sandbox.port" ] || fail "sandbox did not start"
base="http://127.0.0.1:$(cat "$tmp/sandbox.port")"
today=$(date -u +%F)
curl -fsS -X POST -H 'Content-Type: application/json' \
  -d "{\"today\":\"$today\"}" "$base/_sandbox/settings" >/dev/null || fail "sandbox settings"

cat >"$tmp/wsyncd.ini" <<EOF
[database]
conninfo = $conninfo
[engine]
interval_minutes = 60
workers = 2
listen = true
[plugins]
dir = $plugin_dir
conf_dir = $conf_dir
[log]
level = debug
EOF
cat >"$conf_dir/example.ini" <<'EOF'
[provider]
plugin = example
enabled = true
EOF

step "migrate with the installed wsyncctl"
WSYNC_MIGRATIONS_DIR="$migrations" "$wsyncctl" -c "$tmp/wsyncd.ini" migrate \
  >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; fail "migrate"; }

step "start the installed wsyncd"
"$wsyncd" -c "$tmp/wsyncd.ini" >"$tmp/wsyncd.log" 2>&1 &
wsyncd_pid=$!
for _ in $(seq 200); do
  [ "$(q "SELECT count(*) FROM sync_providers WHERE name = 'example'")" = 1 ] && break
  kill -0 "$wsyncd_pid" 2>/dev/null || fail "wsyncd exited"
  sleep 0.05
done
[ "$(q "SELECT count(*) FROM sync_providers WHERE name = 'example'")" = 1 ] ||
  fail "wsyncd did not register the example instance"
[ "$(q "SELECT count(*) FROM sync_providers WHERE name = 'trainingpeaks'")" = 0 ] ||
  fail "trainingpeaks registered before the drop-in"

# What must not change from here on.
core_sums() {
  find "$tmp/d" -type f ! -path "$plugin_dir/*" ! -path "$conf_dir/*" -print0 |
    sort -z | xargs -0 sha256sum
}
core_sums >"$tmp/core.before"
migrations_before=$(q "SELECT count(*) || ':' || coalesce(max(version)::text, '') FROM wsync_schema_migrations")

# ---- 4. drop two files, SIGHUP ------------------------------------------------------
step "drop trainingpeaks.so and trainingpeaks.ini, SIGHUP"
install -m 0755 "$built" "$plugin_dir/trainingpeaks.so"
printf 'sandbox-client-secret\n' >"$tmp/tp.secret"
chmod 600 "$tmp/tp.secret"
# The shipped sample, pointed at the sandbox and this test's secret.
sample="$tp_src/../../conf.d/trainingpeaks.ini"
[ -f "$sample" ] || fail "conf.d/trainingpeaks.ini sample missing"
sed -e "s|^base_url *=.*|base_url = $base|" \
    -e "s|^token_url *=.*|token_url = $base/oauth/token|" \
    -e "s|^client_id *=.*|client_id = dropin-client|" \
    -e "s|^client_secret_file *=.*|client_secret_file = $tmp/tp.secret|" \
    "$sample" >"$conf_dir/trainingpeaks.ini"
# The sandbox speaks plain http: the development opt-in, in its own section
# so the sample's lines stay as shipped.
printf '\n[provider]\nallow_insecure_http = true\n' >>"$conf_dir/trainingpeaks.ini"
chmod 0644 "$conf_dir/trainingpeaks.ini"
kill -HUP "$wsyncd_pid"
for _ in $(seq 200); do
  [ "$(q "SELECT count(*) FROM sync_providers WHERE name = 'trainingpeaks'")" = 1 ] && break
  kill -0 "$wsyncd_pid" 2>/dev/null || fail "wsyncd exited after SIGHUP"
  sleep 0.05
done
[ "$(q "SELECT count(*) FROM sync_providers WHERE name = 'trainingpeaks'")" = 1 ] ||
  fail "wsyncd did not register trainingpeaks after SIGHUP"

# ---- 5. enqueue scheduled workouts, see them on TrainingPeaks ----------------------------
step "enqueue scheduled workouts"
user=$(q "INSERT INTO provider_tokens (user_id, provider, access_token, refresh_token,
                 expires_at, upload_workouts_enabled)
          VALUES (gen_random_uuid(), 'trainingpeaks', 'dropin-token', 'dropin-refresh',
                  now() + interval '1 hour', true) RETURNING user_id")
workout=$(q "INSERT INTO workouts (user_id, name, sport, workout_text)
             VALUES ('$user', 'Drop-in intervals', 'bike',
                     E'Warmup\n- 10m ramp 50-75% 90rpm\n\nMain Set 5x\n- 3m 120% 100rpm\n- Recovery 2m Z1 85rpm\n\nCooldown\n- 8m 50%\n')
             RETURNING id")
q "INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date, scheduled_time)
   VALUES ('$user', '$workout', (now() AT TIME ZONE 'UTC')::date + 1, '06:15'),
          ('$user', '$workout', (now() AT TIME ZONE 'UTC')::date + 2, NULL)" >/dev/null

n=0
for _ in $(seq 200); do
  # AthleteId appears once per stored TrainingPeaks workout (and nowhere else)
  # (grep finds nothing until the first one is there: not an error under pipefail)
  n=$(curl -fsS "$base/_sandbox/store" | { grep -o '"AthleteId"' || true; } | wc -l)
  [ "$n" = 2 ] && break
  sleep 0.1
done
[ "$n" = 2 ] || fail "expected 2 TrainingPeaks workouts on the sandbox within 20 s, found $n"
curl -fsS "$base/_sandbox/store" | python3 -c '
import json, sys
ws = json.load(sys.stdin)["trainingpeaks"]["workouts"]
for w in ws:
    assert w["Title"] == "Drop-in intervals", w
    assert w["WorkoutType"] == "bike", w
    assert w["AthleteId"] == 4242, w
    assert len(w["structure_json"]["Structure"]) == 3, w
assert sorted(1 if w["StartTimePlanned"] else 0 for w in ws) == [0, 1], ws
' || fail "stored TrainingPeaks workouts are not what was scheduled"
curl -fsS "$base/_sandbox/requests?path_prefix=/v2/workouts/plan" | python3 -c '
import json, sys
rs = json.load(sys.stdin)
assert len(rs) == 2 and all(r["headers"]["user-agent"] == "dropin-client/1.0.0" for r in rs), rs
' || fail "User-Agent"
for _ in $(seq 100); do
  [ "$(q "SELECT count(*) FROM workout_sync_queue WHERE provider = 'trainingpeaks'
          AND (processed_at IS NULL OR error_type IS NOT NULL)")" = 0 ] && break
  sleep 0.1
done
[ "$(q "SELECT count(*) FROM workout_sync_queue WHERE provider = 'trainingpeaks'
        AND (processed_at IS NULL OR error_type IS NOT NULL)")" = 0 ] ||
  fail "trainingpeaks queue entries pending or failed: $(q "SELECT entity_type, operation, error_type, error_message FROM workout_sync_queue WHERE provider = 'trainingpeaks'")"
[ "$(q "SELECT count(*) FROM workout_sync_links WHERE provider = 'trainingpeaks'
        AND entity_type = 'workout_scheduled'")" = 2 ] || fail "links not written"

# ---- 6. nothing else changed; clean stop -----------------------------------------------
step "no core file changed, no migration ran"
core_sums >"$tmp/core.after"
diff -u "$tmp/core.before" "$tmp/core.after" || fail "installed core files changed"
[ "$(q "SELECT count(*) || ':' || coalesce(max(version)::text, '') FROM wsync_schema_migrations")" = "$migrations_before" ] ||
  fail "a migration ran"
grep -q 'SIGHUP' "$tmp/wsyncd.log" || fail "wsyncd did not log the reload"

step "SIGTERM"
kill -TERM "$wsyncd_pid"
set +e
wait "$wsyncd_pid"
rc=$?
set -e
wsyncd_pid=
[ "$rc" = 0 ] || fail "wsyncd exited $rc after SIGTERM"
echo "dropin: ok"
