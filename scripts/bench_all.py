"""`make bench`: every speed and memory target of issue #19 in one table.

Runs, one after another and each in its own Python process (as a user's `selloff run`
would be), the benchmarks that measure the real `refresh` job:

1. `scripts/bench.py` at the default size (5,000 securities x 5 years): the full build,
   kept on disk for step 2;
2. the floor on that build file: the one computation every figure rests on, bare in
   DuckDB (no Dagster, no dbt): market cap as an as-of join of share counts onto prices,
   and each security's daily return,
       mcap_{i,t} = close_{i,t} * sum_c shares_{i,c,s(t)},  s(t) = max{s <= t}
       r_{i,t}    = adj_close_{i,t} / adj_close_{i,t-1} - 1;
   the ratio full build / floor says what the orchestration, the checks and the other
   tables cost over it;
3. `scripts/bench_refresh.py` at the default size: a full build and the one-day, one-market
   refresh a market schedule launches, on the same warehouse;
4. `scripts/bench.py` at the large size (18,000 x 10).

Each writes its own JSON under warehouse/bench/; this script reads them and prints one
table with the targets. Figures are wall seconds unless marked; run it on a quiet machine
(the table prints the load beside each run).

    .venv/bin/python scripts/bench_all.py                  # make bench
    .venv/bin/python scripts/bench_all.py --small 200x2 --large 400x3   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "warehouse" / "bench"

# Issue #19's targets.
FULL_S = 60.0            # full build at 5,000 x 5, quiet 2-core machine
FULL_GB = 2.5            # its peak memory, all processes
FLOOR_RATIO = 40.0       # full build / the bare floor
REFRESH_SHARE = 0.10     # one-day refresh / full build
LARGE_S = 600.0          # 18,000 x 10
LARGE_GB = 6.0

FLOOR_SQL = """
CREATE OR REPLACE TEMP TABLE floor_result AS
WITH shares AS (
    SELECT security_id, as_of_date, sum(shares) AS shares
    FROM raw.shares_outstanding
    WHERE shares IS NOT NULL
    GROUP BY ALL
)
SELECT
    p.security_id,
    p.trade_date,
    p.close * s.shares AS market_cap,
    p.adj_close / lag(p.adj_close) OVER (PARTITION BY p.security_id ORDER BY p.trade_date) - 1
        AS daily_return
FROM raw.prices_daily AS p
ASOF LEFT JOIN shares AS s
    ON p.security_id = s.security_id AND p.trade_date >= s.as_of_date
