#!/usr/bin/env python3
"""The archive scenario of the benchmark (issue #15's targets for `bosbackup archive`).
Prints a table and writes bench/ARCHIVE-RESULTS.md. A benchmark, not a test: it asserts
nothing about the numbers (only that each step did what it is there to measure: every commit
is archived, the point-in-time restore holds exactly the commits written).

A writer process (Python's sqlite3, the BOS's role) commits one small order per transaction
on a copy of the sample BOS database: an order, two items, two inventory movements, two
product stock updates, a payment, and order k with the running total 1+…+k in a `ledger`
table; default synchronous (FULL) and auto-checkpoint. It logs when each commit began and
when COMMIT returned.

Phases, in one run (ARCHIVE_BENCH_PHASES, comma-separated, default all five), each on a fresh
copy of the sample database:
  without   the writer at ARCHIVE_BENCH_RATE tx/s for ARCHIVE_BENCH_SECONDS, no archiver.
  with      the same, with `bosbackup archive` following one archive entry with two targets:
            nas (a folder) every 1s and cloud (moto_server on loopback, encrypted) every 10s.
            Lag per commit and target, the writer's commit latency, the -wal size (sampled
            every 50 ms), the archiver's peak RSS (VmHWM) and CPU.
  nas       the same with nas: 1s alone (what cloud's shipping costs nas, and the RSS of one target).
  restore   nas: 1s; the writer commits ARCHIVE_BENCH_COMMITS orders at ARCHIVE_BENCH_FAST_RATE
            tx/s (a pace the archiver follows here; unpaced it falls behind, see `unpaced`);
            then `restore --at <end>` next to `restore --snapshot <the generation's base>` (a
            full restore), and the per-commit cost extrapolated to issue #15's day.
  unpaced   nas: 1s; the writer as fast as it can for ARCHIVE_BENCH_UNPACED_SECONDS; then
            `restore --at <end>`: whether the archive kept one generation and every commit.

Lag of a commit = shipped_at of the first segment (of that target, any generation of the run)
whose last_seen >= the time COMMIT returned, minus that time: an upper bound (a segment
stamps its commits with the time after the read that found them, so the first segment seen
after the commit returned holds it or an earlier segment already did).

Env: BENCH_BIN (default .build/release/bosbackup), BENCH_ORDERS (default 1700000, about
1 GB), ARCHIVE_BENCH_SECONDS (default 60), ARCHIVE_BENCH_RATE (default 200),
ARCHIVE_BENCH_COMMITS (default 100000; issue #15's day is 1440000 = 50 tx/s for 8 h, which
the report extrapolates to from the per-commit cost measured), ARCHIVE_BENCH_FAST_RATE
(default 500), ARCHIVE_BENCH_UNPACED_SECONDS (default 10), ARCHIVE_BENCH_RESULTS (default
bench/ARCHIVE-RESULTS.md). Needs moto_server on PATH for the `with` phase.
Work files: bench/work-archive/ (ignored by git through a .gitignore of its own)."""
import atexit, bisect, json, math, os, platform, shutil, signal, socket, sqlite3, subprocess, sys, threading, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", "work-archive")
BIN = os.path.abspath(os.environ.get("BENCH_BIN") or os.path.join(ROOT, ".build", "release", "bosbackup"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "1700000"))
SECONDS = float(os.environ.get("ARCHIVE_BENCH_SECONDS", "60"))
RATE = float(os.environ.get("ARCHIVE_BENCH_RATE", "200"))
COMMITS = int(os.environ.get("ARCHIVE_BENCH_COMMITS", "100000"))
FAST_RATE = float(os.environ.get("ARCHIVE_BENCH_FAST_RATE", "500"))
UNPACED_SECONDS = float(os.environ.get("ARCHIVE_BENCH_UNPACED_SECONDS", "10"))
ALL_PHASES = ["without", "with", "nas", "restore", "unpaced"]
PHASES = [p.strip() for p in os.environ.get("ARCHIVE_BENCH_PHASES", ",".join(ALL_PHASES)).split(",") if p.strip()]
RESULTS = os.environ.get("ARCHIVE_BENCH_RESULTS", os.path.join(ROOT, "bench", "ARCHIVE-RESULTS.md"))
DAY = 1_440_000          # issue #15: a day of archive, about 50 tx/s for 8 h
CHECKPOINT_AT = 4 << 20  # the follower checkpoints under its barrier past this WAL size (docs/DESIGN.md)
CORES = os.cpu_count() or 1
CREDS = {"AWS_ACCESS_KEY_ID": "AKIABENCHARCHIVE0001", "AWS_SECRET_ACCESS_KEY": "bench-archive-secret",
         "AWS_SESSION_TOKEN": "bench-archive-token"}
