"""The Dagster UI in a real browser (issue #4).

Starts `dagster dev` on this repo's workspace with a private DAGSTER_HOME and warehouse,
drives Debian's Chromium through Playwright, checks that every layer (extract, dbt staging
and marts, analytics) is in the asset graph and the catalog, materializes `raw/securities`
(with its blocking GX check) by clicking "Materialize", and waits for the run to succeed.
Screenshots: reports/screenshots/dagster_ui.png (asset lineage) and
reports/screenshots/dagster_ui_run.png (the succeeded run).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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
from urllib.parse import quote

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
RUN_TIMEOUT_S = 480
UI_TIMEOUT_MS = 60_000

# One asset per layer; the catalog must list each (asset key, group).
LAYER_ASSETS = [
    (("raw", "prices_daily"), "extract"),
    (("staging", "stg_prices_daily"), "staging"),
    (("marts", "fct_market_cap_daily"), "marts"),
    (("analytics", "selloff_decomposition"), "analytics"),
]
# The path from one extract asset to one analytics asset, through staging and marts.
LINEAGE_SELECTION = '+key:"analytics/selloff_decomposition" and key:"raw/prices_daily"+'
MATERIALIZE_KEY = ("raw", "securities")
DEMO_SECURITIES = 20

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ui,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} not found (Debian package `chromium`; .ci/run installs it)"),
]
playwright_sync = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (it is in the `dev` extra)",
)


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
        (self.home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
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


def _expand_all_groups(page: Any) -> None:
    page.get_by_role("button", name="settings", exact=True).click()
    expand = page.get_by_role("menuitem", name=re.compile("Expand all groups"))
    collapse = page.get_by_role("menuitem", name=re.compile("Collapse all groups"))
    expand.or_(collapse).wait_for()
    if expand.is_visible():
        expand.click()
    page.keyboard.press("Escape")
    expand.or_(collapse).wait_for(state="hidden")


def _search_catalog(page: Any, base: str, term: str) -> None:
    page.goto(f"{base}/assets")
    page.locator(".CodeMirror").first.click()  # the asset-selection search box
    page.keyboard.type(term)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"asset-selection="))


def test_ui_shows_every_layer_and_materializes_from_the_browser(dagster_dev: DagsterDev) -> None:
    expect = playwright_sync.expect
    base = dagster_dev.base
    phase = _Phases()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    graph_png = SCREENSHOTS / "dagster_ui.png"
    run_png = SCREENSHOTS / "dagster_ui_run.png"
    for png in (graph_png, run_png):
        png.unlink(missing_ok=True)

    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)

            # 1. Global asset lineage: one node per group, every layer present.
            page.goto(f"{base}/asset-groups")
            phase(f"first page (community dialog skipped: {_dismiss_community_dialog(page)})")
            expect(page.get_by_text("Global asset lineage")).to_be_visible()
            graph = page.locator("svg").filter(has_text="extract").first
            for group in ("extract", "staging", "marts", "analytics", "report", "publish"):
                expect(graph.get_by_text(group, exact=True).first).to_be_visible()

            # 2. One path extract -> staging -> marts -> analytics, groups expanded: screenshot.
            page.goto(f"{base}/asset-groups~{quote(LINEAGE_SELECTION, safe='')}")
            expect(page.get_by_text("Global asset lineage")).to_be_visible()
            _expand_all_groups(page)
            graph = page.locator("svg").filter(has_text="prices_daily").first
            for label in ("extract", "staging", "marts", "analytics", "prices_daily",
                          "stg_prices_daily", "selloff_windows"):
                expect(graph.get_by_text(label, exact=True).first).to_be_visible()
            page.screenshot(path=str(graph_png))
            phase("asset graph")

            # 3. The catalog search finds one asset of each layer, in its group.
            for key, group in LAYER_ASSETS:
                _search_catalog(page, base, key[-1])
                path = "/".join(key)
                link = page.locator(f'a[href="/assets/{path}"]')
                expect(link).to_be_visible()
                expect(link).to_contain_text(" / ".join(key))
                group_link = page.locator(f'a[href*="{quote(path, safe="")}"]').filter(
                    has_text=re.compile(rf"^{group}$"))
                expect(group_link).to_be_visible()
            phase("catalog search")

            # 4. Materialize raw/securities from its asset page.
            page.goto(f"{base}/assets/{'/'.join(MATERIALIZE_KEY)}")
            expect(page.get_by_text("Latest materialization")).to_be_visible()
            expect(page.get_by_text("Never materialized").first).to_be_visible()
            page.get_by_role("button").filter(has_text=re.compile(r"^Materialize$")).click()
            view = page.get_by_role("region", name=re.compile("Notifications")).get_by_role(
                "link", name="View")
            expect(view).to_be_visible()
            href = view.get_attribute("href")
            assert href and re.fullmatch(r"/runs/[0-9a-f-]{36}", href), href
            run_id = href.rsplit("/", 1)[1]
            phase(f"launched run {run_id}")

            # 5. The run page: wait for a final status, then confirm through the API.
            page.goto(f"{base}{href}")
            final = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
            final.wait_for(timeout=RUN_TIMEOUT_S * 1000)
            phase(f"run finished: {final.inner_text()}")
            run = dagster_dev.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
            if final.inner_text() != "Success" or run.get("status") != "SUCCESS":
                page.screenshot(path=str(run_png))
                pytest.fail(f"run {run_id} launched from the UI ended {final.inner_text()!r} "
                            f"({run}); errors:\n{_run_errors(dagster_dev, run_id)}",
                            pytrace=False)
            steps = {s["stepKey"]: s["status"] for s in run["stepStats"]}
            assert steps == {"raw__securities": "SUCCESS", "raw__securities_gx_suite": "SUCCESS"}
            expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()
            page.screenshot(path=str(run_png))
        finally:
            browser.close()
    phase("screenshots taken, browser closed")

    # 6. The materialization landed in the private warehouse, with the demo's size.
    data = dagster_dev.graphql(MATERIALIZATION_QUERY, {"key": {"path": list(MATERIALIZE_KEY)}})
    (mat,) = data["assetOrError"]["assetMaterializations"]
    assert mat["runId"] == run_id
    rows = {m["label"]: m.get("intValue") for m in mat["metadataEntries"]}
    assert rows["rows"] == DEMO_SECURITIES
    (check,) = data["assetCheckExecutions"]
    assert check["runId"] == run_id and check["evaluation"]["success"] is True, check
    build = dagster_dev.warehouse.parent / "build" / dagster_dev.warehouse.name
    assert build.exists(), f"the run did not write {build}"
    for png in (graph_png, run_png):
        assert png.stat().st_size > 10_000, f"{png} looks empty"
    phase("materialization and check confirmed")
