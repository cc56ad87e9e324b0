"""ECB euro reference rates (SDMX CSV of the EXR dataflow), crossed to USD.

The ECB publishes units of each currency per 1 EUR. usd_per_unit(CCY) is
(USD per EUR) / (CCY per EUR); EUR itself gets USD per EUR. No key is needed.
Format: https://data.ecb.europa.eu/help/api/data (format=csvdata).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math

import polars as pl
from dateutil.easter import easter

from selloff.sources.live.common import FetchLog, typed_frame
from selloff.sources.live.errors import EmptyAnswer, MalformedPayload
from selloff.sources.live.http import HttpClient, RetryPolicy

ECB_BASE_URL = "https://data-api.ecb.europa.eu/service"
SOURCE = "ECB"
_REQUIRED = ("CURRENCY", "CURRENCY_DENOM", "TIME_PERIOD", "OBS_VALUE")


def target_business_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Days the ECB fixes reference rates: weekdays except the TARGET2 closing days."""
    out = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            e = easter(day.year)
            closed = {dt.date(day.year, 1, 1), e - dt.timedelta(days=2), e + dt.timedelta(days=1),
                      dt.date(day.year, 5, 1), dt.date(day.year, 12, 25), dt.date(day.year, 12, 26)}
            if day not in closed:
                out.append(day)
        day += dt.timedelta(days=1)
    return out


def parse_exr_csv(text: str, target: str) -> list[tuple[dt.date, str, float]]:
    """(date, currency, units per EUR) from the ECB's csvdata; blank/NaN observations skipped."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = reader.fieldnames or []
    for name in _REQUIRED:
        if name not in fields:
            raise MalformedPayload(SOURCE, target, name, f"missing column (header: {fields[:10]})")
    out = []
    for i, row in enumerate(reader, start=2):
        if row.get("FREQ", "D") != "D" or row["CURRENCY_DENOM"] != "EUR":
            continue
        if row.get("EXR_TYPE", "SP00") != "SP00":
            continue
        raw = (row["OBS_VALUE"] or "").strip()
        if raw == "" or raw.lower() == "nan":
            continue
        try:
            value = float(raw)
            day = dt.date.fromisoformat(row["TIME_PERIOD"].strip())
        except ValueError:
            bad = "OBS_VALUE" if not _is_float(raw) else "TIME_PERIOD"
            raise MalformedPayload(SOURCE, target, bad,
                                   f"line {i}: {row.get(bad)!r} does not parse") from None
        if not math.isfinite(value) or value <= 0:
            raise MalformedPayload(SOURCE, target, "OBS_VALUE", f"line {i}: {raw!r} is not > 0")
        out.append((day, row["CURRENCY"].strip(), value))
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class EcbAdapter:
    """fx_rates_daily from the ECB (one request for the whole window)."""

    name = SOURCE

    def __init__(self, policy: RetryPolicy, log: FetchLog, *, base_url: str = ECB_BASE_URL,
                 today: dt.date | None = None, rate_per_second: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.log = log
        self.today = today
        self.http = HttpClient(SOURCE, policy, rate_per_second=rate_per_second)

    def url(self, currencies: list[str]) -> str:
        return f"{self.base_url}/data/EXR/D.{'+'.join(currencies)}.EUR.SP00.A"

    def fx_rates_daily(self, start: dt.date, end: dt.date, currencies: tuple[str, ...]
                       ) -> pl.DataFrame | None:
        wanted = [c for c in dict.fromkeys(c.upper() for c in currencies) if c != "EUR"]
        if "USD" not in wanted:
            wanted.insert(0, "USD")  # every cross needs USD per EUR
        url = self.url(wanted)
        params = {"format": "csvdata", "startPeriod": start.isoformat(),
                  "endPeriod": end.isoformat()}
        target = HttpClient.shown_url(url, params)
        # The ECB answers 404 "No results found" when the period holds no fixing.
        resp = self.http.get(url, params, ok_statuses=frozenset({404}))
        obs = [] if resp.status_code == 404 else parse_exr_csv(resp.text, target)
        present = {c for d, c, _v in obs if start <= d <= end}
        missing = [c for c in wanted if c not in present]
        if present and missing:
            # A currency the ECB left out of an otherwise good answer would land as no rows,
            # and every price in it would stay without a USD figure: say which is missing.
            raise EmptyAnswer(SOURCE, target,
                              f"no fixing for {', '.join(missing)} in {start}..{end} (the "
                              f"answer has {', '.join(sorted(present))})")
        usd = {d: v for d, c, v in obs if c == "USD"}
        rows = []
        for day, ccy, per_eur in obs:
            if day < start or day > end or day not in usd or ccy not in wanted:
                continue
            if ccy == "USD":
                rows.append({"trade_date": day, "currency": "EUR", "usd_per_unit": usd[day],
                             "source": SOURCE})
            else:
                rows.append({"trade_date": day, "currency": ccy,
                             "usd_per_unit": usd[day] / per_eur, "source": SOURCE})
        self.log.add(SOURCE, "fx_rates_daily", target, len(rows))
        if not rows:
            today = self.today or dt.date.today()
            days = target_business_days(start, min(end, today))
            if days:
                raise EmptyAnswer(SOURCE, target,
                                  f"empty answer for {start}..{end}, which holds {len(days)} "
                                  f"TARGET business day(s) ({days[0]}..{days[-1]})")
            return None
        return typed_frame("fx_rates_daily", rows).sort(["trade_date", "currency"])