ENV = dict(os.environ, **CREDS)
ENV.pop("AWS_PROFILE", None)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shell import Shell, size  # noqa: E402 (beside this script)
SHELL = Shell("archive bench", ENV, WORK)
fail, sh, timed_out, timed = SHELL.fail, SHELL.sh, SHELL.timed_out, SHELL.timed

WRITER = r'''
import random, sqlite3, sys, time, os
path, log, rate, seconds, count, ready, go = sys.argv[1:8]
rate, seconds, count = float(rate), float(seconds), int(count)
db = sqlite3.connect(path, isolation_level=None, timeout=30)
db.execute("CREATE TABLE IF NOT EXISTS ledger(k INTEGER PRIMARY KEY, total INTEGER NOT NULL)")  # a first commit: the WAL is not empty
customers = db.execute("SELECT max(id) FROM customers").fetchone()[0]
employees = db.execute("SELECT max(id) FROM employees").fetchone()[0]
products = db.execute("SELECT max(id) FROM products").fetchone()[0]
start_k = (db.execute("SELECT max(k) FROM ledger").fetchone()[0] or 0) + 1
rng = random.Random(15)
BAD_AT, BAD_ORDERS = int(os.environ.get("BENCH_BAD_AT", "0")), int(os.environ.get("BENCH_BAD_ORDERS", "3000"))
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
out = []
t0 = time.time()
k = start_k
while True:
    if count and k - start_k >= count:
        break
    if seconds and not rate and time.time() >= t0 + seconds:
        break
    if rate:
        due = t0 + (k - start_k) / rate            # open loop: a late commit does not move the schedule
        if seconds and due >= t0 + seconds:
            break
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
    began, p0 = time.time(), time.perf_counter()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began))
    c = db.cursor()
    c.execute("BEGIN IMMEDIATE")
    items = [(rng.randint(1, products), rng.randint(1, 3)) for _ in range(2)]
    prices = [c.execute("SELECT price_cents FROM products WHERE id = ?", (p,)).fetchone()[0] for p, _ in items]
    total = sum(q * price for (_, q), price in zip(items, prices))
    c.execute("INSERT INTO orders(customer_id, employee_id, placed_at, status, total_cents, note) VALUES (?,?,?,'paid',?,NULL)",
              (rng.randint(1, customers), rng.randint(1, employees), now, total))
    order = c.lastrowid
    for (p, q), price in zip(items, prices):
        c.execute("INSERT INTO order_items(order_id, product_id, quantity, unit_price_cents) VALUES (?,?,?,?)", (order, p, q, price))
        c.execute("INSERT INTO inventory_movements(product_id, order_id, delta, reason, at) VALUES (?,?,?,'sale',?)", (p, order, -q, now))
        c.execute("UPDATE products SET stock = stock - ? WHERE id = ?", (q, p))
    c.execute("INSERT INTO payments(order_id, method, amount_cents, paid_at, reference) VALUES (?,'card',?,?,?)",
              (order, total, now, "PAY-%016x" % order))
    c.execute("INSERT INTO ledger(k, total) VALUES (?, ?)", (k, k * (k + 1) // 2))
    c.execute("COMMIT")
    out.append((k, began, time.time(), time.perf_counter() - p0))
    if k - start_k + 1 == BAD_AT:
        # timeline_bench.py: a bad script deletes the newest BAD_ORDERS orders with their children, one transaction.
        bad_began = time.time()
        c.execute("BEGIN IMMEDIATE")
        # Not the very newest: the next order takes max(id) + 1, and a deleted newest id would be reused.
        doomed = "SELECT id FROM orders ORDER BY id DESC LIMIT %d OFFSET 100" % BAD_ORDERS
        for child in ("order_items", "payments", "shipments", "inventory_movements"):
            c.execute("DELETE FROM %s WHERE order_id IN (%s)" % (child, doomed))
        c.execute("DELETE FROM orders WHERE id IN (%s)" % doomed)
        c.execute("COMMIT")
        with open(log + ".bad", "w") as f:
            f.write("%.6f %.6f\n" % (bad_began, time.time()))
    k += 1
with open(log, "w") as f:
    for k, b, e, l in out:
        f.write("%d %.6f %.6f %.7f\n" % (k, b, e, l))
'''


CHILDREN = []   # every process this bench started; stopped at exit if still running (a failed step leaves none behind)


def stop_children():
    for p in CHILDREN:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


atexit.register(stop_children)


def spawn(*args, **kwargs):
    p = subprocess.Popen(*args, **kwargs)
    CHILDREN.append(p)
    return p



def clean(*paths):
    for p in paths:
        shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else (os.path.exists(p) and os.remove(p))


