#!/usr/bin/env bash
# The Debian packages (issue 14.4): scripts/build-deb.sh builds them with
# dpkg-buildpackage -us -uc -b and lintian reports no error; unpacked with
# dpkg -x into a scratch root, every file is where the FHS, the unit and the
# docs say, the configuration is conffiles, the binaries carry the Debian
# paths, and systemd-analyze verify accepts the packaged unit.
#
#   check_deb.sh SOURCE_ROOT
set -uo pipefail
src=$1
out=$(mktemp -d /tmp/wsync-debtest.XXXXXX)
trap 'rm -rf "$out"' EXIT
fail=0
err() { echo "FAIL: $*"; fail=1; }

if ! OUT_DIR=$out/debs "$src/scripts/build-deb.sh" >"$out/build.out" 2>&1; then
  tail -80 "$out/build.out"
  echo "FAIL: scripts/build-deb.sh"
  exit 1
fi
grep -E '^E: ' "$out/debs/lintian.log" && err "lintian reports errors"
echo "lintian: $(grep -cE '^E: ' "$out/debs/lintian.log") errors," \
  "$(grep -cE '^W: ' "$out/debs/lintian.log") warnings"

triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
root=$out/root
declare -A files=(
  [wsync]="/usr/bin/wsyncd /usr/bin/wsyncctl /lib/systemd/system/wsyncd.service
    /usr/share/wsync/migrations/0001_init.sql /etc/wsync/wsyncd.ini
    /etc/wsync/conf.d/wahoo.ini.sample /etc/wsync/conf.d/garmin.ini.sample
    /etc/wsync/conf.d/trainingpeaks.ini.sample
    /usr/share/man/man8/wsyncd.8.gz /usr/share/man/man8/wsyncctl.8.gz
    /usr/share/man/man5/wsyncd.ini.5.gz /usr/share/man/man7/wsync-plugin.7.gz
    /usr/share/doc/wsync/operators.md /usr/share/doc/wsync/plugin-guide.md
    /usr/share/doc/wsync/examples/wsyncd.ini /usr/share/doc/wsync/examples/example.c
    /usr/share/doc/wsync/examples/conf.d/wahoo.ini"
  [wsync-plugins]="/usr/lib/$triplet/wsync/plugins/wahoo.so
    /usr/lib/$triplet/wsync/plugins/garmin.so /usr/lib/$triplet/wsync/plugins/trainingpeaks.so"
  [libwsync0]="/usr/lib/$triplet/libwsync.so.0"
  [libwsync-dev]="/usr/include/wsync/client.h /usr/lib/$triplet/libwsync.so
    /usr/lib/$triplet/pkgconfig/wsync.pc"
  [libwsync-testhost0]="/usr/lib/$triplet/libwsync-testhost.so.0"
  [wsync-plugin-dev]="/usr/include/wsync/plugin.h /usr/include/wsync/workout.h
    /usr/include/wsync/testhost.h /usr/lib/$triplet/libwsync-testhost.so
    /usr/lib/$triplet/pkgconfig/wsync-plugin.pc /usr/lib/$triplet/pkgconfig/wsync-testhost.pc"
)
for pkg in "${!files[@]}"; do
  deb=$(ls "$out/debs/${pkg}_"*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || { err "package $pkg was not built"; continue; }
  list=$(dpkg-deb -c "$deb" | awk '{print substr($6, 2)}')
  for f in ${files[$pkg]}; do
    printf '%s\n' "$list" | grep -qx "$f" || err "$pkg does not ship $f"
  done
  dpkg -x "$deb" "$root"
done

# Configuration files are conffiles (kept across upgrades).
mkdir -p "$out/ctl"
dpkg-deb -e "$out/debs/wsync_"*.deb "$out/ctl"
for f in /etc/wsync/wsyncd.ini /etc/wsync/conf.d/wahoo.ini.sample; do
  grep -qx "$f" "$out/ctl/conffiles" || err "$f is not a conffile"
done
grep -q 'adduser --system' "$out/ctl/postinst" || err "postinst does not create the wsync user"
grep -qx 'User=wsync' "$root/lib/systemd/system/wsyncd.service" || err "unit not run as wsync"

# The packaged programs default to the Debian paths.
"$root/usr/bin/wsyncd" --help | grep -q "default /etc/wsync/wsyncd.ini" ||
  err "wsyncd's default config is not /etc/wsync/wsyncd.ini"
"$root/usr/bin/wsyncctl" migrate --help | grep -q "/usr/share/wsync/migrations" ||
  err "wsyncctl's default migrations dir is not /usr/share/wsync/migrations"
grep -qx "dir = /usr/lib/$triplet/wsync/plugins" "$root/etc/wsync/wsyncd.ini" ||
  err "/etc/wsync/wsyncd.ini does not name the multiarch plugin dir"
pd=$(PKG_CONFIG_PATH=$root/usr/lib/$triplet/pkgconfig pkg-config --variable=plugindir wsync-plugin)
[ "$pd" = "/usr/lib/$triplet/wsync/plugins" ] ||
  err "wsync-plugin.pc plugindir is '$pd', not /usr/lib/$triplet/wsync/plugins"
# The packaged plugins load in the packaged daemon (an instance each, with
# their secret file in place; no database needed for --check).
mkdir -p "$out/conf.d" "$out/secrets"
for p in wahoo garmin trainingpeaks; do
  printf 's3cret\n' >"$out/secrets/$p"
  chmod 600 "$out/secrets/$p"
  sed "s#^client_secret_file = .*#client_secret_file = $out/secrets/$p#" \
    "$root/etc/wsync/conf.d/$p.ini.sample" >"$out/conf.d/$p.ini"
done
sed -e "s#^dir = .*#dir = $root/usr/lib/$triplet/wsync/plugins#" \
  -e "s#^conf_dir = .*#conf_dir = $out/conf.d#" "$root/etc/wsync/wsyncd.ini" >"$out/wsyncd.ini"
check=$("$root/usr/bin/wsyncd" -c "$out/wsyncd.ini" --check 2>&1) ||
  err "packaged wsyncd --check with the packaged plugins: $check"
[ "$(printf '%s\n' "$check" | grep -c ' ok ')" = 3 ] || err "not 3 plugins ok: $check"

if command -v systemd-analyze >/dev/null; then
  mkdir -p "$root/usr/lib/systemd" "$root/bin"
  cp -a /lib/systemd/system "$root/usr/lib/systemd/" 2>/dev/null ||
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
  cp /bin/kill "$root/bin/kill"
  msg=$(cd / && MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" \
    "$root/lib/systemd/system/wsyncd.service" 2>&1)
  rc=$?
  [ "$rc" = 0 ] && [ -z "$msg" ] || err "systemd-analyze verify (exit $rc): $msg"
  echo "systemd-analyze verify (packaged unit): ${msg:-clean}"
fi
[ "$fail" = 0 ] && echo "packages complete"
exit "$fail"
