#!/usr/bin/env bash
# The bosbackup story on a sample BOS database, with the real commands.
# Usage: scripts/demo.sh [path/to/bosbackup]   (make demo builds it first)
set -euo pipefail
BIN=${1:-.build/release/bosbackup}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
DIR=${DEMO_DIR:-demo-out}
ORDERS=${DEMO_ORDERS:-100000}
rm -rf "$DIR"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
export BOSBACKUP_CONFIG="$DIR/bos.yml"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
# bosbackup, shown as an operator would type it
bb() { printf '\033[2m$ bosbackup %s\033[0m\n' "$*"; "$BIN" "$@"; }

step "1. A business operation system: a sample BOS database ($ORDERS orders, busy day today)"
run "$BIN" demo --dir "$DIR" --orders "$ORDERS"
echo "policy in use (the documented double backup, pointed at this folder):"
sed -n '/^targets/,$p' "$DIR/bos.yml"

step "2. Back it up while it runs: consistent copy, gzip blocks, SHA-256, catalog"
bb backup --job local-weekly
echo "(the daily job keeps a chain: a full now, then only the pages that change)"
bb backup --job nas-daily

step "3. A business day later: the daily snapshot stores only the pages that changed"
bb sample day "$DIR/live/bos.db"
bb backup --job nas-daily
echo "the catalog knows every snapshot, with per-table row counts; an incremental names its parent:"
bb snapshots

step "4. Prove it restores: checksum, gzip, scratch restore, integrity_check, counts (an incremental: its whole chain)"
bb verify --latest 1

step "5. Between backups: the WAL archive ships every commit within a second"
echo "(bosbackup archive runs in the background here; the daemon runs it too)"
"$BIN" archive > "$DIR/archive.log" 2>&1 &
ARCHIVER=$!
trap 'kill $ARCHIVER 2>/dev/null || true' EXIT
bb sample add-orders "$DIR/live/bos.db" --count 40
for _ in $(seq 1 100); do grep -q "→ nas" "$DIR/archive.log" && break; sleep 0.1; done
sleep 1.5
BEFORE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "orders in live at $BEFORE: $(sqlite3 "$DIR/live/bos.db" 'SELECT count(*) FROM orders')"
sleep 1.5

step "6. 22:00, the busiest day of the year: a bad script deletes today's orders"
TODAY=$(date -u +%Y-%m-%d)
SQL="BEGIN;
DELETE FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE placed_at >= '$TODAY');
DELETE FROM payments WHERE order_id IN (SELECT id FROM orders WHERE placed_at >= '$TODAY');
DELETE FROM shipments WHERE order_id IN (SELECT id FROM orders WHERE placed_at >= '$TODAY');
DELETE FROM inventory_movements WHERE order_id IN (SELECT id FROM orders WHERE placed_at >= '$TODAY');
DELETE FROM orders WHERE placed_at >= '$TODAY';
COMMIT;"
echo "$SQL"
sqlite3 "$DIR/live/bos.db" "$SQL"
echo "orders left in live: $(sqlite3 "$DIR/live/bos.db" 'SELECT count(*) FROM orders')"

step "7. Point in time: the database as it was the second before the script ran, nothing newer lost"
sleep 1.5   # the archive's next pass covers the moment
echo "(first, that second beside the damaged live database; live is only read)"
bb restore --at "$BEFORE" --live "$DIR/live/bos.db"
bb restore --at "$BEFORE" --into "$DIR/restored/before-the-script.db"
echo "orders in that copy: $(sqlite3 "$DIR/restored/before-the-script.db" 'SELECT count(*) FROM orders') (live has $(sqlite3 "$DIR/live/bos.db" 'SELECT count(*) FROM orders'))"
tail -3 "$DIR/archive.log"
echo "(every archived segment read back: checksum, format, links, txids)"
bb verify --chain

step "7b. When did they vanish? The timeline finds the commit that took them, and one order's whole life"
bb timeline --table orders --lost --live "$DIR/live/bos.db" --limit 8
KEY=$(sqlite3 "$DIR/restored/before-the-script.db" "SELECT max(id) FROM orders WHERE placed_at >= '$TODAY'")
bb timeline --table orders --key "$KEY"

step "8. Triage: restore the newest snapshots into scratch and compare with the damaged live database"
bb restore --latest 3 --live "$DIR/live/bos.db"

ID=$("$BIN" snapshots --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][-1]["id"])')
step "9. Which orders exactly? A row-level diff by primary key, inside SQLite"
bb diff --snapshot "$ID" --live "$DIR/live/bos.db" --limit 8

step "10. Put back only what was lost, with its items, payments and shipments; newer rows untouched"
bb recover --snapshot "$ID" --live "$DIR/live/bos.db" --table orders --sql "$DIR/recover-orders.sql"
echo "(first lines of $DIR/recover-orders.sql, for review:)"
sed -n '1,6p' "$DIR/recover-orders.sql" | cut -c1-150
bb recover --snapshot "$ID" --live "$DIR/live/bos.db" --table orders --apply
echo "orders in live now: $(sqlite3 "$DIR/live/bos.db" 'SELECT count(*) FROM orders'); integrity: $(sqlite3 "$DIR/live/bos.db" 'PRAGMA integrity_check'); foreign key problems: $(sqlite3 "$DIR/live/bos.db" 'PRAGMA foreign_key_check' | wc -l)"

step "11. Or a full restore into a new file (the old one would be copied aside first)"
bb restore --snapshot "$ID" --into "$DIR/restored/bos.db"

step "12. The scheduler: what the policy promises, and a simulated week of cron runs"
bb schedule show
echo "(cron runs \`bosbackup run\` every 10 minutes; --now simulates the clock)"
for when in 2026-12-06T00:05 2026-12-06T22:05 2026-12-10T09:00; do
  bb run --now "$when:00+08:00"
done
bb status --now 2026-12-10T09:00:00+08:00 || true

step "13. The quarterly restore drill: every target, every phase timed, against the 4 h objective"
bb drill

step "Done"
echo "everything is in $DIR: live/bos.db (repaired), nas/ (the backups), catalog.db, restored/bos.db, drills/ (reports)"
echo "gunzip -c of any nas/**/*.db.gz is the database itself:"
F=$(find "$DIR/nas" -name '*.db.gz' | head -1)
run sh -c "gunzip -c '$F' | head -c 16; echo"
