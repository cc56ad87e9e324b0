"""Benchmark the real `refresh` job on the demo market (issue #2 item 9; `make bench`).

Runs the Dagster `refresh` job in this process (as `selloff run` and the graph tests do)
into a temporary warehouse, on the demo market of the given size, and
reports, per phase of the pipeline:

- wall seconds, from the run's event log (STEP_START -> STEP_SUCCESS/FAILURE per step);
- CPU seconds of this process and its children (dbt runs as a subprocess);
- peak RSS of this process, of its children, and of both together, sampled from /proc
  every `--interval` seconds in a background thread and attributed to the step in
  progress; the whole run's peaks also come from getrusage(RUSAGE_SELF / RUSAGE_CHILDREN);
- the load on the machine while it ran (load average, and the CPU other processes used,
  from /proc/stat), since a 2-core machine shared with other work skews every figure.

Phases: extract = raw/* assets + their GX checks (GX reported separately, and the demo
market's generation, which the first extract step pays); dbt = the `selloff_dbt_*` steps
(one dbt invocation each); decomposition = selloff_windows + selloff_decomposition +
selloff_rollup + the reconciliation check; other analytics = the rest of `analytics/*`;
report, publish and any other step (lake/*) in the last row.

Targets (2-core machine): dbt build + decomposition within 60 s; peak memory under 4 GB.
The figures go to stdout and, as JSON, to warehouse/bench/last.json (and
warehouse/bench/<securities>x<years>.json). dbt's run_results.json gives the slowest nodes.

    .venv/bin/python scripts/bench.py                       # 5,000 securities x 5 years
    .venv/bin/python scripts/bench.py --securities 80 --years 2
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DBT_TARGET = ROOT / "dbt_project" / "target"
DEFAULT_OUT = ROOT / "warehouse" / "bench" / "last.json"

# Issue 12's targets per size: whole run (s) and peak RSS of all processes, GB read as
# 10^9 bytes (the stricter reading). Other sizes are measured against the smaller one.
TARGETS = {(5000, 5): (60.0, 2.5e9 / 2**20), (18000, 10): (600.0, 8e9 / 2**20)}

PHASES = ("extract", "gx", "dbt", "decomposition", "analytics_other", "report_publish")
PHASE_LABEL = {
    "extract": "extract: raw/* landed (excl. GX)",
    "gx": "extract: GX checks",
    "extract_total": "extract incl. GX",
    "dbt": "dbt build",
    "decomposition": "decomposition (windows+decomp+rollup+recon)",
    "analytics_other": "other analytics",
    "report_publish": "report, publish, other steps",
    "between_steps": "Dagster between steps",
    "whole_run": "whole run (execute_in_process)",
}
DECOMPOSITION_STEPS = ("selloff_windows", "selloff_decomposition", "selloff_rollup")

# Tables shown in the printed table (the JSON has every table).
MAIN_TABLES = (
    "raw.securities", "raw.prices_daily", "raw.shares_outstanding", "raw.fundamentals",
    "raw.fund_flows_daily", "raw.fx_rates_daily", "raw.index_levels_daily",
    "marts.dim_security", "marts.fct_market_cap_daily", "marts.fct_valuation_multiples_daily",
    "marts.fct_fundamentals_quarterly", "marts.fct_basket_valuation_daily",
    "marts.fct_fund_flows_daily", "marts.fct_index_levels_daily",
    "analytics.selloff_windows", "analytics.selloff_decomposition",
    "analytics.selloff_exclusions", "analytics.selloff_rollup",
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
MAXRSS_KIB = 1 if sys.platform.startswith("linux") else 1 / 1024  # macOS reports bytes


def phase_of(step_key: str) -> str:
    if step_key.startswith("raw__"):
        return "gx" if step_key.endswith("_gx_suite") else "extract"
    if step_key.startswith("selloff_dbt"):  # selloff_dbt_models (+ selloff_dbt_daily_facts)
        return "dbt"
    if any(name in step_key for name in DECOMPOSITION_STEPS):
        return "decomposition"
    if step_key.startswith("analytics__") or step_key.endswith("_asset"):
        return "analytics_other"
    return "report_publish"  # report/*, warehouse/published, and anything newer (lake/*)


# --- /proc sampling ------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _rss_kib(pid: int | str) -> int:
    text = _read(f"/proc/{pid}/status")
    if text:
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _cpu_ticks(pid: int | str, with_waited_children: bool) -> int:
    """utime + stime (+ cutime + cstime: children already waited for) of one process."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return 0
    rest = text[text.rfind(")") + 2:].split()
    ticks = int(rest[11]) + int(rest[12])
    if with_waited_children:
        ticks += int(rest[13]) + int(rest[14])
    return ticks


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            kids = _read(f"/proc/{parent}/task/{tid}/children")
            for kid in (kids or "").split():
                out.append(int(kid))
                todo.append(int(kid))
    return out


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    text = _read("/proc/stat") or ""
    for line in text.splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:]]
            user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
            busy = user + nice + system + irq + softirq + steal
            return busy, busy + idle + iowait
    return 0, 0


