#!/usr/bin/env bash
# Builds bosbackup_<version>_<arch>.deb from the binary `make build` made (nothing is compiled).
# Usage: scripts/build-deb.sh BINARY OUTDIR      (make deb: .build/dist/bosbackup .build/deb)
# Contents: /usr/bin/bosbackup; the systemd units for the example policy in /lib/systemd/system
# (bosbackup.service + .timer, bosbackup-daemon.service, bosbackup-notify@.service), made by
# `bosbackup schedule install --systemd` itself; man page, bash/zsh/fish completions, the example
# policy in /usr/share/bosbackup/bos.yml, /etc/logrotate.d/bosbackup; a postinst that creates
# the bosbackup system user. Version: Sources/BOSBackup/Version.swift. Dependencies: the
# packages owning the libraries `ldd` lists.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:?binary}
OUT=${2:?output folder}
if [ ! -x "$BIN" ]; then
  echo "$BIN is missing: run make build first" >&2
  exit 1
fi
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is missing (Debian's dpkg package)" >&2; exit 1; }
VERSION=$(sed -n 's/.*string = "\([^"]*\)".*/\1/p' Sources/BOSBackup/Version.swift)
[ -n "$VERSION" ] || { echo "no version in Sources/BOSBackup/Version.swift" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/bosbackup-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
ROOT="$STAGE/root"

scripts/stage.sh "$BIN" "$ROOT" /usr debian
install -D -m 0644 packaging/logrotate/bosbackup "$ROOT/etc/logrotate.d/bosbackup"
rm -f "$ROOT/usr/share/bosbackup/logrotate"
install -d -m 0755 "$ROOT/lib/systemd/system"
# Units for the example policy, naming /etc/bosbackup/bos.yml; an admin whose policy has other
# folders writes their own into /etc/systemd/system (which overrides these).
"$ROOT/usr/bin/bosbackup" schedule install --systemd --config schedules/bos.yml --unit-config /etc/bosbackup/bos.yml \
  --binary /usr/bin/bosbackup --write "$ROOT/lib/systemd/system" >/dev/null
install -d -m 0755 "$ROOT/usr/share/doc/bosbackup"
install -m 0644 README.md "$ROOT/usr/share/doc/bosbackup/README.md"

# Dependencies: the Debian packages that own the shared libraries the binary needs.
DEPENDS=$(ldd "$BIN" | awk '/=> \//{print $3}' | while read -r lib; do
  dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
DEPENDS="${DEPENDS:+$DEPENDS, }adduser"
SIZE=$(du -sk "$ROOT" | cut -f1)

install -d -m 0755 "$ROOT/DEBIAN"
cat > "$ROOT/DEBIAN/control" <<EOF
Package: bosbackup
Version: $VERSION
Architecture: $ARCH
Maintainer: bosbackup maintainers <bosbackup@localhost>
Installed-Size: $SIZE
Depends: $DEPENDS
Section: admin
Priority: optional
Description: backups of a live SQLite business database, proven restorable
 Consistent, compressed, checksummed snapshots of a live SQLite database on
 NAS folders and S3-compatible buckets, a catalog with per-table row counts,
 scheduled runs (systemd timer or cron), retention, verification and
 quarterly restore drills.
EOF
echo /etc/logrotate.d/bosbackup > "$ROOT/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$ROOT/DEBIAN/"
DEB="$OUT/bosbackup_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
