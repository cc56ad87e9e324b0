"""Market freshness (selloff/freshness.py, assets/extract/freshness.py) and its alert.

Deadlines come from the market registry; the expected sessions here come from
exchange_calendars directly, not from the code under test."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selloff.freshness import due_session, market_freshness, replay_now, session_deadline
from selloff.markets import MARKETS, REGISTRY, market, market_of_expr
from tests.xcals_child import calendar_facts

NY = ZoneInfo("America/New_York")


def _sessions(code: str, start: str, end: str) -> list[dt.date]:
    return list(calendar_facts(market(code).calendar, "2018-01-01", start, end).sessions)


def test_a_holiday_is_not_late_and_a_missing_session_is() -> None:
    # Thanksgiving 2025 (Thu 27 Nov): NYSE closed. At 19:30 New York time that evening the
    # due US session is Wednesday's, so data up to Wednesday is fresh.
    assert dt.date(2025, 11, 27) not in _sessions("US", "2025-11-24", "2025-11-28")
    evening = dt.datetime(2025, 11, 27, 19, 30, tzinfo=NY)
    assert due_session("US", evening) == dt.date(2025, 11, 26)
    assert not market_freshness("US", dt.date(2025, 11, 26), evening).late
    stale = market_freshness("US", dt.date(2025, 11, 25), evening)
    assert stale.late and stale.missing_sessions == 1
    assert "2025-11-26 was due" in stale.describe("prices_daily")
    # The same Wednesday before its deadline (close 16:00 + 30 min + 1 h = 17:30): Tuesday
    # is the due session, and data up to Tuesday is not late.
    before = dt.datetime(2025, 11, 26, 17, 29, tzinfo=NY)
    after = dt.datetime(2025, 11, 26, 17, 30, tzinfo=NY)
    assert due_session("US", before) == dt.date(2025, 11, 25)
    assert due_session("US", after) == dt.date(2025, 11, 26)
    # A market absent from the source is not tracked, so never late.
    assert not market_freshness("TW", None, evening).late


@settings(max_examples=60, deadline=None)
@given(code=st.sampled_from(MARKETS),
       when=st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2026, 6, 30),
                         timezones=st.just(dt.UTC)))
def test_due_session_is_the_newest_session_past_its_deadline(code: str, when: dt.datetime) -> None:
    m = market(code)
    tz = ZoneInfo(m.timezone)
    sessions = _sessions(code, "2023-12-01", "2026-07-31")
    # Independently: a session's deadline is its local date at close + delay + grace.
    past = [s for s in sessions
            if dt.datetime.combine(s, m.close, tzinfo=tz) + m.refresh_delay + m.freshness_grace
            <= when]
    assert due_session(code, when) == past[-1]


@pytest.mark.parametrize("code", MARKETS)
def test_every_deadline_falls_in_its_sessions_utc_day(code: str) -> None:
    # replay_now (the end of the data's newest UTC day) relies on it for every market.
    for s in _sessions(code, "2025-01-01", "2025-12-31"):
        assert session_deadline(code, s).date() == s, (code, s)
    assert replay_now({"US": dt.date(2025, 11, 28), "JP": dt.date(2025, 11, 27)}) == \
        dt.datetime(2025, 11, 28, 23, 59, 59, tzinfo=dt.UTC)


# ------------------------------------------------------------- a snapshot missing a session

LATE = "KR"


@pytest.fixture(scope="module")
def late_snapshot_run(tmp_path_factory) -> tuple[Path, dict[str, dt.date], dg.DagsterInstance, object]:
    """The demo market as a snapshot whose last KR session is missing from the daily prices
    and index levels; its raw layer landed by a real run on a real instance."""
    from orchestration.definitions import build_definitions
    from selloff.settings import settings_from_env
    from selloff.sources.demo import export_demo_snapshot

    root = tmp_path_factory.mktemp("fresh")
    snap = export_demo_snapshot(root / "demo", n_securities=12)
    newest_kr: dict[str, dt.date] = {}
    for dataset, id_col in (("prices_daily", "security_id"), ("index_levels_daily", "index_id")):
        path = snap / f"{dataset}.parquet"
        df = pl.read_parquet(path)
        kr = market_of_expr(id_col) == LATE
        last = df.filter(kr)["trade_date"].max()
        newest_kr[dataset] = last
        df.filter(~(kr & (pl.col("trade_date") == last))).write_parquet(path)
    defs = build_definitions(settings_from_env({
        "SELLOFF_WAREHOUSE": str(root / "warehouse" / "selloff.duckdb"),
        "SELLOFF_SOURCE": "snapshot", "SELLOFF_SNAPSHOT_DIR": str(snap)}))
    (root / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(root / "dagster_home"))
    keys = [dg.AssetKey(["raw", d]) for d in
            ("securities", "indexes", "prices_daily", "index_levels_daily")]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=keys, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return snap, newest_kr, instance, result


@pytest.mark.slow
def test_the_market_missing_its_last_session_is_late(late_snapshot_run) -> None:
    snap, newest_kr, _, result = late_snapshot_run
    evaluations = {(e.asset_key.path[-1], e.check_name): e
                   for e in result.get_asset_check_evaluations() if e.check_name.startswith("fresh_")}
    assert len(evaluations) == 2 * len(REGISTRY)
    for (dataset, check), ev in evaluations.items():
        df = pl.read_parquet(snap / f"{dataset}.parquet")
        id_col = "security_id" if dataset == "prices_daily" else "index_id"
        newest = df.group_by(market_of_expr(id_col).alias("m")).agg(pl.col("trade_date").max())
        by_market = dict(newest.iter_rows())
        code = check.removeprefix("fresh_").upper()
        if code == LATE:
            # the session removed from the snapshot is the one due, the one before is newest
            assert not ev.passed, ev.description
            assert ev.metadata["due_session"].value == str(newest_kr[dataset])
            assert ev.metadata["newest_session"].value == str(by_market[LATE])
            assert ev.metadata["missing_sessions"].value == 1
            assert f"{newest_kr[dataset]} was due" in ev.description
        else:
            assert ev.passed, ev.description
            if code in by_market:
                assert ev.metadata["newest_session"].value == str(by_market[code])


@pytest.mark.slow
def test_a_failed_freshness_check_alerts_once(late_snapshot_run) -> None:
    from orchestration.alerts import freshness_alert
    from selloff.alerts import AlertChannel

    _, newest_kr, instance, _ = late_snapshot_run
    log = Path(instance.root_directory) / "alerts.log"
    log.unlink(missing_ok=True)
    context = dg.build_sensor_context(instance=instance, resources={"alerts": AlertChannel()})
    freshness_alert(context)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2, lines
    for line, dataset in zip(sorted(lines, key=lambda s: "index" not in s),
                             ("index_levels_daily", "prices_daily"), strict=True):
        at, kind, subject, detail, link = line.split("\t")
        assert kind == "freshness"
        assert subject == f"raw/{dataset}:fresh_kr failed"
        assert f"{newest_kr[dataset]} was due" in detail
        assert link.endswith(f"raw/{dataset}?view=checks")
    # the same evaluations do not alert again on the next tick
    again = dg.build_sensor_context(instance=instance, cursor=context.cursor,
                                    resources={"alerts": AlertChannel()})
    freshness_alert(again)
    assert len(log.read_text(encoding="utf-8").splitlines()) == 2
