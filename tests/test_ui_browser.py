"""The Dagster UI in a real browser: the analyst's journey (issues #4, #10).

Starts `dagster dev` on this repo's workspace with the project's instance settings (one
writer pool, a run queue of one), a private DAGSTER_HOME and warehouse, and drives Debian's
Chromium through Playwright the way a new user would:
  1. the asset graph shows every layer; "Materialize all" with its default choice launches
     one run, which succeeds and publishes marts, analytics and claim verdicts;
  2. the run page shows the asset checks (GX suites, dbt tests, the reconciliation) with
     their results;
  3. a refresh of a range the user picks: the launchpad, with the `refresh` window typed in;
  4. one asset materialized from its own page;
  5. the Runs page lists every run, all succeeded.
The demo source is deterministic, so the window refresh of unchanged days must leave every
published raw, marts and analytics table as the first build made it, and so must the one-asset
run and whatever the automation sensor then starts (the sensor is given a tick after the last
run). Every run the instance started (the automation sensor's too) must succeed. Screenshots
go to reports/screenshots/. Chromium missing is a failure, not a skip: .ci/run installs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = REPO_ROOT / "reports" / "screenshots"

# Generous: CI has two cores. Here `dagster dev` needs 15-40 s to load the code location
# and the run 35-120 s (a spawned process per step), depending on the load.
SERVER_TIMEOUT_S = 180
RUN_TIMEOUT_S = 600
UI_TIMEOUT_MS = 60_000
SUBMIT_TIMEOUT_MS = 180_000

DEMO_SECURITIES = 20

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ui,

]
import playwright.sync_api as playwright_sync  # noqa: E402  (the `dev` extra)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dagster_executable() -> str:
    beside = Path(sys.executable).parent / "dagster"
    if beside.exists():
        return str(beside)
    venv = REPO_ROOT / ".venv" / "bin" / "dagster"
    assert venv.exists(), f"no dagster executable beside {sys.executable} or in {venv}"
    return str(venv)


class DagsterDev:
    """`dagster dev` in its own process group, with its output in a log file."""

    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "dagster_home"
        self.home.mkdir()
        # The project's instance settings (`make ui`): telemetry off, the writer pool, the
        # run queue of one.
        shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", self.home / "dagster.yaml")
        self.warehouse = tmp / "warehouse" / "selloff.duckdb"
        self.log_path = tmp / "dagster_dev.log"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # Only the defaults (demo source, DuckDB target) plus a private warehouse.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SELLOFF_")}
        env.update(DAGSTER_HOME=str(self.home), SELLOFF_WAREHOUSE=str(self.warehouse),
                   SELLOFF_DEMO_SECURITIES=str(DEMO_SECURITIES), PYTHONUNBUFFERED="1")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [_dagster_executable(), "dev", "-w", "workspace.yaml",
                 "-h", "127.0.0.1", "-p", str(self.port)],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                # A background shell job ignores SIGINT, and so would dagster dev's children,
                # which stop on the SIGINT it forwards: give them the default back.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the child leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        # Whatever is left of the group (webserver, daemon, code server, run workers).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(f"{self.base}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            payload = json.load(resp)
        assert not payload.get("errors"), payload["errors"]
        return payload["data"]

    def wait_until_ready(self) -> None:
        """The webserver answers and the `selloff` code location has loaded (or failed to)."""
        assert self.proc is not None
        deadline = time.monotonic() + SERVER_TIMEOUT_S
        status = "webserver not answering"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                data = self.graphql(WORKSPACE_QUERY)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                status = f"webserver not answering ({exc})"
            else:
                entries = data["workspaceOrError"].get("locationEntries") or []
                status = f"location entries: {entries}"
                loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
                if loaded:
                    err = loaded[0]["locationOrLoadError"]
                    assert err and err["__typename"] == "RepositoryLocation", (
                        f"code location failed to load: {err}")
                    return
            time.sleep(1)
        pytest.fail(f"dagster dev not ready after {SERVER_TIMEOUT_S}s ({status}):\n{self.log_tail()}")


WORKSPACE_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""
RUN_QUERY = """
query($runId: ID!) { runOrError(runId: $runId) { __typename
    ... on Run { status stepStats { stepKey status } }
    ... on PythonError { message } } }