@dataclass
class Sample:
    t: float  # time.time(), comparable with the event log's timestamps
    self_kib: int
    children_kib: int
    our_ticks: int
    busy_ticks: int
    total_ticks: int
    load1: float


@dataclass
class Sampler:
    interval: float
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> Sample:
        pid = os.getpid()
        kids = _descendants(pid)
        busy, total = _machine_ticks()
        s = Sample(
            t=time.time(),
            self_kib=_rss_kib(pid),
            children_kib=sum(_rss_kib(k) for k in kids),
            our_ticks=_cpu_ticks(pid, True) + sum(_cpu_ticks(k, True) for k in kids),
            busy_ticks=busy, total_ticks=total, load1=os.getloadavg()[0],
        )
        self.samples.append(s)
        return s

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.sample()

    # Cumulative counters are interpolated at a step's start and end.
    def _at(self, t: float, attr: str) -> float:
        times = [s.t for s in self.samples]
        i = bisect.bisect_left(times, t)
        if i <= 0:
            return getattr(self.samples[0], attr)
        if i >= len(times):
            return getattr(self.samples[-1], attr)
        a, b = self.samples[i - 1], self.samples[i]
        w = (t - a.t) / (b.t - a.t) if b.t > a.t else 0.0
        return getattr(a, attr) + w * (getattr(b, attr) - getattr(a, attr))

    def delta(self, t0: float, t1: float, attr: str) -> float:
        return self._at(t1, attr) - self._at(t0, attr)

    def within(self, intervals: list[tuple[float, float]]) -> list[Sample]:
        return [s for s in self.samples if any(a <= s.t <= b for a, b in intervals)]


# --- the run -------------------------------------------------------------------------


def mem_total_gib() -> float | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return None


def step_intervals(instance: Any, run_id: str) -> tuple[dict[str, dict], tuple[float, float]]:
    """{step_key: {start, end, status}} and (run start, run end) from the event log."""
    steps: dict[str, dict] = {}
    run_start = run_end = None
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None:
            continue
        kind = ev.event_type_value
        if kind in ("PIPELINE_START", "RUN_START"):
            run_start = entry.timestamp
        elif kind in ("PIPELINE_SUCCESS", "PIPELINE_FAILURE", "RUN_SUCCESS", "RUN_FAILURE"):
            run_end = entry.timestamp
        elif kind == "STEP_START":
            steps.setdefault(entry.step_key, {})["start"] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            steps.setdefault(entry.step_key, {}).update(
                end=entry.timestamp, status="ok" if kind == "STEP_SUCCESS" else "FAILED")
    steps = {k: v for k, v in steps.items() if "start" in v and "end" in v}
    return steps, (run_start or 0.0, run_end or 0.0)


def failures(result: Any) -> list[str]:
    import dagster as dg

    out = []
    for ev in result.all_events:
        if ev.event_type == dg.DagsterEventType.STEP_FAILURE:
            err = ev.step_failure_data.error
            msg = (err.message if err else "").strip().splitlines()
            out.append(f"step {ev.step_key} failed: {' '.join(msg[:3])[:400]}")
    for ev in result.get_asset_check_evaluations():
        if not ev.passed:
            out.append(f"check {ev.asset_key.to_user_string()}:{ev.check_name} failed: "
                       f"{(ev.description or '')[:300]}")
    return out


def wait_for_children(timeout: float = 30.0) -> None:
    """A failed dbt step can leave its subprocess (and the file lock) behind for a while."""
    import gc

    gc.collect()
    deadline = time.time() + timeout
    while _descendants(os.getpid()) and time.time() < deadline:
        time.sleep(0.2)


