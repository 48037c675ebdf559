#!/bin/sh
# abi-asserts: every struct typedef'd in the ABI headers (plugin.h,
# workout.h) has a _Static_assert pinning its size in the same header, and
# the frozen ABI 1.0 headers are still byte for byte the released ones.
# usage: abi_asserts.sh SOURCE_ROOT
set -eu
src=$1
fail=0
for h in "$src/include/wsync/plugin.h" "$src/include/wsync/workout.h"; do
	for s in $(sed -n 's/^typedef struct \([a-z_0-9]*\) {.*/\1/p' "$h"); do
		if grep -Eq "_Static_assert\(sizeof\($s\)" "$h"; then
			echo "ok   $(basename "$h"): $s has a size assert"
		else
			echo "FAIL $(basename "$h"): struct $s has no _Static_assert(sizeof($s) == ...)"
			fail=1
		fi
	done
done
# Never edit the frozen copies: the fixture built from them stands for every
# plugin built against wsync-plugin 1.0.
cd "$src/tests/sdk/abi_v1_0"
if sha256sum -c --quiet <<'SUMS'
d7e06580a4595be0f8488b513798373ff05c338c61c5688d8818b29f0b806edf  wsync/plugin.h
817bcfb63084a754b1709907196e7f5d3619c27b2e11060629c87e69dfda63ab  wsync/workout.h
SUMS
then
	echo "ok   frozen ABI 1.0 headers unchanged"
else
	echo "FAIL tests/sdk/abi_v1_0 was edited: restore the released 1.0 headers"
	fail=1
fi
exit $fail
