"""Sell-off windows: the config file, detection on synthetic series, t0/t1 choice."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from selloff.analytics import (
    basket_level_series,
    calendar_trading_days,
    data_trading_days,
    detect_drawdown_windows,
    detect_worst_windows,
    index_level_series,
    named_windows_frame,
    selloff_windows,
    window_bounds,
    window_t0,
    window_t1,
)
from selloff.analytics.baskets import basket_markets
from selloff.analytics.tables import WINDOWS_SCHEMA
from selloff.calendars import trading_days
from selloff.episode import bundled_dir, load_episode
from selloff.markets import MARKETS

D = dt.date
# The AI episode's detection period (its episode.yaml); the engine has no default.
AI_PERIOD = {"search_start": D(2025, 10, 27), "search_end": D(2025, 11, 28),
             "lookback_start": D(2025, 1, 1)}

# --------------------------------------------------------------------------- config

AI = load_episode(bundled_dir() / "ai_selloff_2025")


def test_bundled_ai_episode_windows() -> None:
    cfg = AI.window_config
    assert cfg.main.window_id == "selloff_period"
    assert (cfg.main.start, cfg.main.end) == (D(2025, 10, 27), D(2025, 11, 28))
    by_id = {w.window_id: w for w in cfg.windows}
    assert (by_id["november_2025"].start, by_id["november_2025"].end) == (
        D(2025, 11, 1), D(2025, 11, 30))
    assert (by_id["week_2025_11_03"].start, by_id["week_2025_11_03"].end) == (
        D(2025, 11, 3), D(2025, 11, 7))
    assert by_id["day_2025_11_20"].start == by_id["day_2025_11_20"].end == D(2025, 11, 20)
    assert (cfg.search_start, cfg.search_end) == (D(2025, 10, 27), D(2025, 11, 28))
    assert cfg.drawdown_lookback_start == D(2025, 1, 1)


def test_named_windows_frame_one_row_per_market() -> None:
    frame = named_windows_frame(AI.windows)
    assert frame.schema == pl.Schema(WINDOWS_SCHEMA)
    per_window = frame.group_by("window_id").agg(pl.col("market").sort())
    # Laid over every market of the registry (selloff/markets.py) unless told otherwise.
    assert all(m == sorted(MARKETS) for m in per_window["market"].to_list())
    assert set(frame["kind"]) == {"named"} and set(frame["basis"]) == {"config"}
    assert frame["entity_id"].null_count() == frame.height
    only = named_windows_frame(AI.windows, AI.markets)
    assert set(only["market"]) == set(AI.markets)


# --------------------------------------------------------------------------- detection


def series_from_returns(entity: str, market: str, days: list[dt.date],
                        returns: dict[dt.date, float]) -> pl.DataFrame:
    level, rows = 100.0, []
    for d in days:
        level *= 1 + returns.get(d, 0.0)
        rows.append({"entity_id": entity, "market": market, "trade_date": d, "level": level})
    return pl.DataFrame(rows)


US_DAYS = trading_days("US", D(2025, 10, 1), D(2025, 12, 12))
JP_DAYS = trading_days("JP", D(2025, 10, 1), D(2025, 12, 12))


def test_worst_day_and_week_us() -> None:
    assert D(2025, 11, 27) not in US_DAYS  # Thanksgiving
    returns = {
        D(2025, 10, 27): -0.20,  # before the search start (29 Oct): neither day nor week count
        D(2025, 11, 10): 0.02,
        D(2025, 11, 12): -0.05,  # worst day in the period; its week is -3.1 %
        D(2025, 11, 24): -0.03,  # holiday week: -3 % x 3 = -8.7 %, the worst week
        D(2025, 11, 25): -0.03,
        D(2025, 11, 26): -0.03,
        D(2025, 12, 1): -0.30,   # after the search end
    }
    s = series_from_returns("US:SPX", "US", US_DAYS, returns)
    out = detect_worst_windows(s, search_start=D(2025, 10, 29), search_end=D(2025, 11, 28))
    assert out.schema == pl.Schema(WINDOWS_SCHEMA)
    rows = {r["window_id"]: r for r in out.iter_rows(named=True)}
    assert set(rows) == {"worst_day:US:SPX", "worst_week:US:SPX"}
    day, week = rows["worst_day:US:SPX"], rows["worst_week:US:SPX"]
    assert (day["start_date"], day["end_date"]) == (D(2025, 11, 12), D(2025, 11, 12))
    assert (week["start_date"], week["end_date"]) == (D(2025, 11, 24), D(2025, 11, 28))
    assert day["kind"] == "worst_day" and week["kind"] == "worst_week"
    assert day["market"] == "US" and day["entity_id"] == "US:SPX"
    assert "index return" in day["basis"]

    # The straddling week counts once the search period covers it whole.
    out = detect_worst_windows(s, search_start=D(2025, 10, 27), search_end=D(2025, 11, 28))
    week = out.filter(pl.col("kind") == "worst_week").row(0, named=True)
    assert (week["start_date"], week["end_date"]) == (D(2025, 10, 27), D(2025, 10, 31))
    # ... and so does its Monday as a day: its return starts at the previous Friday's close.
    day = out.filter(pl.col("kind") == "worst_day").row(0, named=True)
    assert day["start_date"] == D(2025, 10, 27)


def test_worst_week_starting_after_a_holiday_jp() -> None:
    assert D(2025, 11, 3) not in JP_DAYS  # Culture Day (Monday)
    s = series_from_returns("JP:N225", "JP", JP_DAYS, {D(2025, 11, 5): -0.10})
    out = detect_worst_windows(s, search_start=D(2025, 10, 27), search_end=D(2025, 11, 28))
    week = out.filter(pl.col("kind") == "worst_week").row(0, named=True)
    assert (week["start_date"], week["end_date"]) == (D(2025, 11, 4), D(2025, 11, 7))
    # t0 of that week is the last close of the previous week.
    days = pl.DataFrame({"market": "JP", "trade_date": JP_DAYS})
    assert window_t0(week["start_date"], "JP", days) == D(2025, 10, 31)


def test_week_return_is_from_previous_week_last_close() -> None:
    # A week of +5 % then -5 % daily moves ends below the previous Friday: only the close
    # to close over the week matters, not the intra-week path.
    days = trading_days("US", D(2025, 10, 20), D(2025, 11, 14))
    returns = {D(2025, 11, 3): 0.05, D(2025, 11, 4): 0.05, D(2025, 11, 5): -0.12,
               D(2025, 11, 10): -0.06}
    s = series_from_returns("X", "US", days, returns)
    out = detect_worst_windows(s, search_start=D(2025, 10, 27), search_end=D(2025, 11, 14))
    week = out.filter(pl.col("kind") == "worst_week").row(0, named=True)
    # week of 3 Nov: 1.05 * 1.05 * 0.88 - 1 = -2.98 %; week of 10 Nov: -6 %.
    assert week["start_date"] == D(2025, 11, 10)


def test_drawdown_trough_in_period_peak_before() -> None:
    days = trading_days("US", D(2025, 1, 2), D(2025, 12, 31))
    returns = {
        D(2025, 4, 4): -0.30,   # a deeper fall earlier in the year (not in the search period)
        D(2025, 5, 12): 0.50,   # recovery to a new high
        D(2025, 10, 29): 0.02,  # the peak close
        D(2025, 10, 30): -0.01,
        D(2025, 11, 4): -0.05,
        D(2025, 11, 13): -0.04,
        D(2025, 11, 20): -0.03,  # the trough close
        D(2025, 11, 24): 0.04,
        D(2025, 12, 10): -0.40,  # after the search end
    }
    s = series_from_returns("B", "US", days, returns)
    out = detect_drawdown_windows(s, **AI_PERIOD)
    row = out.row(0, named=True)
    assert row["window_id"] == "drawdown:basket:B"
    assert row["kind"] == "drawdown"
    assert (row["start_date"], row["end_date"]) == (D(2025, 10, 30), D(2025, 11, 20))
    trading = pl.DataFrame({"market": "US", "trade_date": days})
    assert window_t0(row["start_date"], "US", trading) == D(2025, 10, 29)  # the peak close
    assert "since 2025-01-01" in row["basis"]


def test_drawdown_peak_on_a_plateau_is_its_last_day() -> None:
    # Several closes at the running maximum: the latest one is the peak (tightest window).
    days = trading_days("US", D(2025, 10, 20), D(2025, 11, 28))
    s = series_from_returns("B", "US", days, {D(2025, 10, 29): 0.02, D(2025, 11, 4): -0.05})
    row = detect_drawdown_windows(s, **AI_PERIOD).row(0, named=True)
    assert (row["start_date"], row["end_date"]) == (D(2025, 11, 4), D(2025, 11, 4))


def test_drawdown_peak_before_search_period_and_none_when_rising() -> None:
    days = trading_days("KR", D(2025, 9, 1), D(2025, 11, 28))
    s = pl.concat([
        series_from_returns("FALL", "KR", days, {D(2025, 10, 1): 0.10, D(2025, 10, 2): -0.02,
                                                  D(2025, 11, 10): -0.10}),
        series_from_returns("RISE", "KR", days, {d: 0.01 for d in days}),
    ])
    out = detect_drawdown_windows(s, **AI_PERIOD)
    assert out["entity_id"].to_list() == ["FALL"]
    row = out.row(0, named=True)
    # Peak close 1 Oct; the next KR session is 2 Oct; trough = 10 Nov.
    assert (row["start_date"], row["end_date"]) == (D(2025, 10, 2), D(2025, 11, 10))


# --------------------------------------------------------------------------- baskets


def _caps(rows: list[tuple[str, dt.date, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"security_id": pl.Utf8, "trade_date": pl.Date,
                                      "market_cap_usd": pl.Float64}, orient="row")


def test_basket_level_chain_links_over_missing_members() -> None:
    d1, d2, d3, d4 = D(2025, 11, 3), D(2025, 11, 4), D(2025, 11, 5), D(2025, 11, 6)
    caps = _caps([
        ("US:A", d1, 100.0), ("US:A", d2, 100.0), ("US:A", d3, 100.0), ("US:A", d4, 100.0),
        ("US:B", d1, 100.0), ("US:B", d2, 100.0), ("US:B", d3, None), ("US:B", d4, 120.0),
    ])
    members = pl.DataFrame({"basket_id": ["X", "X"], "security_id": ["US:A", "US:B"]})
    s = basket_level_series(caps, members)
    # The level is the chain-linked cap anchored at the last day (220 on d4); relative to
    # the first day it is the chain of steps.
    levels = dict(zip(s["trade_date"].to_list(), (s["level"] / s["level"][0]).to_list(),
                      strict=True))
    assert s["level"][-1] == pytest.approx(220.0)
    # B has no value on d3: the basket does not drop by half, it stays flat ...
    assert levels[d3] == pytest.approx(1.0)
    # ... and B's move from d2 to d4 lands on d4: (100 + 120) / (100 + 100).
    assert levels[d4] == pytest.approx(1.1)
    assert s.filter(pl.col("trade_date") == d3)["n_members"].item() == 1


def test_basket_member_joining_later_causes_no_jump() -> None:
    d1, d2, d3 = D(2025, 11, 3), D(2025, 11, 4), D(2025, 11, 5)
    caps = _caps([
        ("US:A", d1, 100.0), ("US:A", d2, 110.0), ("US:A", d3, 110.0),
        ("US:B", d1, 900.0), ("US:B", d2, 900.0), ("US:B", d3, 450.0),
    ])
    members = pl.DataFrame({"basket_id": ["X", "X"], "security_id": ["US:A", "US:B"],
                            "valid_from": [None, d2], "valid_to": [None, None]},
                           schema_overrides={"valid_from": pl.Date, "valid_to": pl.Date})
    s = basket_level_series(caps, members)
    levels = (s["level"] / s["level"][0]).to_list()
    # d2: B joins; the step counts its move from d1 (flat), A +10 %: (110+900)/(100+900).
    assert levels[1] == pytest.approx(1010 / 1000)
    # d3: B halves: (110 + 450) / (110 + 900).
    assert levels[2] == pytest.approx(1010 / 1000 * 560 / 1010)


def test_basket_market_mixed_is_all() -> None:
    members = pl.DataFrame({"basket_id": ["M", "M", "U"],
                            "security_id": ["US:A", "KR:005930", "US:B"]})
    assert dict(basket_markets(members).iter_rows()) == {"M": "ALL", "U": "US"}


def test_basket_validity_columns_read_as_null_type() -> None:
    # A CSV with empty validity columns arrives as Null-typed columns.
    members = pl.DataFrame({"basket_id": ["X"], "security_id": ["US:A"],
                            "valid_from": [None], "valid_to": [None]})
    caps = _caps([("US:A", D(2025, 11, 3), 1.0), ("US:A", D(2025, 11, 4), 2.0)])
    assert basket_level_series(caps, members)["level"].to_list() == [1.0, 2.0]


def test_selloff_windows_end_to_end() -> None:
    cfg = AI.window_config
    idx_days = trading_days("KR", D(2025, 10, 1), D(2025, 11, 28))
    kospi = series_from_returns("KR:KOSPI", "KR", idx_days, {D(2025, 11, 5): -0.04})
    index_levels = kospi.select(pl.col("entity_id").alias("index_id"), "trade_date",
                                pl.col("level").alias("close"))  # no market column: prefix
    us = trading_days("US", D(2025, 10, 1), D(2025, 11, 28))
    a = series_from_returns("US:A", "US", us, {D(2025, 11, 13): -0.1})
    caps = a.select(pl.col("entity_id").alias("security_id"), "trade_date",
                    (pl.col("level") * 1e9).alias("market_cap_usd"))
    members = pl.DataFrame({"basket_id": ["US_AI_BIG8"], "security_id": ["US:A"]})

    out = selloff_windows(cfg, index_levels, caps, members)
    assert out.schema == pl.Schema(WINDOWS_SCHEMA)
    assert out.select("window_id", "market").is_unique().all()
    rows = {(r["window_id"], r["market"]): r for r in out.iter_rows(named=True)}
    assert rows[("worst_day:KR:KOSPI", "KR")]["start_date"] == D(2025, 11, 5)
    assert rows[("worst_week:KR:KOSPI", "KR")]["start_date"] == D(2025, 11, 3)
    assert rows[("worst_day:basket:US_AI_BIG8", "US")]["end_date"] == D(2025, 11, 13)
    assert rows[("worst_week:basket:US_AI_BIG8", "US")]["entity_id"] == "US_AI_BIG8"
    dd = rows[("drawdown:basket:US_AI_BIG8", "US")]
    assert (dd["start_date"], dd["end_date"]) == (D(2025, 11, 13), D(2025, 11, 13))
    assert "basket market cap USD" in dd["basis"]
    assert rows[("selloff_period", "JP")]["kind"] == "named"

    # Missing inputs only drop the detected windows.
    named_only = selloff_windows(cfg, None, None, None)
    assert set(named_only["kind"]) == {"named"}


def test_index_series_uses_market_column_or_prefix() -> None:
    levels = pl.DataFrame({"index_id": ["CN:399006.SZ", "CN:399006.SZ"],
                           "trade_date": [D(2025, 11, 3), D(2025, 11, 4)],
                           "close": [100.0, None]})
    s = index_level_series(levels)
    assert s.height == 1 and s["market"].item() == "CN"


# --------------------------------------------------------------------------- t0 / t1


def test_t0_across_holidays() -> None:
    days = calendar_trading_days(("US", "KR"), D(2025, 9, 1), D(2025, 12, 31))
    # US: Thanksgiving 27 Nov; a window starting on the 28th begins at the 26th's close.
    assert window_t0(D(2025, 11, 28), "US", days) == D(2025, 11, 26)
    assert window_t1(D(2025, 11, 27), "US", days) == D(2025, 11, 26)
    # KR: 3-9 Oct (National Foundation Day, Chuseok, Hangul Day) are holidays.
    assert window_t0(D(2025, 10, 10), "KR", days) == D(2025, 10, 2)
    assert window_t0(D(2025, 1, 1), "KR", days) is None


def test_window_bounds_expands_all_and_handles_no_session() -> None:
    days = calendar_trading_days(("US", "JP"), D(2025, 10, 1), D(2025, 12, 31))
    windows = pl.DataFrame({
        "window_id": ["thanksgiving", "mixed"],
        "market": ["US", "ALL"],
        "start_date": [D(2025, 11, 27), D(2025, 11, 24)],
        "end_date": [D(2025, 11, 27), D(2025, 11, 28)],
    })
    b = {(r["window_id"], r["market"]): (r["t0_date"], r["t1_date"])
         for r in window_bounds(windows, days).iter_rows(named=True)}
    assert b[("thanksgiving", "US")] == (D(2025, 11, 26), D(2025, 11, 26))  # no session
    assert b[("mixed", "US")] == (D(2025, 11, 21), D(2025, 11, 28))
    # 24 Nov is a JP holiday too, which does not change t0 (the 21st either way).
    assert b[("mixed", "JP")] == (D(2025, 11, 21), D(2025, 11, 28))
    assert set(b) == {("thanksgiving", "US"), ("mixed", "US"), ("mixed", "JP")}


def test_data_trading_days_from_closes() -> None:
    mc = pl.DataFrame({"security_id": ["US:A", "US:A", "JP:1", "US:B"],
                       "trade_date": [D(2025, 11, 3), D(2025, 11, 4), D(2025, 11, 4),
                                      D(2025, 11, 5)],
                       "close": [1.0, 1.0, 1.0, None]})
    days = data_trading_days(mc)
    assert days.rows() == [("JP", D(2025, 11, 4)), ("US", D(2025, 11, 3)),
                           ("US", D(2025, 11, 4))]
