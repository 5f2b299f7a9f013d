#!/usr/bin/env python3
"""make bench: bosbackup next to what an administrator would otherwise use,
on the same sample BOS database, in the same run. Prints a table and writes
bench/RESULTS.md. A benchmark, not a test: it asserts nothing about the
numbers (only that each step did what it is there to measure).

Scenarios (BENCH_SCENARIOS, comma-separated, default "base,day2"):
  base  one snapshot of the sample database: bosbackup vs sqlite3 .backup +
        gzip/pigz, restic and borg (backup, restore, verify).
  day2  one business day later: a policy job with incremental: { full_every: 7 }
        takes a full (day 1) and, after `bosbackup sample day`, an incremental
        (day 2), next to a second full of the same day-2 database and restic's
        and borg's second snapshot of a .backup copy; then a restore of the
        newest of a 7-link chain vs a restore of a full.

BENCH_ORDERS (default 1700000, about 1 GB), BENCH_REPS (default 3; the day2
scenario is stateful and runs once), BENCH_RESULTS (default bench/RESULTS.md),
BENCH_BIN (default .build/release/bosbackup)."""
import json, os, platform, shutil, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", "work")
BIN = os.path.abspath(os.environ.get("BENCH_BIN") or os.path.join(ROOT, ".build", "release", "bosbackup"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "1700000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
SCENARIOS = [n.strip() for n in os.environ.get("BENCH_SCENARIOS", "base,day2").split(",") if n.strip()]
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(ROOT, "bench", "RESULTS.md"))
CORES = os.cpu_count() or 1
CHAIN = 7  # day2: the daily job's full_every, and the chain whose newest snapshot is restored
ENV = dict(os.environ, RESTIC_PASSWORD="bench", BORG_PASSPHRASE="", BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
           BORG_RELOCATED_REPO_ACCESS_IS_OK="yes", BORG_BASE_DIR=os.path.join(WORK, "borg-home"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shell import Shell, size  # noqa: E402 (beside this script)
SHELL = Shell("bench", ENV, WORK)
fail, sh, timed_out, timed = SHELL.fail, SHELL.sh, SHELL.timed_out, SHELL.timed

def clean(*paths):
    for p in paths:
        shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else (os.path.exists(p) and os.remove(p))

def median_of(run):
    """Runs `run` REPS times; each returns (name -> (wall, cpu, rss)), bytes."""
    samples = {}
    stored = 0
    for _ in range(REPS):
        result, stored = run()
        for name, value in result.items():
            samples.setdefault(name, []).append(value)
    return {name: tuple(statistics.median(v[i] for v in values) for i in range(3)) for name, values in samples.items()}, stored

def line(what, value, limit, digits=2):
    return f"| {what} | {value:.{digits}f} | {limit} | {'met' if value <= limit else 'NOT met'} |"

def ratio(a, b):
    return a / b if b else float("inf")

def cell(v, ref, unit, digits=1):
    if v is None:
        return "–"
    return f"{v:.{digits}f}{unit} ({v / ref:.2f}×)" if ref else f"{v:.{digits}f}{unit}"

def targets(rows, base, checks):
    """Issue #6's targets, each with the measured ratio."""
    bos = base[0]
    restic = rows["restic (zstd, encrypted; + the .backup copy)"][0]
    gzip = rows["sqlite3 .backup + gzip -6"]
    return ["| target (same run) | measured | limit | |", "|---|---|---|---|",
            line("backup wall / restic backup", bos["backup"][0] / restic["backup"][0], 1.0),
            line("backup wall / (restic backup + the .backup copy it needs)",
                 bos["backup"][0] / (restic["backup"][0] + checks[".backup copy"][0]), 1.0),
            line("stored bytes / gzip -6", base[1] / gzip[1], 1.0),
            line("restore wall / restic restore", bos["restore"][0] / restic["restore"][0], 1.0),
            line("verify wall / (gzip -dc + integrity_check)", bos["verify"][0] / gzip[0]["verify"][0], 0.5),
            line("peak RSS backup / restore / verify (max, MB) / 64",
                 max(bos["backup"][2], bos["restore"][2], bos["verify"][2]) / 64, 1.0)]

def scenario_base(live):
    """The first scenario: one snapshot, every tool, median of REPS runs; its report lines."""
    copy, restored = os.path.join(WORK, "copy.db"), os.path.join(WORK, "restored.db")
    rows = {}

    def bosbackup():
        nas, cat, scratch = (os.path.join(WORK, n) for n in ("nas", "catalog.db", "scratch"))
        clean(nas, cat, cat + "-wal", cat + "-shm", scratch, restored)
        r = {"backup": timed(f"'{BIN}' backup --source '{live}' --target file://{nas} --catalog '{cat}' --scratch '{scratch}'")}
        restore = (f"'{BIN}' restore --snapshot $('{BIN}' snapshots --catalog '{cat}' --json | python3 -c 'import json,sys;print(json.load(sys.stdin)[\"snapshots\"][0][\"id\"])') "
                   f"--into '{restored}' --catalog '{cat}' --scratch '{scratch}'")
        # The first restore meets a snapshot no verify has passed yet (it runs quick_check);
        # the one after the nightly verify lets the SHA-256 match stand for it — the usual case.
        r["restore (never verified)"] = timed(restore)
        r["verify"] = timed(f"'{BIN}' verify --latest 1 --catalog '{cat}' --scratch '{scratch}'")
        clean(restored)
        r["restore"] = timed(restore)
        return r, size(nas)
    print("bosbackup…", flush=True)
    rows["bosbackup (libdeflate -5, all cores)"] = median_of(bosbackup)

    def sqlite_gzip(tool):
        def run():
            out = os.path.join(WORK, "copy.db.gz")
            clean(copy, out, restored)
            r = {"backup": timed(f"sqlite3 '{live}' \".backup '{copy}'\" && {tool} -6 -c '{copy}' > '{out}'")}
            r["restore"] = timed(f"{tool} -dc '{out}' > '{restored}'")
            r["verify"] = timed(f"{tool} -dc '{out}' > '{restored}' && sqlite3 '{restored}' 'PRAGMA integrity_check' >/dev/null")
            return r, size(out)
        return run
    print("sqlite3 .backup + gzip…", flush=True)
    rows["sqlite3 .backup + gzip -6"] = median_of(sqlite_gzip("gzip"))
    print("sqlite3 .backup + pigz…", flush=True)
    rows[f"sqlite3 .backup + pigz -6 -p {CORES}"] = median_of(sqlite_gzip(f"pigz -p {CORES}"))

    clean(copy)
    sh(f"sqlite3 '{live}' \".backup '{copy}'\"")
    def restic():
        repo, out = os.path.join(WORK, "restic"), os.path.join(WORK, "restic-out")
        clean(repo, out)
        sh(f"restic init -q --repo '{repo}'")
        r = {"backup": timed(f"restic backup -q --repo '{repo}' '{copy}'")}
        r["restore"] = timed(f"restic restore -q latest --repo '{repo}' --target '{out}'")
        return r, size(repo)
    print("restic…", flush=True)
    rows["restic (zstd, encrypted; + the .backup copy)"] = median_of(restic)

    def borg():
        repo, out = os.path.join(WORK, "borg"), os.path.join(WORK, "borg-out")
        clean(repo, out, ENV["BORG_BASE_DIR"])
        sh(f"borg init -e none '{repo}'")
        r = {"backup": timed(f"borg create --compression zlib,6 '{repo}::a' '{copy}'")}
        os.makedirs(out)
        r["restore"] = timed(f"cd '{out}' && borg extract '{repo}::a'")
        return r, size(repo)
    print("borg…", flush=True)
    rows["borg zlib,6 (+ the .backup copy)"] = median_of(borg)

    checks = {"integrity_check": timed(f"sqlite3 '{live}' 'PRAGMA integrity_check' >/dev/null"),
              "quick_check": timed(f"sqlite3 '{live}' 'PRAGMA quick_check' >/dev/null"),
              ".backup copy": timed(f"rm -f '{copy}' && sqlite3 '{live}' \".backup '{copy}'\"")}

    base = rows["bosbackup (libdeflate -5, all cores)"]
    lines = ["| tool | backup wall | backup CPU | backup peak RSS | stored | restore wall | restore RSS | verify wall | verify RSS |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, (m, stored) in rows.items():
        b, bb = m["backup"], base[0]["backup"]
        rst, brst = m.get("restore"), base[0]["restore"]
        ver, bver = m.get("verify"), base[0]["verify"]
        lines.append(f"| {name} | {cell(b[0], bb[0], ' s')} | {cell(b[1], bb[1], ' s')} | {cell(b[2], bb[2], ' MB')} | "
                     f"{cell(stored / 1e6, base[1] / 1e6, ' MB')} | {cell(rst and rst[0], brst[0], ' s')} | {cell(rst and rst[2], brst[2], ' MB')} | "
                     f"{cell(ver and ver[0], bver[0], ' s')} | {cell(ver and ver[2], bver[2], ' MB')} |")
    return [f"Median of {REPS} runs; ratios are to bosbackup.",
            "restic and borg back up a `sqlite3 .backup` copy (a live file is not consistent), whose time is listed below; "
            "the gzip/pigz rows include it. verify for gzip/pigz = decompress + `PRAGMA integrity_check`. "
            "bosbackup's restore is of a snapshot a verify has passed (the usual case after a nightly verify); "
            "a never-verified one adds `quick_check`, listed below.", ""] + lines + ["",
            "| reference | wall | peak RSS |", "|---|---|---|"] + \
           [f"| {k} | {v[0]:.1f} s | {v[2]:.1f} MB |" for k, v in checks.items()] + \
           [f"| bosbackup restore of a never-verified snapshot | {base[0]['restore (never verified)'][0]:.1f} s | "
            f"{base[0]['restore (never verified)'][2]:.1f} MB |", ""] + targets(rows, base, checks) + [""]

def scenario_day2(live):
    """The second scenario, "day 2": a full, one business day, an incremental, next to
    restic's and borg's second snapshot; then a CHAIN-link chain's restore vs a full's. Stateful,
    so it runs once. Its report lines."""
    d = os.path.join(WORK, "day2")
    clean(d)
    os.makedirs(d)
    db = os.path.join(d, "bos.db")
    if os.path.exists(live + "-wal") and os.path.getsize(live + "-wal"):
        fail(f"{live}-wal is not empty; delete {live} and run again")
    shutil.copyfile(live, db)
    nas, policy = os.path.join(d, "nas"), os.path.join(d, "policy.yml")
    with open(policy, "w") as f:
        f.write(f"""timezone: UTC
host: bench
databases: {{ bos: {{ path: "{db}" }} }}
catalog: "{d}/catalog.db"
scratch: "{d}/scratch"
targets: {{ nas: {{ url: "file://{nas}" }} }}
jobs:
  daily: {{ target: nas, cron: "0 22 * * *", incremental: {{ full_every: {CHAIN} }} }}
  fullonly: {{ target: nas, cron: "0 22 * * *" }}
""")
    def full_reason(snap):
        """Why a snapshot is a full, as its manifest on the target says (or "")."""
        try:
            return json.load(open(os.path.join(nas, snap["manifest_key"]))).get("full_reason") or ""
        except (OSError, KeyError, ValueError):
            return ""

    def backup(job, kind, what, measure=True):
        """One `backup --job`: (wall, cpu, rss) or None, stored bytes added to the target, its JSON.
        Stops the bench unless the snapshot is of `kind` (None: any)."""
        before = size(nas)
        cmd = f"'{BIN}' backup --config '{policy}' --job {job} --json"
        m, out = timed_out(cmd) if measure else (None, sh(cmd))
        snap = json.loads(out)
        if kind and snap.get("kind") != kind:
            reason = full_reason(snap)
            fail(f"{what}: `backup --job {job}` took a {snap.get('kind')} snapshot {snap.get('id')}, not the {kind} this "
                 f"scenario measures" + (f" (the snapshot says why: {reason})" if reason else ""))
        return m, size(nas) - before, snap

    def sample_day(seed):
        # "one day on PATH: +N orders, N order updates, …": what the day did
        return sh(f"'{BIN}' sample day '{db}' --seed {seed}").strip().split(": ", 1)[-1]

    copy = os.path.join(d, "copy", "bos.db")  # the same path every day: restic and borg see one file change
    os.makedirs(os.path.dirname(copy))
    def dot_backup():
        return timed(f"rm -f '{copy}' && sqlite3 '{db}' \".backup '{copy}'\"")
    restic_repo, borg_repo = os.path.join(d, "restic"), os.path.join(d, "borg")
    def restic_snapshot():
        before = size(restic_repo)
        m = timed(f"restic backup -q --repo '{restic_repo}' '{copy}'")
        return m, size(restic_repo) - before
    def borg_archive(name):
        before = size(borg_repo)
        m = timed(f"borg create --compression zlib,6 '{borg_repo}::{name}' '{copy}'")
        return m, size(borg_repo) - before

    # Day 1: the job's first snapshot is a full with a page map; restic's and borg's first snapshot.
    print("day 2: day 1's full…", flush=True)
    full1, full1_stored, full1_snap = backup("daily", "full", "day 1")
    if not full1_snap.get("pagemap_key"):
        fail(f"day 1: the full {full1_snap['id']} has no page map; an incremental cannot follow it")
    copy1 = dot_backup()
    clean(ENV["BORG_BASE_DIR"])
    sh(f"restic init -q --repo '{restic_repo}'")
    sh(f"borg init -e none '{borg_repo}'")
    print("day 2: restic and borg, day 1…", flush=True)
    restic1, borg1 = restic_snapshot(), borg_archive("a")

    # One business day, then day 2.
    day = sample_day(1)
    print(f"day 2: {day}; the incremental…", flush=True)
    inc, inc_stored, inc_snap = backup("daily", "incremental", "day 2")
    if inc_snap.get("parent") != full1_snap["id"]:
        fail(f"day 2: the incremental's parent is {inc_snap.get('parent')}, not day 1's full {full1_snap['id']}")
    print("day 2: a second full of the day-2 database…", flush=True)
    full2, full2_stored, _ = backup("fullonly", "full", "day 2, job fullonly")
    copy2 = dot_backup()
    print("day 2: restic and borg, day 2…", flush=True)
    restic2, borg2 = restic_snapshot(), borg_archive("b")

    # CHAIN - 2 more days: full + CHAIN - 1 incrementals = a CHAIN-link chain (full_every: CHAIN). bosbackup starts a new
    # chain sooner when the increments add up to more than half the full: then the chain that formed
    # is measured, and the report says so.
    links, newest, broken = [inc_stored], inc_snap, None
    for seed in range(2, CHAIN):
        print(f"day 2: chain, day {seed + 1}…", flush=True)
        sample_day(seed)
        _, stored, snap = backup("daily", None, f"day {seed + 1}", measure=False)
        if snap.get("kind") != "incremental":
            broken = (seed + 1, snap, full_reason(snap) or "no reason recorded")
            print(f"day 2: day {seed + 1}'s backup is a {snap.get('kind')}, not an incremental: {broken[2]}", flush=True)
            break
        links.append(stored)
        newest = snap
    want = len(links) + 1
    snaps = {s["id"]: s for s in json.loads(sh(f"'{BIN}' snapshots --config '{policy}' --json"))["snapshots"]}
    if newest["id"] not in snaps or snaps[newest["id"]].get("kind") != "incremental":
        fail(f"snapshots --json does not list {newest['id']} as an incremental")
    if snaps[newest["id"]].get("chain_root") != full1_snap["id"]:
        fail(f"the chain root of {newest['id']} is {snaps[newest['id']].get('chain_root')}, not day 1's full {full1_snap['id']}")
    chain, link = [], newest["id"]
    while link:
        if link not in snaps or len(chain) > want:
            fail(f"the chain of {newest['id']} is broken or longer than {want} links at {link}")
        chain.append(link)
        link = snaps[link].get("parent")
    if len(chain) != want or chain[-1] != full1_snap["id"] or snaps[chain[-1]].get("kind") != "full":
        fail(f"the chain of {newest['id']} has {len(chain)} links ending at {chain[-1]}, not {want} ending at day 1's full")
    if broken:
        last_full_stored, last_full_snap = None, broken[1]  # the full the job took instead: of the next day's database
    else:
        print(f"day 2: a full of the day-{CHAIN} database…", flush=True)
        _, last_full_stored, last_full_snap = backup("fullonly", "full", f"day {CHAIN}, job fullonly", measure=False)

    # Neither snapshot has been verified: both restores run quick_check after the SHA-256 match.
    into = os.path.join(d, "restored.db")
    def restore(snapshot):
        clean(into, into + "-wal", into + "-shm")
        m = timed(f"'{BIN}' restore --snapshot {snapshot} --into '{into}' --config '{policy}'")
        clean(into, into + "-wal", into + "-shm")
        return m
    print("day 2: restores…", flush=True)
    restore_chain, restore_full = restore(newest["id"]), restore(last_full_snap["id"])

    mb = lambda b: b / 1e6
    ref = full1 + (mb(full1_stored),)
    def row(name, m, stored):
        return (f"| {name} | {cell(m[0], ref[0], ' s', 2)} | {cell(m[1], ref[1], ' s', 2)} | {cell(m[2], ref[2], ' MB')} | "
                f"{cell(mb(stored), ref[3], ' MB', 2)} |")
    lines = ["## Day 2: one business day later", "",
             f"A copy of the sample database is backed up by a policy job `daily` with `incremental: {{ full_every: {CHAIN} }}`: "
             f"day 1 a full with a page map ({full1_snap['id'][:12]}). `bosbackup sample day --seed 1` then simulates one "
             f"business day ({day}); day 2 the same job takes an incremental, and a job `fullonly` a second full of the "
             f"same day-2 database. restic (zstd, encrypted) and borg (zlib,6) back up a `sqlite3 .backup` copy of the "
             f"day-1 database, then one of the day-2 database to the same path; their rows are the second snapshot "
             f"(archive) and the repository's growth. stored = bytes added to the target folder or repository (for "
             f"bosbackup: the snapshot's object, page map and manifest). Stateful, so one run (BENCH_REPS does not "
             f"apply); ratios are to day 1's full.", "",
             "| day 2 | backup wall | backup CPU | backup peak RSS | stored bytes added |", "|---|---|---|---|---|",
             row("bosbackup full (day 1)", full1, full1_stored),
             row("bosbackup incremental (day 2)", inc, inc_stored),
             row("bosbackup second full (day 2, job fullonly)", full2, full2_stored),
             row("restic snapshot 2 (+ the .backup copy)", restic2[0], restic2[1]),
             row("borg archive 2 (+ the .backup copy)", borg2[0], borg2[1]), "",
             "| reference | wall | CPU | peak RSS | stored bytes added |", "|---|---|---|---|---|",
             f"| .backup copy, day 1 | {copy1[0]:.2f} s | {copy1[1]:.2f} s | {copy1[2]:.1f} MB | – |",
             f"| .backup copy, day 2 | {copy2[0]:.2f} s | {copy2[1]:.2f} s | {copy2[2]:.1f} MB | – |",
             f"| restic snapshot 1 (day 1) | {restic1[0][0]:.2f} s | {restic1[0][1]:.2f} s | {restic1[0][2]:.1f} MB | {mb(restic1[1]):.2f} MB |",
             f"| borg archive 1 (day 1) | {borg1[0][0]:.2f} s | {borg1[0][1]:.2f} s | {borg1[0][2]:.1f} MB | {mb(borg1[1]):.2f} MB |", "",
             (f"Restore: {CHAIN - 2} more sample days (`--seed 2` … `{CHAIN - 1}`), each followed by `backup --job daily`, "
              f"make a chain of {CHAIN} links: day 1's full ({mb(full1_stored):.2f} MB) and {CHAIN - 1} incrementals "
              f"({', '.join(f'{mb(b):.2f}' for b in links)} MB). Its newest snapshot is restored next to a full of the same "
              f"day-{CHAIN} database (job `fullonly`, {mb(last_full_stored):.2f} MB)." if not broken else
              f"Restore: {CHAIN - 2} more sample days (`--seed 2` … `{CHAIN - 1}`) were to follow, each with `backup --job "
              f"daily`, for a chain of {CHAIN} links. **The chain has {want} links**: day {broken[0]}'s backup is a {broken[1].get('kind')} "
              f"({broken[2]}). Measured instead: the newest of the {want}-link chain (day 1's full, "
              f"{mb(full1_stored):.2f} MB, and {len(links)} incrementals: {', '.join(f'{mb(b):.2f}' for b in links)} MB), "
              f"next to the full the job took on day {broken[0]} (one more day of orders).") +
             " Neither snapshot was verified before, so both restores run `quick_check` after the SHA-256 match; "
             "one run each.", "",
             "| restore (`restore --snapshot ID --into PATH`) | wall | CPU | peak RSS |", "|---|---|---|---|",
             f"| newest of a {want}-link chain (full + {want - 1} incrementals) | {cell(restore_chain[0], restore_full[0], ' s', 2)} | "
             f"{cell(restore_chain[1], restore_full[1], ' s', 2)} | {cell(restore_chain[2], restore_full[2], ' MB')} |",
             f"| {'a full of the same database' if not broken else f'the full of day {broken[0]}'} | {cell(restore_full[0], restore_full[0], ' s', 2)} | "
             f"{cell(restore_full[1], restore_full[1], ' s', 2)} | {cell(restore_full[2], restore_full[2], ' MB')} |", "",
             "| target (same run) | measured | limit | |", "|---|---|---|---|",
             line("day-2 incremental stored / a full's stored (the day-2 second full)", ratio(inc_stored, full2_stored), 0.20, 3),
             line("day-2 incremental stored / restic's day-2 repository growth", ratio(inc_stored, restic2[1]), 0.3, 3),
             line("incremental backup wall / a full backup wall (the day-2 second full)", ratio(inc[0], full2[0]), 0.4),
             line("incremental backup peak RSS (MB)", inc[2], 64),
             line(f"restore wall, newest of a {CHAIN}-link chain / a full", ratio(restore_chain[0], restore_full[0]), 1.3) if not broken else
             f"| restore wall, newest of a {CHAIN}-link chain / a full | {ratio(restore_chain[0], restore_full[0]):.2f} "
             f"(a {want}-link chain) | 1.3 | not measured: no {CHAIN}-link chain |", ""]
    return lines

SCENARIO_FUNCS = {"base": scenario_base, "day2": scenario_day2}

def main():
    unknown = [n for n in SCENARIOS if n not in SCENARIO_FUNCS]
    if unknown or not SCENARIOS:
        fail(f"BENCH_SCENARIOS: unknown {', '.join(unknown) or '(none given)'} (scenarios: {', '.join(SCENARIO_FUNCS)})")
    if not os.access(BIN, os.X_OK):
        fail(f"{BIN} is not an executable (make build, or set BENCH_BIN)")
    os.makedirs(WORK, exist_ok=True)
    live = os.path.join(WORK, f"live-{ORDERS}.db")
    if not os.path.exists(live):
        print(f"building the sample BOS database ({ORDERS} orders)…", flush=True)
        sh(f"'{BIN}' sample create '{live}' --orders {ORDERS} --seed 42")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    gb = os.path.getsize(live) / 1e9
    report = [f"# bosbackup benchmark", "",
              f"Machine: {CORES} cores ({cpu}), {int(mem) // 1024} MB RAM, {platform.system()} {platform.release()}.",
              f"Sample BOS database: {ORDERS} orders, {gb:.2f} GB." if gb >= 1 else
              f"Sample BOS database: {ORDERS} orders, {gb * 1000:.1f} MB.", ""]
    for name in [n for n in SCENARIO_FUNCS if n in SCENARIOS]:
        report += SCENARIO_FUNCS[name](live)
        # Written after each scenario, so a later one that stops leaves the earlier ones' results.
        open(RESULTS, "w").write("\n".join(report))
    print("\n".join(report))

if __name__ == "__main__":
    main()
