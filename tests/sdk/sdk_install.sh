#!/bin/sh
# sdk-install: `meson install` of this build into a DESTDIR, then what a third
# party does with only the installed SDK (docs/plugin-guide.md):
#   - pkg-config finds wsync-plugin (cflags, plugindir, confdir, ABI version)
#     and wsync-testhost;
#   - plugins/example/example.c builds out of tree with the one cc line and
#     with the three-line meson.build, exporting only wsync_plugin_v1 and
#     needing nothing of wsync's;
#   - each .so, dropped into the installed plugin directory with its INI in
#     conf.d, passes `wsyncd --check` ("example ... ok ... ABI <plugin.h version>");
#   - unsanitized builds only: a test program built against the installed
#     test host runs the example.
# Out-of-tree builds use the system cc without sanitizers.
# usage: sdk_install.sh BUILD_ROOT SOURCE_ROOT WSYNCD ABI_VERSION B_SANITIZE
#   ABI_VERSION  major.minor of include/wsync/plugin.h: wsync-plugin's version
set -eu
build=$1 src=$2 wsyncd=$3 version=$4 sanitize=$5
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsync-sdk-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
expect_eq() { # what got expected
	if [ "$2" = "$3" ]; then ok "$1: $2"; else fail "$1: got '$2', expected '$3'"; fi
}

# 1. Install into a DESTDIR.
if ! meson install -C "$build" --destdir "$tmp/dest" --no-rebuild >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	fail "meson install"
	exit 1
fi
pc=$(find "$tmp/dest" -name wsync-plugin.pc | head -1)
[ -n "$pc" ] || { fail "wsync-plugin.pc not installed"; exit 1; }
[ -f "$(dirname "$pc")/wsync-testhost.pc" ] || fail "wsync-testhost.pc not installed"
prefix=$(sed -n 's/^prefix=//p' "$pc")
root="$tmp/dest$prefix"
for f in include/wsync/plugin.h include/wsync/plugin_util.h include/wsync/workout.h \
	include/wsync/testhost.h; do
	[ -f "$root/$f" ] && ok "installed $f" || fail "$f not installed"
done
ls "$root"/lib*/libwsync-testhost.so* "$root"/lib/*/libwsync-testhost.so* 2>/dev/null |
	grep -q . && ok "installed libwsync-testhost" || fail "libwsync-testhost not installed"

# The .pc files as a relocated install would have them: prefix in DESTDIR.
mkdir "$tmp/pc"
for f in "$(dirname "$pc")"/wsync-*.pc; do
	sed "s|^prefix=.*|prefix=$root|" "$f" >"$tmp/pc/$(basename "$f")"
done
PKG_CONFIG_PATH="$tmp/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH

# 2. What pkg-config says.
expect_eq "wsync-plugin version (the plugin ABI)" "$(pkg-config --modversion wsync-plugin)" "$version"
expect_eq "wsync-plugin cflags" "$(pkg-config --cflags wsync-plugin | sed 's/ *$//')" "-I$root/include"
expect_eq "wsync-plugin libs (plugins link nothing of ours)" \
	"$(pkg-config --libs wsync-plugin | sed 's/ *$//')" ""
plugindir=$(pkg-config --variable=plugindir wsync-plugin)
confdir=$(pkg-config --variable=confdir wsync-plugin)
case $plugindir in "$root"/lib*/wsync/plugins) ok "plugindir $plugindir" ;;
	*) fail "plugindir $plugindir is not under $root/lib*/wsync/plugins" ;; esac
case $confdir in */wsync/conf.d) ok "confdir $confdir" ;;
	*) fail "confdir $confdir does not end in /wsync/conf.d" ;; esac
[ -f "$plugindir/example.so" ] && ok "example.so installed in plugindir" ||
	fail "example.so not in plugindir"