"""
RUN_ERRORS_QUERY = """
query($runId: ID!) { logsForRun(runId: $runId) { __typename
    ... on EventConnection { events { __typename
        ... on MessageEvent { message stepKey }
        ... on ErrorEvent { error { message stack } } } } } }
"""
MATERIALIZATION_QUERY = """
query($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) { __typename
    ... on Asset { assetMaterializations(limit: 1) { runId
        metadataEntries { label ... on IntMetadataEntry { intValue } } } } }
  assetCheckExecutions(assetKey: $key, checkName: "gx_suite", limit: 1) {
    runId status evaluation { success } }
}
"""


@pytest.fixture()
def dagster_dev(tmp_path: Path) -> Iterator[DagsterDev]:
    assert (REPO_ROOT / "dbt_project" / "target" / "manifest.json").exists(), (
        "dbt manifest missing: run `make manifest` (make test does it)")
    server = DagsterDev(tmp_path)
    try:
        t0 = time.monotonic()
        server.start()
        server.wait_until_ready()
        print(f"[ui test] dagster dev ready on {server.base}: {time.monotonic() - t0:.1f}s")
        yield server
    finally:
        t0 = time.monotonic()
        server.stop()
        print(f"[ui test] dagster dev stopped: {time.monotonic() - t0:.1f}s")


def _run_errors(server: DagsterDev, run_id: str) -> str:
    """A run's error events (failed steps, a job that could not load...), each with its
    message, error and the last frames of its stack."""
    logs = server.graphql(RUN_ERRORS_QUERY, {"runId": run_id})["logsForRun"]
    out = []
    for event in logs.get("events") or []:
        if event.get("error"):
            err = event["error"]
            out.append(f"{event['__typename']} {event.get('stepKey') or ''} {event.get('message')}: "
                       f"{err['message'].strip()}\n" + "".join((err.get("stack") or [])[-4:]))
    return "\n".join(out) or "(no error events)"


class _Phases:
    """Prints how long each phase took (shown by pytest -s, or with a failure)."""

    def __init__(self) -> None:
        self.t0 = self.last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        print(f"[ui test] {name}: {now - self.last:.1f}s (total {now - self.t0:.1f}s)")
        self.last = now


def _dismiss_community_dialog(page: Any) -> bool:
    """A fresh instance greets the first visit with "Join the Dagster community": Skip."""
    dialog = page.get_by_text("Join the Dagster community")
    skip = page.get_by_role("button", name="Skip", exact=True)
    shown = True
    try:
        dialog.wait_for(state="visible", timeout=20_000)
    except playwright_sync.TimeoutError:
        shown = False
    else:
        skip.click()
        dialog.wait_for(state="hidden")
    # Should it pop up later, in the middle of an action, dismiss it there.
    page.add_locator_handler(dialog, lambda: skip.click())
    return shown


RUNS_QUERY = """
{ runsOrError { __typename ... on Runs { results { runId status jobName
    startTime endTime assetSelection { path } } } } }
"""
SENSOR_TICKS_QUERY = """
query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) { __typename
    ... on Sensor { sensorState { ticks(limit: 5) { timestamp status runIds } } }
    ... on PythonError { message } } }
"""
# The automation sensor of orchestration/automation.py, in the code location of workspace.yaml
# (a `@definitions` module's repository is "__repository__").
AUTOMATION_SENSOR = {"repositoryLocationName": "selloff", "repositoryName": "__repository__",
                     "sensorName": "selloff_automation"}
CHECKS_QUERY = """
query($runId: ID!) { logsForRun(runId: $runId, limit: 5000) { __typename
    ... on EventConnection { events { __typename
        ... on AssetCheckEvaluationEvent { evaluation { checkName success
            assetKey { path } } } } } } }
