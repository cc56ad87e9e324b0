"""Verdicts on the commentary's claims (selloff/config/claims.yaml)."""

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from assets.analytics.inputs import (
    MARTS,
    Select,
    analytics_asset,
    analytics_key,
    mart_key,
    read_selected,
)
from selloff.claims import compute_claim_verdicts
from selloff.report.html_report import markdown_table
from selloff.resources import SourceResource, WarehouseResource

_CLAIM_TABLES = ("dim_security", "dim_basket_member", "dim_trading_calendar",
                 "fct_fund_flows_daily", "fct_fundamentals_quarterly", "fct_index_levels_daily",
                 "fct_index_valuation_daily")
_CLAIM_MCAP_COLUMNS = ("security_id", "trade_date", "market", "currency", "close", "adj_close",
                       "market_cap_local", "market_cap_usd")


@analytics_asset(
    "claim_verdicts",
    deps=[*(mart_key(m) for m in MARTS), analytics_key("selloff_windows")],
    description="One row per claim of the commentary: computed value, verdict (supported, "
    "contradicted, insufficient_data, external), window, entities and a note.",
)
def claim_verdicts(source: SourceResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    # Only the tables and columns the claim metrics read (selloff/claims/metrics.py): the
    # P/E facts and dim_index are never used, and the market-cap fact without its share,
    # FX and one-day-change columns.
    frames = read_selected(warehouse, {
        **{m: Select("marts", m) for m in _CLAIM_TABLES},
        "fct_market_cap_daily": Select("marts", "fct_market_cap_daily", _CLAIM_MCAP_COLUMNS),
        "selloff_windows": Select("analytics", "selloff_windows"),
    })
    verdicts = compute_claim_verdicts(frames, synthetic=source.is_synthetic)
    rows = warehouse.write("analytics", "claim_verdicts", verdicts)
    counts = dict(verdicts.group_by("verdict").len().iter_rows())
    return dg.MaterializeResult(metadata={
        "rows": rows,
        **{f"verdict: {k}": v for k, v in sorted(counts.items())},
        "verdicts": dg.MetadataValue.md(markdown_table(verdicts.select(
            "claim_id", "verdict", "stated_text", "computed_text",
            pl.col("window_start").cast(pl.Utf8), pl.col("window_end").cast(pl.Utf8)), 30)),
    })


@dg.asset_check(asset=analytics_key("claim_verdicts"), name="every_claim_has_a_verdict",
                blocking=True, pool=WRITER_POOL,
                description="Every claim of the registry has exactly one row with a known verdict.")
def every_claim_has_a_verdict(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    from selloff.claims import load_registry

    verdicts = warehouse.read("analytics", "claim_verdicts")
    expected = {c.id for c in load_registry().claims}
    got = verdicts["claim_id"].to_list() if verdicts is not None else []
    missing = sorted(expected - set(got))
    dupes = sorted({c for c in got if got.count(c) > 1})
    unknown = [] if verdicts is None else verdicts.filter(
        ~pl.col("verdict").is_in(["supported", "contradicted", "insufficient_data", "external"])
    )["claim_id"].to_list()
    ok = not (missing or dupes or unknown)
    return dg.AssetCheckResult(passed=ok, metadata={"claims": len(expected), "rows": len(got)},
                               description="ok" if ok else f"missing {missing}, duplicated {dupes}, "
                               f"unknown verdicts {unknown}")