hdr_major=$(sed -n 's/^#define WSYNC_PLUGIN_ABI_MAJOR \([0-9]*\).*/\1/p' "$root/include/wsync/plugin.h")
hdr_minor=$(sed -n 's/^#define WSYNC_PLUGIN_ABI_MINOR \([0-9]*\).*/\1/p' "$root/include/wsync/plugin.h")
expect_eq "abi_major (= plugin.h)" "$(pkg-config --variable=abi_major wsync-plugin)" "$hdr_major"
expect_eq "abi_minor (= plugin.h)" "$(pkg-config --variable=abi_minor wsync-plugin)" "$hdr_minor"
case $(pkg-config --libs wsync-testhost) in *-lwsync-testhost*) ok "wsync-testhost libs" ;;
	*) fail "wsync-testhost libs lack -lwsync-testhost" ;; esac

# 3. Out of tree, way 1: the one cc line of the guide.
mkdir "$tmp/cc"
cp "$src/plugins/example/example.c" "$tmp/cc/"
(cd "$tmp/cc" &&
	cc -shared -fPIC -fvisibility=hidden -Wl,--no-undefined $(pkg-config --cflags wsync-plugin) example.c -o example.so) &&
	ok "cc line built example.so" || fail "cc line"
# The header is also clean under strict warnings.
cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only $(pkg-config --cflags wsync-plugin) \
	"$tmp/cc/example.c" && ok "example.c clean with -std=c11 -Wall -Wextra -Wpedantic" ||
	fail "example.c warns under -std=c11 -Wall -Wextra -Wpedantic"

# The example sources as installed (docs/plugin-guide.md, the "installed"
# table): each builds from its installed copy with the guide's cc line.
for f in example.c rest_provider.c; do
	ex=$(find "$root" -path "*/doc/wsync/examples/$f" | head -1)
	if [ -z "$ex" ]; then
		fail "$f not installed under \$datadir/doc/wsync/examples"
	elif (cd "$tmp/cc" && cc -shared -fPIC -fvisibility=hidden -Wl,--no-undefined \
		$(pkg-config --cflags wsync-plugin) "$ex" -o "installed-${f%.c}.so"); then
		ok "installed examples/$f builds with the cc line"
	else
		fail "installed examples/$f does not build"
	fi
done

# Out of tree, way 2: the three-line meson.build.
mkdir "$tmp/meson"
cp "$src/plugins/example/example.c" "$tmp/meson/"
cat >"$tmp/meson/meson.build" <<'MESON'
project('example', 'c')
shared_module('example', 'example.c', name_prefix : '',
  dependencies : dependency('wsync-plugin'), gnu_symbol_visibility : 'hidden')
MESON
if meson setup "$tmp/meson/build" "$tmp/meson" >"$tmp/meson.log" 2>&1 &&
	ninja -C "$tmp/meson/build" >>"$tmp/meson.log" 2>&1; then
	ok "meson.build built example.so"
else
	cat "$tmp/meson.log"
	fail "three-line meson.build"
fi