"""


FINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")


def _wait_for_run(page: Any, server: DagsterDev, run_id: str, label: str) -> dict[str, Any]:
    """Wait for the run to end through the API, then open its page: it must show the final
    status the API gives.

    While the run goes the browser waits on about:blank: the live run page (log stream,
    Gantt chart) kept Chromium busy on most of a core for the whole run, on a machine whose
    other core ran the run itself (or another test). The page is checked once, finished."""
    page.goto("about:blank")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        run = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        if run.get("status") in FINAL_STATUSES:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"{label}: run {run_id} not ended after {RUN_TIMEOUT_S}s ({run}):\n"
                        f"{server.log_tail()}", pytrace=False)
        time.sleep(1)
    page.goto(f"{server.base}/runs/{run_id}")
    final = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    final.wait_for()
    if final.inner_text() != "Success" or run["status"] != "SUCCESS":
        page.screenshot(path=str(SCREENSHOTS / f"failed_{label}.png"))
        pytest.fail(f"{label}: run {run_id} ended {final.inner_text()!r} ({run}); errors:\n"
                    f"{_run_errors(server, run_id)}", pytrace=False)
    # The step panel agrees: every step the API lists succeeded, none errored.
    expect = playwright_sync.expect
    # A finished run's page fetches its whole event log at once: the screenshots that follow
    # show it, not the placeholder (shown with the header's status, so it is there by now).
    expect(page.get_by_text("Loading run logs")).to_be_hidden()
    expect(page.get_by_text(f"Succeeded ({len(run['stepStats'])})", exact=True)).to_be_visible()
    expect(page.get_by_text("Errored (0)", exact=True)).to_be_visible()
    return run


def _launched_run_id(page: Any) -> str:
    """The run id of the run just launched: from the toast's "View" link ("Materialize"),
    or from the run page the launchpad opens. Submitting takes a while on two busy cores."""
    view = page.get_by_role("region", name=re.compile("Notifications")).get_by_role(
        "link", name="View").last
    deadline = time.monotonic() + SUBMIT_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        opened = re.search(r"/runs/([0-9a-f-]{36})", page.url)
        if opened:
            return opened.group(1)
        if view.is_visible():
            href = view.get_attribute("href")
            assert href and re.fullmatch(r"/runs/[0-9a-f-]{36}", href), href
            return href.rsplit("/", 1)[1]
        page.wait_for_timeout(250)
    page.screenshot(path=str(SCREENSHOTS / "failed_launch.png"))
    pytest.fail(f"no run launched after {SUBMIT_TIMEOUT_MS / 1000:.0f}s (page {page.url})")


def _all_runs(server: DagsterDev) -> list[dict[str, Any]]:
    return server.graphql(RUNS_QUERY)["runsOrError"]["results"]


def _wait_until_idle(server: DagsterDev, timeout_s: float = RUN_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every run the instance started (including the automation sensor's) has ended."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = _all_runs(server)
        if all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
            return runs
        time.sleep(3)
    pytest.fail(f"runs still going after {timeout_s}s: {_all_runs(server)}")


def _wait_for_automation_tick(server: DagsterDev, after: float,
                              timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    """The automation sensor's first finished tick that began after `after` (Unix seconds):
    it has seen every materialization before `after` and requested the runs they made due
    (the runs exist from then on, queued)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sensor = server.graphql(SENSOR_TICKS_QUERY, {"selector": AUTOMATION_SENSOR})["sensorOrError"]
        assert sensor["__typename"] == "Sensor", sensor
        done = [t for t in sensor["sensorState"]["ticks"]
                if t["timestamp"] > after and t["status"] != "STARTED"]
        if done:
            return min(done, key=lambda t: t["timestamp"])
        time.sleep(2)
    pytest.fail(f"no automation tick ended within {timeout_s}s after {after}: {sensor}")


def _published_tables(path: Path, into: Path) -> dict[str, Any]:
    """Every raw, marts and analytics table of the published file (read from a copy, as an
    analyst would open it read-only)."""
    import duckdb

    shutil.copyfile(path, into)
    with duckdb.connect(str(into), read_only=True) as con:
        names = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                            "WHERE table_schema IN ('raw', 'marts', 'analytics') ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": con.sql(f"SELECT * FROM {s}.{t}").pl() for s, t in names}