def row_counts(path: Path) -> dict[str, int]:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        print(f"row counts skipped: {exc}", file=sys.stderr)
        return {}
    with con:
        names = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE schema_name IN ('raw', 'staging', 'marts', 'analytics') ORDER BY 1, 2"
        ).fetchall()
        out = {}
        for schema, table in names:
            out[f"{schema}.{table}"] = con.execute(
                f'SELECT count(*) FROM "{schema}"."{table}"').fetchall()[0][0]
    return out


def _ts(iso: str | None) -> float | None:
    if not iso:
        return None
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def dbt_results(run_id: str, top: int) -> dict[str, Any] | None:
    """Per-node timings from the run_results.json of this run's dbt invocation(s).

    dagster-dbt gives every invocation its own target folder, `<op>-<run id[:7]>-<uuid>`.
    Per invocation: dbt's own elapsed time, the summed node time, and the time inside dbt
    when no node was running (start-up, parse, and stalls while dbt waits on its stdout pipe).
    """
    folders = sorted(DBT_TARGET.glob(f"selloff_dbt*-{run_id[:7]}-*"))
    paths = [f / "run_results.json" for f in folders if (f / "run_results.json").exists()]
    if not paths:
        return None
    nodes, invocations = [], {}
    for path in paths:
        data = json.loads(path.read_text())
        meta = data.get("metadata") or {}
        spans = []
        for r in data.get("results", []):
            uid = r.get("unique_id", "")
            times = [(_ts(t.get("started_at")), _ts(t.get("completed_at")))
                     for t in r.get("timing") or []]
            times = [(a, b) for a, b in times if a and b]
            if times:
                spans.append((min(a for a, _ in times), max(b for _, b in times)))
            nodes.append({"unique_id": uid, "type": uid.split(".", 1)[0],
                          "status": r.get("status"), "invocation": path.parent.name,
                          "seconds": round(float(r.get("execution_time") or 0.0), 3),
                          "rows": (r.get("adapter_response") or {}).get("rows_affected")})
        op = path.parent.name.split("-")[0]
        busy = _union_seconds(spans)
        invocations[op] = {
            "folder": path.parent.name,
            "started": _ts(meta.get("invocation_started_at")),
            "finished": _ts(meta.get("generated_at")),
            "elapsed_seconds": round(float(data.get("elapsed_time") or 0.0), 2),
            "nodes": len(data.get("results", [])),
            "node_seconds_sum": round(sum(float(r.get("execution_time") or 0.0)
                                          for r in data.get("results", [])), 2),
            "first_node": min((a for a, _ in spans), default=None),
            "nodes_busy_seconds": round(busy, 2),
            "idle_between_nodes_seconds": round(
                (max(b for _, b in spans) - min(a for a, _ in spans)) - busy, 2) if spans else None,
        }
    by_type: dict[str, dict[str, float]] = {}
    for n in nodes:
        agg = by_type.setdefault(n["type"], {"count": 0, "seconds": 0.0})
        agg["count"] += 1
        agg["seconds"] = round(agg["seconds"] + n["seconds"], 3)
    slow = sorted(nodes, key=lambda n: -n["seconds"])
    return {
        "run_results": [str(p) for p in paths],
        "target_folders": [str(f) for f in folders],
        "elapsed_seconds": round(sum(i["elapsed_seconds"] for i in invocations.values()), 2),
        "invocations": invocations,
        "by_type": by_type,
        "top_models": [n for n in slow if n["type"] == "model"][:top],
        "top_nodes": slow[:top],
        "nodes": nodes,
    }


