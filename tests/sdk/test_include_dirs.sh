#!/usr/bin/env bash
# test_include_dirs.sh -- the "did the build reach into the source tree" check
# of the drop-in test (include_dirs.py) from awkward checkout paths: a source
# root that is a string prefix of the temp dir, one named /src-like inside
# the temp dir, one with a space, and one reached through a symlink.  The
# substring grep it replaced failed the suite with the checkout at /src.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check="$here/include_dirs.py"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsync-incdirs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

# compile_commands.json with one command in DIR and the given -I flags.
ccjson() {
  local dir=$1; shift
  python3 - "$dir" "$@" >"$tmp/cc.json" <<'PY'
import json, shlex, sys
d, incs = sys.argv[1], sys.argv[2:]
cmd = "cc " + " ".join("-I" + shlex.quote(i) for i in incs) + " -c x.c -o x.o"
print(json.dumps([{"directory": d, "command": cmd, "file": "x.c"}]))
PY
}
expect() {  # expect WANT_RC NAME FOLDER
  local want=$1 name=$2 folder=$3 rc=0
  python3 "$check" "$tmp/cc.json" "$folder" >/dev/null || rc=$?
  [ "$rc" = "$want" ] && ok "$name" || bad "$name: exit $rc, want $want"
}

# A checkout whose path is a string prefix of the plugin's copy.
mkdir -p "$tmp/src/include" "$tmp/src-copy/include" "$tmp/build"
ccjson "$tmp/build" "$tmp/src-copy/include" "../src-copy/include"
expect 1 "checkout $tmp/src is not a parent of $tmp/src-copy" "$tmp/src"
ccjson "$tmp/build" "$tmp/src/include"
expect 0 "an include dir inside the checkout is found" "$tmp/src"
ccjson "$tmp/build" "../src/include"
expect 0 "a relative include dir inside the checkout is found" "$tmp/src"

# A checkout named like the copy below the temp dir (the /src case): the
# copy lives at $tmp/t/src, the checkout at $tmp/src.
mkdir -p "$tmp/t/src/include"
ccjson "$tmp/t/build" "$tmp/t/src/include"
expect 1 "checkout $tmp/src does not match $tmp/t/src" "$tmp/src"

# A path with a space.
mkdir -p "$tmp/with space/include" "$tmp/with space2/include"
ccjson "$tmp/build" "$tmp/with space2/include"
expect 1 "checkout '$tmp/with space' is not a parent of '$tmp/with space2'" "$tmp/with space"
ccjson "$tmp/build" "$tmp/with space/include"
expect 0 "an include dir inside '$tmp/with space' is found" "$tmp/with space"

# Reached through a symlink: resolved, so it is found.
ln -s "$tmp/src/include" "$tmp/link"
ccjson "$tmp/build" "$tmp/link"
expect 0 "an include dir reached through a symlink is found" "$tmp/src"

# Garbage in: exit 2, not a silent "nothing reached".
echo 'not json' >"$tmp/cc.json"
expect 2 "malformed compile_commands.json is an error" "$tmp/src"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
