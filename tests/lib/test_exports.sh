#!/usr/bin/env bash
# test_exports.sh -- libwsync.so's boundary: it exports exactly the functions
# that include/wsync/client.h marks WSYNC_API, under the WSYNC_0 version node,
# with soname libwsync.so.0, and needs only libpq and libc (plus the
# sanitizer runtimes when the build is sanitized).  Without this test the
# boundary erodes: round 1 exported 94 wsync_* symbols and pulled in
# libcurl, json-c and inih.
#   test_exports.sh LIBWSYNC_SO CLIENT_H SANITIZE
set -uo pipefail
lib=$1 header=$2 sanitize=${3:-none}
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsync-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Declared: every "WSYNC_API <type> name(" in the header.
sed -n 's/^WSYNC_API [^(]*[ *]\(wsync_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u >"$tmp/declared"
# Exported: defined dynamic symbols, version suffix dropped, the version node
# itself (an absolute symbol) left out.
nm -D --defined-only "$lib" | awk '$2 != "A" {print $3}' | sed 's/@.*//' | sort -u >"$tmp/exported"
n=$(wc -l <"$tmp/declared")
[ "$n" -gt 10 ] && ok "client.h declares $n WSYNC_API functions" ||
  bad "found only $n WSYNC_API declarations in $header: is the marker still there?"
if diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff"; then
  ok "nm -D lists exactly the functions of client.h"
else
  bad "exports differ from client.h (- declared only, + exported only):"; cat "$tmp/diff"
fi
if nm -D --defined-only "$lib" | awk '$2 != "A"' | grep -qv '@@WSYNC_0$'; then
  bad "symbols outside the WSYNC_0 version node:"; nm -D --defined-only "$lib" | grep -v '@@WSYNC_0$'
else
  ok "every export carries the WSYNC_0 version"
fi

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libwsync.so.0 ] && ok "soname libwsync.so.0" || bad "soname is '$soname'"

allowed='^(libpq\.so\.[0-9]+|libc\.so\.6)$'
[ "$sanitize" != none ] && allowed='^(libpq\.so\.[0-9]+|libc\.so\.6|libasan\.so\.[0-9]+|libubsan\.so\.[0-9]+|libclang_rt\..*\.so|libstdc\+\+\.so\.[0-9]+|libm\.so\.6|libgcc_s\.so\.1)$'
readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' >"$tmp/needed"
grep -q '^libpq\.so' "$tmp/needed" && ok "NEEDED libpq" || bad "libpq not NEEDED: $(tr '\n' ' ' <"$tmp/needed")"
if extra=$(grep -Ev "$allowed" "$tmp/needed"); then
  bad "NEEDED beyond libpq and libc: $extra"
else
  ok "NEEDED only: $(tr '\n' ' ' <"$tmp/needed")"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