def event_counts(instance: Any, run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in instance.all_logs(run_id):
        kind = entry.dagster_event.event_type_value if entry.dagster_event else "LOG_MESSAGE"
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "duckdb", "polars",
                "great-expectations"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message=r".*is currently in beta")
    workdir = Path(tempfile.mkdtemp(prefix="selloff-bench-", dir=args.workdir))
    published = workdir / "warehouse" / "selloff.duckdb"
    # The run's settings, given to the definitions (nothing goes through os.environ).
    # Everything a run writes stays in the temporary folder (the lake defaults beside it).
    values = {"SELLOFF_SOURCE": "demo", "SELLOFF_WAREHOUSE": str(published),
              "SELLOFF_DEMO_SECURITIES": str(args.securities),
              "SELLOFF_DEMO_YEARS": str(args.years)}
    if args.seed is not None:
        values["SELLOFF_DEMO_SEED"] = str(args.seed)
    out_dir = Path(args.out).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "last_run.log"

    load_before = os.getloadavg()
    t_import = time.perf_counter()
    import dagster as dg

    import orchestration.definitions as definitions
    import selloff.sources.demo as demo
    from selloff.settings import settings_from_env

    settings = settings_from_env(values)
    # The one Definitions of the UI and `selloff run`: a full refresh (no refresh window).
    tags: dict[str, str] = {}
    defs = definitions.build_definitions(settings)
    mode = "full refresh (as `selloff run` and \"Materialize all\")"
    job = defs.resolve_job_def("refresh")
    import_s = time.perf_counter() - t_import

    # Time the demo market's generation (paid by the first extract step that needs a daily
    # dataset: it writes the on-disk spool) without changing it, in this process only.
    spool_init, gen_seconds = demo._Spool.__init__, []

    def timed_spool(self: Any, *a: Any, **kw: Any) -> None:
        t = time.perf_counter()
        spool_init(self, *a, **kw)
        gen_seconds.append(time.perf_counter() - t)

    demo._Spool.__init__ = timed_spool

    instance = dg.DagsterInstance.ephemeral()
    busy0, total0 = _machine_ticks()
    ru0_self = resource.getrusage(resource.RUSAGE_SELF)
    ru0_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"running refresh ({mode}) on the demo market {args.securities} x {args.years}y "
          f"into {workdir} (dbt/Dagster output: {log_path}) ...", flush=True)
    with Sampler(args.interval) as sampler, open(log_path, "w", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log):
        t0 = time.perf_counter()
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, tags=tags,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
        wall = time.perf_counter() - t0
    busy1, total1 = _machine_ticks()
    ru1_self = resource.getrusage(resource.RUSAGE_SELF)
    ru1_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = os.getloadavg()
    demo._Spool.__init__ = spool_init
    wait_for_children()

    steps, (run_t0, run_t1) = step_intervals(instance, result.run_id)

    def mib(kib: float) -> float:
        return round(kib / 1024, 1)

    def stats(intervals: list[tuple[float, float]]) -> dict[str, Any]:
        seconds = sum(b - a for a, b in intervals)
        cpu = sum(sampler.delta(a, b, "our_ticks") for a, b in intervals) / CLK_TCK
        busy = sum(sampler.delta(a, b, "busy_ticks") for a, b in intervals) / CLK_TCK
        inside = sampler.within(intervals)
        return {
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "other_procs_cores": round(max(busy - cpu, 0.0) / seconds, 2) if seconds else None,
            "samples": len(inside),
            "peak_rss_self_mib": mib(max((s.self_kib for s in inside), default=0)) or None,
            "peak_rss_children_mib": mib(max((s.children_kib for s in inside), default=0)) or None,
            "peak_rss_total_mib": mib(max((s.self_kib + s.children_kib for s in inside),
                                          default=0)) or None,
        }

    for key, st in steps.items():
        st.update(phase=phase_of(key), **stats([(st["start"], st["end"])]))
    phases: dict[str, dict[str, Any]] = {}
    for name in PHASES:
        spans = [(st["start"], st["end"]) for st in steps.values() if st["phase"] == name]
        phases[name] = {**stats(spans), "steps": sorted(k for k, st in steps.items()
                                                        if st["phase"] == name)}
    phases["extract_total"] = stats([(st["start"], st["end"]) for st in steps.values()
                                     if st["phase"] in ("extract", "gx")])
    # Time in the run but in no step: plan, resources, event handling between steps.
    edges = sorted((st["start"], st["end"]) for st in steps.values())
    gaps = [(a_end, b_start) for (_, a_end), (b_start, _) in zip(edges, edges[1:], strict=False)
            if b_start > a_end]
    if edges and run_t0:
        gaps = [(run_t0, edges[0][0]), *gaps, (edges[-1][1], run_t1)]
    phases["between_steps"] = stats(gaps)
    whole = stats([(sampler.samples[0].t, sampler.samples[-1].t)])
    whole["seconds"] = round(wall, 2)
    whole["cpu_seconds"] = round(
        (ru1_self.ru_utime + ru1_self.ru_stime - ru0_self.ru_utime - ru0_self.ru_stime)
        + (ru1_kids.ru_utime + ru1_kids.ru_stime - ru0_kids.ru_utime - ru0_kids.ru_stime), 2)
    phases["whole_run"] = whole

    peak_self = ru1_self.ru_maxrss * MAXRSS_KIB
    peak_kids = ru1_kids.ru_maxrss * MAXRSS_KIB
    sampled_total = max(s.self_kib + s.children_kib for s in sampler.samples)
    memory = {
        "ru_maxrss_self_mib": mib(peak_self),
        "ru_maxrss_children_mib": mib(peak_kids),
        "sampled_peak_total_mib": mib(sampled_total),
        "sample_interval_s": args.interval,
    }
    # The target is tested on the largest simultaneous footprint sampled; this process's
    # getrusage peak is a floor for it (samples can miss a short spike). RUSAGE_CHILDREN is
    # not: Linux keeps a child's high-water mark from before exec, so a child forked from a
    # 1 GB parent reports >= 1 GB however small the program it runs (dbt's own peak is the
    # sampled children figure).
    peak_for_target = max(sampled_total, peak_self) / 1024

    loads = [s.load1 for s in sampler.samples]
    machine = {
        "nproc": os.cpu_count(),
        "mem_total_gib": round(mem_total_gib() or 0, 1),
        "platform": platform.platform(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "load1_during_mean": round(sum(loads) / len(loads), 2),
        "load1_during_max": round(max(loads), 2),
        "machine_busy_cores_mean": round((busy1 - busy0) / CLK_TCK / wall, 2),
        "other_procs_cores_mean": round(
            max((busy1 - busy0) / CLK_TCK - whole["cpu_seconds"], 0.0) / wall, 2),
        "versions": versions(),
    }

    build = settings.build_warehouse
    counts_from = published if published.exists() else build
    counts = row_counts(counts_from) if counts_from.exists() else {}
    dbt = dbt_results(result.run_id, args.top)
    for op, inv in (dbt or {}).get("invocations", {}).items():
        st = steps.get(op)
        if st and inv["started"] and inv["finished"]:
            # Before dbt starts: Dagster/dagster-dbt set-up, the dbt process start-up.
            # After dbt finished: Dagster still handling dbt's events (materializations,
            # check results) that dbt had already written to its stdout pipe.
            inv["step_seconds"] = st["seconds"]
            inv["dbt_span_seconds"] = round(inv["finished"] - inv["started"], 2)
            inv["before_dbt_seconds"] = round(inv["started"] - st["start"], 2)
            inv["dbt_startup_seconds"] = (round(inv["first_node"] - inv["started"], 2)
                                          if inv["first_node"] else None)
            inv["after_dbt_seconds"] = round(st["end"] - inv["finished"], 2)
    events = event_counts(instance, result.run_id)
    # An ephemeral instance left to the interpreter's exit, with duckdb_engine loaded, ends
    # the process with nanobind's "leaked" lines (issue 25).
    instance.dispose()

    limit_s, limit_mib = TARGETS.get((args.securities, args.years), TARGETS[(5000, 5)])
    targets = {
        "whole_run_s": {
            "value": round(wall, 2), "limit": limit_s, "pass": wall <= limit_s,
            "over_by": round(max(wall - limit_s, 0.0), 2)},
        "peak_memory_mib": {
            "value": round(peak_for_target, 1), "limit": round(limit_mib, 1),
            "pass": peak_for_target <= limit_mib,
            "over_by": round(max(peak_for_target - limit_mib, 0.0), 1)},
    }
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "params": {"securities": args.securities, "years": args.years,
                   "seed": settings.source.demo_seed,
                   "dbt_target": settings.store.dbt_target, "mode": mode,
                   "tags": tags},
        "success": result.success,
        "failures": failures(result),
        "run_id": result.run_id,
        "machine": machine,
        "startup_import_s": round(import_s, 2),
        "demo_generation_s": round(sum(gen_seconds), 2) if gen_seconds else None,
        "phases": phases,
        "steps": dict(sorted(steps.items(), key=lambda kv: kv[1]["start"])),
        "memory": memory,
        "targets": targets,
        "dbt": dbt,
        "events": events,
        "row_counts": counts,
        "warehouse_bytes": {"build": build.stat().st_size if build.exists() else None,
                            "published": published.stat().st_size if published.exists() else None},
        "workdir": str(workdir) if args.keep else None,
    }
    if dbt and result.success:
        report["bare_duckdb"] = bare_marts(build, [Path(f) for f in dbt["target_folders"]],
                                           phases["dbt"]["seconds"])
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
        # This run's dbt target folder (compiled SQL, logs): the JSON keeps its timings.
        if dbt:
            for old in out_dir.glob("last_run_results.*.json"):
                old.unlink()
            kept = []
            for folder in map(Path, dbt["target_folders"]):
                if (folder / "run_results.json").exists():
                    kept.append(out_dir / f"last_run_results.{folder.name.split('-')[0]}.json")
                    shutil.copy(folder / "run_results.json", kept[-1])
                shutil.rmtree(folder, ignore_errors=True)
            dbt["run_results"] = [str(k) for k in kept]
    return report