def _launchpad_config(page: Any, yaml_text: str) -> None:
    """Replace the launchpad's config with yaml_text (inserted as text: no auto-indent)."""
    editor = page.locator(".bp5-dialog .CodeMirror").first  # not the page's search box
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(yaml_text)


def _assert_same_tables(first: dict[str, Any], now: dict[str, Any], after: str) -> None:
    from tests.graph_runs import assert_same_table

    assert now.keys() == first.keys(), f"tables after {after}: {sorted(now)} != {sorted(first)}"
    for name, table in first.items():
        assert_same_table(table, now[name], f"{name} after {after}")


def test_ui_journey_materialize_all_refresh_a_range_one_asset(dagster_dev: DagsterDev,
                                                              tmp_path: Path) -> None:
    expect = playwright_sync.expect
    base = dagster_dev.base
    phase = _Phases()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for png in SCREENSHOTS.glob("*.png"):
        png.unlink()
    shot = {name: SCREENSHOTS / f"{name}.png" for name in (
        "1_asset_graph", "2_materialize_all_run", "3_run_checks", "4_launchpad_window",
        "5_window_run", "6_one_asset", "7_runs")}
    timings: dict[str, float] = {}

    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)

            # 1. The asset graph: every layer; "Materialize all", taking the default.
            page.goto(f"{base}/asset-groups")
            phase(f"first page (community dialog skipped: {_dismiss_community_dialog(page)})")
            expect(page.get_by_text("Global asset lineage")).to_be_visible()
            graph = page.locator("svg").filter(has_text="extract").first
            for group in ("extract", "staging", "marts", "analytics", "report", "publish"):
                expect(graph.get_by_text(group, exact=True).first).to_be_visible()
            page.screenshot(path=str(shot["1_asset_graph"]))
            materialize_all = page.get_by_role("button", name=re.compile("Materialize all")).first
            materialize_all.click()
            # No partitions: no dialog to answer; a dialog, if one appeared, is a failure.
            first_id = _launched_run_id(page)
            t0 = time.monotonic()
            phase(f"Materialize all launched {first_id}")
            run = _wait_for_run(page, dagster_dev, first_id, "materialize_all")
            timings["materialize_all"] = time.monotonic() - t0
            page.screenshot(path=str(shot["2_materialize_all_run"]))
            steps = {s["stepKey"] for s in run["stepStats"]}
            assert {"raw__prices_daily", "selloff_dbt_models", "analytics__claim_verdicts",
                    "warehouse__published"} <= steps, steps
            runs = _all_runs(dagster_dev)
            assert [r["runId"] for r in runs] == [first_id], runs  # one run, not a backfill
            phase("Materialize all succeeded")

            # 2. The run page lists the checks of every layer with their results.
            search = page.get_by_placeholder(re.compile("^Filter"))
            for name, shown in (
                    ("gx_suite", r"Check gx_suite succeeded for materialization of raw / "),
                    ("unique_combination_fct_market_cap_daily",
                     r"Check unique_combination_fct_market_cap_daily\S* succeeded for "
                     r"materialization of marts / fct_market_cap_daily"),
                    ("reconciliation", r"Check reconciliation succeeded for materialization of "
                     r"analytics / selloff_rollup")):
                search.fill(f"type:ASSET_CHECK_EVALUATION {name}")
                expect(page.get_by_text(re.compile(shown)).first).to_be_visible()
            search.fill("type:ASSET_CHECK_EVALUATION")
            expect(page.get_by_text(re.compile(r"Check \S+ succeeded")).first).to_be_visible()
            page.screenshot(path=str(shot["3_run_checks"]))
            evaluations = [e["evaluation"] for e in dagster_dev.graphql(
                CHECKS_QUERY, {"runId": first_id})["logsForRun"]["events"] if e.get("evaluation")]
            names = {e["checkName"] for e in evaluations}
            assert "gx_suite" in names and "reconciliation" in names
            assert any(n.startswith("unique_combination_fct_market_cap_daily") for n in names)
            assert len(evaluations) > 100 and all(e["success"] for e in evaluations), [
                e for e in evaluations if not e["success"]]
            phase(f"{len(evaluations)} checks shown, all passed")
            first_tables = _published_tables(dagster_dev.warehouse, tmp_path / "first.duckdb")
            for table in ("marts.fct_market_cap_daily", "analytics.selloff_decomposition",
                          "analytics.claim_verdicts"):
                assert first_tables[table].height > 0, table

            # 3. Refresh a range the user picks: launchpad, refresh window typed in.
            page.goto(f"{base}/asset-groups")
            expect(materialize_all).to_be_visible()
            box = materialize_all.bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] + 14, box["y"] + box["height"] / 2)
            page.get_by_role("menuitem", name=re.compile("Open launchpad")).click()
            expect(page.get_by_text("Launchpad (configure assets)")).to_be_visible()
            _launchpad_config(page, "resources:\n  refresh:\n    config:\n"
                              "      start: '2025-11-17'\n      end: '2025-11-21'\n")
            expect(page.get_by_text("No errors")).to_be_visible()
            page.screenshot(path=str(shot["4_launchpad_window"]))
            page.locator(".bp5-dialog").get_by_role("button").filter(
                has_text=re.compile(r"^Materialize$")).click()
            window_id = _launched_run_id(page)
            _wait_for_run(page, dagster_dev, window_id, "window_refresh")
            page.screenshot(path=str(shot["5_window_run"]))
            prices = dagster_dev.graphql(MATERIALIZATION_QUERY,
                                         {"key": {"path": ["raw", "prices_daily"]}})
            (mat,) = prices["assetOrError"]["assetMaterializations"]
            assert mat["runId"] == window_id
            phase("window refresh succeeded")
            # Unchanged source days: the refresh republishes the same warehouse.
            _assert_same_tables(first_tables, _published_tables(
                dagster_dev.warehouse, tmp_path / "window.duckdb"), "the window refresh")
            phase("window refresh published the first build's tables")

            # 4. One asset from its own page (its parents exist).
            page.goto(f"{base}/assets/analytics/valuation_spread")
            expect(page.get_by_text("Latest materialization")).to_be_visible()
            page.get_by_role("button").filter(has_text=re.compile(r"^Materialize$")).click()
            one_id = _launched_run_id(page)
            run = _wait_for_run(page, dagster_dev, one_id, "one_asset")
            assert {s["stepKey"] for s in run["stepStats"]} == {"analytics__valuation_spread"}
            page.screenshot(path=str(shot["6_one_asset"]))
            phase("one asset succeeded")

            # 5. The automation sensor has its say on the last run (its downstream assets
            # are due), then the Runs page lists every run, all succeeded.
            one_end = next(r for r in _all_runs(dagster_dev) if r["runId"] == one_id)["endTime"]
            tick = _wait_for_automation_tick(dagster_dev, one_end)
            runs = _wait_until_idle(dagster_dev)
            phase(f"automation tick after the one-asset run ({tick['status']}, runs "
                  f"{tick['runIds']}) and its runs ended")
            page.goto(f"{base}/runs")
            for r in runs:  # each run's link is named by its short id ("run 1a2b3c4d")
                expect(page.get_by_role("link", name=re.compile(rf"\b{r['runId'][:8]}$"))
                       ).to_be_visible()
            expect(page.get_by_text("Success", exact=True)).to_have_count(len(runs))
            expect(page.get_by_text("Failure", exact=True)).to_have_count(0)
            page.screenshot(path=str(shot["7_runs"]))
        finally:
            browser.close()

    runs = _wait_until_idle(dagster_dev)
    failed = [r for r in runs if r["status"] != "SUCCESS"]
    assert not failed, f"runs that did not succeed: {failed}"
    _assert_same_tables(first_tables, _published_tables(
        dagster_dev.warehouse, tmp_path / "last.duckdb"), "the one-asset and automation runs")
    for png in shot.values():
        assert png.stat().st_size > 10_000, f"{png} looks empty"
    print(f"[ui test] runs: {len(runs)}; Materialize all took {timings['materialize_all']:.1f}s")
