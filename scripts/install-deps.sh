#!/usr/bin/env bash
# Installs what building and testing bosbackup needs, only when it is missing.
# Debian packages: zlib, libdeflate and SQLite headers (the system-library modules),
# pkg-config, the sqlite3 and gzip tools the tests compare against.
# With WITH_TEST_DEPS=1 also chromium-headless-shell (drill report screenshot), and what the
# packaging tests check with: systemd (systemd-analyze verify/security), strace (the units'
# system call filter), logrotate, groff-base and man-db (the man page), binutils (readelf),
# sudo (the role matrix runs operators and admins through it, as they are meant to run).
# and from PyPI: moto[server] (the S3 server the tests start on 127.0.0.1), croniter (the cron oracle, pinned: its range handling changed between
# versions) and botocore (the SigV4 oracle).
set -euo pipefail

missing=()
for pkg in zlib1g-dev libsqlite3-dev libdeflate-dev pkg-config sqlite3 gzip; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
for pkg in ${EXTRA_DEBIAN_PACKAGES:-}; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# Tests also need a real browser for the drill report screenshot test.
if [ "${WITH_TEST_DEPS:-0}" = "1" ]; then
  for pkg in chromium-headless-shell systemd strace logrotate groff-base man-db binutils prometheus sudo; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${WITH_TEST_DEPS:-0}" = "1" ]; then
  need=()
  [ "$(python3 -m pip show croniter 2>/dev/null | sed -n 's/^Version: //p')" = "7.0.0" ] || need+=("croniter==7.0.0")
  python3 -c 'import botocore' 2>/dev/null || need+=("botocore")
  python3 -c 'import moto.server, flask, flask_cors, boto3' 2>/dev/null || need+=("moto[server]")
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing from PyPI: ${need[*]}"
    python3 -m pip install -q "${need[@]}"
  fi
fi
