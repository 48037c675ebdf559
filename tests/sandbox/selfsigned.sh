#!/bin/sh
# Generate a throwaway self-signed certificate for 127.0.0.1, valid for one day,
# for running wsync-sandbox with --tls-cert/--tls-key in tests.
#   selfsigned.sh DIR   ->  DIR/cert.pem  DIR/key.pem   (DIR is created if missing)
# Never commit the output: generate it at test time into a temporary directory.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
command -v openssl >/dev/null 2>&1 || { echo "$0: openssl is required" >&2; exit 1; }
dir=$1
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -days 1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || {
    echo "$0: openssl failed" >&2
    exit 1
}
echo "$dir/cert.pem $dir/key.pem"
