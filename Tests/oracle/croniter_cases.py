#!/usr/bin/env python3
"""Outside oracle for bosbackup's cron engine (CronExpression.swift).

Generates random five-field cron expressions in the syntax bosbackup accepts
(numbers, names, ranges, steps, lists, 7 for Sunday, macros, both day fields
restricted), pairs each with random start times (years 2000-2035) in UTC and in
Asia/Shanghai, and asks croniter (PyPI) for the next 5 fire times and the 5
latest fire times at or before the start. Prints one JSON document on stdout.

    croniter_cases.py --seed 20261127 --count 2000

Everything that croniter answers is printed: expressions are dropped only when
croniter rejects them or they never fire, and those are listed under
"excluded" so the caller can check that bosbackup rejects them too.

Where croniter's dialect differs from Vixie cron (the semantics bosbackup
implements) the expression is handed to croniter in an equivalent spelling,
and the case records both ("expr" is ours, "croniter_expr" what croniter got):

1. Day-of-month / day-of-week: Vixie cron ORs the two day fields only when
   neither field *starts with* "*"; "*/2" and "*,5" count as unrestricted, so
   "0 0 */2 * mon" means odd days that are Mondays. croniter by default ORs
   whenever both expanded sets are partial ("0 0 */2 * mon" = odd days or
   Mondays). croniter's own option `implement_cron_bug=True` switches it to
   Vixie cron's rule, so it is always passed (an option, not a respelling).
2. croniter widens a range written with equal ends ("5-5", "jan-jan", "7-7",
   "3-3/2") to the whole field (it reads them as full wrap-around cycles);
   in Vixie cron "a-a" is just a. Such items are handed to croniter as "a".
3. A "*" item that is not first in a list: croniter treats a day field that
   contains a bare "*" item anywhere ("16,*") as unrestricted, and collapses
   a day field whose set is full to "*" when the *other* day field contains
   "*" anywhere ("20,*/2"); Vixie cron only looks at the first character.
   Such items are handed to croniter as the explicit range ("*" -> "1-31" in
   day-of-month, "*/3" -> "0-6/3" in day-of-week), which is the same set.

--adjust picks the adjustments (default "days,equal,star"; --raw = none), so
each difference can be reproduced on its own.
Exit status: 0 on success, 3 if croniter (or a time zone database) is missing.
"""

import argparse
import json
import random
import sys
from datetime import datetime, timezone

try:
    from croniter import croniter, CroniterBadCronError, CroniterBadDateError
except ImportError as exc:  # the Swift test turns this into a failure
    print(f"croniter_cases.py: croniter is not installed ({exc}); run: pip install croniter",
          file=sys.stderr)
    sys.exit(3)


def zone(name):
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(name)
    except Exception:
        from dateutil import tz as dtz
        z = dtz.gettz(name)
        if z is None:
            print(f"croniter_cases.py: no time zone database entry for {name}", file=sys.stderr)
            sys.exit(3)
        return z


ZONES = ["UTC", "Asia/Shanghai"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DOWS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]


class Field:
    def __init__(self, name, low, high, cycle_end, names, p_star):
        self.name, self.low, self.high, self.cycle_end = name, low, high, cycle_end
        self.names, self.p_star = names, p_star


FIELDS = [
    Field("minute", 0, 59, 59, None, 0.12),
    Field("hour", 0, 23, 23, None, 0.35),
    Field("day-of-month", 1, 31, 31, None, 0.45),
    Field("month", 1, 12, 12, MONTHS, 0.55),
    Field("day-of-week", 0, 7, 6, DOWS, 0.45),
]
DAY_FIELDS = ("day-of-month", "day-of-week")
STEPS = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30]


def rand_case(rng, word):
    r = rng.random()
    if r < 0.6:
        return word
    if r < 0.8:
        return word.upper()
    return word.capitalize()