# Out of tree, the project's plugins: each folder alone (<name>.c for the
# operations, <name>_map.c for the mapping, a private header), the cc line of
# its meson.build, the installed SDK and json-c only; then wsyncd --check
# loads it (below, with the example).
for p in wahoo garmin trainingpeaks; do
	mkdir "$tmp/$p"
	cp "$src/plugins/$p"/*.c "$src/plugins/$p"/*.h "$tmp/$p/"
	if (cd "$tmp/$p" && cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
		-Wl,--no-undefined $(pkg-config --cflags wsync-plugin json-c) "$p.c" "${p}_map.c" \
		$(pkg-config --libs json-c) -lpthread -lm -o "$p.so") >"$tmp/$p.log" 2>&1; then
		ok "$p builds stand-alone from $p.c and ${p}_map.c against the installed SDK"
	else
		cat "$tmp/$p.log"
		fail "$p does not build stand-alone against the installed SDK"
	fi
done

# 4. Each .so exports only its entry and needs nothing of wsync's; dropped
# into the installed plugin directory with its INI, wsyncd --check loads it.
mkdir -p "$confdir"
chmod 755 "$plugindir" "$confdir"
printf '[provider]\nplugin = example\n[example]\nid_prefix = oot-\n' >"$confdir/example.ini"
printf '[database]\nconninfo = dbname=unused\n[plugins]\ndir = %s\nconf_dir = %s\n' \
	"$plugindir" "$confdir" >"$tmp/wsyncd.ini"
for so in "$tmp/cc/example.so" "$tmp/meson/build/example.so"; do
	[ -f "$so" ] || continue
	how=${so#"$tmp"/}
	exported=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -i wsync | tr '\n' ' ')
	expect_eq "$how exports" "$exported" "wsync_plugin_v1 "
	if nm -D --undefined-only "$so" | grep -qi wsync; then
		fail "$how needs wsync symbols: $(nm -D --undefined-only "$so" | grep -i wsync)"
	else
		ok "$how needs nothing of wsync's"
	fi
	install -m 755 "$so" "$plugindir/example.so"
	if "$wsyncd" -c "$tmp/wsyncd.ini" --check >"$tmp/check.log" 2>&1; then
		line=$(grep -E '^  example +ok ' "$tmp/check.log" || true)
		case $line in
		*"plugin example 1.0.0"*"ABI $hdr_major.$hdr_minor"*) ok "wsyncd --check: $line" ;;
		*) cat "$tmp/check.log"; fail "$how: wsyncd --check shows no 'example ok ... ABI $hdr_major.$hdr_minor'" ;;
		esac
	else
		cat "$tmp/check.log"
		fail "$how: wsyncd --check failed"
	fi
done
for p in wahoo garmin trainingpeaks; do
	[ -f "$tmp/$p/$p.so" ] || continue
	install -m 755 "$tmp/$p/$p.so" "$plugindir/$p.so"
	printf '[provider]\nplugin = %s\nbase_url = https://127.0.0.1:9\n[oauth]\nclient_id = c\n' \
		"$p" >"$confdir/$p.ini"
	"$wsyncd" -c "$tmp/wsyncd.ini" --check >"$tmp/check.log" 2>&1 || true
	if grep -qE "^  $p +ok .*plugin $p " "$tmp/check.log"; then
		ok "wsyncd --check loads the stand-alone $p.so"
	else
		cat "$tmp/check.log"
		fail "wsyncd --check does not load the stand-alone $p.so"
	fi
	rm -f "$confdir/$p.ini"
done

# 5. The installed test host (an unsanitized library only: a sanitized one
# cannot link into a plain program).
if [ "$sanitize" = none ]; then
	cat >"$tmp/t.c" <<'C'
#include <wsync/testhost.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	char err[1024];
	wsync_testhost *th = wsync_testhost_load(argv[1], "[example]\nid_prefix = t-\n",
	                                         err, sizeof err);
	const wsync_workout_entity *w;
	if (!th) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	(void)argc;
	w = wsync_testhost_workout(th, &(wsync_workout_entity){.id = "w1",
	                           .workout_text = "- 20m 85%"}, err, sizeof err);
	if (wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                        &(wsync_testhost_request){.workout = w}) != WSYNC_OK ||
	    strcmp(wsync_testhost_result(th)->provider_id, "t-w1") != 0 ||
	    !wsync_testhost_log_find(th, "create workout w1")) {
		fprintf(stderr, "unexpected outcome\n");
		return 1;
	}
	printf("provider id %s\n", wsync_testhost_result(th)->provider_id);
	wsync_testhost_free(th);
	return 0;
}
C
	libdir=$(pkg-config --variable=libdir wsync-testhost)
	if cc -Wall -Werror "$tmp/t.c" -o "$tmp/t" $(pkg-config --cflags --libs wsync-testhost) \
		"-Wl,-rpath,$libdir" && "$tmp/t" "$plugindir/example.so"; then
		ok "test program against the installed test host"
	else
		fail "test program against the installed test host"
	fi
else
	echo "skip installed test host: sanitized build ($sanitize)"
fi

echo "$fails failed"
[ "$fails" = 0 ]
