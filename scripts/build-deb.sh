#!/usr/bin/env bash
# Build the Debian packages (debian/) with dpkg-buildpackage -us -uc -b from
# a clean copy of the checkout (tracked and new, not ignored files), then run
# lintian on them.  The .debs land in OUT_DIR (default: a fresh temp dir,
# printed at the end).
#   OUT_DIR=dir   where the .debs, .buildinfo and .changes go
#   LINTIAN=0     skip lintian
# Needs debhelper, dpkg-dev and the Build-Depends of debian/control; installs
# them when missing (as scripts/install-deps.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

need=(debhelper dpkg-dev fakeroot lintian)
build_deps=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' debian/control | sed '1s/^Build-Depends://; $d' |
  tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/^ *//; s/ *$//' | grep -v '^debhelper-compat' | grep . )
missing=()
for p in "${need[@]}" $build_deps; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

out=${OUT_DIR:-$(mktemp -d /tmp/wsync-deb.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/wsync-debsrc.XXXXXX)
trap 'rm -rf "$work"' EXIT
# dpkg-buildpackage writes its results next to the source tree.
mkdir "$work/wsync"
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard |
    tar --null -T - -cf - | tar -xf - -C "$work/wsync"
else # an unpacked source tarball
  tar --exclude='./build*' --exclude=./.run -cf - . | tar -xf - -C "$work/wsync"
fi
# Debian's compiler and flags, not a developer's (scripts/test.sh exports
# CC=clang, whose DWARF 5 bookworm's dwz cannot read).
(cd "$work/wsync" && env -u CC -u CFLAGS -u CPPFLAGS -u LDFLAGS -u MESON_BUILD_ROOT \
  dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || {
  tail -60 "$out/build.log"
  echo "dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  exit 1
}
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out/"
if [ "${LINTIAN:-1}" = 1 ]; then
  # Errors fail the build; warnings and below are printed.
  lintian --info --display-info --fail-on error "$out"/*.changes | tee "$out/lintian.log"
fi
ls -1 "$out"/*.deb
echo "packages in $out"