def gen_value(rng, f, v=None):
    """A value of field f as text: a number (sometimes zero-padded) or a name."""
    if v is None:
        v = rng.randint(f.low, f.high)
    if f.names and v - f.low < len(f.names) and rng.random() < 0.4:
        return rand_case(rng, f.names[v - f.low]), v
    if rng.random() < 0.05:
        return f"{v:02d}", v
    return str(v), v


def gen_step(rng, f):
    if rng.random() < 0.8:
        choices = [s for s in STEPS if s <= f.high]
        return rng.choice(choices)
    return rng.randint(1, f.high)


def gen_item(rng, f):
    r = rng.random()
    if r < 0.36:
        return gen_value(rng, f)[0]
    if r < 0.56:
        a, b = sorted([rng.randint(f.low, f.high), rng.randint(f.low, f.high)])
        return gen_value(rng, f, a)[0] + "-" + gen_value(rng, f, b)[0]
    if r < 0.70:
        a, b = sorted([rng.randint(f.low, f.high), rng.randint(f.low, f.high)])
        return gen_value(rng, f, a)[0] + "-" + gen_value(rng, f, b)[0] + f"/{gen_step(rng, f)}"
    if r < 0.84:
        return f"*/{gen_step(rng, f)}"
    if r < 0.96:
        return gen_value(rng, f)[0] + f"/{gen_step(rng, f)}"
    return "*"


def gen_field(rng, f):
    if rng.random() < f.p_star:
        return "*"
    k = rng.choices([1, 2, 3], weights=[70, 20, 10])[0]
    return ",".join(gen_item(rng, f) for _ in range(k))


def gen_short_month(rng):
    """Days 29-31 in short months: Feb 29 (leap years only) and never-firing ones."""
    days = ",".join(str(d) for d in sorted(rng.sample([29, 30, 31], rng.randint(1, 2))))
    months = rng.choice(["2", "feb", "Feb", "4", "6", "9", "11", "2,4", "apr,jun", "sep-nov/2", "2-3"])
    dow = rng.choice(["*", "*", "*/2", "*/7", "mon", "*,1"])
    return f"{rng.randint(0, 59)} {rng.randint(0, 23)} {days} {months} {dow}"


def gen_expression(rng):
    r = rng.random()
    if r < 0.04:
        return rand_case(rng, rng.choice(MACROS))
    if r < 0.07:
        return gen_short_month(rng)
    sep = " " if rng.random() < 0.95 else rng.choice(["  ", "\t", " \t "])
    return sep.join(gen_field(rng, f) for f in FIELDS)


def token_value(f, tok):
    if tok.isdigit():
        return int(tok)
    return f.low + f.names.index(tok.lower())


def to_croniter(expr, adjust=("equal", "star")):
    """Spell a bosbackup expression so that croniter reads it with Vixie semantics."""
    parts = expr.split()
    if len(parts) != 5:
        return expr
    out = []
    for f, text in zip(FIELDS, parts):
        items = []
        for i, item in enumerate(text.split(",")):
            base, slash, step = item.partition("/")
            if "-" in base:
                a, b = base.split("-")
                if "equal" in adjust and token_value(f, a) == token_value(f, b):   # (2) a-a -> a
                    item = a
            elif "star" in adjust and base == "*" and i > 0 and f.name in DAY_FIELDS:  # (3)
                item = f"{f.low}-{f.cycle_end}" + (slash + step if slash else "")
            items.append(item)
        out.append(",".join(items))
    return " ".join(out)


def features(expr, cexpr):
    """Which syntax an expression exercises (reported as coverage stats)."""
    out = set()
    parts = expr.split()
    if len(parts) == 1:
        return {"macro"}
    for f, text in zip(FIELDS, parts):
        if "," in text:
            out.add("list")
        if "/" in text:
            out.add("step")
        if "-" in text:
            out.add("range")
        if any(c.isalpha() for c in text):
            out.add("name")
        if f.name == "day-of-week" and any(
                tok == "7" for tok in text.replace("-", ",").replace("/", ",").split(",")):
            out.add("7 for Sunday")
    dom, dow = parts[2], parts[4]
    if not dom.startswith("*") and not dow.startswith("*"):
        out.add("day fields OR-ed")
    elif dom != "*" and dow != "*":
        out.add("day fields AND-ed (one starts with *)")
    if cexpr != expr:
        out.add("respelled for croniter")
    return out


