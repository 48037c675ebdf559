#!/usr/bin/env bash
# Run the whole test suite: install what is missing, build with
# AddressSanitizer and UndefinedBehaviorSanitizer (clang, so the libFuzzer
# target is built too), run `meson test`, and end with "N passed, N failed".
#   BUILD_DIR   build directory (default build-test)
#   SANITIZE=0  plain build without sanitizers
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }
builddir=${BUILD_DIR:-build-test}
opts=()
if [ "${SANITIZE:-1}" = 1 ]; then
  export CC=${CC:-clang}
  opts+=(-Db_sanitize=address,undefined -Db_lundef=false)
fi
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" "${opts[@]}" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$builddir" >"$builddir/build.log" 2>&1; then
  tail -50 "$builddir/build.log"
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
meson test -C "$builddir" --print-errorlogs --num-processes 2 2>&1 | tee "$builddir/test-summary.log"
ok=$(grep -E '^Ok:' "$builddir/test-summary.log" | awk '{print $2}')
expfail=$(grep -E '^Expected Fail:' "$builddir/test-summary.log" | awk '{print $3}')
fail=$(grep -E '^Fail:' "$builddir/test-summary.log" | awk '{print $2}')
unexp=$(grep -E '^Unexpected Pass:' "$builddir/test-summary.log" | awk '{print $3}')
timeout=$(grep -E '^Timeout:' "$builddir/test-summary.log" | awk '{print $2}')
passed=$(( ${ok:-0} + ${expfail:-0} ))
failed=$(( ${fail:-0} + ${unexp:-0} + ${timeout:-0} ))
[ "$passed" = 0 ] && [ "$failed" = 0 ] && failed=1
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