"""


@dataclass(frozen=True)
class Size:
    securities: int
    years: int

    @classmethod
    def parse(cls, text: str) -> Size:
        try:
            n, y = text.lower().split("x")
            size = cls(int(n), int(y))
        except ValueError:
            raise SystemExit(f"bench_all: size {text!r} is not NxY (e.g. 5000x5)") from None
        if size.securities < 1 or size.years < 1:
            raise SystemExit(f"bench_all: size {text!r} must be positive")
        return size

    def __str__(self) -> str:
        return f"{self.securities:,} x {self.years}"


def _run(cmd: list[str], log: Path) -> int:
    print(f"$ {' '.join(cmd)}   (output: {log.relative_to(ROOT)})", flush=True)
    with log.open("w") as fh:
        return subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode


def floor_seconds(build_file: Path, repeats: int = 3) -> dict[str, Any]:
    """The bare floor on a copy of the raw tables (best of `repeats`, as DuckDB warms)."""
    import duckdb

    times = []
    with duckdb.connect(str(build_file), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM raw.prices_daily").fetchone()[0]
        for _ in range(repeats):
            t0 = time.perf_counter()
            con.execute(FLOOR_SQL)
            times.append(time.perf_counter() - t0)
        out = con.execute("SELECT count(*) FROM floor_result").fetchone()[0]
    return {"seconds": round(min(times), 3), "all_s": [round(t, 3) for t in times],
            "price_rows": rows, "result_rows": out}


def _bench(size: Size, out: Path, keep: bool) -> dict[str, Any] | None:
    cmd = [sys.executable, "scripts/bench.py", "--securities", str(size.securities),
           "--years", str(size.years), "--out", str(out)] + (["--keep"] if keep else [])
    rc = _run(cmd, out.with_suffix(".log"))
    if not out.exists():
        print(f"  bench.py exited {rc} and wrote no figures")
        return None
    report = json.loads(out.read_text())
    report["exit_code"] = rc
    return report


def _whole(report: dict[str, Any]) -> tuple[float, float, float]:
    """(wall s, cpu s, peak GB as 10^9 bytes) of a bench.py report."""
    whole = report["phases"]["whole_run"]
    peak_mib = report["targets"]["peak_memory_mib"]["value"]
    return whole["seconds"], whole["cpu_seconds"], peak_mib * 2**20 / 1e9


def _status(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    if value <= limit:
        return "PASS"
    return f"MISSED by {value - limit:,.3g} ({value / limit - 1:.0%} over)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", default="5000x5", help="default size, NxY (5000x5)")
    ap.add_argument("--large", default="18000x10", help="large size, NxY (18000x10)")
    ap.add_argument("--skip-large", action="store_true", help="leave out the large size")
    args = ap.parse_args()
    small, large = Size.parse(args.small), Size.parse(args.large)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    began = time.time()

    full = _bench(small, OUT / f"all_full_{small.securities}x{small.years}.json", keep=True)
    floor = None
    if full and full.get("workdir"):
        workdir = Path(full["workdir"])
        build = next(workdir.rglob("build/selloff.duckdb"), None)
        if build is not None:
            floor = floor_seconds(build)
        shutil.rmtree(workdir, ignore_errors=True)

    refresh_json = OUT / f"refresh_{small.securities}x{small.years}.json"
    refresh_json.unlink(missing_ok=True)
    _run([sys.executable, "scripts/bench_refresh.py", "--securities", str(small.securities),
          "--years", str(small.years)], OUT / f"all_refresh_{small.securities}x{small.years}.log")
    refresh = json.loads(refresh_json.read_text()) if refresh_json.exists() else None

    big = None if args.skip_large else _bench(
        large, OUT / f"all_full_{large.securities}x{large.years}.json", keep=False)

    rows: list[tuple[str, str, str, str]] = []
    if full:
        wall, cpu, gb = _whole(full)
        rows += [(f"full build {small}, wall s", f"{wall:.1f}", f"<= {FULL_S:.0f}",
                  _status(wall, FULL_S)),
                 (f"full build {small}, CPU s", f"{cpu:.1f}", "", ""),
                 (f"full build {small}, peak memory GB", f"{gb:.2f}", f"<= {FULL_GB}",
                  _status(gb, FULL_GB))]
        if floor:
            ratio = wall / floor["seconds"]
            rows += [("floor: as-of market cap + returns, bare DuckDB, s",
                      f"{floor['seconds']:.2f}", "", f"{floor['price_rows']:,} price rows"),
                     ("full build / floor", f"{ratio:.0f}x", f"<= {FLOOR_RATIO:.0f}x",
                      _status(ratio, FLOOR_RATIO))]
    if refresh:
        f_wall, d_wall = refresh["full"]["wall_s"], refresh["one_day"]["wall_s"]
        share = d_wall / f_wall
        instance = refresh.get("instance", "ephemeral")
        rows += [(f"refresh bench: full build {small}, wall s", f"{f_wall:.1f}", "",
                  f"{instance} Dagster instance"),
                 (f"one-day one-market refresh ({refresh['day']}), wall s", f"{d_wall:.1f}",
                  "", ""),
                 ("one-day refresh / full build", f"{share:.1%}", f"<= {REFRESH_SHARE:.0%}",
                  _status(share, REFRESH_SHARE))]
    if big:
        wall, cpu, gb = _whole(big)
        rows += [(f"full build {large}, wall s", f"{wall:.1f}", f"<= {LARGE_S:.0f}",
                  _status(wall, LARGE_S)),
                 (f"full build {large}, CPU s", f"{cpu:.1f}", "", ""),
                 (f"full build {large}, peak memory GB", f"{gb:.2f}", f"<= {LARGE_GB}",
                  _status(gb, LARGE_GB))]
    # Issue 25: every script of the bench ends without nanobind's "leaked" lines or a
    # traceback (this was a test in `make test`; the bench's own logs are checked here).
    dirty = [f"{log.name}: {bad}" for log in sorted(OUT.glob("all_*.log"))
             if log.stat().st_mtime >= began
             for bad in ("leaked", "nanobind", "Traceback") if bad in log.read_text(errors="replace")]
    rows.append(("bench scripts end clean (no leaked lines, no traceback)",
                 "yes" if not dirty else "no", "yes", "PASS" if not dirty else "FAILED: " + "; ".join(dirty)))
    loads = [f"{name} {r['machine']['other_procs_cores_mean']:.2f}"
             for name, r in ((str(small), full), (str(large), big))
             if r and "other_procs_cores_mean" in r.get("machine", {})]

    width = max((len(r[0]) for r in rows), default=10)
    print(f"\nselloff make bench, started {started}, {os.cpu_count()} CPUs")
    print(f"{'figure':<{width}}  {'value':>9}  {'target':>8}  status")
    for name, value, target, status in rows:
        print(f"{name:<{width}}  {value:>9}  {target:>8}  {status}")
    if loads:
        print("cores used by other processes during the full builds: " + ", ".join(loads))
    summary = {"started": started, "full": full and full["targets"], "floor": floor,
               "refresh": refresh, "large": big and big["targets"],
               "rows": [dict(zip(("figure", "value", "target", "status"), r, strict=True)) for r in rows]}
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"figures: {(OUT / 'summary.json').relative_to(ROOT)} and the JSON/log files beside it")
    ok = full and refresh and (big or args.skip_large) and not dirty
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
