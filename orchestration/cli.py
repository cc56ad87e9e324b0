"""`selloff`: the jobs a person runs by hand (run, query, snapshot export)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from selloff.settings import (
    PROJECT_ROOT,
    Settings,
    SettingsError,
    SourceKind,
    settings_from_env,
)

app = typer.Typer(help="selloff warehouse: measure a cross-market sell-off, check commentary.",
                  no_args_is_help=True, add_completion=False)
snapshot_app = typer.Typer(help="Snapshot folders (the offline format of DESIGN §3).")
app.add_typer(snapshot_app, name="snapshot")


def _out() -> Console:
    # Built when printing, not at import: Rich reads COLUMNS (and the terminal) when a
    # Console is made, and the width must be the one the command runs in.
    return Console()


def _settings(source: str | None = None, snapshot_dir: Path | None = None,
              warehouse: Path | None = None, episodes: list[Path] | None = None) -> Settings:
    """SELLOFF_* from the environment, with this command's options on top, built once and
    handed on as an object (the options reach the run as resource fields). An invalid
    setting ends the command with exit 2 naming it and the allowed values."""
    try:
        return settings_from_env().with_options(source=source, snapshot_dir=snapshot_dir,
                                                warehouse=warehouse, episodes=episodes)
    except SettingsError as exc:
        _out().print(f"[red]invalid setting:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc


def _cells(row: tuple) -> list[Text]:
    # Text from files and data is shown literally: a Text cell is never read as markup.
    return [Text("" if v is None else str(v)) for v in row]


def _window_config(start: str | None, end: str | None, markets: list[str] | None) -> dict:
    if not (start or end or markets):
        return {}
    refresh = {"start": start, "end": end, "markets": list(markets or [])}
    return {"resources": {"refresh": {"config": refresh}}}


def _instance():
    """The project's Dagster instance (DAGSTER_HOME, else <project>/dagster_home), so runs
    from the CLI appear in the UI's run history."""
    import dagster as dg

    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.from_config(str(home))


def _report_failures(result) -> None:
    import dagster as dg

    for ev in result.all_events:
        if ev.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = ev.step_failure_data
            user = data.user_failure_data
            error = data.error
            # The step error wraps the user's: its innermost cause names what went wrong.
            while error is not None and error.cause is not None:
                error = error.cause
            text = user.description if user and user.description else (
                error.message.strip() if error else "")
            _out().print(f"[red]step {escape(ev.step_key)} failed:[/] {escape(text)}",
                          highlight=False)
    for ev in result.get_asset_check_evaluations():
        if not ev.passed:
            key = "/".join(ev.asset_key.path)
            desc = ev.description or ""
            _out().print(f"[red]check {escape(key)}:{escape(ev.check_name)} failed[/] "
                          f"{escape(desc)}", highlight=False)


