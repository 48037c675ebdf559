#!/usr/bin/env bash
# Install the Debian packages wsync needs to build, test and run, if missing.
# Idempotent: does nothing (and needs no network) when all are present.
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc clang libclang-rt-dev
      libpq-dev libcurl4-openssl-dev libjson-c-dev uuid-dev
      libmicrohttpd-dev postgresql openssl ca-certificates util-linux curl
      systemd scdoc
      debhelper dpkg-dev fakeroot lintian python3-prometheus-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
