"""Rotation over a window (DESIGN §5, "Rotation"): where returns and money went.

Per window and market (t0/t1 as in the decomposition, `window_bounds`):

- dimension 'sector_group': bucket = dim_security.sector_group (the groups of the dbt seed
  `sector_groups`; missing -> 'unknown').
- dimension 'pe_quintile': bucket 'Q1'..'Q5' = quintile of pe_ttm at t0
  (fct_valuation_multiples_daily) within the market, Q1 = lowest P/E, formed over the
  securities with a return and a positive P/E (ties share a quintile); 'no_pe' holds
  the securities without one (losses or no filings). No quintiles below 5 such securities.
- dimension 'spread': bucket 'Q1-Q5', the "high to low" spread = return of the lowest-P/E
  quintile minus that of the highest (> 0: low-P/E stocks did better).
- dimension 'investor_type': market-level net flows (flow_scope 'market') by investor
  type, summed over the market's entities (e.g. KR:KOSPI, JP:TSE).

Returns: `cap_weighted_return` is the simple return of the bucket, sum w_i (P1/P0 - 1)
with local prices (so currency moves play no part) and w = USD market cap at t0 (within
a market the same weights as local caps, and comparable across markets); a security
needs a price at both ends and a market cap at t0.

Flows: `net_flow_usd` sums fct_fund_flows_daily.net_buy_usd over t0 < trade_date <= t1.
Summing across investor types would net buyers against sellers (for China's order-size
classes it is close to zero by construction), so flows are never summed across types:
a return row has `investor_type` null and no flow, and each (bucket, investor type) with
security-level flows (flow_scope 'security', joined to the security's bucket) gets its
own row with the flow and `n_securities` = securities with flows. Weekly figures
(period 'week', dated on the week's last day) count when their date is in the window, so
they may include days just before t0; the note says when weekly figures are used.
"""

from __future__ import annotations

import polars as pl

from selloff.analytics.factor_exposures import security_window_returns
from selloff.analytics.tables import ROTATION_SCHEMA, empty, require_columns
from selloff.markets import market_of_expr

DIMENSIONS: tuple[str, ...] = ("sector_group", "pe_quintile", "investor_type", "spread")
NO_PE_BUCKET = "no_pe"
UNKNOWN_BUCKET = "unknown"


_FLOW_COLUMNS = ("flow_scope", "entity_id", "trade_date", "investor_type", "net_buy_usd")


def _rows(frame: pl.LazyFrame, **cols: pl.Expr) -> pl.LazyFrame:
    """Fill the rotation columns, nulls for those not given."""
    exprs = []
    for name, dtype in ROTATION_SCHEMA.items():
        expr = cols.get(name, pl.col(name) if name in frame.collect_schema().names()
                        else pl.lit(None))
        exprs.append(expr.cast(dtype).alias(name))
    return frame.select(exprs)


def _fmt_pe(expr: pl.Expr) -> pl.Expr:
    return expr.round(1).cast(pl.Utf8)


def _flow_note(weekly: pl.Expr, entities: pl.Expr | None = None) -> pl.Expr:
    """The note of a flow row; `weekly` = how many of its figures are weekly."""
    parts = [
        pl.when(weekly > 0)
        .then(pl.format("includes {} weekly figures dated on the week's last day", weekly))
        .otherwise(None)
    ]
    if entities is not None:
        parts.insert(0, pl.format("entities: {}", entities.unique().sort().str.join(", ")))
    note = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    return pl.when(note == "").then(None).otherwise(note)


def _security_flows(flows: pl.LazyFrame, members: pl.DataFrame) -> pl.DataFrame:
    """Per window, market, security and investor type: the security's net flow
    sum(net_buy_usd) over t0 < trade_date <= t1 (non-null figures only) and `_weekly`, how
    many of them are weekly, with the security's buckets from `members` (window_id,
    market, security_id, t0_date, t1_date, sector_group, pe_bucket).

    Each security's flows are summed per window interval before they meet the buckets.
    Joining every flow row to every window of its security and then keeping the days
    inside each window made (flow rows x windows) wide rows first: about 4 GB at
    18,000 x 10 for an episode of 8 windows, the peak of the whole run. A bucket's sum
    is then the sum of its securities' sums (the same figure up to float rounding).
    """
    sec = (
        flows.filter((pl.col("flow_scope") == "security") & pl.col("net_buy_usd").is_not_null())
        .select("entity_id", "trade_date", "investor_type", "net_buy_usd", "period")
        .collect()
    )
    parts = []
    # Windows sharing t0 and t1 (in one market or several) share one aggregation.
    for (t0, t1), group in members.group_by("t0_date", "t1_date"):
        summed = (
            sec.lazy()
            .filter((pl.col("trade_date") > t0) & (pl.col("trade_date") <= t1))
            .group_by("entity_id", "investor_type")
            .agg(pl.col("net_buy_usd").sum(),
                 pl.col("period").eq("week").sum().alias("_weekly"))
        )
        parts.append(group.lazy().join(summed, left_on="security_id", right_on="entity_id",
                                       how="inner"))
    return pl.concat(parts).collect()


