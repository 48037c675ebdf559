#!/bin/sh
# run_fuzz.sh FUZZER CORPUS_DIR SECONDS [DICT] -- bounded libFuzzer run for
# meson test.
#
# libFuzzer adds the inputs it finds to its corpus directory, so it runs on a
# copy in a temp dir: the source tree is never written.  SECONDS <= 0 only
# replays the corpus.  Exits non-zero when the fuzzer found a crash, a leak,
# a timeout or a failed check of the target; the offending input is then
# kept, and its path printed, for `fuzz_workout FILE` to replay.
set -eu

fuzzer=$1
corpus=$2
seconds=$3
dict=${4:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/wsync-fuzz.XXXXXX")
mkdir "$work/corpus"
cp "$corpus"/* "$work/corpus/"

if [ "$seconds" -gt 0 ]; then
	set -- -max_total_time="$seconds"
else
	set -- -runs=0
fi
if [ -n "$dict" ]; then
	set -- "$@" -dict="$dict"
fi

status=0
"$fuzzer" "$@" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
	-print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" || status=$?

if [ "$status" -eq 0 ]; then
	rm -rf "$work"
	exit 0
fi
echo "run_fuzz.sh: $fuzzer failed with status $status" >&2
for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
	[ -e "$f" ] && echo "run_fuzz.sh: reproducer: $f" >&2
done
exit 1
