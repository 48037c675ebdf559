#!/usr/bin/env bash
# test_include_edges.sh -- the folder rules of docs/design.md, checked on the
# source: which core/ folder may include which, and plugins include nothing
# of the core.  A header of another folder is included as "folder/name.h"
# (from core/), so an edge is visible in the #include line itself.
#   test_include_edges.sh SOURCE_ROOT
set -uo pipefail
root=$1
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

# folder -> the other core folders it may include.
declare -A may=(
  [common]=""
  [lib]=""
  [host]="common"
  [daemon]="common lib host"
  [ctl]="common lib host"
  [sdk]="common host"
)
for folder in "${!may[@]}"; do
  [ -d "$root/core/$folder" ] || { bad "core/$folder is missing"; continue; }
  violations=""
  while IFS= read -r line; do
    file=${line%%:*}
    target=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' <<<"${line#*:}")
    case $target in
      wsync/*) continue ;;                    # the public headers: anyone
      */*) other=${target%%/*} ;;
      *) [ -f "$(dirname "$file")/$target" ] && continue
         violations+=" $file: \"$target\" is not in its own folder;"; continue ;;
    esac
    [ "$other" = "$folder" ] && continue
    case " ${may[$folder]} " in *" $other "*) continue ;; esac
    violations+=" ${file#"$root"/}: includes $target;"
  done < <(grep -HE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/core/$folder"/*.[ch] "$root/core/$folder"/*/*.[ch] 2>/dev/null)
  if [ -z "$violations" ]; then
    ok "core/$folder includes only ${may[$folder]:-itself} (and include/wsync)"
  else
    bad "core/$folder breaks its edges:$violations"
  fi
done

# Plugins see the public headers and their own files, never the core.
if hits=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(common|lib|host|daemon|ctl|sdk)/' "$root/plugins"); then
  bad "a plugin includes a core header: $hits"
else
  ok "plugins include no core header"
fi
if hits=$(grep -rlE 'libpq-fe\.h|PQexec' "$root/plugins"); then
  bad "a plugin touches the database: $hits"
else
  ok "plugins never see SQL (no libpq)"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
