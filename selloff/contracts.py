"""The canonical raw datasets (DESIGN §3): the contract every source produces.

Each dataset lists its columns with polars types, which may be null, its key, and the
value rules the landing validation and the Great Expectations suites both enforce.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

MARKETS = ("US", "CN", "KR", "JP")
CURRENCIES = ("USD", "CNY", "KRW", "JPY", "HKD", "EUR", "TWD", "GBP")
FLOW_SCOPES = ("security", "board", "market")
INVESTOR_TYPES = (
    "main_force", "super_large", "large", "medium", "small",
    "foreign", "individual", "institution", "pension", "proprietary", "investment_trust",
    "trust_bank", "insurance", "bank", "corporate", "other",
)
FLOW_PERIODS = ("day", "week")
VALUE_BASES = ("discrete", "ytd")
FISCAL_PERIODS = ("Q1", "Q2", "Q3", "Q4", "FY")


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    nullable: bool = False


@dataclass(frozen=True)
class Dataset:
    """One canonical dataset.

    `positive` columns must be > 0 where present; `allowed` maps a column to its allowed
    values; `calendar_date` names the date column that must be a trading day of the market
    given by `market_of` (a column whose value starts with `<MARKET>:`), restricted to rows
    where `calendar_when` holds (column, value) if set.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    positive: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    date_columns_not_future: tuple[str, ...] = ()
    calendar_date: str | None = None
    market_of: str | None = None
    calendar_when: tuple[str, str] | None = None
    id_columns: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if not c.nullable]


S, F, D, B, INT = pl.Utf8(), pl.Float64(), pl.Date(), pl.Boolean(), pl.Int64()

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "securities",
            (
                Column("security_id", S), Column("market", S),
                Column("exchange_mic", S, True), Column("symbol", S), Column("name", S, True),
                Column("name_local", S, True), Column("currency", S),
                Column("sector", S, True), Column("industry", S, True),
                Column("listing_board", S, True), Column("is_ai", B),
                Column("cik", S, True), Column("source", S),
            ),
            key=("security_id",),
            allowed={"market": MARKETS, "currency": CURRENCIES},
            id_columns=("security_id",),
        ),
        Dataset(
            "indexes",
            (Column("index_id", S), Column("market", S), Column("name", S),
             Column("currency", S), Column("source", S)),
            key=("index_id",),
            allowed={"market": MARKETS, "currency": CURRENCIES},
            id_columns=("index_id",),
        ),
        Dataset(
            "prices_daily",
            (
                Column("security_id", S), Column("trade_date", D),
                Column("open", F, True), Column("high", F, True), Column("low", F, True),
                Column("close", F), Column("adj_close", F, True), Column("volume", F, True),
                Column("currency", S), Column("source", S),
            ),
            key=("security_id", "trade_date"),
            positive=("open", "high", "low", "close", "adj_close"),
            non_negative=("volume",),
            allowed={"currency": CURRENCIES},
            date_columns_not_future=("trade_date",),
            calendar_date="trade_date",
            market_of="security_id",
            id_columns=("security_id",),
        ),
        Dataset(
            "index_levels_daily",
            (
                Column("index_id", S), Column("trade_date", D),
                Column("open", F, True), Column("high", F, True), Column("low", F, True),
                Column("close", F), Column("source", S),
            ),
            key=("index_id", "trade_date"),
            positive=("open", "high", "low", "close"),
            date_columns_not_future=("trade_date",),
            calendar_date="trade_date",
            market_of="index_id",
            id_columns=("index_id",),
        ),
        Dataset(
            "shares_outstanding",
            (
                Column("security_id", S), Column("as_of_date", D), Column("share_class", S),
                Column("shares", F, True), Column("filed_date", D, True), Column("source", S),
            ),
            key=("security_id", "as_of_date", "share_class"),
            positive=("shares",),
            date_columns_not_future=("as_of_date", "filed_date"),
            id_columns=("security_id",),
        ),
        Dataset(
            "fundamentals",
            (
                Column("security_id", S), Column("metric", S),
                Column("period_start", D, True), Column("period_end", D),
                Column("fiscal_year", INT), Column("fiscal_period", S),
                Column("filed_date", D), Column("value_basis", S), Column("value", F),
                Column("unit", S), Column("form", S, True), Column("accession", S, True),
                Column("source", S),
            ),
            key=("security_id", "metric", "period_end", "fiscal_period", "filed_date"),
            allowed={"value_basis": VALUE_BASES, "fiscal_period": FISCAL_PERIODS},
            date_columns_not_future=("filed_date",),
            id_columns=("security_id",),
        ),
        Dataset(
            "fund_flows_daily",
            (
                Column("flow_scope", S), Column("entity_id", S), Column("trade_date", D),
                Column("investor_type", S), Column("period", S),
                Column("net_buy_value", F), Column("currency", S), Column("source", S),
            ),
            key=("flow_scope", "entity_id", "trade_date", "investor_type"),
            allowed={
                "flow_scope": FLOW_SCOPES, "investor_type": INVESTOR_TYPES,
                "period": FLOW_PERIODS, "currency": CURRENCIES,
            },
            date_columns_not_future=("trade_date",),
            calendar_date="trade_date",
            market_of="entity_id",
            calendar_when=("period", "day"),
            id_columns=("entity_id",),
        ),
        Dataset(
            "fx_rates_daily",
            (Column("trade_date", D), Column("currency", S), Column("usd_per_unit", F),
             Column("source", S)),
            key=("trade_date", "currency"),
            positive=("usd_per_unit",),
            allowed={"currency": CURRENCIES},
            date_columns_not_future=("trade_date",),
        ),
        Dataset(
            "index_valuation_daily",
            (
                Column("index_id", S), Column("trade_date", D), Column("pe_ttm", F, True),
                Column("pb", F, True), Column("dividend_yield", F, True), Column("source", S),
            ),
            key=("index_id", "trade_date"),
            non_negative=("dividend_yield",),
            date_columns_not_future=("trade_date",),
            id_columns=("index_id",),
        ),
        Dataset(
            "baskets",
            (
                Column("basket_id", S), Column("security_id", S),
                Column("valid_from", D, True), Column("valid_to", D, True),
                Column("source", S),
            ),
            key=("basket_id", "security_id"),
            id_columns=("security_id",),
        ),
    )
}

# Order in which datasets land: reference data first so later checks can look members up.
DATASET_ORDER = tuple(DATASETS)


def empty_frame(dataset: str) -> pl.DataFrame:
    return pl.DataFrame(schema=DATASETS[dataset].schema)
