"""The market registry: every fact about a market, written once (DESIGN §5, "Markets").

The landing gate (contracts, validation), the trading calendars, the schedules, the
factor model's default index, the demo market and the dbt tests (through the seeds
`markets` and `currencies`, written by `write_dbt_seeds`) all read these entries. Adding
a market is adding a `Market` here (and, for its currency, a band in `USD_PER_UNIT_BAND`);
`tests/test_markets.py` checks each entry against exchange_calendars and the seeds
against the registry.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

# Late prints and closing auctions settle within minutes of the close; half an hour after
# it the day's data is final at every source the live adapters read.
DEFAULT_REFRESH_DELAY = dt.timedelta(minutes=30)
# A session is late once this long has passed after the refresh: room for one retry of
# the refresh and a slow source, short enough that a missed session is flagged the same
# evening (raw freshness checks, assets/extract/freshness.py).
DEFAULT_FRESHNESS_GRACE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Market:
    """One market: the `<MARKET>` prefix of every id and what belongs to it."""

    code: str  # the id prefix, `US` in `US:NVDA` (DESIGN §3)
    name: str
    calendar: str  # exchange_calendars name: the trading days
    currency: str  # ISO 4217: prices, caps and flows of the market are in it
    timezone: str  # IANA name; trade dates are local dates in it
    close: dt.time  # regular session close, local time
    default_index: str  # index_id the factor model regresses on (DESIGN §5)
    code_pattern: str  # regex of the security code after `<MARKET>:`
    mics: tuple[str, ...]  # ISO 10383 MICs of the market's exchanges
    refresh_delay: dt.timedelta = DEFAULT_REFRESH_DELAY  # the schedule runs this long after close
    freshness_grace: dt.timedelta = DEFAULT_FRESHNESS_GRACE  # late this long after the refresh

    @property
    def refresh_time(self) -> dt.time:
        """Local time of the daily refresh."""
        at = dt.datetime.combine(dt.date(2000, 1, 3), self.close) + self.refresh_delay
        if at.date() != dt.date(2000, 1, 3):
            # A cron on the next calendar day would request the wrong local day.
            raise ValueError(f"{self.code}: refresh {self.refresh_delay} after {self.close} "
                             "falls on the next day")
        return at.time()

    @property
    def fresh_by(self) -> dt.time:
        """Local time by which a session's data must have landed (close + refresh delay +
        grace); the freshness checks fail after it."""
        at = dt.datetime.combine(dt.date(2000, 1, 3), self.refresh_time) + self.freshness_grace
        if at.date() != dt.date(2000, 1, 3):
            raise ValueError(f"{self.code}: freshness deadline {self.freshness_grace} after "
                             f"{self.refresh_time} falls on the next day")
        return at.time()

    @property
    def freshness_cron(self) -> str:
        """Weekday cron, in `timezone`, at the freshness deadline."""
        t = self.fresh_by
        return f"{t.minute} {t.hour} * * 1-5"

    @property
    def cron(self) -> str:
        """Weekday cron of the daily refresh, in `timezone` (holidays skip at run time)."""
        t = self.refresh_time
        return f"{t.minute} {t.hour} * * 1-5"

    def security_id_matches(self, security_id: str) -> bool:
        return re.fullmatch(f"{re.escape(self.code)}:(?:{self.code_pattern})", security_id) is not None


# Order is the order markets are listed, simulated and scheduled in; new markets go last
# so the demo's random streams of the earlier ones stay as they were.
REGISTRY: tuple[Market, ...] = (
    Market("US", "United States", "XNYS", "USD", "America/New_York", dt.time(16, 0),
           "US:SPX", r"[A-Z][A-Z0-9.-]*", ("XNYS", "XNAS")),
    # China needs the exchange suffix: 000001.SH is an index, 000001.SZ a bank.
    Market("CN", "China A-shares", "XSHG", "CNY", "Asia/Shanghai", dt.time(15, 0),
           "CN:000300.SH", r"[0-9]{6}\.(?:SH|SZ|BJ)", ("XSHG", "XSHE", "BJSE")),
    # KRX codes are six characters; since 2023 some carry letters.
    Market("KR", "Korea", "XKRX", "KRW", "Asia/Seoul", dt.time(15, 30),
           "KR:KOSPI", r"[0-9A-Z]{6}", ("XKRX",)),
    # TSE codes are four characters; since 2024 new listings may end in a letter (130A).
    Market("JP", "Japan", "XTKS", "JPY", "Asia/Tokyo", dt.time(15, 30),
           "JP:N225", r"[0-9][0-9A-Z]{3}", ("XTKS",)),
    # TWSE common stocks have four-digit codes (2330 is TSMC).
    Market("TW", "Taiwan", "XTAI", "TWD", "Asia/Taipei", dt.time(13, 30),
           "TW:TAIEX", r"[0-9]{4}", ("XTAI",)),
)
MARKETS_BY_CODE: dict[str, Market] = {m.code: m for m in REGISTRY}
MARKETS: tuple[str, ...] = tuple(MARKETS_BY_CODE)

# Plausible USD per unit of each currency the data may carry (market currencies, and
# currencies securities report in, e.g. US:TSM's TWD): wide enough for any rate since 2000
# with margin, narrow enough that an inverted quote (JPY at 150 USD per yen, CNY at 7.1)
# falls outside. EUR and GBP trade near parity, so their inversion stays inside the band:
# the FX-outlier finding (analytics.data_quality_findings) is the net for those.
USD_PER_UNIT_BAND: dict[str, tuple[float, float]] = {
    "USD": (1.0, 1.0),
    "CNY": (0.08, 0.3),
    "KRW": (2e-4, 2e-3),
    "JPY": (2e-3, 0.02),
    "HKD": (0.08, 0.3),
    "EUR": (0.7, 2.0),
    "TWD": (0.015, 0.08),
    "GBP": (0.9, 2.5),
}
CURRENCIES: tuple[str, ...] = tuple(USD_PER_UNIT_BAND)
MARKET_CURRENCY: dict[str, str] = {m.code: m.currency for m in REGISTRY}


def market(code: str) -> Market:
    """The registry entry of `code`; an unknown code names the known ones."""
    try:
        return MARKETS_BY_CODE[code]
    except KeyError:
        raise KeyError(f"unknown market {code!r}; the registry (selloff/markets.py) has "
                       f"{', '.join(MARKETS)}") from None


def market_of(entity_id: str) -> str:
    """`US:NVDA` -> `US`: the market prefix every id carries (DESIGN §3)."""
    return entity_id.split(":", 1)[0]


def market_of_expr(column: str,
                   frame: pl.DataFrame | pl.LazyFrame | None = None) -> pl.Expr:
    """`market_of` of each value of `column`, as a polars expression (null stays null).

    Given `frame`, a `market` column of it wins where it is not null (rows whose market
    is stated keep it; the prefix fills the rest)."""
    prefix = pl.col(column).str.split(":").list.first()
    if frame is not None and "market" in frame.collect_schema().names():
        return pl.coalesce(pl.col("market"), prefix)
    return prefix


def market_of_sql(column: str) -> str:
    """`market_of` of a (quoted or trusted) SQL column name, in DuckDB SQL."""
    return f"split_part({column}, ':', 1)"


def id_pattern() -> str:
    """Any `<MARKET>:<code>` id (securities, indexes, boards, market entities) of a
    registered market. Codes are printable ASCII upper case: a lower-case, full-width or
    zero-width character would make a second, silently different key for one security."""
    return r"^(?:" + "|".join(MARKETS) + r"):[A-Z0-9][A-Z0-9._-]*$"


def security_id_pattern() -> str:
    """A security id whose code follows its own market's `code_pattern`."""
    return r"^(?:" + "|".join(f"{m.code}:(?:{m.code_pattern})" for m in REGISTRY) + r")$"


