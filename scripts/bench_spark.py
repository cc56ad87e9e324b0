"""DuckDB vs Spark (local mode): the same dbt build on the same demo-market raw layer.

For each size, lands the demo market into a private DuckDB build file and writes it to a
Parquet lake (Spark's input), then runs `dbt build` (models, data tests, unit tests) on the
`duckdb` target and on the `spark` target, each in its own subprocess as Dagster runs it,
and prints wall seconds, the ratio, and where the time went (from dbt's run_results.json:
models vs tests; "start-up" is wall time before dbt's first node: process, parse and, for
Spark, the JVM and the session). Marts are compared with selloff/parity.py afterwards, so
a benchmark never times two different answers.

    .venv/bin/python scripts/bench_spark.py                          # 20 and 80 securities x 2 years
    .venv/bin/python scripts/bench_spark.py --securities 80 1000 --years 2
    .venv/bin/python scripts/bench_spark.py --json warehouse/bench/spark.json

Needs the `spark` extra (pyspark, dbt-spark[session]) and Java 17+.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from selloff import engines, parity, warehouse  # noqa: E402
from selloff.settings import settings_from_env  # noqa: E402


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


def bench_size(securities: int, years: int, work: Path) -> dict:
    root = work / f"{securities}x{years}"
    settings = settings_from_env({
        "SELLOFF_WAREHOUSE": str(root / "warehouse" / "selloff.duckdb"),
        "SELLOFF_LAKE_DIR": str(root / "lake"),
        "SELLOFF_SPARK_DIR": str(root / "spark"),
        "SELLOFF_SOURCE": "demo",
        "SELLOFF_DEMO_SECURITIES": str(securities),
        "SELLOFF_DEMO_YEARS": str(years),
    })
    started = time.perf_counter()
    rows = engines.land_raw(settings)
    landed = time.perf_counter() - started
    started = time.perf_counter()
    engines.write_raw_lake(settings)
    lake_seconds = time.perf_counter() - started
    result: dict = {"securities": securities, "years": years,
                    "price_rows": rows["prices_daily"], "land_seconds": round(landed, 1),
                    "lake_raw_seconds": round(lake_seconds, 1), "targets": {}}
    for target in ("duckdb", "spark"):
        run = engines.dbt_build(settings, target, root)
        if not run.ok:
            raise SystemExit(f"dbt build --target {target} failed:\n{run.output[-4000:]}")
        phases = _phases(root / f"target_{target}" / "run_results.json")
        phases["startup"] = max(0.0, run.seconds - phases["dbt_elapsed"])
        result["targets"][target] = {"wall_seconds": round(run.seconds, 1),
                                     **{k: round(v, 1) for k, v in phases.items()}}
    result["ratio_spark_over_duckdb"] = round(
        result["targets"]["spark"]["wall_seconds"] / result["targets"]["duckdb"]["wall_seconds"], 1)
    with warehouse.connect(settings.build_warehouse, read_only=True) as con:
        diffs = [parity.compare_tables(t, warehouse.read_table(con, "marts", t),
                                       engines.read_spark_table(settings, "marts", t), key)
                 for t, key in parity.MART_KEYS.items()]
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
    args = parser.parse_args()
    reason = engines.spark_unavailable_reason()
    if reason:
        raise SystemExit(f"cannot run Spark here: {reason}")

    results = []
    with tempfile.TemporaryDirectory(prefix="selloff_bench_spark_") as tmp:
        for n in args.securities:
            print(f"-- {n} securities x {args.years} years ({_load()})", flush=True)
            r = bench_size(n, args.years, Path(tmp))
            results.append(r)
            d, s = r["targets"]["duckdb"], r["targets"]["spark"]
            print(f"   {r['price_rows']:,} price rows; raw landed in {r['land_seconds']} s, "
                  f"lake written in {r['lake_raw_seconds']} s")
            for name, t in (("DuckDB", d), ("Spark ", s)):
                print(f"   {name} dbt build {t['wall_seconds']:7.1f} s  (start-up {t['startup']:.1f}, "
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