# --- the same models bare in DuckDB -------------------------------------------------


def _model_order(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's models in dependency order (manifest depends_on)."""
    models = {uid: n for uid, n in manifest["nodes"].items()
              if n.get("resource_type") == "model" and n.get("package_name") == "selloff"}
    done: set[str] = set()
    order: list[dict[str, Any]] = []

    def visit(uid: str) -> None:
        if uid in done or uid not in models:
            return
        done.add(uid)
        for dep in models[uid].get("depends_on", {}).get("nodes", []):
            visit(dep)
        order.append(models[uid])

    for uid in sorted(models):
        visit(uid)
    return order


def _copy_inputs(build: Path, dest: Path, skip: set[tuple[str, str]]) -> int:
    """A fresh DuckDB file at `dest` with every table of `build` that the models read
    (raw.*, seeds): all but the models' own relations and the analytics schema. The
    file keeps the build file's name, so the compiled SQL's `"<db>"."raw"...` resolves."""
    import duckdb

    dest.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(dest))
    try:
        con.execute(f"ATTACH '{build}' AS src (READ_ONLY)")
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src' "
            "AND schema_name <> 'analytics' ORDER BY 1, 2").fetchall()
        copied = 0
        for schema, table in tables:
            if (schema, table) in skip:
                continue
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.execute(f'CREATE TABLE "{schema}"."{table}" AS SELECT * FROM src."{schema}"."{table}"')
            copied += 1
        con.execute("DETACH src")
    finally:
        con.close()
    return copied