def pct(values, p):
    """Nearest-rank percentile of a list (not sorted in place)."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def line(what, value, limit, digits=2, note="", over="NOT met"):
    """A target's row; `over` is the verdict past the limit (where the limit is not the target's own)."""
    return f"| {what} | {value:.{digits}f}{note} | {limit} | {'met' if value <= limit else over} |"


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def query(catalog, sql, *args):
    """Rows of one SELECT on the catalog (a short-lived connection; the archiver may be writing)."""
    if not os.path.exists(catalog):
        return []
    for attempt in range(50):
        try:
            db = sqlite3.connect(catalog, timeout=10)
            try:
                return db.execute(sql, args).fetchall()
            finally:
                db.close()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return []
            time.sleep(0.1)
    fail(f"could not read {catalog}")


def wait_for(what, predicate, timeout, archiver=None, fatal=True):
    """predicate()'s first true value within timeout; else the bench stops (fatal) or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if archiver is not None and archiver.proc.poll() is not None:
            fail(f"{what}: the archiver exited with {archiver.proc.returncode}: {archiver.output()[-2000:]}")
        time.sleep(0.05)
    if not fatal:
        return None
    fail(f"{what}: not within {timeout:.0f} s" + (f"; archiver output: {archiver.output()[-2000:]}" if archiver else ""))


class Sampler:
    """Samples the -wal size every 50 ms, and a process's VmHWM (peak RSS) and CPU time."""

    def __init__(self, wal, pid=None):
        self.wal, self.pid = wal, pid
        self.wal_max, self.samples, self.hwm_kb, self.cpu = 0, 0, 0, 0.0
        # The peak split: what the process allocated (RssAnon) and the files it maps (RssFile:
        # mostly the binary's own code and data pages, shared and reclaimable), sampled.
        self.anon_kb, self.file_kb = 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def poll_process(self):
        if not self.pid:
            return
        try:
            for l in open(f"/proc/{self.pid}/status"):
                if l.startswith("VmHWM:"):
                    self.hwm_kb = max(self.hwm_kb, int(l.split()[1]))
                elif l.startswith("RssAnon:"):
                    self.anon_kb = max(self.anon_kb, int(l.split()[1]))
                elif l.startswith("RssFile:"):
                    self.file_kb = max(self.file_kb, int(l.split()[1]))
            fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
            self.cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass

    def run(self):
        while not self.stop.is_set():
            try:
                self.wal_max = max(self.wal_max, os.path.getsize(self.wal))
            except OSError:
                pass
            self.samples += 1
            if self.samples % 10 == 0:
                self.poll_process()
            self.stop.wait(0.05)

    def finish(self):
        self.poll_process()
        self.stop.set()
        self.thread.join()
        return self


class Archiver:
    """`bosbackup archive --config POLICY` in the background; SIGTERM stops it."""

    def __init__(self, policy, d):
        self.out_path = os.path.join(d, "archive.out")
        self.out = open(self.out_path, "w")
        self.started = time.time()
        self.proc = spawn([BIN, "archive", "--config", policy], env=ENV, stdout=self.out, stderr=subprocess.STDOUT)

    def output(self):
        if not self.out.closed:
            self.out.flush()
        return open(self.out_path).read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = "killed after 60 s (SIGTERM did not stop it)"
        self.out.close()
        return code


