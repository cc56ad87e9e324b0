"""The span of an episode, and the ledger that decides which episodes an analytics asset
recomputes in a windowed refresh (selloff.episode.episode_span, selloff.refresh_state)."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import duckdb
import polars as pl

from selloff import refresh_state
from selloff.episode import (
    BETA_LOOKBACK_CALENDAR,
    FACTS_LOOKAHEAD,
    T0_SLACK,
    bundled_dir,
    definition_hash,
    episode_span,
    parse_episode,
    read_yaml,
)


def _tariff() -> dict:
    return read_yaml(bundled_dir() / "tariff_shock_2025" / "episode.yaml")


def _kr_flow_claim(month: str) -> dict:
    ai = read_yaml(bundled_dir() / "ai_selloff_2025" / "episode.yaml")
    claim = copy.deepcopy(next(c for c in ai["claims"] if c["metric"] == "flow_month_total"))
    claim["id"] = "X01"
    claim["params"]["month"] = month
    return claim


def test_span_ends_at_the_last_day_any_computation_reads() -> None:
    raw = _tariff()
    episode = parse_episode(raw, "tariff")
    # Every date the file gives, read straight from it: the detection search and lookback,
    # the named windows, the claims' search periods (the defaults' one included).
    periods = [raw["defaults"]["search_period"]] + [
        c["params"]["search_period"] for c in raw["claims"]
        if isinstance(c.get("params"), dict) and "search_period" in c["params"]]
    ends = [raw["detection"]["search_end"], *(w["end"] for w in raw["windows"]),
            *(p["end"] for p in periods)]
    starts = [raw["detection"]["drawdown_lookback_start"], raw["detection"]["search_start"],
              *(w["start"] for w in raw["windows"]), *(p["start"] for p in periods)]
    span = episode_span(episode)
    assert span.last == max(ends) == dt.date(2025, 4, 25)
    assert span.first <= min(starts) - T0_SLACK - BETA_LOOKBACK_CALENDAR

    # A claim on a month's flows reads that whole month: the span reaches its last day.
    raw["claims"].append(_kr_flow_claim("2025-06"))
    assert episode_span(parse_episode(raw, "tariff")).last == dt.date(2025, 6, 30)


def test_a_change_reaches_a_span_iff_it_starts_before_its_end() -> None:
    span = episode_span(parse_episode(_tariff(), "tariff"))
    assert span.touched_by(None)                         # everything changed
    assert span.touched_by(dt.date(2025, 4, 25))         # its last day
    assert span.touched_by(dt.date(2020, 1, 2))          # before it: carried forward into it
    assert span.touched_by(dt.date(2025, 4, 25) + FACTS_LOOKAHEAD)  # may re-classify a step in it
    assert not span.touched_by(dt.date(2025, 4, 26) + FACTS_LOOKAHEAD)


def test_definition_hash_follows_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "tariff_shock_2025"
    folder.mkdir()
    text = (bundled_dir() / "tariff_shock_2025" / "episode.yaml").read_text()
    (folder / "episode.yaml").write_text(text)
    first = definition_hash(parse_episode(_tariff(), "t", path=folder))
    (folder / "episode.yaml").write_text(text + "\n# an edit\n")
    assert definition_hash(parse_episode(_tariff(), "t", path=folder)) != first


def test_plan_and_replace_keep_untouched_episodes_rows(tmp_path: Path) -> None:
    early = parse_episode(_tariff(), "tariff")                       # span ends 2025-04-25
    late_raw = _tariff()
    late_raw["id"] = "late_2025"
    late_raw["claims"].append(_kr_flow_claim("2025-11"))               # span ends 2025-11-30
    late = parse_episode(late_raw, "late")
    eps = (early, late)
    table = ("analytics", "t")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        # Nothing computed yet: every episode.
        plan = refresh_state.plan_episodes(con, "a", eps, [table])
        assert set(plan.recompute) == {early.episode_id, late.episode_id} and not plan.kept
        first = pl.DataFrame({"episode_id": [early.episode_id, late.episode_id], "v": [1, 2]})
        assert refresh_state.replace_episodes(con, *table, first, plan) == 2
        refresh_state.mark_done(con, plan, eps)

        # A windowed landing from 2025-06-02: only the episode whose span reaches it.
        refresh_state.record_landing(con, "run2", "prices_daily", dt.date(2025, 6, 2))
        plan = refresh_state.plan_episodes(con, "a", eps, [table])
        assert plan.recompute == (late.episode_id,) and plan.kept == (early.episode_id,)
        assert "prices_daily changed from 2025-06-02" in plan.reasons[late.episode_id]
        new = pl.DataFrame({"episode_id": [late.episode_id], "v": [20]})
        assert refresh_state.replace_episodes(con, *table, new, plan) == 2
        refresh_state.mark_done(con, plan, eps)
        got = con.sql("SELECT * FROM analytics.t ORDER BY v").pl()
        assert got.rows() == [(early.episode_id, 1), (late.episode_id, 20)]

        # Nothing landed since: nothing to recompute.
        plan = refresh_state.plan_episodes(con, "a", eps, [table])
        assert plan.recompute == () and set(plan.kept) == {early.episode_id, late.episode_id}

        # Reference data whose content changed: every episode.
        refresh_state.record_landing(con, "run3", "securities", None)
        plan = refresh_state.plan_episodes(con, "a", eps, [table])
        assert set(plan.recompute) == {early.episode_id, late.episode_id}

        # An episode no longer configured loses its rows; the kept one keeps them.
        refresh_state.mark_done(con, plan, eps)
        plan = refresh_state.plan_episodes(con, "a", (early,), [table])
        refresh_state.replace_episodes(con, *table, pl.DataFrame(), plan)
        assert con.sql("SELECT * FROM analytics.t").pl().rows() == [(early.episode_id, 1)]


def test_content_hash_ignores_row_order_and_sees_a_changed_value(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert refresh_state.content_hash(con, "raw", "s") is None
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.s AS SELECT * FROM (VALUES ('a', 1), ('b', 2)) t(k, v)")
        h = refresh_state.content_hash(con, "raw", "s")
        con.execute("CREATE OR REPLACE TABLE raw.s AS SELECT * FROM (VALUES ('b', 2), ('a', 1)) t(k, v)")
        assert refresh_state.content_hash(con, "raw", "s") == h
        con.execute("UPDATE raw.s SET v = 3 WHERE k = 'b'")
        assert refresh_state.content_hash(con, "raw", "s") != h


def test_window_rows_keeps_the_window_and_what_the_gate_must_see() -> None:
    from selloff.sources.base import window_rows

    part = pl.DataFrame({
        "security_id": ["US:A", "US:A", "CN:B", "US:C", "nocolon", "US:D"],
        "trade_date": ["2025-12-31", "2025-12-30", "2025-12-31", "31/12/2025", "2025-12-31",
                       None],
        "close": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    })
    keep = window_rows("trade_date", "security_id", dt.date(2025, 12, 31),
                       dt.date(2025, 12, 31), ("US",))
    # In: the US row of the day; kept for the gate to reject with its row and rule: an
    # unreadable date, a malformed id, a missing date. Out: another day, another market.
    assert keep(part)["close"].to_list() == [1.0, 4.0, 5.0, 6.0]
    typed = part.with_columns(pl.col("trade_date").str.to_date("%Y-%m-%d", strict=False))
    assert keep(typed.filter(pl.col("close") != 4.0))["close"].to_list() == [1.0, 5.0, 6.0]
    every = window_rows("trade_date", None, dt.date(2025, 12, 30), dt.date(2025, 12, 31))
    assert every(part)["close"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert keep(part.drop("trade_date")).height == part.height
