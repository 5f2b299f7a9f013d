#!/usr/bin/env python3
"""make bench: bosbackup next to what an administrator would otherwise use,
on the same sample BOS database, in the same run. Prints a table and writes
bench/RESULTS.md. A benchmark, not a test: it asserts nothing.

BENCH_ORDERS (default 1700000, about 1 GB), BENCH_REPS (default 3),
BENCH_RESULTS (default bench/RESULTS.md)."""
import os, platform, shutil, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", "work")
BIN = os.path.join(ROOT, ".build", "release", "bosbackup")
ORDERS = int(os.environ.get("BENCH_ORDERS", "1700000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
CORES = os.cpu_count() or 1
ENV = dict(os.environ, RESTIC_PASSWORD="bench", BORG_PASSPHRASE="", BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
           BORG_RELOCATED_REPO_ACCESS_IS_OK="yes", BORG_BASE_DIR=os.path.join(WORK, "borg-home"))

def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, env=ENV, stdout=subprocess.DEVNULL)

def timed(cmd):
    """wall, cpu (user+sys), peak RSS in MB of a shell command."""
    fmt = os.path.join(WORK, "time.txt")
    start = time.monotonic()
    subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", fmt, "sh", "-c", cmd], check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - start
    user, system, rss = open(fmt).read().split()[-3:]
    return wall, float(user) + float(system), int(rss) / 1024

def size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)

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

def targets(rows, base, checks):
    """Issue #6's targets, each with the measured ratio."""
    bos = base[0]
    restic = rows["restic (zstd, encrypted; + the .backup copy)"][0]
    gzip = rows["sqlite3 .backup + gzip -6"]
    def line(what, value, limit):
        return f"| {what} | {value:.2f} | {limit} | {'met' if value <= limit else 'NOT met'} |"
    return ["| target (same run) | measured | limit | |", "|---|---|---|---|",
            line("backup wall / restic backup", bos["backup"][0] / restic["backup"][0], 1.0),
            line("backup wall / (restic backup + the .backup copy it needs)",
                 bos["backup"][0] / (restic["backup"][0] + checks[".backup copy"][0]), 1.0),
            line("stored bytes / gzip -6", base[1] / gzip[1], 1.0),
            line("restore wall / restic restore", bos["restore"][0] / restic["restore"][0], 1.0),
            line("verify wall / (gzip -dc + integrity_check)", bos["verify"][0] / gzip[0]["verify"][0], 0.5),
            line("peak RSS backup / restore / verify (max, MB) / 64",
                 max(bos["backup"][2], bos["restore"][2], bos["verify"][2]) / 64, 1.0)]

def main():
    os.makedirs(WORK, exist_ok=True)
    live = os.path.join(WORK, f"live-{ORDERS}.db")
    if not os.path.exists(live):
        print(f"building the sample BOS database ({ORDERS} orders)…", flush=True)
        sh(f"'{BIN}' sample create '{live}' --orders {ORDERS} --seed 42")
    db_bytes = os.path.getsize(live)
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
    def cell(v, ref, unit):
        if v is None:
            return "–"
        return f"{v:.1f}{unit} ({v / ref:.2f}×)" if ref else f"{v:.1f}{unit}"
    lines = ["| tool | backup wall | backup CPU | backup peak RSS | stored | restore wall | restore RSS | verify wall | verify RSS |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, (m, stored) in rows.items():
        b, bb = m["backup"], base[0]["backup"]
        rst, brst = m.get("restore"), base[0]["restore"]
        ver, bver = m.get("verify"), base[0]["verify"]
        lines.append(f"| {name} | {cell(b[0], bb[0], ' s')} | {cell(b[1], bb[1], ' s')} | {cell(b[2], bb[2], ' MB')} | "
                     f"{cell(stored / 1e6, base[1] / 1e6, ' MB')} | {cell(rst and rst[0], brst[0], ' s')} | {cell(rst and rst[2], brst[2], ' MB')} | "
                     f"{cell(ver and ver[0], bver[0], ' s')} | {cell(ver and ver[2], bver[2], ' MB')} |")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    report = [f"# bosbackup benchmark", "",
              f"Machine: {CORES} cores ({cpu}), {int(mem) // 1024} MB RAM, {platform.system()} {platform.release()}.",
              f"Sample BOS database: {ORDERS} orders, {db_bytes / 1e9:.2f} GB. Median of {REPS} runs; ratios are to bosbackup.",
              "restic and borg back up a `sqlite3 .backup` copy (a live file is not consistent), whose time is listed below; "
              "the gzip/pigz rows include it. verify for gzip/pigz = decompress + `PRAGMA integrity_check`. "
              "bosbackup's restore is of a snapshot a verify has passed (the usual case after a nightly verify); "
              "a never-verified one adds `quick_check`, listed below.", ""] + lines + ["",
              "| reference | wall | peak RSS |", "|---|---|---|"] + \
             [f"| {k} | {v[0]:.1f} s | {v[2]:.1f} MB |" for k, v in checks.items()] + \
             [f"| bosbackup restore of a never-verified snapshot | {base[0]['restore (never verified)'][0]:.1f} s | "
              f"{base[0]['restore (never verified)'][2]:.1f} MB |", ""] + targets(rows, base, checks) + [""]
    text = "\n".join(report)
    print(text)
    open(os.environ.get("BENCH_RESULTS", os.path.join(ROOT, "bench", "RESULTS.md")), "w").write(text)

if __name__ == "__main__":
    main()