@app.command()
def run(
    source: Annotated[str | None, typer.Option(help="demo | snapshot | live (default: $SELLOFF_SOURCE or demo)")] = None,
    snapshot_dir: Annotated[Path | None, typer.Option(help="snapshot folder for --source snapshot")] = None,
    warehouse: Annotated[Path | None, typer.Option(help="published warehouse file")] = None,
    start: Annotated[str | None, typer.Option(help="refresh only from this day (YYYY-MM-DD); default: full refresh")] = None,
    end: Annotated[str | None, typer.Option(help="last day of the refresh window (default: --start)")] = None,
    market: Annotated[list[str] | None, typer.Option(help="refresh only this market's daily rows (repeatable)")] = None,
    episode: Annotated[list[Path] | None, typer.Option(help="measure this episode folder (holding episode.yaml; repeatable); default: every bundled episode")] = None,
    log_level: Annotated[str, typer.Option(help="Dagster console log level (debug, info, warning, error, critical)")] = "critical",
    wait: Annotated[str | None, typer.Option(help="seconds to wait for another run writing the same warehouse, 0: refuse at once (default: $SELLOFF_WRITER_TIMEOUT or 1800)")] = None,
) -> None:
    """Materialize the whole graph in one process and print where the warehouse is.

    Exit codes: 0 success, 1 the refresh failed, 2 invalid input, 3 another run kept the
    warehouse longer than --wait, 130/143 stopped by Ctrl-C/SIGTERM."""
    from selloff.settings import parse_writer_timeout

    try:
        settings = _settings(source, snapshot_dir, warehouse, episode)
        if wait is not None:
            settings = replace(settings, store=replace(
                settings.store, writer_timeout=parse_writer_timeout(wait, "--wait")))
    except ValueError as exc:
        _out().print(f"[red]invalid setting:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    _check_episodes(settings)
    _check_storage_version(settings)
    if settings.source.kind is SourceKind.snapshot:
        _check_snapshot(settings)
    if settings.source.kind is SourceKind.live:
        # Reach every service before starting anything: without network this fails in
        # seconds, naming the first source that cannot be reached.
        from selloff.sources import make_source
        from selloff.sources.live.errors import SourceError

        try:
            make_source(settings.source)
        except SourceError as exc:
            _out().print(f"[red]live sources not reachable:[/] {escape(str(exc))}\n"
                          f"The published warehouse {settings.warehouse} was not changed.")
            raise typer.Exit(1) from exc

    from orchestration.definitions import build_definitions

    job = build_definitions(settings).resolve_job_def("refresh")
    src = settings.source
    label = src.kind.value + (f" ({src.snapshot_dir})" if src.snapshot_dir else "")
    with _stop_on_signals() as stopped, _writer_lock(settings):
        _out().print(f"Refreshing from source [bold]{escape(label)}[/] into "
                      f"{escape(str(settings.build_warehouse))} ...", highlight=False)
        result, elapsed = _execute(job, settings, stopped, run_config={
            "loggers": {"console": {"config": {"log_level": log_level.upper()}},
                        "step_progress": {}},
            **_window_config(start, end, market)})
    if not result.success:
        _report_failures(result)
        _out().print(f"[red]refresh failed after {elapsed:.1f}s; the published warehouse "
                      f"{settings.warehouse} was not changed[/] (dbt output: "
                      f"{settings.build_warehouse.parent / 'last_run.log'})")
        raise typer.Exit(1)
    _out().print(f"[green]refresh succeeded in {elapsed:.1f}s[/] (run {result.run_id})")
    from selloff.episode import load_episodes
    from selloff.summary import render, summarize

    render(summarize(settings.warehouse, _synthetic(result),
                     load_episodes(settings.episodes)), _out())
    for name in ("fact_check.md", "fact_check.html", "selloff_report.html"):
        path = settings.warehouse.parent.parent / "reports" / name
        if path.exists():
            _out().print(f"Report: {path}")


def _synthetic(result) -> bool:
    """The source's own flag, as the extract steps recorded it (one notion of synthetic:
    a snapshot exported from the demo market is synthetic too)."""
    for ev in result.get_asset_materialization_events():
        flag = ev.materialization.metadata.get("synthetic")
        if flag is not None and flag.value:
            return True
    return False


# After SIGTERM/Ctrl-C, how long the run may take to stop by itself before the process ends
# it (see _stop_on_signals).
STOP_GRACE_SECONDS = 15.0


@contextlib.contextmanager
def _stop_on_signals():
    """SIGTERM behaves as Ctrl-C (KeyboardInterrupt); yields a dict that records which
    signal arrived (so the command exits with 128 + its number) and, once known, the run.

    Dagster defers both signals during a run and raises them in the running step; a step
    may swallow one (dagster-dbt's event parser catches everything), and a run waiting
    for a pool slot never sees it. So a watcher thread also learns of the signal through
    the interpreter's wakeup fd (written whatever Python handler is installed) and, if the
    run has not stopped after STOP_GRACE_SECONDS, ends it: run marked canceled, pool slots
    freed, child processes (dbt) terminated, then the process exits, which releases the
    writer lock. The published file is never touched by that: publication is a run step.
    """
    import socket
    import threading

    stopped: dict = {}
    done = threading.Event()

    def handler(signum, _frame):
        stopped.setdefault("signal", signum)
        raise KeyboardInterrupt

    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def watch() -> None:
        while "signal" not in stopped:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in (signal.SIGINT, signal.SIGTERM):
                    stopped.setdefault("signal", signum)
        if done.wait(STOP_GRACE_SECONDS):
            return
        name = signal.Signals(stopped["signal"]).name
        _out().print(f"[yellow]stopped by {name}[/]: the run did not stop within "
                      f"{STOP_GRACE_SECONDS:g}s, ending it; the published warehouse was not "
                      f"changed")
        with contextlib.suppress(Exception):
            if stopped.get("run_id"):
                _end_interrupted_run(_instance(), stopped["run_id"], stopped)
        for pid in _child_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        sys.stdout.flush()
        os._exit(128 + stopped["signal"])

    watcher = threading.Thread(target=watch, name="selloff-stop-watch", daemon=True)
    watcher.start()
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    except KeyboardInterrupt as exc:
        signum = stopped.get("signal", signal.SIGINT)
        _out().print(f"[yellow]stopped by {signal.Signals(signum).name}[/]: the published "
                      f"warehouse was not changed")
        raise typer.Exit(128 + signum) from exc
    finally:
        done.set()
        for s, h in previous.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(previous_fd)
        writer.close()  # the watcher's recv sees end of file and returns
        watcher.join(timeout=2)
        reader.close()


def _child_pids() -> list[int]:
    """This process's children (the dbt subprocess), from /proc."""
    me, out = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(me):
            out.append(int(entry.name))
    return out


@contextlib.contextmanager
def _writer_lock(settings: Settings):
    """Hold the warehouse's writer lock for the run (the run's warehouse resource takes it
    again in this process, without waiting), saying what it waits for; exit 3 on timeout."""
    from selloff.writer_lock import WriterLockTimeout, hold

    try:
        with hold(settings.build_warehouse, timeout=settings.store.writer_timeout,
                  report=lambda m: _out().print(m, highlight=False)):
            yield
    except WriterLockTimeout as exc:
        _out().print(f"[red]{escape(str(exc))}[/]\nThe published warehouse {settings.warehouse} was not "
                      f"changed. Wait for that run, or stop it, or raise --wait.",
                      highlight=False)
        raise typer.Exit(3) from exc


def _execute(job, settings: Settings, stopped: dict, run_config: dict):
    """Run the job in this process under the project's instance, tagged with this
    process; a run interrupted by a signal ends canceled with its pool slots freed."""
    import uuid

    from selloff.run_health import process_tags

    instance = _instance()
    run_id = str(uuid.uuid4())
    stopped["run_id"] = run_id
    started = time.perf_counter()
    # In process: the multiprocess executor pays seconds of imports per step on 2 cores.
    # dbt's own console lines go to a log file, not the terminal (the UI keeps them too).
    log_path = settings.build_warehouse.parent / "last_run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    interrupted = False
    try:
        with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            result = job.execute_in_process(
                instance=instance, raise_on_error=False, run_id=run_id,
                tags=process_tags(settings.build_warehouse), run_config=run_config)
        # Dagster catches the signal during a run, stops the step and returns a failed run
        # (a run that finished despite a late signal stands).
        interrupted = not result.success and (_was_interrupted(result) or "signal" in stopped)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if interrupted:
            _end_interrupted_run(instance, run_id, stopped)
    if interrupted:
        raise KeyboardInterrupt
    return result, time.perf_counter() - started


def _was_interrupted(result) -> bool:
    import dagster as dg

    for ev in result.all_events:
        if ev.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = ev.step_failure_data.error
            while error is not None:
                if error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
                    return True
                error = error.cause
        if ev.event_type == dg.DagsterEventType.RUN_FAILURE and "interrupted" in (ev.message or ""):
            return True
    return False


def _check_snapshot(settings: Settings) -> None:
    """Fail before any work when the snapshot folder is missing or its manifest is bad
    (the datasets themselves are checked by the landing gate, step by step)."""
    from selloff.sources import make_source
    from selloff.validation import DataContractError

    try:
        make_source(settings.source)
    except (SettingsError, DataContractError) as exc:
        _out().print(f"[red]invalid snapshot:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc


def _end_interrupted_run(instance, run_id: str, stopped: dict) -> None:
    name = signal.Signals(stopped.get("signal", signal.SIGINT)).name
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_canceled(run, f"stopped by {name} (selloff run)")
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def _check_storage_version(settings: Settings) -> None:
    """Fail before any work when SELLOFF_STORAGE_VERSION names no DuckDB version."""
    from selloff.warehouse import storage_tag

    try:
        storage_tag(settings.store.storage_version)
    except ValueError as exc:
        _out().print(f"[red]invalid setting SELLOFF_STORAGE_VERSION:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc


def _check_episodes(settings: Settings) -> None:
    """Fail before any work when an episode file is invalid, listing every problem."""
    from selloff.episode import EpisodeError, load_episodes

    try:
        load_episodes(settings.episodes)
    except EpisodeError as exc:
        _out().print(f"[red]invalid episode:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc


@app.command()
def episodes(
    path: Annotated[list[Path] | None, typer.Argument(help="episode folders to check and list (default: the bundled ones)")] = None,
) -> None:
    """List the bundled episodes (or check the given folders): id, title, markets, main
    window, claims and folder."""
    from rich.table import Table

    from selloff.episode import EpisodeError, load_episodes

    try:
        found = load_episodes(path or [])
    except EpisodeError as exc:
        _out().print(f"[red]invalid episode:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    table = Table("id", "title", "markets", "main window", "claims", "folder")
    for e in found:
        table.add_row(*_cells((e.episode_id, e.title, " ".join(e.markets),
                               f"{e.main.window_id} {e.main.start}..{e.main.end}",
                               len(e.claims), e.path)))
    _out().print(table)


def _published(warehouse: Path | None) -> Path:
    path = _settings(warehouse=warehouse).warehouse
    if not path.exists():
        _out().print(f"[red]no published warehouse at {escape(str(path))}: run `selloff run` "
                      "first[/]", highlight=False)
        raise typer.Exit(1)
    return path


@app.command()
def claims(
    warehouse: Annotated[Path | None, typer.Option(help="published warehouse file")] = None,
) -> None:
    """Print the claim verdicts of the published warehouse."""
    from selloff.warehouse import connect

    with connect(_published(warehouse), read_only=True) as con:
        # Episode order as built (rowid), claims in their file's order within each.
        df = con.sql("SELECT episode_id, claim_id, verdict, stated_text, computed_text, "
                     "window_start, window_end, note FROM analytics.claim_verdicts "
                     "ORDER BY rowid").pl()
    from rich.table import Table

    table = Table(title="Claim verdicts", show_lines=True)
    for c in df.columns:
        table.add_column(Text(c), overflow="fold")
    for row in df.iter_rows():
        table.add_row(*_cells(row))
    _out().print(table)


@app.command()
def report(
    warehouse: Annotated[Path | None, typer.Option(help="published warehouse file")] = None,
    out: Annotated[Path | None, typer.Option(help="HTML file to write")] = None,
) -> None:
    """Write the HTML report and the fact-check page again from the published warehouse."""
    from selloff.episode import load_episodes
    from selloff.report.files import write_reports

    settings = _settings(warehouse=warehouse)
    for path in write_reports(_published(warehouse), settings.reports_dir, out=out,
                              episodes=load_episodes(settings.episodes)):
        _out().print(f"wrote {path}")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run against the published warehouse")],
    warehouse: Annotated[Path | None, typer.Option(help="published warehouse file")] = None,
    limit: Annotated[int, typer.Option(help="rows to show (--format table)")] = 50,
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or parquet")] = "table",
    out: Annotated[Path | None, typer.Option(help="file to write (csv, json, parquet); "
                                              "default: standard output")] = None,
) -> None:
    """Run SQL read-only on the published warehouse (safe while a refresh runs)."""
    from selloff.query import QueryError, check_target, run_query, write_result

    try:
        check_target(fmt, out)  # a bad format or target is refused before the query runs
        df = run_query(_published(warehouse), sql)
        if fmt != "table":
            if write_result(df, fmt, out) is not None:
                Console(stderr=True).print(f"wrote {df.height} rows to {out}")
            return
    except QueryError as exc:
        Console(stderr=True).print(f"[red]selloff query: {exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    from rich.table import Table

    table = Table(show_lines=False)
    for c in df.columns:
        table.add_column(Text(c))
    for row in df.head(limit).iter_rows():
        table.add_row(*_cells(row))
    _out().print(table)
    if df.height > limit:
        _out().print(f"... {df.height - limit} more rows")


def _date_option(value: str | None, option: str):
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _out().print(f"[red]{option}: expected a date YYYY-MM-DD, got {value!r}[/]")
        raise typer.Exit(2) from None


@app.command()
def discover(
    since: Annotated[str | None, typer.Option(help="only candidates ending on or after this day (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="only candidates starting on or before this day")] = None,
    market: Annotated[list[str] | None, typer.Option(help="only candidates hitting this market (repeatable)")] = None,
    top: Annotated[int, typer.Option(help="how many candidates to list", min=1)] = 20,
    out: Annotated[Path | None, typer.Option(help="write one draft episode folder per candidate listed here")] = None,
    warehouse: Annotated[Path | None, typer.Option(help="published warehouse file")] = None,
) -> None:
    """Rank the sell-offs found in the data (analytics.episode_candidates) and, with
    --out, draft an episode folder for each (it validates and runs with --episode)."""
    from selloff.markets import MARKETS

    first, last = _date_option(since, "--since"), _date_option(until, "--until")
    bad = [m for m in market or [] if m not in MARKETS]
    if bad:
        _out().print(f"[red]--market: {', '.join(bad)} not in the market registry "
                      f"(selloff/markets.py: {', '.join(MARKETS)})[/]")
        raise typer.Exit(2)
    if first and last and first > last:
        _out().print(f"[red]--since {first} is after --until {last}[/]")
        raise typer.Exit(2)
    from rich.table import Table

    from selloff.analytics.discovery import select_candidates
    from selloff.warehouse import connect, read_table

    with connect(_published(warehouse), read_only=True) as con:
        found = read_table(con, "analytics", "episode_candidates")
        if found is None:
            _out().print("[red]the warehouse has no analytics.episode_candidates: run "
                          "`selloff run` with this version first[/]")
            raise typer.Exit(1)
        ranked = select_candidates(found, since=first, until=last, markets=market or [], top=top)
        frames = ({t: read_table(con, "marts", t) for t in
                   ("fct_index_levels_daily", "fct_market_cap_daily", "dim_basket_member")}
                  if out is not None and ranked.height else {})
    table = Table(title=f"Sell-offs found in the data ({ranked.height} of {found.height})")
    for col in ("#", "candidate", "span", "markets", "deepest fall", "worst day",
                "worst week", "cap lost USD bn", "severity"):
        table.add_column(col, overflow="fold")

    def pct(v):
        return "-" if v is None else f"{100 * v:+.2f}%"

    for r in ranked.iter_rows(named=True):
        table.add_row(
            str(r["rank"]), r["candidate_id"], f"{r['start_date']}..{r['end_date']}",
            r["markets"], f"{pct(r['fall_return'])} {r['fall_entity'] or ''}",
            f"{pct(r['worst_day_return'])} {r['worst_day_entity'] or ''} {r['worst_day_date'] or ''}",
            f"{pct(r['worst_week_return'])} {r['worst_week_entity'] or ''} {r['worst_week_end'] or ''}",
            f"{r['cap_lost_usd'] / 1e9:,.1f}", f"{r['severity']:.1f}")
    _out().print(table)
    if out is None or ranked.height == 0:
        return
    from selloff.episode import EpisodeError
    from selloff.episode_draft import candidate_moves, draft_episode, draft_header, write_draft

    idx = frames.get("fct_index_levels_daily")
    index_ids = set() if idx is None else set(idx["index_id"].unique().to_list())
    members = frames.get("dim_basket_member")
    for r in ranked.iter_rows(named=True):
        moves = candidate_moves(idx, frames.get("fct_market_cap_daily"), members, r)
        folder = out / r["candidate_id"]
        try:
            write_draft(folder, draft_episode(r, moves, members, index_ids), draft_header(r))
        except EpisodeError as exc:
            _out().print(f"[red]draft {folder} does not validate:[/] {exc}", highlight=False)
            raise typer.Exit(1) from exc
        _out().print(f"drafted {folder}")


@app.command("sql")
def sql_shell(
    warehouse: Annotated[Path | None, typer.Option(help="published warehouse file")] = None,
) -> None:
    """An interactive, read-only SQL shell on the published warehouse (Harlequin: tables
    and columns with their comments on the left, a query editor, results below)."""
    from selloff.query import QueryError, sql_shell_command

    try:
        command = sql_shell_command(_published(warehouse))
    except QueryError as exc:
        Console(stderr=True).print(f"[red]selloff sql: {exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    sys.stdout.flush()
    os.execv(command[0], command)  # the shell takes over this terminal


@snapshot_app.command("export")
def snapshot_export(
    folder: Annotated[Path, typer.Argument(help="folder to write")],
    securities: Annotated[int, typer.Option(help="demo securities (0: every core name)")] = 0,
    years: Annotated[int, typer.Option(help="demo years of history")] = 2,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Write the demo market as a snapshot folder that `--source snapshot` reads back."""
    from selloff.sources.demo import export_demo_snapshot

    out = export_demo_snapshot(folder, n_securities=securities, years=years, fmt=fmt)
    _out().print(f"wrote {out}")


@snapshot_app.command("capture")
def snapshot_capture(
    folder: Annotated[Path, typer.Argument(help="folder to write")],
    start: Annotated[str, typer.Option(help="first day, YYYY-MM-DD")] = "2025-09-01",
    end: Annotated[str, typer.Option(help="last day, YYYY-MM-DD")] = "2025-12-31",
    universe: Annotated[Path | None, typer.Option(help="universe file (YAML/CSV); default: the packaged one")] = None,
) -> None:
    """Fetch the live sources for a window and universe and freeze them as a snapshot
    folder (replay offline with --source snapshot --snapshot-dir FOLDER). Needs internet."""
    import datetime as dt

    from selloff.sources.live import LiveConfig, capture_snapshot

    config = LiveConfig.from_settings(_settings().source.live)
    out = capture_snapshot(folder, dt.date.fromisoformat(start), dt.date.fromisoformat(end),
                           universe, config=config)
    _out().print(f"wrote {out}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
