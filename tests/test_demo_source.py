"""The synthetic demo market: deterministic, on real calendars, through the landing gate,
and carrying the cases the warehouse must get right (split, buyback, placement, YTD cash
flows, a restatement, board flows, the Oct-Nov 2025 sell-off)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from selloff.calendars import trading_days
from selloff.contracts import DATASETS
from selloff.markets import market_of_expr
from selloff.sources import demo as demo_module
from selloff.sources.demo import (
    BOARD_AI,
    MARKET_ORDER,
    SOURCE,
    DemoSource,
    _generate,
    export_demo_snapshot,
)
from selloff.sources.demo_universe import CORE, DEMO_MARKETS
from selloff.sources.snapshot import SnapshotSource

SECTORS = {"AI Chips", "Hyperscalers", "AI Hardware", "Banks", "Coal", "Consumer", "Utilities"}
SELLOFF = (dt.date(2025, 10, 27), dt.date(2025, 11, 28))


@pytest.fixture(scope="module")
def demo() -> DemoSource:
    return DemoSource()


@pytest.fixture(scope="module")
def loaded(demo: DemoSource) -> dict[str, pl.DataFrame]:
    return {ds: demo.load(ds) for ds in DATASETS}


def _as_of_shares(prices: pl.DataFrame, shares: pl.DataFrame) -> pl.DataFrame:
    """Latest count with as_of_date and filed_date on or before each trade date."""
    known = shares.select("security_id", "as_of_date", "filed_date", "shares").sort("as_of_date")
    out = prices.sort("trade_date").join_asof(
        known, left_on="trade_date", right_on="as_of_date", by="security_id", strategy="backward",
        check_sortedness=False,
    )
    return out.filter(pl.col("filed_date") <= pl.col("trade_date"))


def _window_return(prices: pl.DataFrame, ids: list[str], start: dt.date, end: dt.date) -> float:
    """Equal-weighted return from the last close before `start` to the close on `end`."""
    p = prices.filter(pl.col("security_id").is_in(ids))
    base = (p.filter(pl.col("trade_date") < start).sort("trade_date")
            .group_by("security_id").agg(pl.col("adj_close").last().alias("p0")))
    last = (p.filter(pl.col("trade_date") <= end).sort("trade_date")
            .group_by("security_id").agg(pl.col("adj_close").last().alias("p1")))
    return base.join(last, on="security_id").select((pl.col("p1") / pl.col("p0") - 1).mean()).item()


def test_deterministic_across_instances_and_without_the_spool(demo: DemoSource) -> None:
    again = DemoSource()
    # The whole market generated in memory at once equals the market-by-market parts
    # read back from the on-disk spool, which the extract assets use.
    fresh = _generate(demo.n_securities, demo.years, demo.seed, demo.end)
    for ds in DATASETS:
        assert_frame_equal(demo.fetch(ds), again.fetch(ds))
        assert_frame_equal(demo.fetch(ds), fresh[ds])
    parts = list(demo.fetch_parts("prices_daily"))
    assert [p.select(market_of_expr("security_id").unique())["security_id"].to_list()
            for p in parts] == [[m] for m in MARKET_ORDER]
    other = DemoSource(seed=7)
    assert not demo.fetch("prices_daily").equals(other.fetch("prices_daily"))


def test_parts_are_bounded_and_add_up_to_the_market(demo: DemoSource,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import selloff.sources.demo as demo_module

    monkeypatch.setattr(demo_module, "PART_ROWS", 5000)
    whole = _generate(demo.n_securities, demo.years, demo.seed, demo.end)
    for ds in ("prices_daily", "fund_flows_daily", "index_levels_daily"):
        parts = list(demo.fetch_parts(ds))
        assert max(p.height for p in parts) <= 5000
        assert_frame_equal(pl.concat(parts), whole[ds])
    loaded = list(demo.load_parts("prices_daily"))
    assert sum(p.height for p in loaded) == whole["prices_daily"].height


def test_generation_pieces_are_bounded(demo: DemoSource, monkeypatch: pytest.MonkeyPatch) -> None:
    # The spool is written piece by piece so no market's frame exists whole (China's
    # flows at 18,000 x 10 are 60 M rows): each piece is a slice of whole ids, at most
    # PART_ROWS // 4 rows (or one id's days), and the pieces add up to the market.
    monkeypatch.setattr(demo_module, "PART_ROWS", 4000)
    plan = demo_module._plan(*demo._params())
    whole = _generate(demo.n_securities, demo.years, demo.seed, demo.end)
    for market in MARKET_ORDER:
        days = len(trading_days(market, plan.start, plan.end))
        pieces: dict[str, list[pl.DataFrame]] = {}
        for name, df in demo_module._market_pieces(plan, market):
            # Slices of the long frames; a whole index series or market/board flow
            # series (a few rows per day) otherwise.
            bound = max(1000, days) if name == "prices_daily" else 5 * (days + 7)
            assert df.height <= bound, (market, name, df.height)
            pieces.setdefault(name, []).append(df)
        assert len(pieces["prices_daily"]) > 1
        for name, frames in pieces.items():
            id_col = "security_id" if name == "prices_daily" else (
                "index_id" if name.startswith("index") else "entity_id")
            mine = whole[name].filter(market_of_expr(id_col) == market)
            assert_frame_equal(pl.concat(frames), mine)


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_every_dataset_passes_the_landing_gate(demo: DemoSource, dataset: str) -> None:
    df = demo.load(dataset)
    assert df is not None and df.height > 0
    assert df.columns == DATASETS[dataset].column_names
    assert df["source"].unique().to_list() == [SOURCE]


def test_universe_reference_data(loaded: dict[str, pl.DataFrame]) -> None:
    sec = loaded["securities"]
    assert sec.height == len(CORE) == 86  # the whole core by default
    assert set(sec["sector"].unique()) == SECTORS
    assert set(sec["market"].unique()) == {"US", "CN", "KR", "JP", "TW"}
    ai = sec.filter(pl.col("is_ai"))["sector"].unique().to_list()
    assert set(ai) == {"AI Chips", "Hyperscalers", "AI Hardware"}
    us = sec.filter(pl.col("market") == "US")
    assert us["cik"].str.contains(r"^\d+$").all()
    assert sec.filter(pl.col("market") != "US")["cik"].is_null().all()
    assert set(sec["exchange_mic"]) <= {"XNAS", "XNYS", "XSHG", "XSHE", "XKRX", "XTKS", "XTAI"}
    cn = sec.filter(pl.col("market") == "CN")["security_id"]
    assert cn.str.contains(r"^CN:\d{6}\.(SH|SZ)$").all()
    assert sec.filter(pl.col("market") == "KR")["security_id"].str.contains(r"^KR:\d{6}$").all()
    assert sec.filter(pl.col("market") == "JP")["security_id"].str.contains(r"^JP:\d{4}$").all()
    tw = sec.filter(pl.col("market") == "TW")
    assert tw["security_id"].str.contains(r"^TW:\d{4}$").all()
    assert (tw["currency"] == "TWD").all() and (tw["exchange_mic"] == "XTAI").all()
    tsmc = tw.filter(pl.col("security_id") == "TW:2330").row(0, named=True)
    assert tsmc["is_ai"] and tsmc["sector"] == "AI Chips"
    ids = set(loaded["indexes"]["index_id"])
    assert {"US:SPX", "US:NDX", "CN:000300.SH", "CN:399006.SZ", "CN:000016.SH", "CN:000688.SH",
            "CN:000922.SH", "KR:KOSPI", "JP:N225", "TW:TAIEX"} <= ids
    val = set(loaded["index_valuation_daily"]["index_id"])
    assert {"CN:000688.SH", "CN:399006.SZ", "CN:000922.SH", "CN:000300.SH", "CN:000016.SH",
            "US:SPX", "US:NDX"} <= val
    baskets = loaded["baskets"].group_by("basket_id").len()
    counts = dict(baskets.iter_rows())
    assert counts["US_AI_BIG8"] == 8 and counts["US_TOP5_CAPEX"] == 5
    assert 9 <= counts["CN_AI"] <= 12
    for b in ("CN_DIVIDEND", "CN_BANKS", "CN_COAL", "CN_CONSUMER", "KR_AI", "JP_AI", "TW_AI"):
        assert counts[b] >= 1
    pit = loaded["baskets"].filter(pl.col("valid_from").is_not_null())
    assert pit.height == 1 and pit["valid_from"][0].year == 2025


def test_prices_follow_each_market_calendar(loaded: dict[str, pl.DataFrame], demo: DemoSource) -> None:
    prices = loaded["prices_daily"]
    dates = prices.with_columns(market=market_of_expr("security_id"))
    start = dt.date(demo.end.year - demo.years, demo.end.month, demo.end.day)
    for market in ("US", "CN", "KR", "JP", "TW"):
        got = set(dates.filter(pl.col("market") == market)["trade_date"].unique())
        assert got == set(trading_days(market, start, demo.end)), market
    us_days = set(dates.filter(pl.col("market") == "US")["trade_date"])
    assert dt.date(2025, 11, 27) not in us_days  # Thanksgiving
    cn_days = set(dates.filter(pl.col("market") == "CN")["trade_date"])
    assert not cn_days & {dt.date(2025, 10, d) for d in range(1, 9)}  # National Day
    assert prices["trade_date"].max() <= min(demo.end, dt.date.today())


def test_prices_are_consistent(loaded: dict[str, pl.DataFrame]) -> None:
    p = loaded["prices_daily"]
    assert p.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
    ).height == 0
    assert (p["volume"] > 0).all()
    # Outside the split, as traded and adjusted closes are the same price.
    plain = p.filter(pl.col("security_id") != "JP:9984")
    assert (plain["close"] == plain["adj_close"]).all()


def test_split_keeps_market_cap_continuous(loaded: dict[str, pl.DataFrame]) -> None:
    p = loaded["prices_daily"].filter(pl.col("security_id") == "JP:9984")
    joined = _as_of_shares(p, loaded["shares_outstanding"]).sort("trade_date").with_columns(
        mcap=pl.col("close") * pl.col("shares"),
    ).with_columns(
        mcap_ratio=pl.col("mcap") / pl.col("mcap").shift(1),
        adj_ratio=pl.col("adj_close") / pl.col("adj_close").shift(1),
        close_ratio=pl.col("close") / pl.col("close").shift(1),
        shares_ratio=pl.col("shares") / pl.col("shares").shift(1),
    )
    split_day = joined.filter(pl.col("trade_date") == dt.date(2025, 4, 1)).row(0, named=True)
    assert split_day["shares_ratio"] == pytest.approx(4.0)
    assert split_day["close_ratio"] == pytest.approx(split_day["adj_ratio"] / 4, rel=1e-3)
    assert split_day["mcap_ratio"] == pytest.approx(split_day["adj_ratio"], rel=1e-3)
    # Every day, not only the split day: the cap moves with the adjusted price.
    tail = joined.drop_nulls("mcap_ratio")
    assert ((tail["mcap_ratio"] / tail["adj_ratio"] - 1).abs() < 2e-3).all()


def test_share_counts_change_with_buyback_and_placement(loaded: dict[str, pl.DataFrame]) -> None:
    so = loaded["shares_outstanding"]
    assert (so["share_class"] == "total").all()
    aapl = so.filter(pl.col("security_id") == "US:AAPL").sort("as_of_date")
    assert (aapl["shares"].diff().drop_nulls() < 0).all()
    assert (aapl["filed_date"] > aapl["as_of_date"]).all()
    ccb = so.filter(pl.col("security_id") == "CN:601939.SH").sort("as_of_date")
    step = ccb.with_columns(r=pl.col("shares") / pl.col("shares").shift(1)).filter(pl.col("r") > 1)
    assert step.height == 1 and step["as_of_date"][0] == dt.date(2025, 6, 24)
    assert step["r"][0] == pytest.approx(1.048, rel=1e-6)


def test_cash_flow_lines_are_year_to_date_like_a_10q(loaded: dict[str, pl.DataFrame]) -> None:
    fu = loaded["fundamentals"].filter(
        (pl.col("security_id") == "US:MSFT") & (pl.col("fiscal_year") == 2025)
    )
    capex = fu.filter(pl.col("metric") == "capex").sort("period_end")
    assert capex["fiscal_period"].to_list() == ["Q1", "Q2", "Q3", "FY"]
    assert capex["value_basis"].to_list() == ["ytd", "ytd", "ytd", "discrete"]
    assert capex["form"].to_list() == ["10-Q", "10-Q", "10-Q", "10-K"]
    assert capex["period_start"].n_unique() == 1  # all from the fiscal-year start
    v = capex["value"].to_list()
    assert v[0] < v[1] < v[2] < v[3]
    # H1 is about twice a quarter: the Q2 row is not a discrete quarter.
    assert 1.5 < v[1] / v[0] < 2.6
    revenue = fu.filter(pl.col("metric") == "revenue").sort("period_end")
    assert revenue["value_basis"].to_list() == ["discrete", "discrete", "discrete", "discrete"]
    # Each quarter from its own start; the fiscal year from Q1's start.
    assert revenue["period_start"].n_unique() == 3
    assert revenue["period_start"][3] == revenue["period_start"][0]
    q = revenue["value"].to_list()
    q4 = q[3] - sum(q[:3])  # what dbt derives: FY less the first nine months
    assert 0.7 < q4 / q[2] < 1.4
    ocf = fu.filter(pl.col("metric") == "operating_cash_flow")
    assert set(ocf.filter(pl.col("fiscal_period") != "FY")["value_basis"]) == {"ytd"}
    eps = fu.filter(pl.col("metric") == "eps_diluted")
    assert set(eps["unit"]) == {"USD/share"}


def test_filing_lags(loaded: dict[str, pl.DataFrame]) -> None:
    us = loaded["fundamentals"].filter(pl.col("security_id").str.starts_with("US:")).with_columns(
        lag=(pl.col("filed_date") - pl.col("period_end")).dt.total_days())
    q = us.filter(pl.col("form") == "10-Q")["lag"]
    k = us.filter(pl.col("form") == "10-K")["lag"]
    assert q.min() >= 25 and q.max() <= 48
    assert k.min() >= 55 and k.max() <= 68
    # TTM is computable from the first price date on.
    first_price = loaded["prices_daily"]["trade_date"].min()
    early = us.filter((pl.col("metric") == "net_income") & (pl.col("filed_date") <= first_price))
    assert early.group_by("security_id").len()["len"].min() >= 4


def test_one_restatement_in_a_10q_amendment(loaded: dict[str, pl.DataFrame]) -> None:
    fu = loaded["fundamentals"]
    amended = fu.filter(pl.col("form") == "10-Q/A")
    assert amended.select("security_id", "period_end").unique().height == 1
    ni = amended.filter(pl.col("metric") == "net_income").row(0, named=True)
    original = fu.filter(
        (pl.col("security_id") == ni["security_id"]) & (pl.col("metric") == "net_income")
        & (pl.col("period_end") == ni["period_end"]) & (pl.col("form") == "10-Q")
    ).row(0, named=True)
    assert original["fiscal_period"] == ni["fiscal_period"]
    assert ni["filed_date"] > original["filed_date"]
    assert ni["value"] != original["value"]
    assert ni["accession"] != original["accession"]


def test_loss_makers_and_realistic_multiples(loaded: dict[str, pl.DataFrame]) -> None:
    fy = loaded["fundamentals"].filter(
        (pl.col("metric") == "net_income") & (pl.col("fiscal_period") == "FY")
    ).sort("period_end").group_by("security_id").agg(pl.col("value").last().alias("ni"))
    sec = loaded["securities"].join(fy, on="security_id")
    assert sec.filter(pl.col("is_ai") & (pl.col("ni") < 0)).height >= 1
    # P/E at the peak with the last annual figure: AI tens of times, China banks single digits.
    peak = loaded["prices_daily"].filter(pl.col("trade_date") <= dt.date(2025, 10, 29))
    caps = _as_of_shares(peak, loaded["shares_outstanding"]).sort("trade_date").group_by(
        "security_id").agg((pl.col("close") * pl.col("shares")).last().alias("mcap"))
    pe = sec.join(caps, on="security_id").with_columns(pe=pl.col("mcap") / pl.col("ni"))
    nvda = pe.filter(pl.col("security_id") == "US:NVDA")["pe"][0]
    assert 30 < nvda < 120
    cn_banks = pe.filter((pl.col("market") == "CN") & (pl.col("sector") == "Banks"))["pe"]
    assert cn_banks.median() < 9


def test_board_flow_is_the_sum_of_its_members(loaded: dict[str, pl.DataFrame]) -> None:
    flows = loaded["fund_flows_daily"]
    members = loaded["baskets"].filter(pl.col("basket_id") == "CN_AI")
    stock = flows.filter(pl.col("flow_scope") == "security").join(
        members.select(pl.col("security_id").alias("entity_id"), "valid_from", "valid_to"),
        on="entity_id",
    ).filter(
        (pl.col("valid_from").is_null() | (pl.col("trade_date") >= pl.col("valid_from")))
        & (pl.col("valid_to").is_null() | (pl.col("trade_date") <= pl.col("valid_to")))
    )
    summed = stock.group_by("trade_date", "investor_type").agg(pl.col("net_buy_value").sum().alias("s"))
    board = flows.filter((pl.col("flow_scope") == "board") & (pl.col("entity_id") == BOARD_AI))
    both = board.join(summed, on=["trade_date", "investor_type"], how="full", coalesce=True)
    assert both.height == board.height
    main = both.filter(pl.col("investor_type") == "main_force")
    assert main.height > 400
    assert (main["net_buy_value"] == main["s"]).all()
    # Point in time: the member that joined in 2025 counts only from then on.
    joiner = members.filter(pl.col("valid_from").is_not_null()).row(0, named=True)
    assert stock.filter(pl.col("entity_id") == joiner["security_id"])["trade_date"].min() >= joiner["valid_from"]
    # Order-size classes: main force = super large + large; all five net to zero.
    wide = flows.filter(pl.col("flow_scope") == "security").pivot(
        on="investor_type", index=["entity_id", "trade_date"], values="net_buy_value")
    assert (wide["main_force"] == wide["super_large"] + wide["large"]).all()
    assert (wide["main_force"] + wide["medium"] + wide["small"] == 0).all()


def test_market_flows_daily_in_korea_weekly_in_japan(loaded: dict[str, pl.DataFrame]) -> None:
    flows = loaded["fund_flows_daily"].filter(pl.col("flow_scope") == "market")
    kr = flows.filter(pl.col("entity_id") == "KR:KOSPI")
    jp = flows.filter(pl.col("entity_id") == "JP:TSE")
    assert set(kr["period"]) == {"day"} and set(jp["period"]) == {"week"}
    assert set(kr["investor_type"]) == set(jp["investor_type"]) == {"foreign", "institution", "individual"}
    jp_days = trading_days("JP", dt.date(2023, 12, 1), dt.date(2026, 1, 31))
    week_last = {}
    for d in jp_days:
        week_last[d.isocalendar()[:2]] = d
    assert set(jp["trade_date"]) <= set(week_last.values())
    nov = flows.filter(
        (pl.col("investor_type") == "foreign")
        & pl.col("trade_date").is_between(dt.date(2025, 11, 1), dt.date(2025, 11, 30))
    ).group_by("entity_id").agg(pl.col("net_buy_value").sum())
    assert (nov["net_buy_value"] < 0).all()


def test_fx_rates(loaded: dict[str, pl.DataFrame]) -> None:
    fx = loaded["fx_rates_daily"]
    assert set(fx["currency"]) == {"CNY", "KRW", "JPY", "TWD"}
    assert (fx["trade_date"].dt.weekday() <= 5).all()
    ranges = {c: (lo, hi) for c, lo, hi in fx.group_by("currency").agg(
        pl.col("usd_per_unit").min().alias("lo"), pl.col("usd_per_unit").max().alias("hi")).iter_rows()}
    for ccy, lo, hi in (("CNY", 0.12, 0.16), ("KRW", 0.0005, 0.0009), ("JPY", 0.005, 0.008),
                        ("TWD", 0.025, 0.042)):
        low, high = ranges[ccy]
        assert lo < low <= high < hi, ccy


def test_the_selloff_shape(loaded: dict[str, pl.DataFrame]) -> None:
    prices, baskets = loaded["prices_daily"], loaded["baskets"]

    def members(b: str) -> list[str]:
        return baskets.filter(pl.col("basket_id") == b)["security_id"].to_list()

    ai = _window_return(prices, members("US_AI_BIG8") + members("CN_AI"), *SELLOFF)
    dividend = _window_return(prices, members("CN_DIVIDEND"), *SELLOFF)
    assert ai < dividend
    assert -0.35 < ai < -0.12
    assert dividend > -0.06
    # The 2025 rally into the October peak.
    ai_ids = loaded["securities"].filter(pl.col("is_ai"))["security_id"].to_list()
    rally = _window_return(prices, ai_ids, dt.date(2025, 1, 2), dt.date(2025, 10, 29))
    assert 0.5 < rally < 1.5

    # Worst calendar week: ChiNext falls hard, SSE 50 only a little.
    lv = loaded["index_levels_daily"].filter(pl.col("trade_date") <= SELLOFF[1]).sort("trade_date")
    weekly = (lv.with_columns(week=pl.col("trade_date").dt.truncate("1w"))
              .group_by("index_id", "week").agg(pl.col("close").last()).sort("index_id", "week")
              .with_columns(r=pl.col("close") / pl.col("close").shift(1).over("index_id") - 1)
              .filter(pl.col("week") >= SELLOFF[0]))
    chinext = weekly.filter(pl.col("index_id") == "CN:399006.SZ").sort("r").row(0, named=True)
    sse50 = weekly.filter((pl.col("index_id") == "CN:000016.SH") & (pl.col("week") == chinext["week"]))
    assert chinext["week"] == dt.date(2025, 11, 17)
    assert -0.10 < chinext["r"] < -0.05
    assert -0.03 < sse50["r"][0] < 0.0

    # Rotation in the flows: main force out of AI, into banks and coal.
    flows = loaded["fund_flows_daily"].filter(
        (pl.col("flow_scope") == "security") & (pl.col("investor_type") == "main_force")
        & pl.col("trade_date").is_between(*SELLOFF)
    ).join(loaded["securities"].select(pl.col("security_id").alias("entity_id"), "sector", "is_ai"),
           on="entity_id")
    by = dict(flows.group_by("sector").agg(pl.col("net_buy_value").sum()).iter_rows())
    assert by["AI Chips"] < 0 and by["AI Hardware"] < 0
    assert by["Banks"] > 0 and by["Coal"] > 0


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_snapshot_round_trip(tmp_path, fmt: str, loaded: dict[str, pl.DataFrame]) -> None:
    folder = export_demo_snapshot(tmp_path / "demo", fmt=fmt)
    assert (folder / f"prices_daily.{fmt}").exists()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["synthetic"] is True
    snap = SnapshotSource(folder)
    assert snap.synthetic
    for ds in DATASETS:
        assert_frame_equal(snap.load(ds), loaded[ds])


def test_scaled_universe_and_longer_history() -> None:
    src = DemoSource(n_securities=300, years=3)
    frames = {ds: src.load(ds) for ds in DATASETS}
    sec = frames["securities"]
    assert sec.height == 300 and sec["security_id"].n_unique() == 300
    assert set(sec["sector"]) == SECTORS
    assert frames["prices_daily"]["trade_date"].min() >= dt.date(2022, 12, 31)
    assert frames["prices_daily"]["security_id"].n_unique() == 300
    # Longer history does not move the episode.
    ai = frames["baskets"].filter(pl.col("basket_id") == "US_AI_BIG8")["security_id"].to_list()
    assert _window_return(frames["prices_daily"], ai, *SELLOFF) < -0.1


def test_end_never_after_today() -> None:
    src = DemoSource(n_securities=20, years=1, end=dt.date.today() + dt.timedelta(days=400))
    assert src.end == dt.date.today()
    for ds in ("prices_daily", "fundamentals", "fund_flows_daily", "shares_outstanding"):
        df = src.load(ds)
        assert df is not None and df.height > 0


def test_an_added_market_leaves_the_others_figures_alone(demo: DemoSource, monkeypatch) -> None:
    """Taiwan draws from its own random streams: the demo without it gives the other
    markets' frames exactly as the demo with it (the figures they had before Taiwan)."""
    added = {m for m, d in DEMO_MARKETS.items() if not d.legacy_order}
    assert added == {"TW"}
    universe = demo_module.universe
    monkeypatch.setattr(demo_module, "universe", lambda n, rng: [
        s for s in universe(n, rng) if s.market not in added])
    demo_module._plan.cache_clear()  # the universe is planned once per parameter set
    without = _generate(demo.n_securities, demo.years, demo.seed, demo.end)
    monkeypatch.undo()
    demo_module._plan.cache_clear()
    assert without["securities"].height == len(CORE) - 6
    for ds in DATASETS:
        full = demo.fetch(ds)
        ids = next((c for c in ("security_id", "index_id", "entity_id") if c in full.columns), None)
        if ids:
            full = full.filter(~market_of_expr(ids).is_in(list(added)))
        if ds == "fx_rates_daily":
            full = full.filter(pl.col("currency") != "TWD")
            without = {**without, ds: without[ds].filter(pl.col("currency") != "TWD")}
        assert_frame_equal(full, without[ds])


def test_taiwan_trades_on_its_calendar_with_taiex(loaded: dict[str, pl.DataFrame]) -> None:
    levels = loaded["index_levels_daily"].filter(pl.col("index_id") == "TW:TAIEX")
    days = set(levels["trade_date"])
    assert dt.date(2025, 10, 10) not in days  # National Day
    assert dt.date(2025, 10, 29) in days
    anchor = levels.filter(pl.col("trade_date") == dt.date(2025, 10, 29))["close"].item()
    assert anchor == pytest.approx(28300.0, rel=1e-6)
    tw = loaded["prices_daily"].filter(pl.col("security_id") == "TW:2330")
    assert set(tw["trade_date"]) == days and (tw["currency"] == "TWD").all()
    assert loaded["fundamentals"].filter(pl.col("security_id") == "TW:2330").height > 0
