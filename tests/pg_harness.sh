#!/usr/bin/env bash
# Run one test program against a throwaway PostgreSQL cluster.
#
#   tests/pg_harness.sh PROGRAM [ARGS...]
#
# The cluster lives in a fresh temp dir, listens on a unix socket only (no TCP
# port to collide with) and is stopped and removed however the program ends.
# initdb refuses root, so as root the cluster runs as the `postgres` user.
# An initdb'ed template is kept under $WSYNC_PG_TEMPLATE_DIR (default: the
# build dir) so that each test only copies it.
#
# Exports to the program:
#   WSYNC_TEST_CONNINFO   libpq conninfo of the test database
#   WSYNC_TEST_PGHOST     socket directory
#   WSYNC_TEST_PGDATA     data directory (tests that restart the server use it)
#   WSYNC_TEST_PGCTL      path of pg_ctl
#   WSYNC_TEST_PGOPTS     the server options (pg_ctl -o) of this cluster, for a
#                         test that stops it and starts it again
#   WSYNC_TEST_PGLOG      the server's log file
#   WSYNC_TEST_TMP        the harness's temp dir (removed at the end)
set -euo pipefail

find_pg_bin() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  echo "pg_harness: no PostgreSQL server binaries found (install postgresql)" >&2
  exit 1
}
PGBIN=$(find_pg_bin)

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

tmpl_root=${WSYNC_PG_TEMPLATE_DIR:-${MESON_BUILD_ROOT:-/tmp}}
# The template is made by the postgres user: a build directory it cannot
# reach (a checkout under /root, mode 700) gets its template under /tmp,
# one per build directory.
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$(dirname "$tmpl_root")" 2>/dev/null; then
  tmpl_root=/tmp/wsync-pg-template.$(printf '%s' "$tmpl_root" | cksum | cut -d' ' -f1)
fi
template="$tmpl_root/pg-template"
lock="$tmpl_root/pg-template.lock"
mkdir -p "$tmpl_root"
(
  flock 9
  if [ ! -f "$template/PG_VERSION" ]; then
    rm -rf "$template" "$template.tmp"
    mkdir -p "$template.tmp"
    [ "$(id -u)" = 0 ] && chown postgres: "$template.tmp"
    as_pg "$PGBIN/initdb" -D "$template.tmp" -U postgres -A trust -E UTF8 \
      --no-locale --no-sync >/dev/null
    mv "$template.tmp" "$template"
  fi
) 9>"$lock"

work=$(mktemp -d /tmp/wsync-pg.XXXXXX)
chmod 755 "$work"
cp -a "$template" "$work/data"
mkdir -p "$work/sock"
[ "$(id -u)" = 0 ] && chown -R postgres: "$work"

cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

pgopts="-c listen_addresses='' -c unix_socket_directories=$work/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
as_pg "$PGBIN/pg_ctl" -D "$work/data" -w -t 60 -l "$work/pg.log" -o "$pgopts" \
  start >/dev/null || { cat "$work/pg.log" >&2; exit 1; }
as_pg "$PGBIN/createdb" -h "$work/sock" -U postgres wsync_test

export WSYNC_TEST_CONNINFO="host=$work/sock user=postgres dbname=wsync_test"
export WSYNC_TEST_PGHOST="$work/sock"
export WSYNC_TEST_PGDATA="$work/data"
export WSYNC_TEST_PGCTL="$PGBIN/pg_ctl"
export WSYNC_TEST_PGLOG="$work/pg.log"
export WSYNC_TEST_PGOPTS="$pgopts"
export WSYNC_TEST_TMP="$work"
set +e
"$@"
rc=$?
set -e
exit $rc