class Moto:
    """moto_server on a free 127.0.0.1 port, and one bucket on it."""

    def __init__(self, d):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.log = open(os.path.join(d, "moto.log"), "w")
        self.proc = spawn(["moto_server", "-H", "127.0.0.1", "-p", str(self.port)], env=ENV,
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(f"moto_server exited with {self.proc.returncode} (log: {self.log.name})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.close()
            fail("moto_server did not accept connections within 60 s")
        self.bucket = "bench-archive"
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{self.port}/{self.bucket}", data=b"", method="PUT"),
                               timeout=30).read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def fresh_copy(live, name):
    d = os.path.join(WORK, name)
    clean(d)
    os.makedirs(d)
    db = os.path.join(d, "bos.db")
    shutil.copyfile(live, db)
    # On disk before the phase: otherwise the first checkpoint's fsync (the BOS's or the
    # archiver's) writes back this whole 1 GB copy, held in the page cache, and stalls
    # the writer ~0.5 s (the writer's max in every phase, and the burst after that stall
    # is what the nas phase's max -wal measured: 8.10 MiB).
    with open(db, "rb+") as f:
        os.fsync(f.fileno())
    dir_fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return d, db


def write_policy(d, db, targets, archive):
    policy = os.path.join(d, "policy.yml")
    with open(policy, "w") as f:
        f.write(f"""timezone: UTC
host: bench
databases: {{ bos: {{ path: "{db}" }} }}
catalog: "{d}/catalog.db"
scratch: "{d}/scratch"
targets:
{targets}
jobs: {{ daily: {{ target: nas, cron: "0 22 * * *" }} }}
archive: {{ bos: {{ targets: {{ {archive} }} }} }}
""")
    return policy


def run_writer(d, db, rate, seconds, count, before_go=None, pid=None):
    """Starts the writer, lets it make its first commit, calls before_go() (start the archiver,
    wait for its generation), then lets it commit. The commits [(k, began, committed, latency)],
    the sampler, what before_go returned."""
    log, ready, go = (os.path.join(d, n) for n in ("commits.log", "writer.ready", "writer.go"))
    script = os.path.join(WORK, "writer.py")
    with open(script, "w") as f:
        f.write(WRITER)
    writer = spawn([sys.executable, script, db, log, str(rate), str(seconds), str(count), ready, go],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for("the writer's first commit", lambda: os.path.exists(ready) or writer.poll() is not None, 60)
    if writer.poll() is not None:
        fail(f"the writer exited with {writer.returncode}: {writer.stderr.read()}")
    extra = before_go() if before_go else None
    sampler = Sampler(db + "-wal", extra.proc.pid if isinstance(extra, Archiver) else pid)
    open(go, "w").close()
    _, err = writer.communicate()
    sampler.finish()
    if writer.returncode:
        fail(f"the writer exited with {writer.returncode}: {err.strip()}")
    commits = []
    for l in open(log):
        k, began, committed, latency = l.split()
        commits.append((int(k), float(began), float(committed), float(latency)))
    if not commits:
        fail("the writer committed nothing")
    return commits, sampler, extra


def newest_generation(catalog):
    rows = query(catalog, "SELECT id, base_snapshot, started_at FROM wal_generations ORDER BY started_at DESC LIMIT 1")
    return rows[0] if rows else None


def start_archiver(policy, d):
    """The archiver, once its generation (and base snapshot) exists."""
    catalog = os.path.join(d, "catalog.db")
    archiver = Archiver(policy, d)
    archiver.generation = wait_for("the archive's first generation (base snapshot)", lambda: newest_generation(catalog), 900, archiver)
    archiver.base_seconds = time.time() - archiver.started
    return archiver


def caught_up(catalog, targets, until):
    """The newest generation's progress on every target has reached `until`."""
    newest = newest_generation(catalog)
    if not newest:
        return False
    rows = dict(query(catalog, "SELECT target, checked_at FROM wal_progress WHERE generation = ?", newest[0]))
    return all(rows.get(t, 0) >= until for t in targets)


def lags(catalog, target, commits):
    """Per commit: shipped_at of the first segment (of any generation of the run, in time order)
    whose last_seen >= its commit time, minus that time."""
    segs = query(catalog, "SELECT last_seen, shipped_at, bytes, first_txid, last_txid FROM wal_segments "
                          "WHERE target = ? ORDER BY last_seen, shipped_at", target)
    seen = [s[0] for s in segs]
    result, uncovered = [], 0
    for _, _, committed, _ in commits:
        i = bisect.bisect_left(seen, committed)
        if i == len(segs):
            uncovered += 1
        else:
            result.append(segs[i][1] - committed)
    return result, uncovered, segs


def ms(v):
    return f"{v * 1e3:.2f} ms"


def writer_result(commits, sampler):
    return {"latency": [c[3] for c in commits], "wal_max": sampler.wal_max, "commits": len(commits),
            "span": commits[-1][2] - commits[0][1], "last": max(c[2] for c in commits), "last_k": commits[-1][0]}


def phase_without(live, state):
    print(f"without the archiver: {RATE:.0f} tx/s for {SECONDS:.0f} s…", flush=True)
    d, db = fresh_copy(live, "without")
    commits, sampler, _ = run_writer(d, db, RATE, SECONDS, 0)
    state["without"] = writer_result(commits, sampler)
    clean(db, db + "-wal", db + "-shm")


def follow(live, name, intervals, rate, seconds, count, catchup_timeout):
    """A fresh copy of the sample, `bosbackup archive` following it to `intervals` ({target:
    interval}; cloud = moto on loopback, encrypted), the writer at `rate` tx/s (0: as fast as
    it can) for `seconds` or `count` commits; then a wait (at most catchup_timeout) until the
    newest generation is complete up to a whole second past the last commit, SIGTERM."""
    d, db = fresh_copy(live, name)
    moto = Moto(d) if "cloud" in intervals else None
    try:
        lines = [f'  nas:   {{ url: "file://{d}/nas" }}']
        if moto:
            key = os.path.join(d, "cloud.key")
            sh(f"'{BIN}' key generate '{key}'")
            lines.append(f'  cloud: {{ url: "s3://{moto.bucket}/prod?region=us-east-1&endpoint=http://127.0.0.1:{moto.port}", '
                         f'encryption_key_file: "{key}" }}')
        policy = write_policy(d, db, "\n".join(lines), ", ".join(f"{t}: {i}" for t, i in intervals.items()))
        catalog = os.path.join(d, "catalog.db")
        commits, sampler, archiver = run_writer(d, db, rate, seconds, count, before_go=lambda: start_archiver(policy, d))
        r = writer_result(commits, sampler)
        t_end = time.time()
        targets = list(intervals)
        done = wait_for("caught up", lambda: caught_up(catalog, targets, r["last"]), catchup_timeout, archiver, fatal=False)
        r["catchup"] = time.time() - t_end if done else None
        r["until"] = math.ceil(r["last"]) + 1   # a whole second past the last commit, by more than a poll
        r["covered"] = bool(done) and bool(wait_for("covered", lambda: caught_up(catalog, targets, r["until"]), 15, archiver, fatal=False))
        s = Sampler(db + "-wal", archiver.proc.pid).finish()
        r.update(hwm_mb=max(sampler.hwm_kb, s.hwm_kb) / 1024, cpu=s.cpu, alive=time.time() - archiver.started,
                 anon_mb=max(sampler.anon_kb, s.anon_kb) / 1024, file_mb=max(sampler.file_kb, s.file_kb) / 1024,
                 base_seconds=archiver.base_seconds)
        r["exit"] = archiver.stop()
        output = archiver.output()
    finally:
        if moto:
            moto.close()
    r["generations"] = query(catalog, "SELECT id, ended_at, end_reason, base_snapshot FROM wal_generations ORDER BY started_at")
    r["failures"] = [l for l in output.splitlines() if "fail" in l.lower() or "error" in l.lower()]
    r.update(d=d, db=db, policy=policy, catalog=catalog, intervals=intervals, rate=rate)
    for target in targets:
        lag, uncovered, segs = lags(catalog, target, commits)
        r[target] = {"lag": lag, "uncovered": uncovered, "segments": len(segs), "bytes": sum(x[2] for x in segs),
                     "archived": sum(x[4] - x[3] + 1 for x in segs),
                     "during": sum(1 for x in segs if x[1] <= r["last"])}
    with open(os.path.join(d, "segments.json"), "w") as f:
        json.dump(query(catalog, "SELECT generation, target, first_txid, last_txid, first_seen, last_seen, shipped_at, bytes "
                                 "FROM wal_segments ORDER BY shipped_at"), f)
    return r


def phase_with(live, state):
    print(f"with the archiver (nas: 1s, cloud: 10s on moto): {RATE:.0f} tx/s for {SECONDS:.0f} s…", flush=True)
    state["with"] = follow(live, "with", {"nas": "1s", "cloud": "10s"}, RATE, SECONDS, 0, 180)
    clean(state["with"]["db"])


def phase_nas(live, state):
    print(f"with the archiver, nas: 1s alone: {RATE:.0f} tx/s for {SECONDS:.0f} s…", flush=True)
    state["nas"] = follow(live, "nas", {"nas": "1s"}, RATE, SECONDS, 0, 180)
    clean(state["nas"]["db"])


def ledger(path):
    r = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return r.execute("SELECT count(*), coalesce(max(k), 0), coalesce(sum(total = k * (k + 1) / 2), 0) FROM ledger").fetchone()
    finally:
        r.close()


def restore_at(r, into):
    """`restore --at` a whole second past the last commit: (exit code, wall, cpu, rss, ledger or the error)."""
    clean(into)
    fmt = os.path.join(WORK, "time.txt")
    start = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", fmt, BIN, "restore", "--at", iso(r["until"]), "--into", into,
                        "--config", r["policy"]], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    user, system, rss = open(fmt).read().split()[-3:]
    rows = ledger(into) if p.returncode == 0 else p.stderr.strip().splitlines()[-1:]
    clean(into, into + "-wal", into + "-shm")
    return p.returncode, (wall, float(user) + float(system), int(rss) / 1024), rows


def phase_restore(live, state):
    print(f"restore: {COMMITS} commits at {FAST_RATE:.0f} tx/s, the archiver following (nas: 1s)…", flush=True)
    r = follow(live, "restore", {"nas": "1s"}, FAST_RATE, 0, COMMITS, 120)
    state["restore"] = r
    base = r["generations"][-1][3]
    full_into = os.path.join(r["d"], "full.db")
    print("restore: full restore of the newest generation's base snapshot…", flush=True)
    r["full"] = timed(f"'{BIN}' restore --snapshot {base} --into '{full_into}' --config '{r['policy']}'")
    r["full_rows"] = ledger(full_into)
    clean(full_into, full_into + "-wal")
    r["base_stored"] = (query(r["catalog"], "SELECT stored_bytes FROM snapshots WHERE id = ?", base) or [[0]])[0][0]
    r["at_commits"], r["at_bytes"] = query(r["catalog"], "SELECT coalesce(sum(last_txid - first_txid + 1), 0), coalesce(sum(bytes), 0) "
                                                         "FROM wal_segments WHERE generation = ? AND target = 'nas'", r["generations"][-1][0])[0]
    print(f"restore: restore --at {iso(r['until'])}…", flush=True)
    r["at_code"], r["at"], r["at_rows"] = restore_at(r, os.path.join(r["d"], "at.db"))
    r["at_ok"] = r["at_code"] == 0 and r["at_rows"][1] == r["last_k"] and r["at_rows"][0] == r["at_rows"][2]
    clean(r["db"])


def phase_unpaced(live, state):
    print(f"unpaced: the writer as fast as it can for {UNPACED_SECONDS:.0f} s, the archiver following (nas: 1s)…", flush=True)
    r = follow(live, "unpaced", {"nas": "1s"}, 0, UNPACED_SECONDS, 0, 30)
    state["unpaced"] = r
    r["at_code"], r["at"], r["at_rows"] = restore_at(r, os.path.join(r["d"], "at.db"))
    clean(r["db"])


def gens(r):
    g = r["generations"]
    ended = [x for x in g if x[1] is not None]
    text = f"{len(g)}" + (f" ({len(ended)} ended; the first end: \"{ended[0][2][:160]}\")" if ended else " (open)")
    return text


def report(state, header):
    out = header[:]
    targets = ["| target (same run) | measured | limit | |", "|---|---|---|---|"]
    wo, w, n, r, u = (state.get(k) for k in ALL_PHASES)
    follows = [(k, state[k]) for k in ("with", "nas", "restore", "unpaced") if k in state]
    what = {"with": f"{RATE:.0f} tx/s, nas: 1s + cloud: 10s", "nas": f"{RATE:.0f} tx/s, nas: 1s alone",
            "restore": f"{FAST_RATE:.0f} tx/s, nas: 1s", "unpaced": "unpaced, nas: 1s"}
    out += ["Phases (each on a fresh copy of the sample database): **without** the writer alone at "
            f"{RATE:.0f} tx/s for {SECONDS:.0f} s; **with** the same writer and one `bosbackup archive` following one archive "
            "entry with two targets, `nas: 1s` (a folder) and `cloud: 10s` (moto_server on 127.0.0.1, AES-GCM encrypted); "
            f"**nas** the same with `nas: 1s` alone; **restore** {COMMITS} commits at {FAST_RATE:.0f} tx/s with `nas: 1s`, then "
            f"the restores; **unpaced** the writer as fast as it can for {UNPACED_SECONDS:.0f} s with `nas: 1s`.", "",
            "Lag of a commit = shipped_at of the first segment (of that target) whose last_seen ≥ the time COMMIT returned, "
            "minus that time: an upper bound. The -wal file's size is sampled every 50 ms; peak RSS is the archiver's VmHWM "
            "just before SIGTERM, after the archive was complete; its split is the highest RssAnon (memory the archiver allocated) "
            "and RssFile (pages of files it maps: the static binary's code and data) seen every 0.5 s.", ""]
    if follows:
        out += ["| phase | target | segments (shipped while writing) | commits in segments / written | stored | lag p50 | lag p99 | lag max | commits no segment covers |",
                "|---|---|---|---|---|---|---|---|---|"]
        for k, x in follows:
            for t in x["intervals"]:
                y = x[t]
                out.append(f"| {k} ({what[k]}) | {t} ({x['intervals'][t]}) | {y['segments']} ({y['during']}) | {y['archived']} / {x['commits']} | "
                           f"{y['bytes'] / 1e6:.1f} MB | {pct(y['lag'], 50):.2f} s | {pct(y['lag'], 99):.2f} s | "
                           f"{max(y['lag'] or [float('nan')]):.2f} s | {y['uncovered']} |")
        out.append("")
    out += ["| writer | commits | rate | commit p50 | commit p99 | commit max | max -wal |", "|---|---|---|---|---|---|---|"]
    for k in ALL_PHASES:
        x = state.get(k)
        if x:
            out.append(f"| {k} | {x['commits']} | {x['commits'] / x['span']:.0f} tx/s | {ms(pct(x['latency'], 50))} | {ms(pct(x['latency'], 99))} | "
                       f"{ms(max(x['latency']))} | {x['wal_max'] / 2**20:.2f} MiB |")
    out.append("")
    if follows:
        out += ["| archiver | base snapshot (start → generation) | complete after the last commit | peak RSS (of it: allocated / mapped files, sampled peaks) | CPU | generations | exit on SIGTERM | failures logged |",
                "|---|---|---|---|---|---|---|---|"]
        for k, x in follows:
            out.append(f"| {k} | {x['base_seconds']:.1f} s | " + (f"{x['catchup']:.1f} s" if x["catchup"] is not None else "**not within the wait**") +
                       f" | {x['hwm_mb']:.1f} MB ({x['anon_mb']:.1f} / {x['file_mb']:.1f} MB) | {x['cpu']:.1f} s in {x['alive']:.0f} s ({x['cpu'] / x['alive'] * 100:.0f}% of a core) | {gens(x)} | {x['exit']} | "
                       f"{len(x['failures'])}" + (f": `{x['failures'][0][:200]}`" if x["failures"] else "") + " |")
        out.append("")
    if r and "at" in r and not r["at_ok"]:
        out += [f"## restore --at after {r['commits']} commits", "",
                f"The archive was " + ("complete" if r["covered"] else f"**not complete up to {iso(r['until'])} within 120 s**") +
                f" after the writer's last commit; `restore --at {iso(r['until'])}` then: exit {r['at_code']}, " +
                (f"{r['at_rows'][0]} ledger rows up to order {r['at_rows'][1]} of {r['last_k']} written" if r["at_code"] == 0 else
                 f"`{' '.join(r['at_rows'])[:300]}`") + f". The full restore of the newest base: {r['full'][0]:.2f} s.", ""]
    if r and "at" in r and r["at_ok"]:
        rolled = r["at_commits"] or 1
        per_commit_bytes = r["at_bytes"] / rolled
        per_commit_restore = max(0.0, r["at"][0] - r["full"][0]) / rolled
        day_at = r["full"][0] + per_commit_restore * DAY
        out += [f"## restore --at after {r['commits']} commits", "",
                f"`restore --snapshot <base> --into` (the generation's base snapshot, a full restore) next to "
                f"`restore --at {iso(r['until'])} --into` (the same base, then every archived commit). Neither snapshot was "
                f"verified before (both run quick_check). Restored ledger: full {r['full_rows'][0]} rows; --at {r['at_rows'][0]} "
                f"rows up to order {r['at_rows'][1]} (the writer's last), every running total right.", "",
                "| restore | wall | CPU | peak RSS |", "|---|---|---|---|",
                f"| `restore --snapshot` (base, full) | {r['full'][0]:.2f} s | {r['full'][1]:.2f} s | {r['full'][2]:.1f} MB |",
                f"| `restore --at` (base + {r['at_commits']} commits) | {r['at'][0]:.2f} s ({r['at'][0] / r['full'][0]:.2f}×) | "
                f"{r['at'][1]:.2f} s | {r['at'][2]:.1f} MB |", "",
                f"Stored: the base snapshot {r['base_stored'] / 1e6:.1f} MB; the generation restored from: {r['at_commits']} "
                f"commits in segments, {r['at_bytes'] / 1e6:.1f} MB ({per_commit_bytes / 1e3:.2f} kB per commit); all "
                f"generations: {r['nas']['segments']} segments, {r['nas']['bytes'] / 1e6:.1f} MB." +
                (f" **{len(r['generations'])} generations**: the newest began after order {r['last_k'] - r['at_commits']}, so "
                 f"`restore --at` rolled forward {r['at_commits']} of the {r['commits']} commits." if len(r["generations"]) > 1 else ""), "",
                f"**Extrapolated** linearly to issue #15's day ({DAY} commits, 50 tx/s for 8 h), from the per-commit cost "
                f"measured here: {per_commit_bytes * DAY / 1e9:.2f} GB of segments, and `restore --at` ≈ {r['full'][0]:.1f} s + "
                f"{per_commit_restore * 1e6:.1f} µs × {DAY} = {day_at:.0f} s ({day_at / r['full'][0]:.1f}× the full restore). "
                f"Measured: {r['commits']} commits only; the day is not measured.", ""]
    if u and "at" in u:
        out += ["## unpaced", "",
                f"The writer as fast as it can ({u['commits']} commits, {u['commits'] / u['span']:.0f} tx/s) for {UNPACED_SECONDS:.0f} s; "
                f"{gens(u)} generation(s); `restore --at {iso(u['until'])}` then: exit {u['at_code']}, " +
                (f"{u['at_rows'][0]} ledger rows up to order {u['at_rows'][1]} of {u['last_k']} written" if u["at_code"] == 0 else
                 f"`{' '.join(u['at_rows'])[:300]}`") + ".", ""]
    if w:
        targets.append(line("lag p99, nas: 1s, beside cloud: 10s (s)", pct(w["nas"]["lag"], 99), 1.0))
    if n:
        targets.append(line("lag p99, nas: 1s alone (s)", pct(n["nas"]["lag"], 99), 1.0))
    if w:
        targets.append(line("lag p99, cloud: 10s on moto (s)", pct(w["cloud"]["lag"], 99), 15.0))
    for k, x in (("with", w), ("nas", n)):
        if x and wo:
            targets.append(line(f"writer commit p99 {k} / without the archiver", pct(x["latency"], 99) / pct(wo["latency"], 99), 1.5))
            targets.append(line(f"writer commit p50 {k} / without the archiver", pct(x["latency"], 50) / pct(wo["latency"], 50), 1.5))
    for k, x in follows:
        # The bound is at its writer's 200 tx/s; faster phases show where the bound ends.
        beyond = k in ("restore", "unpaced")
        targets.append(line(f"max -wal, {k} ({what[k]}) (MiB)", x["wal_max"] / 2**20, 2 * CHECKPOINT_AT / 2**20,
                            over=f"over, at a rate past the target's {RATE:.0f} tx/s" if beyond else "NOT met"))
    for k, x in follows:
        targets.append(line(f"archiver peak RSS, {k} ({what[k]}) (MB)", x["hwm_mb"], 64, 1))
    if r and "at" in r and not r["at_ok"]:
        targets.append(f"| restore --at / full restore | not measured: restore --at {iso(r['until'])} did not restore every commit | 2.0 | NOT met |")
    if r and "at" in r and r["at_ok"]:
        targets.append(line(f"restore --at / full restore, {r['at_commits']} commits rolled forward (measured)", r["at"][0] / r["full"][0], 2.0))
        # An estimate is no verdict: the day itself is measured by bench/timeline_bench.py.
        targets.append(f"| restore --at / full restore, {DAY} commits (extrapolated) | {day_at / r['full'][0]:.2f} | 2.0 | "
                       f"an estimate ({'under' if day_at / r['full'][0] <= 2.0 else 'over'}); the day measured: bench/TIMELINE-RESULTS.md |")
    return out + targets + [""]


def sample_database():
    """The sample BOS database of BENCH_ORDERS orders, built once into the work folder."""
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, ".gitignore"), "w") as f:
        f.write("*\n")
    live = os.path.join(WORK, f"live-{ORDERS}.db")
    if not os.path.exists(live):
        print(f"building the sample BOS database ({ORDERS} orders)…", flush=True)
        sh(f"'{BIN}' sample create '{live}.tmp' --orders {ORDERS} --seed 42")
        os.rename(live + ".tmp", live)
    if os.path.exists(live + "-wal") and os.path.getsize(live + "-wal"):
        fail(f"{live}-wal is not empty; delete {live} and run again")
    return live