def rotation(
    windows: pl.DataFrame,
    market_cap: pl.DataFrame,
    valuation: pl.DataFrame | None,
    securities: pl.DataFrame,
    fund_flows: pl.DataFrame | None = None,
    *,
    n_quantiles: int = 5,
    trading_days: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The `analytics.rotation` table (ROTATION_SCHEMA), see the module docstring.

    Inputs: `windows` (selloff_windows), `market_cap` (fct_market_cap_daily:
    security_id, trade_date, close, market_cap_usd), `valuation`
    (fct_valuation_multiples_daily: security_id, trade_date, pe_ttm; None = every
    security in 'no_pe'), `securities` (dim_security: security_id, market,
    sector_group), `fund_flows` (fct_fund_flows_daily: flow_scope, entity_id,
    trade_date, investor_type, period, net_buy_usd; None = no flow rows).
    """
    require_columns(securities, "dim_security", ("security_id", "market", "sector_group"))
    ends = security_window_returns(windows, market_cap, securities, return_column="close",
                                   trading_days=trading_days)
    if ends.height == 0:
        return empty(ROTATION_SCHEMA)
    wm = ["window_id", "market"]

    if valuation is not None and valuation.height:
        require_columns(valuation, "fct_valuation_multiples_daily",
                        ("security_id", "trade_date", "pe_ttm"))
        pe = valuation.lazy().select("security_id", pl.col("trade_date").alias("t0_date"),
                                     pl.col("pe_ttm").cast(pl.Float64))
    else:
        pe = pl.LazyFrame(schema={"security_id": pl.Utf8(), "t0_date": pl.Date(),
                                  "pe_ttm": pl.Float64()})
    groups = securities.lazy().select(
        "security_id", pl.col("sector_group").cast(pl.Utf8).fill_null(UNKNOWN_BUCKET)
    ).unique(subset=["security_id"], keep="first")

    has_return = pl.col("log_return").is_not_null() & pl.col("market_cap_usd_t0").is_not_null()
    has_pe = pl.col("pe_ttm").is_not_null() & (pl.col("pe_ttm") > 0)
    base = (
        ends.lazy()
        .join(groups, on="security_id", how="left")
        .join(pe, on=["security_id", "t0_date"], how="left")
        .with_columns(
            has_return.alias("has_return"),
            (has_return & has_pe).alias("_ranked"),
        )
        .with_columns(
            pl.col("pe_ttm").filter(pl.col("_ranked")).len().over(wm).alias("_n_pe"),
            pl.when(pl.col("_ranked"))
            .then(pl.col("pe_ttm"))
            .otherwise(None)
            .rank("min")
            .over(wm)
            .alias("_rank"),
        )
        .with_columns(
            pl.when(pl.col("_ranked") & (pl.col("_n_pe") >= n_quantiles))
            .then(pl.format(
                "Q{}",
                ((pl.col("_rank") - 1) * n_quantiles // pl.col("_n_pe") + 1).cast(pl.Int64),
            ))
            .when(pl.col("_ranked"))
            .then(pl.lit(None, pl.Utf8))
            .otherwise(pl.lit(NO_PE_BUCKET))
            .alias("pe_bucket"),
            (pl.col("log_return").exp() - 1.0).alias("_simple"),
        )
        .collect()
    )

    def returns_by(bucket: str) -> pl.LazyFrame:
        return (
            base.lazy()
            .filter(pl.col("has_return") & pl.col(bucket).is_not_null())
            .group_by(*wm, pl.col(bucket).alias("bucket"))
            .agg(
                pl.len().alias("n_securities"),
                ((pl.col("_simple") * pl.col("market_cap_usd_t0")).sum()
                 / pl.col("market_cap_usd_t0").sum()).alias("cap_weighted_return"),
                pl.col("pe_ttm").min().alias("_pe_lo"),
                pl.col("pe_ttm").max().alias("_pe_hi"),
            )
        )

    sector = _rows(returns_by("sector_group"), dimension=pl.lit("sector_group"))
    quint = returns_by("pe_bucket").collect()
    quint_rows = _rows(
        quint.lazy(),
        dimension=pl.lit("pe_quintile"),
        note=pl.when(pl.col("bucket") == NO_PE_BUCKET)
        .then(pl.lit("P/E at t0 missing or <= 0"))
        .otherwise(pl.format("P/E at t0 {} to {}", _fmt_pe(pl.col("_pe_lo")),
                             _fmt_pe(pl.col("_pe_hi")))),
    )
    top = f"Q{n_quantiles}"
    low_q = quint.filter(pl.col("bucket") == "Q1").select(
        *wm, pl.col("cap_weighted_return").alias("_lo"), pl.col("n_securities").alias("_n_lo"))
    high_q = quint.filter(pl.col("bucket") == top).select(
        *wm, pl.col("cap_weighted_return").alias("_hi"), pl.col("n_securities").alias("_n_hi"))
    spread = _rows(
        low_q.join(high_q, on=wm, how="inner").lazy(),
        dimension=pl.lit("spread"),
        bucket=pl.lit(f"Q1-{top}"),
        n_securities=pl.col("_n_lo") + pl.col("_n_hi"),
        cap_weighted_return=pl.col("_lo") - pl.col("_hi"),
        note=pl.lit(f"high to low: lowest-P/E quintile return minus highest (Q1 - {top})"),
    )
    # Markets with too few P/Es get a visible row instead of silently missing quintiles.
    few = (
        base.group_by(wm)
        .agg(pl.col("_ranked").sum().alias("_n"))
        .filter(pl.col("_n") < n_quantiles)
    )
    few_rows = _rows(
        few.lazy(),
        dimension=pl.lit("pe_quintile"),
        bucket=pl.lit("not_formed"),
        n_securities=pl.col("_n"),
        note=pl.format("only {} securities with a positive P/E at t0: quintiles not formed",
                       pl.col("_n")),
    )
    parts = [sector, quint_rows, spread, few_rows]

    if fund_flows is not None and fund_flows.height:
        require_columns(fund_flows, "fct_fund_flows_daily", _FLOW_COLUMNS)
        cols = fund_flows.collect_schema().names()
        flows = fund_flows.lazy().select(
            *_FLOW_COLUMNS,
            (pl.col("period") if "period" in cols else pl.lit("day")).alias("period"),
            market_of_expr("entity_id").alias("_market"),
        )
        bounds = ends.select(*wm, "t0_date", "t1_date").unique().lazy()
        in_window = (pl.col("trade_date") > pl.col("t0_date")) & (
            pl.col("trade_date") <= pl.col("t1_date"))
        members = base.select(*wm, "security_id", "t0_date", "t1_date", "sector_group",
                              "pe_bucket")
        per_security = _security_flows(flows, members)
        for dim, bucket in (("sector_group", "sector_group"), ("pe_quintile", "pe_bucket")):
            agg = (
                per_security.lazy().filter(pl.col(bucket).is_not_null())
                .group_by(*wm, pl.col(bucket).alias("bucket"), "investor_type")
                .agg(
                    # One row per security and investor type: the count is n_unique.
                    pl.len().alias("n_securities"),
                    pl.col("net_buy_usd").sum().alias("net_flow_usd"),
                    _flow_note(pl.col("_weekly").sum()).alias("note"),
                )
            )
            parts.append(_rows(agg, dimension=pl.lit(dim)))
        mkt = (
            flows.filter(pl.col("flow_scope") == "market")
            .join(bounds, left_on="_market", right_on="market", how="inner")
            .rename({"_market": "market"})
            .filter(in_window)
            .group_by(*wm, "investor_type")
            .agg(
                pl.col("net_buy_usd").sum().alias("net_flow_usd"),
                pl.col("net_buy_usd").null_count().alias("_missing"),
                _flow_note(pl.col("period").eq("week").sum(), pl.col("entity_id"))
                .alias("_note"),
            )
            .with_columns(
                pl.when(pl.col("_missing") > 0)
                .then(pl.format("{}; {} figures without a USD value left out", "_note",
                                "_missing"))
                .otherwise(pl.col("_note"))
                .alias("note")
            )
        )
        parts.append(_rows(mkt, dimension=pl.lit("investor_type"),
                           bucket=pl.col("investor_type")))

    order = {d: i for i, d in enumerate(DIMENSIONS)}
    out = pl.concat(parts).collect()
    return out.sort(
        "window_id", "market",
        pl.col("dimension").replace_strict(order, default=99, return_dtype=pl.Int64),
        "bucket", pl.col("investor_type"), nulls_last=False,
    )
