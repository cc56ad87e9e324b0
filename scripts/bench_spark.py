"""DuckDB vs a Spark standalone cluster: the same dbt build on the same demo-market raw layer.

For each size, lands the demo market into a private DuckDB build file and writes it to a
Parquet lake (Spark's input), then runs `dbt build` (models, data tests, unit tests) on the
`duckdb` target and on the `spark` target, each in its own subprocess as Dagster runs it,
and prints wall seconds, the ratio, and where the time went (from dbt's run_results.json:
models vs tests; "start-up" is wall time before dbt's first node: process, parse and, for
Spark, the JVM and the session). Marts are compared with selloff/mart_comparison.py
afterwards, so a benchmark never times two different answers.

Spark runs on a standalone cluster this script starts (selloff.spark_cluster: a master and
two workers, each a JVM on 127.0.0.1, one 1-core executor per worker); `--local` uses
local[2] instead. Memory: the peak of the summed RSS, sampled every 0.2 s, of every
process the build uses: for DuckDB the dbt process; for Spark the dbt process with its
driver JVM, plus the master, the workers and their executors.

    .venv/bin/python scripts/bench_spark.py                          # 20 and 80 securities x 2 years
    .venv/bin/python scripts/bench_spark.py --securities 80 1000 --years 2
    .venv/bin/python scripts/bench_spark.py --json warehouse/bench/spark.json
    .venv/bin/python scripts/bench_spark.py --securities 5000 --years 5   # make bench

Needs the `spark` extra (pyspark, dbt-spark[session]) and Java 17+.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench import _descendants, _rss_kib  # noqa: E402
from selloff import dbt_runner, mart_comparison, warehouse  # noqa: E402
from selloff.marts import MART_KEYS  # noqa: E402
from selloff.settings import settings_from_env  # noqa: E402
from selloff.spark_cluster import StandaloneCluster  # noqa: E402


class PeakRss:
    """Peak of the summed RSS of this process's descendants and of `extra` processes (and
    their descendants), sampled in a thread."""

    def __init__(self, extra: list[int], interval: float = 0.2, exclude: list[int] = ()):
        self.extra, self.interval, self.peak_kib = extra, interval, 0
        self.exclude = list(exclude)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        roots = [*_descendants(os.getpid()), *self.extra]
        pids = set(roots)
        for pid in self.extra:
            pids.update(_descendants(pid))
        # The cluster's JVMs are this process's children too: left out of DuckDB's figure.
        for pid in self.exclude:
            pids.discard(pid)
            pids.difference_update(_descendants(pid))
        self.peak_kib = max(self.peak_kib, sum(_rss_kib(p) for p in pids))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return round(self.peak_kib / 1024, 0)


def _phases(run_results: Path) -> dict[str, float]:
    """Seconds per kind of node from dbt's run_results.json, and dbt's own elapsed time."""
    data = json.loads(run_results.read_text(encoding="utf-8"))
    out = {"models": 0.0, "data_tests": 0.0, "unit_tests": 0.0, "seeds": 0.0}
    for r in data["results"]:
        kind = r["unique_id"].split(".")[0]
        key = {"model": "models", "test": "data_tests", "unit_test": "unit_tests",
               "seed": "seeds"}.get(kind)
        if key:
            out[key] += float(r.get("execution_time") or 0.0)
    out["dbt_elapsed"] = float(data.get("elapsed_time") or 0.0)
    return out


def bench_size(securities: int, years: int, work: Path,
               cluster: StandaloneCluster | None) -> dict:
    root = work / f"{securities}x{years}"
    settings = settings_from_env({
        "SELLOFF_SPARK_MASTER": cluster.url if cluster else "local[2]",
        "SELLOFF_WAREHOUSE": str(root / "warehouse" / "selloff.duckdb"),
        "SELLOFF_LAKE_DIR": str(root / "lake"),
        "SELLOFF_SPARK_DIR": str(root / "spark"),
        "SELLOFF_SOURCE": "demo",
        "SELLOFF_DEMO_SECURITIES": str(securities),
        "SELLOFF_DEMO_YEARS": str(years),
    })
    started = time.perf_counter()
    rows = dbt_runner.land_raw(settings)
    settings = settings.store  # the rest reads only where the files are
    landed = time.perf_counter() - started
    started = time.perf_counter()
    dbt_runner.write_raw_lake(settings)
    lake_seconds = time.perf_counter() - started
    result: dict = {"securities": securities, "years": years,
                    "price_rows": rows["prices_daily"], "land_seconds": round(landed, 1),
                    "lake_raw_seconds": round(lake_seconds, 1), "targets": {}}
    for target in ("duckdb", "spark"):
        daemons = cluster.pids() if cluster and target == "spark" else []
        idle = cluster.pids() if cluster and target != "spark" else []
        with PeakRss(daemons, exclude=idle) as rss:
            run = dbt_runner.dbt_build(settings, target, root)
        if not run.ok:
            raise SystemExit(f"dbt build --target {target} failed:\n{run.output[-4000:]}")
        phases = _phases(root / f"target_{target}" / "run_results.json")
        phases["startup"] = max(0.0, run.seconds - phases["dbt_elapsed"])
        result["targets"][target] = {"wall_seconds": round(run.seconds, 1),
                                     "peak_rss_mib": rss.peak_mib,
                                     "master": settings.spark_master if target == "spark" else None,
                                     **{k: round(v, 1) for k, v in phases.items()}}
    result["ratio_spark_over_duckdb"] = round(
        result["targets"]["spark"]["wall_seconds"] / result["targets"]["duckdb"]["wall_seconds"], 1)
    with warehouse.connect(settings.build_warehouse, read_only=True) as con:
        diffs = [mart_comparison.compare_tables(t, warehouse.read_table(con, "marts", t),
                                                dbt_runner.read_spark_table(settings, "marts", t), key)
                 for t, key in MART_KEYS.items()]
    result["marts_equal"] = all(d.same for d in diffs)
    result["max_rel_diff"] = max(d.max_rel_diff for d in diffs)
    return result


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--securities", type=int, nargs="+", default=[20, 80])
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--local", action="store_true",
                        help="Spark in local[2] mode instead of a standalone cluster")
    args = parser.parse_args()
    reason = dbt_runner.spark_unavailable_reason()
    if reason:
        raise SystemExit(f"cannot run Spark here: {reason}")

    results = []
    with tempfile.TemporaryDirectory(prefix="selloff_bench_spark_") as tmp, \
            contextlib.ExitStack() as stack:
        cluster = None
        if not args.local:
            cluster = stack.enter_context(StandaloneCluster(Path(tmp) / "cluster", workers=2))
            print(f"Spark standalone cluster {cluster.url}: {cluster.alive_workers()} workers",
                  flush=True)
        for n in args.securities:
            print(f"-- {n} securities x {args.years} years ({_load()})", flush=True)
            r = bench_size(n, args.years, Path(tmp), cluster)
            results.append(r)
            d, s = r["targets"]["duckdb"], r["targets"]["spark"]
            print(f"   {r['price_rows']:,} price rows; raw landed in {r['land_seconds']} s, "
                  f"lake written in {r['lake_raw_seconds']} s")
            for name, t in (("DuckDB", d), ("Spark ", s)):
                print(f"   {name} dbt build {t['wall_seconds']:7.1f} s, peak RSS {t['peak_rss_mib']:,.0f} MiB"
                      f"  (start-up {t['startup']:.1f}, "
                      f"models {t['models']:.1f}, data tests {t['data_tests']:.1f}, "
                      f"unit tests {t['unit_tests']:.1f}; node seconds, 2 threads)")
            print(f"   Spark / DuckDB = {r['ratio_spark_over_duckdb']}x; marts equal: "
                  f"{r['marts_equal']} (max relative difference {r['max_rel_diff']:.1e})",
                  flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