def bare_marts(build: Path, target_folders: list[Path], pipeline_dbt_s: float,
               memory_limit: str = "1GB") -> dict[str, Any]:
    """Run the compiled SQL of every dbt model straight in DuckDB (no dbt, no Dagster) on
    a copy of the run's inputs, in dependency order, as the model's view or table; time
    it and compare with the pipeline's dbt step(s).

    The compiled SELECTs come from this run's target folder(s) (`compiled/`), the
    materialization and relation name from its manifest.json. The inputs (raw.* and the
    seeds) are first copied from the build file into a fresh file (not timed), so the
    models build from scratch as in the pipeline. The connection gets the dbt profile's
    settings (memory_limit, preserve_insertion_order = false). Tests are not run: the
    ratio is the orchestration's (and dbt's tests') cost over the bare model SQL.
    """
    import duckdb

    folder = next((f for f in target_folders if (f / "manifest.json").exists()), None)
    if folder is None or not build.exists():
        return {"error": "no dbt target folder or build file left to run"}
    manifest = json.loads((folder / "manifest.json").read_text())
    models = _model_order(manifest)
    relations = {(n["schema"], n.get("alias") or n["name"]) for n in models}
    copy = build.parent / "bare" / build.name
    t = time.perf_counter()
    copied = _copy_inputs(build, copy, relations)
    copy_s = time.perf_counter() - t
    per_model: dict[str, float] = {}
    con = duckdb.connect(str(copy))
    try:
        con.execute("SET preserve_insertion_order = false")  # as the dbt profile does
        con.execute(f"SET memory_limit = '{memory_limit}'")
        t0 = time.perf_counter()
        for node in models:
            path = folder / "compiled" / "selloff" / node["original_file_path"]
            sql = path.read_text()
            kind = "VIEW" if node["config"].get("materialized") == "view" else "TABLE"
            relation = f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
            t = time.perf_counter()
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{node["schema"]}"')
            con.execute(f"CREATE OR REPLACE {kind} {relation} AS {sql}")
            per_model[node["name"]] = round(time.perf_counter() - t, 3)
        bare = time.perf_counter() - t0
    finally:
        con.close()
        shutil.rmtree(copy.parent, ignore_errors=True)
    slow = sorted(per_model.items(), key=lambda kv: -kv[1])[:5]
    return {"models": len(models), "seconds": round(bare, 2),
            "inputs_copied": copied, "copy_seconds": round(copy_s, 2),
            "memory_limit": memory_limit, "loadavg": [round(x, 2) for x in os.getloadavg()],
            "pipeline_dbt_step_seconds": round(pipeline_dbt_s, 2),
            "ratio_pipeline_over_bare": round(pipeline_dbt_s / bare, 2) if bare else None,
            "slowest": dict(slow)}


