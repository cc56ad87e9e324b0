"""The findings SQL on small frames: what is a finding and what is not."""

from __future__ import annotations

import datetime as dt

import polars as pl

from selloff.quality.findings import FINDINGS_SCHEMA, data_quality_findings

DAYS = [dt.date(2025, 11, 3) + dt.timedelta(days=i) for i in range(12)]


def _prices(series: dict[str, list[float]]) -> pl.DataFrame:
    return pl.DataFrame([{"security_id": sid, "trade_date": DAYS[i], "close": c}
                         for sid, closes in series.items() for i, c in enumerate(closes)])


def _kinds(findings: pl.DataFrame) -> list[tuple[str, str]]:
    return sorted(findings.select("entity", "kind").iter_rows())


def test_price_spike_that_reverts_is_a_finding_a_split_is_not() -> None:
    prices = _prices({
        # x1.8 for two sessions, then back within 5 % of 100
        "US:SPIKE": [100, 101, 180, 182, 102, 101, 100, 99, 100, 101, 100, 102],
        # a real 2:1 split in raw closes: halves and stays
        "US:SPLIT": [100, 101, 50.5, 51, 50, 50.2, 50.1, 50.3, 50, 50.4, 50.2, 50.1],
        # -30 % and no return: a crash, not a glitch
        "US:CRASH": [100, 101, 70, 71, 72, 70, 69, 70.5, 71, 70, 70.2, 70.1],
    })
    f = data_quality_findings(None, prices, None)
    assert _kinds(f) == [("US:SPIKE", "price_spike_reverted")]
    row = f.row(0, named=True)
    assert (row["date_from"], row["date_to"]) == (DAYS[2], DAYS[3])
    assert f.schema == pl.Schema(FINDINGS_SCHEMA)


def test_five_identical_closes_are_stale_four_are_not() -> None:
    prices = _prices({
        "CN:600000.SH": [10, 10.1, 9.9, 9.9, 9.9, 9.9, 9.9, 10.2, 10.1, 10, 10.3, 10.2],
        "CN:600001.SH": [10, 10.1, 9.9, 9.9, 9.9, 9.9, 10.0, 10.2, 10.1, 10, 10.3, 10.2],
    })
    f = data_quality_findings(None, prices, None)
    assert _kinds(f) == [("CN:600000.SH", "stale_close")]
    assert (f["date_from"].item(), f["date_to"].item()) == (DAYS[2], DAYS[6])


def test_fx_outlier_is_a_one_day_jump_that_comes_back() -> None:
    fx = pl.DataFrame({
        "currency": ["JPY"] * 5 + ["KRW"] * 5,
        "rate_date": DAYS[:5] * 2,
        # JPY 4.6 % off for one day; KRW moves 4 % and stays (a real move)
        "usd_per_unit": [0.0065, 0.00651, 0.0068, 0.00652, 0.0065,
                         0.0007, 0.0007, 0.000728, 0.000729, 0.000728],
    })
    f = data_quality_findings(None, None, fx)
    assert _kinds(f) == [("JPY", "fx_outlier")]
    assert f["date_from"].item() == DAYS[2]


def test_share_glitches_become_one_finding_per_episode_with_their_action() -> None:
    glitches = pl.DataFrame({
        "security_id": ["US:G", "US:G", "US:M"],
        "as_of_date": [dt.date(2025, 1, 16), dt.date(2025, 1, 23), dt.date(2025, 3, 10)],
        "shares": [11.0, 11.0, 160.0],
        "glitch_kind": ["jump_reverted", "jump_reverted", "step_unconfirmed"],
        "held_back": [True, True, False],
        "reference_shares": [100.0, 100.0, 100.0],
        "episode_from": [dt.date(2025, 1, 16), dt.date(2025, 1, 16), dt.date(2025, 3, 10)],
        "episode_to": [dt.date(2025, 2, 20), dt.date(2025, 2, 20), dt.date(2025, 3, 10)],
        "price_ratio": [None, None, 1.0],
    })
    f = data_quality_findings(glitches, None, None)
    assert _kinds(f) == [("US:G", "shares_jump_reverted"), ("US:M", "shares_step_unconfirmed")]
    g = f.filter(pl.col("entity") == "US:G").row(0, named=True)
    assert (g["date_from"], g["date_to"]) == (dt.date(2025, 1, 16), dt.date(2025, 1, 23))
    assert "-89.0 %" in g["detail"] and g["action"].startswith("held last good count 100")
    assert f.filter(pl.col("entity") == "US:M")["action"].item().startswith("recorded only")


