"""The canonical raw datasets (DESIGN §3): the contract every source produces.

Each dataset lists its columns with polars types, which may be null, its key, and the
value rules the landing validation and the Great Expectations suites both enforce.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from selloff.markets import (
    CURRENCIES,
    MARKET_CURRENCY,
    MARKETS,
    USD_PER_UNIT_BAND,
    id_pattern,
    market_of_expr,
    security_id_pattern,
)

# The gate's market facts come from the registry (selloff/markets.py): each market's
# trading currency (prices and flows are in it), the currencies data may carry with their
# plausible USD rates, and the id patterns.
ID_PATTERN = id_pattern()
SECURITY_ID_PATTERN = security_id_pattern()
# Fundamentals metrics the dbt models know; any other name would be dropped there unseen.
METRICS = ("revenue", "net_income", "eps_diluted", "capex", "operating_cash_flow",
           "shares_diluted_avg")
UNITS = (*CURRENCIES, "shares", *(f"{c}/share" for c in CURRENCIES))
# Fiscal years are labelled by the calendar year they end in, give or take one
# (NVIDIA's fiscal 2026 ends in January 2026); anything else is a typo.
FISCAL_YEAR_SLACK = 1
# Relative slack for OHLC ordering: adjusted prices carry float rounding (1e-15 level).
OHLC_TOLERANCE = 1e-9
# Plausibility bounds: a number beyond them is a unit or export error, and 1e300 would
# give infinite market caps downstream. Prices (per share or index point, in any
# currency: KRW and JPY included) stay below MAX_PRICE; every other amount (volumes,
# shares, flows, fundamentals in KRW) below MAX_AMOUNT in absolute value.
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
MAX_PRICE = 1e9
MAX_AMOUNT = 1e16
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
class Check:
    """A row rule across columns: `broken` is True on a row that breaks it (null = holds,
    so optional columns are checked only where present); `shows` are the columns the
    error message quotes."""

    rule: str
    broken: pl.Expr
    shows: tuple[str, ...]


def _ohlc_checks() -> tuple[Check, ...]:
    lo, hi = pl.col("low") * (1 - OHLC_TOLERANCE), pl.col("high") * (1 + OHLC_TOLERANCE)
    return (
        Check("ohlc: high >= low", pl.col("high") < pl.col("low") * (1 - OHLC_TOLERANCE),
              ("high", "low")),
        Check("ohlc: low <= close <= high", (pl.col("close") < lo) | (pl.col("close") > hi),
              ("low", "close", "high")),
        Check("ohlc: low <= open <= high", (pl.col("open") < lo) | (pl.col("open") > hi),
              ("low", "open", "high")),
    )


def _market_matches_id(id_col: str) -> Check:
    return Check(f"market matches id: {id_col}", pl.col("market") != market_of_expr(id_col),
                 (id_col, "market"))


def _security_code_of_market() -> Check:
    # Only ids already in the general format: a bad prefix is reported once, by the id check.
    return Check("security code of its market (markets.py code_pattern)",
                 pl.col("security_id").str.contains(ID_PATTERN)
                 & ~pl.col("security_id").str.contains(SECURITY_ID_PATTERN),
                 ("security_id", "market"))


def _band(bound: int) -> pl.Expr:
    return pl.col("currency").replace_strict(
        {c: b[bound] for c, b in USD_PER_UNIT_BAND.items()}, default=None, return_dtype=pl.Float64)


# What a raw column holds: the one source of the comments in the warehouse (COMMENT ON,
# selloff/catalog.py) and of the column schema in the Dagster UI. A name means the same in
# every dataset unless the dataset's own `docs` say otherwise. Units are stated: prices and
# amounts in full currency units (not thousands), ratios as fractions unless named.
COLUMN_DOCS: dict[str, str] = {
    "security_id": "Security key MARKET:CODE, e.g. US:NVDA, CN:688256.SH, KR:005930.",
    "index_id": "Index key MARKET:CODE, e.g. US:SPX, KR:KOSPI.",
    "entity_id": "What the flow is of: a security_id, a board or a market (MARKET:CODE).",
    "market": "Market code of the registry (selloff/markets.py): US, CN, KR, JP or TW.",
    "exchange_mic": "ISO 10383 MIC of the listing exchange, e.g. XNAS.",
    "symbol": "Local ticker or code as the exchange lists it.",
    "name": "English name.",
    "name_local": "Name in the local language.",
    "currency": "ISO 4217 currency code the prices or amounts of this row are in.",
    "sector": "Sector as the source names it.",
    "industry": "Industry as the source names it.",
    "listing_board": "Listing board, e.g. STAR, KOSDAQ, Prime.",
    "is_ai": "True for the AI-theme names of the universe.",
    "cik": "SEC Central Index Key (US filers only), 10 digits.",
    "source": "Where the row came from: the source's name (demo, a snapshot, a live service).",
    "trade_date": "Local trading date of the market (the exchange's own calendar day).",
    "open": "Opening price as traded, full units of `currency` per share (index: points).",
    "high": "Highest price of the day as traded, full units of `currency` (index: points).",
    "low": "Lowest price of the day as traded, full units of `currency` (index: points).",
    "close": "Closing price as traded, not adjusted, full units of `currency` per share "
             "(index: points).",
    "adj_close": "Close adjusted for splits and dividends, full units of `currency` per share; "
                 "null when the source gives none.",
    "volume": "Shares traded that day (a count of shares, not a value).",
    "as_of_date": "Date the share count is valid for.",
    "share_class": "Share class the count is of (e.g. common, A, total).",
    "shares": "Shares outstanding, a count of shares (full units, not millions).",
    "filed_date": "Date the figure was published (filed); used from this date on, never before.",
    "metric": "Which figure: revenue, net_income, eps_diluted, capex, operating_cash_flow or "
              "shares_diluted_avg.",
    "period_start": "First day of the reporting period (null when the source gives none).",
    "period_end": "Last day of the reporting period.",
    "fiscal_year": "Fiscal year, labelled by the calendar year it ends in (+-1).",
    "fiscal_period": "Q1, Q2, Q3, Q4 or FY.",
    "value_basis": "discrete (the period alone) or ytd (year to date, differenced in dbt).",
    "value": "The figure in `unit`: full currency units (not thousands), shares, or "
             "currency per share.",
    "unit": "Unit of `value`: a currency code, 'shares' or 'CUR/share' (CUR a currency code).",
    "form": "Filing form, e.g. 10-Q, 10-K (null outside the SEC).",
    "accession": "Filing accession number (null outside the SEC).",
    "flow_scope": "What entity_id is: security, board or market.",
    "investor_type": "Investor group of the flow, e.g. foreign, individual, institution, "
                     "main_force.",
    "period": "day (one session's flow) or week (a week's flow, dated on its last session).",
    "net_buy_value": "Net buying (buys minus sells) in full units of `currency`; negative = net "
                     "selling.",
    "usd_per_unit": "US dollars per one unit of `currency` (e.g. 0.00068 for KRW); 1 for USD.",
    "pe_ttm": "Price to trailing-twelve-month earnings as the index publisher states it "
              "(a multiple, e.g. 25.3).",
    "pb": "Price to book as published (a multiple).",
    "dividend_yield": "Dividend yield as a fraction (0.025 = 2.5 %).",
    "basket_id": "Basket key, e.g. US_AI_BIG8, KR_AI.",
    "valid_from": "First day the security is a member (null: from the start of the data).",
    "valid_to": "Last day the security is a member (null: still a member).",
}


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
    checks: tuple[Check, ...] = ()
    # What one row is (the table's comment); `docs` override COLUMN_DOCS for this dataset.
    description: str = ""
    docs: dict[str, str] = field(default_factory=dict)

    def column_doc(self, column: str) -> str:
        return self.docs.get(column) or COLUMN_DOCS.get(column, "")

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
            description='One row per listed security: its market, names, currency, sector and AI flag.',
            key=("security_id",),
            allowed={"market": MARKETS, "currency": CURRENCIES},
            id_columns=("security_id",),
            checks=(_market_matches_id("security_id"), _security_code_of_market()),
        ),
        Dataset(
            "indexes",
            (Column("index_id", S), Column("market", S), Column("name", S),
             Column("currency", S), Column("source", S)),
            description='One row per market index: its market, name and currency.',
            key=("index_id",),
            allowed={"market": MARKETS, "currency": CURRENCIES},
            docs={"currency": "Currency of the index (its constituents' trading currency)."},
            id_columns=("index_id",),
            checks=(_market_matches_id("index_id"),),
        ),
        Dataset(
            "prices_daily",
            (
                Column("security_id", S), Column("trade_date", D),
                Column("open", F, True), Column("high", F, True), Column("low", F, True),
                Column("close", F), Column("adj_close", F, True), Column("volume", F, True),
                Column("currency", S), Column("source", S),
            ),
            description="Daily prices per security and trading day, as traded (close) and adjusted (adj_close), in the security's currency.",
            key=("security_id", "trade_date"),
            positive=("open", "high", "low", "close", "adj_close"),
            non_negative=("volume",),
            allowed={"currency": CURRENCIES},
            date_columns_not_future=("trade_date",),
            calendar_date="trade_date",
            market_of="security_id",
            id_columns=("security_id",),
            checks=_ohlc_checks(),
        ),
        Dataset(
            "index_levels_daily",
            (
                Column("index_id", S), Column("trade_date", D),
                Column("open", F, True), Column("high", F, True), Column("low", F, True),
                Column("close", F), Column("source", S),
            ),
            description='Daily index levels (points) per index and trading day.',
            key=("index_id", "trade_date"),
            positive=("open", "high", "low", "close"),
            date_columns_not_future=("trade_date",),
            calendar_date="trade_date",
            market_of="index_id",
            id_columns=("index_id",),
            checks=_ohlc_checks(),
        ),
        Dataset(
            "shares_outstanding",
            (
                Column("security_id", S), Column("as_of_date", D), Column("share_class", S),
                Column("shares", F, True), Column("filed_date", D, True), Column("source", S),
            ),
            description='Share counts per security, as-of date and share class, with the date they were filed.',
            key=("security_id", "as_of_date", "share_class"),
            positive=("shares",),
            date_columns_not_future=("as_of_date", "filed_date"),
            id_columns=("security_id",),
            checks=(
                Check("filed on or after as_of_date",
                      pl.col("filed_date") < pl.col("as_of_date"), ("as_of_date", "filed_date")),
            ),
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
            description='Reported financial figures per security, metric, period and filing (values as filed: discrete or year to date).',
            key=("security_id", "metric", "period_end", "fiscal_period", "filed_date"),
            allowed={"value_basis": VALUE_BASES, "fiscal_period": FISCAL_PERIODS,
                     "metric": METRICS, "unit": UNITS},
            date_columns_not_future=("filed_date", "period_end"),
            id_columns=("security_id",),
            checks=(
                Check("filed on or after period_end",
                      pl.col("filed_date") < pl.col("period_end"), ("period_end", "filed_date")),
                Check("period_start <= period_end",
                      pl.col("period_start") > pl.col("period_end"), ("period_start", "period_end")),
                Check("plausible fiscal_year",
                      (pl.col("fiscal_year") - pl.col("period_end").dt.year()).abs()
                      > FISCAL_YEAR_SLACK, ("fiscal_year", "period_end")),
            ),
        ),
        Dataset(
            "fund_flows_daily",
            (
                Column("flow_scope", S), Column("entity_id", S), Column("trade_date", D),
                Column("investor_type", S), Column("period", S),
                Column("net_buy_value", F), Column("currency", S), Column("source", S),
            ),
            description="Net buying by investor type per security, board or market and trading day (or week), in the market's currency.",
            key=("flow_scope", "entity_id", "trade_date", "investor_type"),
            allowed={
                "flow_scope": FLOW_SCOPES, "investor_type": INVESTOR_TYPES,
                "period": FLOW_PERIODS, "currency": CURRENCIES,
            },
            date_columns_not_future=("trade_date",),
            # Weekly statistics are dated on the week's last trading day, so every row,
            # daily or weekly, must fall on a session.
            calendar_date="trade_date",
            market_of="entity_id",
            id_columns=("entity_id",),
            checks=(
                Check("currency of the market",
                      pl.col("currency") != market_of_expr("entity_id").replace_strict(
                          MARKET_CURRENCY, default=None, return_dtype=pl.Utf8),
                      ("entity_id", "currency")),
            ),
        ),
        Dataset(
            "fx_rates_daily",
            (Column("trade_date", D), Column("currency", S), Column("usd_per_unit", F),
             Column("source", S)),
            description='Daily FX fixings: US dollars per unit of each currency.',
            key=("trade_date", "currency"),
            docs={"currency": "ISO 4217 code of the currency quoted (USD per one unit of it)."},
            positive=("usd_per_unit",),
            allowed={"currency": CURRENCIES},
            date_columns_not_future=("trade_date",),
            checks=(
                Check("plausible usd_per_unit (markets.USD_PER_UNIT_BAND)",
                      (pl.col("usd_per_unit") < _band(0)) | (pl.col("usd_per_unit") > _band(1)),
                      ("currency", "usd_per_unit")),
            ),
        ),
        Dataset(
            "index_valuation_daily",
            (
                Column("index_id", S), Column("trade_date", D), Column("pe_ttm", F, True),
                Column("pb", F, True), Column("dividend_yield", F, True), Column("source", S),
            ),
            description='Daily valuation of an index as its publisher states it: P/E (TTM), P/B, dividend yield.',
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
            description='Basket memberships: which security belongs to which basket, and from when to when.',
            key=("basket_id", "security_id"),
            docs={"security_id": "Member security (MARKET:CODE)."},
            id_columns=("security_id",),
            checks=(
                Check("valid_from <= valid_to",
                      pl.col("valid_to") < pl.col("valid_from"), ("valid_from", "valid_to")),
            ),
        ),
    )
}

# Order in which datasets land: reference data first so later checks can look members up.
DATASET_ORDER = tuple(DATASETS)


def empty_frame(dataset: str) -> pl.DataFrame:
    return pl.DataFrame(schema=DATASETS[dataset].schema)
