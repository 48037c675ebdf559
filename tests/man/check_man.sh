#!/usr/bin/env bash
# The man pages cover what the programs and the documentation say exists:
#   - every command of `wsyncctl --help`, as an entry of wsyncctl(8);
#   - every option of `wsyncctl --help` and of each `wsyncctl CMD --help`;
#   - every option, environment variable and signal of `wsyncd --help`, in
#     wsyncd(8);
#   - every key of the tables of docs/configuration.md, under its section
#     in wsyncd.ini(5);
#   - the four pages render without groff warnings.
#
#   check_man.sh WSYNCCTL WSYNCD MAN_BUILD_DIR CONFIGURATION_MD
set -uo pipefail
ctl=$1 wsyncd=$2 man=$3 confdoc=$4
fail=0
err() { echo "FAIL: $*"; fail=1; }

# A bold term "\fBword\fR" somewhere in a page (scdoc's *word*).
has_bold() { grep -qF "\\fB$2\\fR" "$man/$1"; }

# -- wsyncctl commands: the lines under "commands:" of --help ---------------
help=$("$ctl" --help) || err "wsyncctl --help failed"
mapfile -t cmds < <(printf '%s\n' "$help" |
  awk '/^commands:/ {on = 1; next} on && /^$/ {on = 0} on {print $1}')
[ "${#cmds[@]}" -ge 10 ] || err "found only ${#cmds[@]} commands in wsyncctl --help"
for c in "${cmds[@]}"; do
  # an entry of COMMANDS starts its line with the bold command name
  grep -q "^\\\\fB$c\\\\fR" "$man/wsyncctl.8" || err "wsyncctl(8) has no entry for command '$c'"
  opts=$("$ctl" "$c" --help 2>&1 | grep -oE -- '--[a-z][a-z-]*' | sort -u)
  for o in $opts; do
    has_bold wsyncctl.8 "$o" || err "wsyncctl(8) lacks option $o of 'wsyncctl $c'"
  done
done

# -- global options and environment of both programs ------------------------
check_help() { # page, help text
  local page=$1 text=$2 n=0 t
  for t in $(printf '%s\n' "$text" | grep -E '^ +-' | grep -oE -- '(^| )--?[A-Za-z][a-z-]*' | tr -d ' '); do
    n=$((n + 1))
    has_bold "$page" "$t" || err "$page lacks option $t"
  done
  [ "$n" -ge 4 ] || err "found only $n options in the --help of $page"
  for t in $(printf '%s\n' "$text" | grep -oE '\b(WSYNC|WORKOUT)_[A-Z_]+\b|\bSIG[A-Z]+\b' | sort -u); do
    has_bold "$page" "$t" || err "$page does not mention $t"
  done
}
check_help wsyncctl.8 "$help"
check_help wsyncd.8 "$("$wsyncd" --help)"

# -- configuration keys, section by section ----------------------------------
# Rows "| section | key[, key...] | default | meaning |" of every table.
mapfile -t rows < <(awk -F'|' 'NF >= 5 && $2 !~ /section|---/ {
    gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3); print $2 "|" $3 }' "$confdoc")
[ "${#rows[@]}" -ge 20 ] || err "found only ${#rows[@]} keys in $confdoc"
for r in "${rows[@]}"; do
  sec=${r%%|*}
  # the lines of wsyncd.ini(5) from ".SS [sec]" to the next heading
  block=$(awk -v h=".SS [$sec]" '$0 == h {on = 1; next} on && /^\.S[SH] / {on = 0} on' \
    "$man/wsyncd.ini.5")
  [ -n "$block" ] || { err "wsyncd.ini(5) has no section [$sec]"; continue; }
  IFS=',' read -ra keys <<<"${r#*|}"
  for k in "${keys[@]}"; do
    k=$(echo "$k" | tr -d ' `')
    printf '%s\n' "$block" | grep -q "^\\\\fB$k\\\\fR" ||
      err "wsyncd.ini(5) does not describe [$sec] $k (docs/configuration.md)"
  done
done

# -- the pages render cleanly ------------------------------------------------
for p in wsyncd.8 wsyncctl.8 wsyncd.ini.5 wsync-plugin.7; do
  [ -s "$man/$p" ] || { err "$p was not built"; continue; }
  if command -v groff >/dev/null; then
    w=$(groff -man -ww -z "$man/$p" 2>&1)
    [ -z "$w" ] || err "$p: groff warnings: $w"
  fi
done

echo "checked ${#cmds[@]} commands and ${#rows[@]} configuration rows"
[ "$fail" = 0 ] && echo "man pages cover everything" 
exit "$fail"
