"""Benchmark a one-day refresh against a full build (issue #10; part of `make bench`).

On the demo market written out as a snapshot (so that both runs read the same files and
neither pays the demo's generation), each run in a process of its own, in process as
`selloff run` does (a scheduled refresh is a fresh process: it imports dbt and reads its
parse state anew, which a refresh run in the full build's process would not pay):

1. a full build: the `refresh` job with no refresh window;
2. the refresh a market schedule launches (the `market_refresh` job: no filings, which
   have their own schedule): the window set to the newest US session, only US rows
   replaced in `raw`, the daily facts rebuilt from that day on.

Both runs use one persistent Dagster instance (a DAGSTER_HOME in the work folder, SQLite
on disk), as a deployment's scheduled runs share theirs: the refresh reads the full
build's check results (a test of models it leaves as built is carried over, not run
again), and every event is written to disk. `--instance ephemeral` gives each run a new
in-memory instance instead, as the rounds before the sixth measured.

For each it prints the whole run's wall seconds, the dbt step's seconds, and the seconds
dbt spent executing models and tests (from run_results.json: the work, without dbt's own
start-up and parsing). The target is a one-day refresh within 10 % of a full build.

    .venv/bin/python scripts/bench_refresh.py --securities 5000 --years 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DBT_TARGET = ROOT / "dbt_project" / "target"


def _step_seconds(instance: Any, run_id: str, step_key: str) -> float | None:
    import dagster as dg

    start = end = None
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key != step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            start = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS,
                                  dg.DagsterEventType.STEP_FAILURE):
            end = record.timestamp
    return end - start if start and end else None


def _dbt_work_seconds(run_id: str) -> dict[str, float] | None:
    """Seconds dbt spent in models and in tests, from this run's run_results.json."""
    folders = sorted(DBT_TARGET.glob(f"*{run_id[:7]}*"), key=lambda p: p.stat().st_mtime)
    if not folders:
        return None
    results = json.loads((folders[-1] / "run_results.json").read_text())["results"]
    out = {"models": 0.0, "tests": 0.0, "daily_facts": 0.0}
    for r in results:
        kind = r["unique_id"].split(".")[0]
        if kind == "model":
            out["models"] += r["execution_time"]
            if ".fct_" in r["unique_id"] and "_daily" in r["unique_id"]:
                out["daily_facts"] += r["execution_time"]
        elif kind in ("test", "unit_test"):
            out["tests"] += r["execution_time"]
    return out


def _run(snapshot: Path, warehouse: Path, window: tuple[dt.date, dt.date] | None,
         markets: tuple[str, ...], job_name: str | None = None,
         dagster_home: Path | None = None) -> dict[str, Any]:
    import dagster as dg

    from orchestration.definitions import build_definitions
    from orchestration.schedules import refresh_window_config
    from selloff.settings import settings_from_env

    settings = settings_from_env({"SELLOFF_SOURCE": "snapshot",
                                  "SELLOFF_SNAPSHOT_DIR": str(snapshot),
                                  "SELLOFF_WAREHOUSE": str(warehouse)})
    # The market schedules' job for a windowed run, as they launch it; a full build is
    # the refresh job ("Materialize all", `selloff run`).
    job = build_definitions(settings).resolve_job_def(
        job_name or ("market_refresh" if window else "refresh"))
    run_config = refresh_window_config(*window, markets) if window else {}
    # Disposed at the end: left to the interpreter's exit with duckdb_engine loaded, an
    # ephemeral instance ends the process with nanobind's "leaked" lines (issue 25).
    # `dagster_home`: a persistent instance, shared by the full build and the refresh as
    # the schedules' runs share the deployment's (its run history is what a refresh
    # reads to carry over test results, orchestration/dbt.py carried_check_results).
    if dagster_home:
        dagster_home.mkdir(parents=True, exist_ok=True)
    with (dg.DagsterInstance.from_config(str(dagster_home)) if dagster_home
          else dg.DagsterInstance.ephemeral()) as instance:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        run_config=run_config)
        wall = time.perf_counter() - t0
        if not result.success:
            raise SystemExit(
                f"run failed: {[e.message for e in result.all_events if e.is_failure]}")
        run_id = result.run_id
        dbt_step_s = _step_seconds(instance, run_id, "selloff_dbt_models")
    return {"wall_s": wall, "dbt_step_s": dbt_step_s,
            "dbt_work_s": _dbt_work_seconds(run_id), "load_1m": load}