# The dbt seeds generated from the registry: file name -> (header, rows).
def seed_tables() -> dict[str, tuple[list[str], list[list[str]]]]:
    markets = [[m.code, m.name, m.calendar, m.currency, m.timezone, m.close.strftime("%H:%M"),
                m.refresh_time.strftime("%H:%M"), m.default_index, m.code_pattern, " ".join(m.mics)]
               for m in REGISTRY]
    by_currency = {m.currency: m.code for m in REGISTRY}
    currencies = [[c, by_currency.get(c, ""), repr(lo), repr(hi)]
                  for c, (lo, hi) in USD_PER_UNIT_BAND.items()]
    return {
        "markets": (["market", "name", "calendar", "currency", "timezone", "close_local",
                     "refresh_local", "default_index_id", "code_pattern", "mics"], markets),
        "currencies": (["currency", "market", "usd_per_unit_min", "usd_per_unit_max"], currencies),
    }


def seed_csv(name: str) -> str:
    """The CSV text of one generated seed."""
    header, rows = seed_tables()[name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write_dbt_seeds(seed_dir: Path) -> list[Path]:
    """Write `markets.csv` and `currencies.csv` into the dbt project's seeds folder
    (`python -m selloff.markets` does it for the repository's dbt project)."""
    written = []
    for name in seed_tables():
        path = Path(seed_dir) / f"{name}.csv"
        path.write_text(seed_csv(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_dbt_seeds(Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"):
        print(p)
