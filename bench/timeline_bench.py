#!/usr/bin/env python3
"""The incident scenario of the benchmark (issue #16's targets): the guide's vanished orders,
found and put back from the WAL archive. Prints a table and writes bench/TIMELINE-RESULTS.md.
A benchmark, not a test: it asserts nothing about the numbers, only that each step did what it
is there to measure (the timeline names the bad commit and its rows; after recovery live has
every row that commit deleted again, integrity and foreign keys clean).

On a copy of the sample BOS database, `bosbackup archive` follows (nas: 1s) while the writer
of archive_bench.py commits TIMELINE_BENCH_COMMITS orders at ARCHIVE_BENCH_FAST_RATE tx/s; at
three quarters of them a bad script deletes the newest TIMELINE_BENCH_LOST orders with their
items, payments, shipments and inventory movements in one transaction, and the orders keep
arriving. Then, as an operator would, one after the other:
  timeline --table orders --lost --live DB     which commit took them
  timeline --table orders --key K              one lost order's life
  diff --txid N-1 --generation G --live DB --table orders   the rows, against the state before it
  recover --txid N-1 --generation G --live DB --table orders --apply   (children by foreign key)
The whole incident is the sum. Beside it: a full restore of the generation's base (what a
restore costs here) and the guide's 55 minutes (40 restore + 15 comparison). The timeline's
walk is timed apart from its restore (its JSON says both), and its per-commit cost extrapolated
to issue #16's 8-hour archive at 50 tx/s (1,440,000 commits).

Env: as archive_bench.py (BENCH_BIN, BENCH_ORDERS, ARCHIVE_BENCH_FAST_RATE), and
TIMELINE_BENCH_COMMITS (default 100000; 1440000 is issue #16's day, about 50 minutes of writing),
TIMELINE_BENCH_LOST (default 3000), TIMELINE_BENCH_RESULTS (default bench/TIMELINE-RESULTS.md),
TIMELINE_BENCH_REUSE=1 (the incident again on the archive the last run of that size left),
TIMELINE_BENCH_ARCHIVE_ONLY=1 (write the archive and stop)."""
import calendar, glob, json, os, shutil, sqlite3, sys, time