def _run_in_child(snapshot: Path, warehouse: Path, window: tuple[dt.date, dt.date] | None,
                  markets: tuple[str, ...], dagster_home: Path | None) -> dict[str, Any]:
    """`_run` in a fresh Python process (this script with --child), its figures as JSON."""
    import subprocess

    spec = {"snapshot": str(snapshot), "warehouse": str(warehouse), "markets": list(markets),
            "window": [d.isoformat() for d in window] if window else None,
            "dagster_home": str(dagster_home) if dagster_home else None}
    # stderr passes through (make bench's log is searched for leaked lines and tracebacks)
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                           json.dumps(spec)], stdout=subprocess.PIPE, text=True, check=False)
    *log, last = done.stdout.strip().splitlines() or [""]
    sys.stdout.write("\n".join(log) + "\n")
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode})")
    return json.loads(last)


def _child(spec_json: str) -> int:
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore")
    spec = json.loads(spec_json)
    window = tuple(dt.date.fromisoformat(d) for d in spec["window"]) if spec["window"] else None
    figures = _run(Path(spec["snapshot"]), Path(spec["warehouse"]), window,  # type: ignore[arg-type]
                   tuple(spec["markets"]), spec.get("job"),
                   Path(spec["dagster_home"]) if spec.get("dagster_home") else None)
    print(json.dumps(figures, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--securities", type=int, default=5000)
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the snapshot and warehouse")
    ap.add_argument("--instance", choices=("persistent", "ephemeral"), default="persistent",
                    help="one Dagster instance on disk for both runs, as a deployment's "
                    "(default), or a new in-memory one per run (the earlier rounds' figures)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore")
    import polars as pl

    from selloff.sources.demo import export_demo_snapshot

    work = Path(tempfile.mkdtemp(prefix="selloff-bench-refresh-", dir=args.workdir))
    t0 = time.perf_counter()
    snapshot = export_demo_snapshot(work / "snapshot", n_securities=args.securities,
                                    years=args.years)
    print(f"demo {args.securities} x {args.years} written as a snapshot in "
          f"{time.perf_counter() - t0:.1f}s: {snapshot}")
    prices = pl.scan_parquet(snapshot / "prices_daily.parquet")
    n_rows = prices.select(pl.len()).collect().item()
    day = (prices.filter(pl.col("security_id").str.starts_with("US:"))
           .select(pl.col("trade_date").max()).collect().item())
    warehouse = work / "warehouse" / "selloff.duckdb"

    home = work / "dagster_home" if args.instance == "persistent" else None
    full = _run_in_child(snapshot, warehouse, None, (), home)
    one_day = _run_in_child(snapshot, warehouse, (day, day), ("US",), home)

    def row(label: str, r: dict[str, Any]) -> str:
        work_s = r["dbt_work_s"] or {}
        return (f"{label:<26} {r['wall_s']:>8.1f} {r['dbt_step_s'] or float('nan'):>9.1f} "
                f"{work_s.get('models', float('nan')):>10.1f} "
                f"{work_s.get('daily_facts', float('nan')):>12.1f} "
                f"{work_s.get('tests', float('nan')):>9.1f} {r['load_1m']:>6.1f}")

    print(f"\n{n_rows:,} price rows; one-day refresh = US session {day}; "
          f"Dagster instance: {args.instance}")
    print(f"{'run':<26} {'wall s':>8} {'dbt step':>9} {'dbt models':>10} "
          f"{'daily facts':>12} {'dbt tests':>9} {'load':>6}")
    print(row("full build", full))
    print(row("one-day refresh (US)", one_day))
    for key, label in (("wall_s", "whole run"), ("dbt_step_s", "dbt step")):
        if full[key] and one_day[key]:
            print(f"one-day / full, {label}: {one_day[key] / full[key]:.1%} (target <= 10 %)")
    fw, ow = full["dbt_work_s"], one_day["dbt_work_s"]
    if fw and ow and fw["daily_facts"]:
        print(f"one-day / full, daily fact models: {ow['daily_facts'] / fw['daily_facts']:.1%}")
    out = ROOT / "warehouse" / "bench" / f"refresh_{args.securities}x{args.years}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"full": full, "one_day": one_day, "day": str(day),
                               "price_rows": n_rows, "instance": args.instance},
                              indent=2, default=str))
    print(f"figures: {out}")
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)  # 2.6 GB at 5,000 x 5
    return 0


if __name__ == "__main__":
    sys.exit(main())
