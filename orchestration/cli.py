"""`selloff`: the jobs a person runs by hand (run, query, snapshot export)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from selloff.settings import PROJECT_ROOT, Settings, settings_from_env

app = typer.Typer(help="selloff warehouse: measure a cross-market sell-off, check commentary.",
                  no_args_is_help=True, add_completion=False)
snapshot_app = typer.Typer(help="Snapshot folders (the offline format of DESIGN §3).")
app.add_typer(snapshot_app, name="snapshot")
console = Console()


def _settings(source: str | None = None, snapshot_dir: Path | None = None,
              warehouse: Path | None = None, episodes: list[Path] | None = None) -> Settings:
    """SELLOFF_* from the environment, with this command's options on top (read, never
    written back: the options reach the run as resource fields)."""
    overrides = {"SELLOFF_SOURCE": source,
                 "SELLOFF_SNAPSHOT_DIR": str(snapshot_dir.resolve()) if snapshot_dir else None,
                 "SELLOFF_WAREHOUSE": str(warehouse.resolve()) if warehouse else None,
                 "SELLOFF_EPISODES": os.pathsep.join(str(p.resolve()) for p in episodes)
                 if episodes else None}
    return settings_from_env({**os.environ, **{k: v for k, v in overrides.items() if v}})


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
            console.print(f"[red]step {ev.step_key} failed:[/] {text}", highlight=False)
    for ev in result.get_asset_check_evaluations():
        if not ev.passed:
            key = "/".join(ev.asset_key.path)
            desc = ev.description or ""
            console.print(f"[red]check {key}:{ev.check_name} failed[/] {desc}")


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
) -> None:
    """Materialize the whole graph in one process and print where the warehouse is."""
    settings = _settings(source, snapshot_dir, warehouse, episode)
    _check_episodes(settings)
    if settings.source == "live":
        # Reach every service before starting anything: without network this fails in
        # seconds, naming the first source that cannot be reached.
        from selloff.sources import make_source
        from selloff.sources.live.errors import SourceError

        try:
            make_source(settings)
        except SourceError as exc:
            console.print(f"[red]live sources not reachable:[/] {exc}\n"
                          f"The published warehouse {settings.warehouse} was not changed.")
            raise typer.Exit(1) from exc

    from orchestration.definitions import build_definitions

    job = build_definitions(settings).resolve_job_def("refresh")
    label = settings.source + (f" ({settings.snapshot_dir})" if settings.snapshot_dir else "")
    console.print(f"Refreshing from source [bold]{label}[/] into {settings.build_warehouse} ...")
    started = time.perf_counter()
    # In process: the multiprocess executor pays seconds of imports per step on 2 cores.
    # dbt's own console lines go to a log file, not the terminal (the UI keeps them too).
    log_path = settings.build_warehouse.parent / "last_run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        result = job.execute_in_process(
            instance=_instance(), raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level.upper()}},
                                    "step_progress": {}},
                        **_window_config(start, end, market)},
        )
    elapsed = time.perf_counter() - started
    if not result.success:
        _report_failures(result)
        console.print(f"[red]refresh failed after {elapsed:.1f}s; the published warehouse "
                      f"{settings.warehouse} was not changed[/] (dbt output: {log_path})")
        raise typer.Exit(1)
    console.print(f"[green]refresh succeeded in {elapsed:.1f}s[/] (run {result.run_id})")
    from selloff.episode import load_episodes
    from selloff.summary import render, summarize

    render(summarize(settings.warehouse, settings.is_synthetic,
                     load_episodes(settings.episodes)), console)
    for name in ("fact_check.md", "fact_check.html", "selloff_report.html"):
        path = settings.warehouse.parent.parent / "reports" / name
        if path.exists():
            console.print(f"Report: {path}")


def _check_episodes(settings: Settings) -> None:
    """Fail before any work when an episode file is invalid, listing every problem."""
    from selloff.episode import EpisodeError, load_episodes

    try:
        load_episodes(settings.episodes)
    except EpisodeError as exc:
        console.print(f"[red]invalid episode:[/] {exc}", highlight=False)
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
        console.print(f"[red]invalid episode:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    table = Table("id", "title", "markets", "main window", "claims", "folder")
    for e in found:
        table.add_row(e.episode_id, e.title, " ".join(e.markets),
                      f"{e.main.window_id} {e.main.start}..{e.main.end}", str(len(e.claims)),
                      str(e.path))
    console.print(table)


def _published(warehouse: Path | None) -> Path:
    path = _settings(warehouse=warehouse).warehouse
    if not path.exists():
        console.print(f"[red]no published warehouse at {path}: run `selloff run` first[/]")
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
        table.add_column(c, overflow="fold")
    for row in df.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


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
        console.print(f"wrote {path}")


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
        table.add_column(c)
    for row in df.head(limit).iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    if df.height > limit:
        console.print(f"... {df.height - limit} more rows")


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
    console.print(f"wrote {out}")


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

    from selloff.sources.live import capture_snapshot

    out = capture_snapshot(folder, dt.date.fromisoformat(start), dt.date.fromisoformat(end), universe)
    console.print(f"wrote {out}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
