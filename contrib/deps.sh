#!/bin/sh
# contrib/deps.sh - install every Debian package regigate needs to build,
# run and test (Debian 12 / Ubuntu 22.04+). Idempotent; run as root.
# Postfix is installed unconfigured: its system instance is not used (the
# tests and the Quick start run private instances and daemons on loopback).
set -eu
PKGS="build-essential autoconf automake pkg-config
 libssl-dev libyajl-dev libcurl4-openssl-dev libpcre2-dev libinih-dev
 libcmocka-dev libsqlite3-dev libmicrohttpd-dev libgnutls28-dev
 postfix swaks openssl curl iproute2 procps valgrind clang libclang-rt-14-dev
 groff-base"
need=
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "contrib/deps.sh: missing packages:$need; run as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need
