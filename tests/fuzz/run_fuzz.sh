#!/bin/sh
# run_fuzz.sh FUZZER CORPUS_DIR SECONDS [DICT [LIBFUZZER_FLAG...]] -- bounded
# libFuzzer run for meson test (see README.md here).
#
# libFuzzer adds the inputs it finds to its corpus directory, so it runs on a
# copy in a temp dir: the source tree is never written.  The target's own
# scratch files go there too (TMPDIR), and the dir is removed after a clean
# run.  SECONDS <= 0 only replays the corpus.
# DICT may be "" for none; further arguments go to libFuzzer as they are.
# Exits non-zero when the fuzzer found a crash, a leak, a timeout or a failed
# check of the target; the offending input is then kept, and its path
# printed, for `FUZZER FILE` (or the fuzz_*_replay executable) to replay.
set -eu

fuzzer=$1
corpus=$2
seconds=$3
dict=${4:-}
shift 3
if [ $# -gt 0 ]; then shift; fi

# In RAM when /dev/shm exists: the config and plugin targets write scratch
# files for every input, and ext4 makes rewriting a file wait for the disk.
base=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	base=/dev/shm
fi
work=$(mktemp -d "$base/wsync-fuzz.XXXXXX")
mkdir "$work/corpus" "$work/tmp"
cp "$corpus"/* "$work/corpus/"

if [ "$seconds" -gt 0 ]; then
	set -- -max_total_time="$seconds" "$@"
else
	set -- -runs=0 "$@"
fi
if [ -n "$dict" ]; then
	set -- "$@" -dict="$dict"
fi

status=0
TMPDIR="$work/tmp" "$fuzzer" "$@" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
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