COMMITS = int(os.environ.get("TIMELINE_BENCH_COMMITS", "100000"))
LOST = int(os.environ.get("TIMELINE_BENCH_LOST", "3000"))
os.environ["BENCH_BAD_AT"] = str(COMMITS * 3 // 4)   # read by the writer archive_bench.py starts
os.environ["BENCH_BAD_ORDERS"] = str(LOST)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import archive_bench as ab  # noqa: E402 (after the writer's settings)

RESULTS = os.environ.get("TIMELINE_BENCH_RESULTS", os.path.join(ab.ROOT, "bench", "TIMELINE-RESULTS.md"))
GUIDE_MINUTES = 55
CHILDREN = ["order_items", "payments", "shipments", "inventory_movements"]


def iso_ms(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def counts(db):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ["orders"] + CHILDREN}
    finally:
        c.close()


def archive_for_incident(live):
    """The writer and the archiver (a day's archive takes hours); with TIMELINE_BENCH_REUSE=1 the
    archive a previous run of the same size left, its live database put back as it was before
    the incident (a copy kept then) and its scratch emptied, so every step starts cold again."""
    name = "timeline" if COMMITS == 100000 else f"timeline-{COMMITS}"
    saved, start = os.path.join(ab.WORK, name, "follow.json"), os.path.join(ab.WORK, name, "incident-start.db")
    if os.environ.get("TIMELINE_BENCH_REUSE") == "1" and os.path.exists(saved) and os.path.exists(start):
        r = json.load(open(saved))
        ab.clean(r["db"], r["db"] + "-wal", r["db"] + "-shm", os.path.join(r["d"], "scratch"))
        shutil.copyfile(start, r["db"])
        print(f"incident: reusing the archive of {saved}", flush=True)
        return r
    r = ab.follow(live, name, {"nas": "1s"}, ab.FAST_RATE, 0, COMMITS, 180)
    source, copy = sqlite3.connect(r["db"]), sqlite3.connect(start)
    source.backup(copy)   # the live database with what its WAL holds, as the incident finds it
    copy.close(), source.close()
    with open(saved, "w") as f:
        json.dump(r, f)
    return r


def main():
    live = ab.sample_database()
    print(f"incident: {COMMITS} commits at {ab.FAST_RATE:.0f} tx/s, the archiver following (nas: 1s); "
          f"{LOST} orders deleted at commit {COMMITS * 3 // 4}…", flush=True)
    r = archive_for_incident(live)
    if os.environ.get("TIMELINE_BENCH_ARCHIVE_ONLY") == "1":
        return print(f"incident: the archive is ready in {r['d']}; run again with TIMELINE_BENCH_REUSE=1", flush=True)
    db, policy = r["db"], r["policy"]
    bad_began, bad_done = map(float, open(os.path.join(r["d"], "commits.log.bad")).read().split())
    at_end = counts(db)
    cmd = lambda args: f"'{ab.BIN}' {args} --config '{policy}'"
    steps = []

    print("incident: timeline --lost…", flush=True)
    t, out = ab.timed_out(cmd(f"timeline --table orders --lost --live '{db}' --json --limit 100000"))
    lost = json.loads(out)
    losses = lost["losses"]
    if len(losses) != 1 or len(losses[0]["keys"]) != LOST:
        ab.fail(f"timeline --lost found {[(x['txid'], len(x['keys'])) for x in losses]}, not one commit of {LOST} orders")
    found = losses[0]
    seen_at = calendar.timegm(time.strptime(found["seen_at"], "%Y-%m-%dT%H:%M:%SZ"))
    dating = None
    if not (bad_began - 1 <= seen_at <= bad_done + 2):
        dating = f"timeline --lost dates the commit {found['seen_at']}, the script ran {iso_ms(bad_began)}–{iso_ms(bad_done)}"
        if os.environ.get("TIMELINE_BENCH_REUSE") != "1":
            ab.fail(dating)
        # A reused archive may have been written by an archiver that saw the commit late
        # (the day-long run's was wedged by that very commit); the results say so.
        print(f"incident: NOTE {dating}", flush=True)
    steps.append(("timeline --table orders --lost", t, lost["walked"]))
    print("incident: timeline --key…", flush=True)
    t, out = ab.timed_out(cmd(f"timeline --table orders --key {found['keys'][0]} --json"))
    key = json.loads(out)
    if [e["kind"] for e in key["events"]][-1:] != ["deleted"]:
        ab.fail(f"timeline --key {found['keys'][0]}: {key['events']}")
    steps.append((f"timeline --table orders --key {found['keys'][0]}", t, key["walked"]))
    # The state right before the bad commit, as the timeline names it: --txid N-1. (A time just
    # before the script is not enough: the archiver sees commits a poll (0.2 s) after they are
    # made, so the orders of the last poll before the script share the bad commit's seen time.)
    state = f"--txid {found['txid'] - 1} --generation {found['generation']}"
    print(f"incident: diff {state}…", flush=True)
    steps.append(("diff --txid N-1 (restores the state before the bad commit into scratch)",
                  ab.timed(cmd(f"diff {state} --live '{db}' --table orders")), None))
    print(f"incident: recover {state} --table orders --apply (foreign keys bring the children)…", flush=True)
    steps.append(("recover --txid N-1 --table orders --apply (+ children by foreign key)",
                  ab.timed(cmd(f"recover {state} --live '{db}' --table orders --apply")), None))
    after = counts(db)
    c = sqlite3.connect(db)
    integrity = c.execute("PRAGMA integrity_check").fetchone()[0]
    fk = len(c.execute("PRAGMA foreign_key_check").fetchall())
    c.close()
    # recover keeps a safety copy of live beside it (1.5 GB each on the day's archive): the
    # bench has checked the result, and kept copies filled the disk run after run.
    for kept in glob.glob(glob.escape(db) + ".before-recover-*"):
        os.remove(kept)
    deleted = {x["table"]: x["deleted"] for x in found["commit"]}
    short = {t: (at_end[t], after[t], deleted.get(t, 0)) for t in after if after[t] != at_end[t] + deleted.get(t, 0)}
    if short or integrity != "ok" or fk:
        ab.fail(f"after recovery: not every row back (table: before, after, deleted) {short}, integrity {integrity}, foreign key problems {fk}")

    base = r["generations"][-1][3]
    full_into = os.path.join(r["d"], "full.db")
    full = ab.timed(cmd(f"restore --snapshot {base} --into '{full_into}'"))
    ab.clean(full_into, full_into + "-wal")
    # Issue #15's ratio in the same run: the whole archive rolled forward against that full restore.
    at = ab.timed(cmd(f"restore --at latest --into '{full_into}'"))
    # The other yardstick: a full restore of the same state. The day's commits grew the
    # database (the writer inserts an order with its children in every commit), so the base
    # is smaller than what restore --at builds and checks; a full snapshot taken at that
    # point, the alternative the archive replaces, is the size of the result.
    same = os.path.join(r["d"], "same-state")
    ab.clean(same + "/catalog.db", same + "/catalog.db-wal", same + "/catalog.db-shm")
    shutil.rmtree(same + "/nas", ignore_errors=True)
    os.makedirs(same, exist_ok=True)
    snapshot = json.loads(ab.timed_out(cmd(f"backup --source '{full_into}' --target 'file://{same}/nas' --catalog '{same}/catalog.db' --json"))[1])
    ab.clean(full_into, full_into + "-wal")
    same_full = ab.timed(cmd(f"restore --snapshot {snapshot['id']} --catalog '{same}/catalog.db' --into '{full_into}'"))
    ab.clean(full_into, full_into + "-wal", db, db + "-wal", db + "-shm")
    shutil.rmtree(same, ignore_errors=True)

    total = sum(s[1][0] for s in steps)
    def day(span):
        # What grows with the commits is the walk without its end (done once: --lost sets the
        # newest state against live); the restore of the start and the end are taken as measured.
        end = span.get("end_seconds", 0)
        return span["restore_seconds"] + end + (span["walk_seconds"] - end) / max(span["commits"], 1) * ab.DAY
    walked, key_walk = lost["walked"], key["walked"]
    day_lost, day_key = day(walked), day(key_walk)
    day_total = total - steps[0][1][0] - steps[1][1][0] + day_lost + day_key

    out = ["# bosbackup incident benchmark (issue #16)", ""] + ab.about_run(live, "timeline_bench.py", (
        "ARCHIVE_BENCH_FAST_RATE", "TIMELINE_BENCH_COMMITS", "TIMELINE_BENCH_LOST")) + [
        f"Archive: {walked['commits']} commits walked (the writer's {COMMITS} at {ab.FAST_RATE:.0f} tx/s, the bad script at "
        f"commit {COMMITS * 3 // 4} deleting {LOST} orders, {', '.join(f'{t} {at_end_lost}' for t, at_end_lost in [(x['table'], x['deleted']) for x in found['commit']])}).",
        "", "| step | wall | cpu | peak RSS | of which restore / walk |", "|---|---|---|---|---|"]
    for name, (wall, cpu, rss), span in steps:
        split = (f"{span['restore_seconds']:.1f} s / {span['walk_seconds']:.1f} s"
                 + (f" (of which {span['end_seconds']:.1f} s at its end)" if span.get("end_seconds") else "")) if span else ""
        out.append(f"| {name} | {wall:.1f} s | {cpu:.1f} s | {rss:.0f} MB | {split} |")
    out += [f"| **whole incident** | **{total:.1f} s** | | | |",
            f"| full restore of the base (reference) | {full[0]:.1f} s | {full[1]:.1f} s | {full[2]:.0f} MB | |",
            f"| restore --at latest (the base + {walked['commits']} commits) | {at[0]:.1f} s | {at[1]:.1f} s | {at[2]:.0f} MB | |",
            f"| full restore of a snapshot of that same state, {snapshot['bytes'] / 1e9:.2f} GB (reference) | {same_full[0]:.1f} s | {same_full[1]:.1f} s | {same_full[2]:.0f} MB | |", "",
            "| target (same run) | measured | limit | |", "|---|---|---|---|",
            ab.line(f"timeline --lost, {walked['commits']} commits (s)", steps[0][1][0], 60),
            ab.line(f"timeline --key, {key_walk['commits']} commits (s)", steps[1][1][0], 30),
            ab.line(f"whole incident, {walked['commits']} commits (s)", total, 120),
            ab.line(f"restore --at / full restore of the same state, {walked['commits']} commits (issue #15)", at[0] / same_full[0], 2.0),
            ab.line(f"restore --at / full restore of the (smaller) base, {walked['commits']} commits", at[0] / full[0], 2.0)]
    if walked["commits"] < ab.DAY:
        out += [
            ab.line(f"timeline --lost, {ab.DAY} commits (extrapolated: restore + end + walk per commit × commits) (s)", day_lost, 60),
            ab.line(f"timeline --key, {ab.DAY} commits (extrapolated) (s)", day_key, 30),
            ab.line(f"whole incident, {ab.DAY} commits (extrapolated; diff and recover as measured) (s)", day_total, 120),
            # An upper bound: of the roll's cost only the index reading grows with the commits;
            # the pages it reads are each page's last version, bounded by the database's size.
            ab.line(f"restore --at / full restore of the base, {ab.DAY} commits (extrapolated: the roll's cost per commit × commits, an upper bound)",
                    (full[0] + (at[0] - full[0]) / max(walked['commits'], 1) * ab.DAY) / full[0], 2.0)]
    out += [
            *([f"Dating: {dating} (the archiver saw the commit late; the time the timeline gives is when it was seen).", ""] if dating else []),
            "", f"The guide's incident: {GUIDE_MINUTES} minutes (40 restore + 15 comparison); this one: {total / 60:.1f} minutes "
            f"({GUIDE_MINUTES * 60 / total:.0f}× faster), every row the bad commit deleted back, integrity ok, no foreign key problem.", ""]
    open(RESULTS, "w").write("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