def test_no_inputs_no_findings() -> None:
    f = data_quality_findings(None, None, None)
    assert f.height == 0 and f.schema == pl.Schema(FINDINGS_SCHEMA)


# ------------------------------------------------------- a windowed refresh's price findings


def _series(rng, sid: str, days: list[dt.date]) -> list[dict]:
    """A close series with stale runs (short and long), spikes that revert or not,
    zeros, nulls and gaps: what the findings look at."""
    rows, close = [], 100.0
    for day in days:
        r = rng.random()
        if r < 0.1:
            continue                                  # no session that day
        if r < 0.45:
            pass                                      # the same close again
        elif r < 0.55:
            close = (close or 100.0) * rng.choice([1.4, 0.7, 2.0])
        elif r < 0.57:
            close = None if close is not None else 100.0
        elif r < 0.58:
            close = 0.0
        else:
            close = (close or 100.0) * (1 + rng.uniform(-0.03, 0.03))
        rows.append({"security_id": sid, "trade_date": day, "close": close})
    return rows


def test_windowed_price_findings_equal_a_full_recompute() -> None:
    """The findings of a windowed refresh (each security's from its cut on, the earlier
    ones kept) equal those of a full recompute, whatever the closes did around the
    first changed day: runs across it, spikes just before it, closes removed from it
    on, securities that start after it or are sparse before it."""
    import random

    import duckdb

    from assets.analytics.data_quality import _refreshed, of_episode_span
    from assets.analytics.table_reads import per_episode
    from selloff.episode import Episode, load_episodes
    from selloff.quality.findings import findings_from

    rng = random.Random(7)
    episodes = load_episodes([])
    start = min(e.first_day for e in episodes) - dt.timedelta(days=30)
    end = max(e.last_day for e in episodes) + dt.timedelta(days=10)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    market = episodes[0].markets[0]

    def full(prices: pl.DataFrame, eps: tuple[Episode, ...]) -> pl.DataFrame:
        with duckdb.connect() as con:
            con.register("prices", prices)
            found = findings_from(con, {"prices"})
        return per_episode(eps, lambda e: of_episode_span(found, e))

    for trial in range(25):
        # S6: one close for months (a run longer than the window the cuts read).
        flat = [{"security_id": f"{market}:S6", "trade_date": d, "close": 100.0 + (i < 3)}
                for i, d in enumerate(days)]
        changed_from = rng.choice([e.last_day for e in episodes]
                                  + [rng.choice(days) for _ in range(3)])
        # S7: no close in the two months before changed_from; in the old data its stale
        # run goes on from changed_from, in the new data those closes are gone.
        gap = [{"security_id": f"{market}:S7", "trade_date": d, "close": 50.0} for d in days
               if changed_from - dt.timedelta(days=90) <= d < changed_from - dt.timedelta(days=70)
               or changed_from <= d < changed_from + dt.timedelta(days=20)]
        old = pl.DataFrame([r for i in range(6) for r in _series(rng, f"{market}:S{i}", days)]
                           + flat + gap, schema={"security_id": pl.Utf8, "trade_date": pl.Date,
                                                 "close": pl.Float64})
        # New closes from changed_from on: a continued run, new values, rows removed.
        later = old.filter(pl.col("trade_date") >= changed_from)
        later = later.filter(pl.col("security_id") != f"{market}:S7")
        if trial % 3 == 0:
            later = later.filter(pl.col("security_id") != f"{market}:S0")
        elif trial % 3 == 1:
            later = later.with_columns(pl.col("close") * 1.3)
        else:
            later = later.with_columns(pl.lit(100.0).alias("close"))
        new = pl.concat([old.filter(pl.col("trade_date") < changed_from), later])
        stored = full(old, episodes)
        with duckdb.connect() as con:
            con.register("prices_all", new)
            got = _refreshed(con, {"prices"}, stored, changed_from, episodes)
        want = full(new, episodes)
        assert got.height == want.height, (trial, changed_from)
        assert got.sort(got.columns).equals(want.sort(want.columns)), (trial, changed_from)