def about_run(live, script, variables):
    """The command, machine, binary and sample lines of a results file."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    gb = os.path.getsize(live) / 1e9
    build = subprocess.run(["git", "-C", os.path.dirname(os.path.dirname(os.path.dirname(BIN))), "describe", "--always", "--dirty"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    env = " ".join(f"{k}={os.environ[k]}" for k in ("BENCH_BIN", "BENCH_ORDERS") + tuple(variables) if k in os.environ)
    return [f"Command: `{env + ' ' if env else ''}python3 bench/{script}`.",
            f"Machine: {CORES} cores ({cpu}), {int(mem) // 1024} MB RAM, {platform.system()} {platform.release()}; "
            f"the writer's SQLite {sqlite3.sqlite_version}; everything (writer, archiver, moto_server, this script) on the same cores.",
            f"Binary: {BIN}" + (f" (its checkout is at {build})" if build else "") + ".",
            f"Sample BOS database: {ORDERS} orders, " + (f"{gb:.2f} GB." if gb >= 1 else f"{gb * 1000:.1f} MB.")]


def main():
    unknown = [p for p in PHASES if p not in ALL_PHASES]
    if unknown or not PHASES:
        fail(f"ARCHIVE_BENCH_PHASES: unknown {', '.join(unknown) or '(none given)'} (phases: {', '.join(ALL_PHASES)})")
    if not os.access(BIN, os.X_OK):
        fail(f"{BIN} is not an executable (make build, or set BENCH_BIN)")
    live = sample_database()
    header = ["# bosbackup archive benchmark (issue #15)", ""] + about_run(live, "archive_bench.py", (
        "ARCHIVE_BENCH_SECONDS", "ARCHIVE_BENCH_RATE", "ARCHIVE_BENCH_COMMITS", "ARCHIVE_BENCH_FAST_RATE",
        "ARCHIVE_BENCH_UNPACED_SECONDS", "ARCHIVE_BENCH_PHASES")) + [
              "Each commit: one order with two items, two inventory movements, two stock updates, a payment, and "
              "order k with the running total in a `ledger` table (Python sqlite3, synchronous FULL, auto-checkpoint 1000 pages).", ""]
    state = {}
    funcs = {"without": phase_without, "with": phase_with, "nas": phase_nas, "restore": phase_restore, "unpaced": phase_unpaced}
    for name in ALL_PHASES:
        if name in PHASES:
            funcs[name](live, state)
            open(RESULTS, "w").write("\n".join(report(state, header)))
    print("\n".join(report(state, header)))


if __name__ == "__main__":
    main()