def epoch(dt):
    return int(round(dt.timestamp()))


def ask_croniter(cexpr, tzname, start, vixie_days):
    tz = zone(tzname)
    start_dt = datetime.fromtimestamp(start, tz)
    it = croniter(cexpr, start_dt, ret_type=float, implement_cron_bug=vixie_days)
    nexts = [int(round(it.get_next())) for _ in range(5)]
    # croniter's get_prev is strictly-before (start - 1 microsecond, truncated to
    # the minute); from start + 1 s it is "at or before start" for whole seconds.
    it = croniter(cexpr, datetime.fromtimestamp(start + 1, tz), ret_type=float,
                  implement_cron_bug=vixie_days)
    prevs = [int(round(it.get_prev())) for _ in range(5)]
    return nexts, prevs


LOW = epoch(datetime(2000, 1, 1, tzinfo=timezone.utc))
HIGH = epoch(datetime(2036, 1, 1, tzinfo=timezone.utc)) - 1


def gen_start(rng, cexpr, tzname, vixie_days):
    t = rng.randint(LOW, HIGH)
    r = rng.random()
    if r < 0.25:
        t -= t % 60                       # on a minute boundary
    elif r < 0.40:
        # exactly on a fire time (tests "strictly after" / "at or before")
        it = croniter(cexpr, datetime.fromtimestamp(t, zone(tzname)), ret_type=float,
                      implement_cron_bug=vixie_days)
        t = int(round(it.get_next()))
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, required=True, help="number of expressions (each is run in every zone)")
    ap.add_argument("--adjust", default="days,equal,star",
                    help="comma list of dialect adjustments: days, equal, star (see module doc)")
    ap.add_argument("--raw", action="store_true", help="no adjustments (same as --adjust '')")
    args = ap.parse_args()
    adjust = set() if args.raw else {a for a in args.adjust.split(",") if a}
    unknown = adjust - {"days", "equal", "star"}
    if unknown:
        ap.error(f"unknown adjustment(s): {', '.join(sorted(unknown))}")

    try:
        from importlib.metadata import version
        croniter_version = version("croniter")
    except Exception:
        croniter_version = "unknown"

    rng = random.Random(args.seed)
    vixie_days = "days" in adjust
    cases, excluded, stats = [], [], {}
    kept = 0
    while kept < args.count:
        expr = gen_expression(rng)
        cexpr = to_croniter(expr, adjust)
        try:
            rows = []
            for tzname in ZONES:
                start = gen_start(rng, cexpr, tzname, vixie_days)
                nexts, prevs = ask_croniter(cexpr, tzname, start, vixie_days)
                rows.append({"expr": expr, "croniter_expr": cexpr, "tz": tzname,
                             "start": start, "next": nexts, "prev": prevs})
        except CroniterBadDateError as exc:
            excluded.append({"expr": expr, "reason": "never fires", "detail": str(exc)})
            continue
        except (CroniterBadCronError, ValueError) as exc:
            excluded.append({"expr": expr, "reason": "croniter rejects", "detail": str(exc)})
            continue
        cases.extend(rows)
        kept += 1
        for feat in features(expr, cexpr):
            stats[feat] = stats.get(feat, 0) + 1

    json.dump({
        "oracle": "croniter",
        "croniter_version": croniter_version,
        "python": sys.version.split()[0],
        "seed": args.seed,
        "count": args.count,
        "adjust": sorted(adjust),
        "zones": ZONES,
        "stats": dict(sorted(stats.items())),
        "cases": cases,
        "excluded": excluded,
    }, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
