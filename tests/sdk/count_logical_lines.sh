#!/bin/sh
# count_logical_lines.sh FILE MAX -- logical lines of a C file: neither blank
# nor comment-only (/* ... */ blocks and // lines).  Prints the count; exits 1
# when it is over MAX, so a documented "<= MAX lines" cannot rot.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 FILE MAX" >&2; exit 2; }
n=$(awk '
	{ line = $0; code = "" ; i = 1
	  while (i <= length(line)) {
		if (inc) { j = index(substr(line, i), "*/"); if (!j) { i = length(line) + 1; break }
		           inc = 0; i += j + 1; continue }
		c2 = substr(line, i, 2)
		if (c2 == "/*") { inc = 1; i += 2; continue }
		if (c2 == "//") break
		code = code substr(line, i, 1); i++ }
	  if (code ~ /[^ \t]/) n++ }
	END { print n + 0 }' "$1")
echo "$1: $n logical lines (limit $2)"
[ "$n" -le "$2" ]