# --- printing ------------------------------------------------------------------------


def _f(x: Any, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def render(r: dict[str, Any], top: int) -> str:
    m, p = r["machine"], r["params"]
    lines = [
        "",
        f"selloff benchmark: demo market {p['securities']:,} securities x {p['years']} years "
        f"(seed {p['seed']}), {p.get('mode', 'refresh')}: run "
        f"{'succeeded' if r['success'] else 'FAILED'}",
        f"machine: {m['nproc']} CPUs, {m['mem_total_gib']} GiB RAM; load avg before "
        f"{'/'.join(map(str, m['loadavg_before']))}, during mean {m['load1_during_mean']} "
        f"max {m['load1_during_max']}, after {'/'.join(map(str, m['loadavg_after']))}; "
        f"other processes used {m['other_procs_cores_mean']} of {m['nproc']} cores on average",
        "",
        f"{'phase':<46}{'wall s':>9}{'cpu s':>9}{'others':>8}"
        f"{'peak RSS MiB: self':>20}{'children':>10}{'total':>8}",
    ]
    order = ("extract_total", "extract", "gx", "dbt", "decomposition", "analytics_other",
             "report_publish", "between_steps", "whole_run")
    for name in order:
        ph = r["phases"][name]
        label = PHASE_LABEL[name]
        if name in ("extract", "gx"):
            label = "  " + label.split(": ", 1)[1]
        lines.append(
            f"{label:<46}{_f(ph['seconds']):>9}{_f(ph['cpu_seconds']):>9}"
            f"{_f(ph['other_procs_cores'], '{:.2f}'):>8}{_f(ph['peak_rss_self_mib'], '{:.0f}'):>20}"
            f"{_f(ph['peak_rss_children_mib'], '{:.0f}'):>10}{_f(ph['peak_rss_total_mib'], '{:.0f}'):>8}")
    if r["demo_generation_s"] is not None:
        lines.append(f"  (demo market generation, inside the first extract step: "
                     f"{r['demo_generation_s']:.1f} s; imports + definitions before the run: "
                     f"{r['startup_import_s']:.1f} s)")
    mem = r["memory"]
    lines += [
        "  ('others' = cores used by other processes on the machine during the phase)",
        "",
        f"peak memory: this process {mem['ru_maxrss_self_mib']:.0f} MiB (getrusage); "
        f"this process + children (dbt) together, sampled every {mem['sample_interval_s']} s: "
        f"{mem['sampled_peak_total_mib']:.0f} MiB; dbt alone (sampled): "
        f"{r['phases']['dbt']['peak_rss_children_mib'] or 0:.0f} MiB",
        f"  (getrusage's RUSAGE_CHILDREN says {mem['ru_maxrss_children_mib']:.0f} MiB, but on Linux"
        " that includes the parent's pages at fork, so it is not dbt's figure)",
        "",
        "targets:",
    ]
    t = r["targets"]["whole_run_s"]
    lines.append(f"  whole run {t['value']:.1f} s <= {t['limit']:.0f} s: "
                 + ("PASS" if t["pass"] else f"MISSED by {t['over_by']:.1f} s "
                    f"({t['over_by'] / t['limit']:.0%} over)"))
    t = r["targets"]["peak_memory_mib"]
    lines.append(f"  peak RSS, all processes {t['value']:.0f} MiB <= {t['limit']:.0f} MiB "
                 f"({t['limit'] * 2**20 / 1e9:.1f} GB): "
                 + ("PASS" if t["pass"] else f"MISSED by {t['over_by']:.0f} MiB"))
    bare = r.get("bare_duckdb")
    if bare and "seconds" in bare:
        model_s = ((r.get("dbt") or {}).get("by_type") or {}).get("model", {}).get("seconds")
        load = "/".join(map(str, bare.get("loadavg") or []))
        lines.append(f"  the {bare['models']} dbt models' compiled SQL bare in DuckDB (a copy of the "
                     f"inputs, no dbt, no Dagster; load avg {load}): {bare['seconds']:.1f} s; "
                     f"the pipeline's dbt step {bare['pipeline_dbt_step_seconds']:.1f} s"
                     f" (models, tests, dbt and Dagster) = {bare['ratio_pipeline_over_bare']:.1f}x bare"
                     + (f"; the same models inside dbt {model_s:.1f} node-s (2 threads) = "
                        f"{model_s / bare['seconds']:.1f}x" if model_s and bare["seconds"] else ""))

    slow = sorted(r["steps"].items(), key=lambda kv: -kv[1]["seconds"])[:top + 3]
    lines += ["", f"slowest steps (of {len(r['steps'])}):"]
    for key, st in slow:
        lines.append(f"  {st['seconds']:>8.1f} s  {key:<52} [{st['phase']}] "
                     f"peak {_f(st['peak_rss_total_mib'], '{:.0f}')} MiB"
                     + ("" if st["status"] == "ok" else "  FAILED"))
    dbt = r["dbt"]
    if dbt:
        lines += ["", f"dbt: step(s) {r['phases']['dbt']['seconds']:.1f} s, of which "
                  f"{dbt['elapsed_seconds']:.1f} s dbt elapsed_time; node time by type: "
                  + ", ".join(f"{k} {v['count']} = {v['seconds']:.1f} s"
                              for k, v in sorted(dbt["by_type"].items(),
                                                 key=lambda kv: -kv[1]["seconds"]))]
        for op, inv in dbt["invocations"].items():
            if "step_seconds" not in inv:
                continue
            lines.append(
                f"  {op}: step {inv['step_seconds']:.1f} s = before dbt {inv['before_dbt_seconds']:.1f}"
                f" + dbt {inv['dbt_span_seconds']:.1f} (start-up/parse {_f(inv['dbt_startup_seconds'])},"
                f" nodes running {inv['nodes_busy_seconds']:.1f}, idle between nodes "
                f"{_f(inv['idle_between_nodes_seconds'])}) + after dbt {inv['after_dbt_seconds']:.1f}"
                f"; {inv['nodes']} nodes, {inv['node_seconds_sum']:.1f} s summed")
        lines.append(f"top {top} slowest models (run_results.json):")
        for n in dbt["top_models"]:
            lines.append(f"  {n['seconds']:>8.2f} s  {n['unique_id']}  ({n['status']})")
        others = [n for n in dbt["top_nodes"] if n["type"] != "model"]
        if others:
            lines.append(f"slowest non-model nodes among the top {top}:")
            for n in others:
                lines.append(f"  {n['seconds']:>8.2f} s  {n['unique_id']}  ({n['status']})")
    ev = r["events"]
    lines.append(f"event log: {sum(ev.values()):,} events; "
                 + ", ".join(f"{k} {v:,}" for k, v in list(ev.items())[:4]))
    counts = r["row_counts"]
    if counts:
        lines += ["", "row counts:"]
        for name in MAIN_TABLES:
            if name in counts:
                lines.append(f"  {name:<42}{counts[name]:>14,}")
    wb = r["warehouse_bytes"]
    if wb["build"]:
        lines.append(f"  (build file {wb['build'] / 1024**2:,.0f} MiB)")
    if r["failures"]:
        lines += ["", "FAILURES:"] + [f"  {f}" for f in r["failures"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--securities", type=int, default=5000, help="demo securities (5000)")
    ap.add_argument("--years", type=int, default=5, help="demo years of history (5)")
    ap.add_argument("--seed", type=int, default=None, help="demo seed (settings default)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="JSON output (warehouse/bench/last.json)")
    ap.add_argument("--workdir", default=None, help="parent folder of the temporary warehouse")
    ap.add_argument("--keep", action="store_true", help="keep the temporary warehouse")
    ap.add_argument("--interval", type=float, default=0.1, help="RSS sampling interval, s")
    ap.add_argument("--top", type=int, default=5, help="slowest dbt models to list")
    ap.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    args = ap.parse_args(argv)

    report = run_bench(args)
    out = Path(args.out)
    payload = json.dumps(report, indent=2, default=str)
    out.write_text(payload)
    sized = out.parent / f"{args.securities}x{args.years}.json"
    sized.write_text(payload)
    text = render(report, args.top)
    print(text)
    (out.parent / f"{args.securities}x{args.years}.txt").write_text(text + "\n")
    print(f"\nfigures written to {out} (and {sized.name})")
    if not report["success"]:
        return 1
    if args.strict and not all(t["pass"] for t in report["targets"].values()):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
