"""SEC EDGAR XBRL company facts -> fundamentals and shares_outstanding (US).

Endpoints (https://www.sec.gov/search-filings/edgar-application-programming-interfaces):
  {base}/api/xbrl/companyfacts/CIK##########.json   every XBRL fact a company filed
  {base}/submissions/CIK##########.json             the filing index (period of each report)
Fair access: a User-Agent naming the requester with a contact address (SEC_USER_AGENT),
at most 10 requests per second.

Facts are kept as reported (DESIGN §3): each row has its period, form, filed date and
accession. A duration of about three months is a discrete quarter; a longer one in a
10-Q is year-to-date (value_basis 'ytd'); an annual duration in a 10-K is fiscal_period
'FY'. A later filing (10-Q/A, 10-K/A, or the comparative column of a later report) that
gives a different value for the same period is a new row from its own filed date; the
same value repeated is not.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from selloff.sources.live.common import FetchLog, require_rows, typed_frame
from selloff.sources.live.errors import LiveConfigError, MalformedPayload
from selloff.sources.live.http import HttpClient, RetryPolicy

SEC_BASE_URL = "https://data.sec.gov"
SOURCE = "SEC EDGAR"

# metric -> concepts in order of preference, chosen per reporting period (companies
# switch concepts over the years, e.g. Revenues -> RevenueFromContractWith...).
METRICS: dict[str, tuple[str, ...]] = {
    "revenue": ("RevenueFromContractWithCustomerExcludingAssessedTax", "Revenues",
                "SalesRevenueNet"),
    "net_income": ("NetIncomeLoss", "ProfitLoss"),
    "eps_diluted": ("EarningsPerShareDiluted",),
    "capex": ("PaymentsToAcquirePropertyPlantAndEquipment", "PaymentsToAcquireProductiveAssets"),
    "operating_cash_flow": ("NetCashProvidedByUsedInOperatingActivities",),
}
SHARES_CONCEPTS = (("dei", "EntityCommonStockSharesOutstanding"),
                   ("us-gaap", "CommonStockSharesOutstanding"))
ANNUAL_FORMS = {"10-K", "10-KT", "20-F", "40-F"}
QUARTERLY_FORMS = {"10-Q", "10-QT"}
QUARTER_MAX_DAYS = 100   # a quarter is ~91 days; anything longer in a 10-Q is year-to-date
ANNUAL_MIN_DAYS = 340    # 52/53-week years are 364/371 days
ANNUAL_MAX_DAYS = 380
FUNDAMENTALS_LOOKBACK_DAYS = 800   # enough quarters for TTM and year-on-year at window start
SHARES_LOOKBACK_DAYS = 200         # the last cover-page count before the window starts


def cik10(cik: str | int) -> str:
    """'1045810' -> '0001045810' (the SEC's file names use 10 digits)."""
    text = str(cik).strip().split(".")[0]
    if not text.isdigit() or len(text) > 10:
        raise ValueError(f"{cik!r} is not a CIK")
    return text.zfill(10)


@dataclass(frozen=True)
class _Fact:
    metric: str
    concept: str
    unit: str
    start: dt.date | None
    end: dt.date
    value: float
    accn: str
    fy: int | None
    fp: str | None
    form: str
    filed: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days if self.start else 0

    @property
    def base_form(self) -> str:
        return self.form.split("/")[0]


def _date(value: Any, target: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except (TypeError, ValueError):
        raise MalformedPayload(SOURCE, target, field, f"{value!r} is not a YYYY-MM-DD date") from None


def _facts_of(doc: dict, taxonomy: str, concept: str, target: str, *, duration: bool,
              metric: str = "") -> list[_Fact]:
    node = ((doc.get("facts") or {}).get(taxonomy) or {}).get(concept)
    if node is None:
        return []
    units = node.get("units")
    if not isinstance(units, dict):
        raise MalformedPayload(SOURCE, target, f"facts.{taxonomy}.{concept}.units",
                               "missing or not an object")
    out = []
    for unit, items in units.items():
        if not isinstance(items, list):
            raise MalformedPayload(SOURCE, target, f"facts.{taxonomy}.{concept}.units.{unit}",
                                   "not a list")
        for i, item in enumerate(items):
            where = f"facts.{taxonomy}.{concept}.units.{unit}[{i}]"
            need = ("end", "val", "accn", "form", "filed") + (("start",) if duration else ())
            for key in need:
                if not isinstance(item, dict) or item.get(key) in (None, ""):
                    raise MalformedPayload(SOURCE, target, f"{where}.{key}", "missing")
            val = item["val"]
            if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
                raise MalformedPayload(SOURCE, target, f"{where}.val", f"{val!r} is not a number")
            fy = item.get("fy")
            out.append(_Fact(
                metric=metric, concept=concept, unit=unit,
                start=_date(item["start"], target, f"{where}.start") if duration else None,
                end=_date(item["end"], target, f"{where}.end"), value=float(val),
                accn=str(item["accn"]), fy=int(fy) if isinstance(fy, int) else None,
                fp=item.get("fp"), form=str(item["form"]),
                filed=_date(item["filed"], target, f"{where}.filed")))
    return out


def _unit_label(unit: str) -> str:
    """companyfacts units -> contract units: 'USD' stays, 'USD/shares' -> 'USD/share'."""
    if unit.endswith("/shares"):
        return unit[: -len("/shares")] + "/share"
    return unit


def report_periods(submissions: dict | None) -> dict[str, dt.date]:
    """accession -> period of report, from the submissions JSON (filings.recent)."""
    if not submissions:
        return {}
    recent = ((submissions.get("filings") or {}).get("recent") or {})
    accns = recent.get("accessionNumber") or []
    dates = recent.get("reportDate") or []
    out = {}
    for accn, day in zip(accns, dates, strict=False):
        try:
            out[str(accn)] = dt.date.fromisoformat(str(day))
        except ValueError:
            continue  # some forms (e.g. Form 4) have no period of report
    return out


def _classify(f: _Fact) -> tuple[str, str] | None:
    """(kind, value_basis): kind 'quarter' or 'annual' or 'ytd'; None = not a usable fact."""
    if f.base_form in QUARTERLY_FORMS:
        if 0 < f.days <= QUARTER_MAX_DAYS:
            return "quarter", "discrete"
        if QUARTER_MAX_DAYS < f.days < ANNUAL_MIN_DAYS:
            return "ytd", "ytd"
        return None
    if f.base_form in ANNUAL_FORMS:
        if ANNUAL_MIN_DAYS <= f.days <= ANNUAL_MAX_DAYS:
            return "annual", "discrete"
        if 0 < f.days <= QUARTER_MAX_DAYS:
            return "quarter", "discrete"
    return None


def companyfacts_to_fundamentals(doc: dict, security_id: str, *, target: str,
                                 report_ends: dict[str, dt.date] | None = None,
                                 first_period_end: dt.date | None = None,
                                 last_period_end: dt.date | None = None,
                                 source: str = SOURCE) -> list[dict[str, Any]]:
    """The fundamentals rows of one company's companyfacts JSON (see the module doc)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("facts"), dict):
        raise MalformedPayload(SOURCE, target, "facts", "missing or not an object")
    facts: list[_Fact] = []
    for metric, concepts in METRICS.items():
        per_period: dict[tuple, list[_Fact]] = {}
        for concept in concepts:
            found = [f for f in _facts_of(doc, "us-gaap", concept, target, duration=True,
                                          metric=metric) if f.base_form in ANNUAL_FORMS | QUARTERLY_FORMS]
            by_period: dict[tuple, list[_Fact]] = defaultdict(list)
            for f in found:
                by_period[(f.start, f.end)].append(f)
            for period, group in by_period.items():
                per_period.setdefault(period, group)  # first concept in preference wins
        for group in per_period.values():
            facts.extend(group)

    # Period of report per accession: the submissions index, else the latest period end
    # the filing reports (the current-period column of a 10-Q/10-K).
    ends = dict(report_ends or {})
    latest: dict[str, dt.date] = {}
    for f in facts:
        latest[f.accn] = max(latest.get(f.accn, f.end), f.end)
    for accn, day in latest.items():
        ends.setdefault(accn, day)

    # Labels (fiscal year and period) come from the filing in which a period is current;
    # a comparative column of a later filing borrows the label of that period.
    labels: dict[tuple, tuple[int, str]] = {}
    classified = []
    for f in sorted(facts, key=lambda x: (x.filed, x.accn)):
        kind = _classify(f)
        if kind is None:
            continue
        classified.append((f, kind))
        if f.end != ends.get(f.accn) or f.fy is None:
            continue
        if kind[0] == "annual":
            label = (f.fy, "FY")
        elif f.base_form in ANNUAL_FORMS:
            label = (f.fy, "Q4")
        elif f.fp in ("Q1", "Q2", "Q3", "Q4"):
            label = (f.fy, str(f.fp))
        else:
            continue
        labels.setdefault((f.metric, f.start, f.end), label)
        labels.setdefault((f.end, kind[0] == "annual"), label)

    rows: list[dict[str, Any]] = []
    last_value: dict[tuple, float] = {}
    for f, (kind, basis) in classified:
        if first_period_end and f.end < first_period_end:
            continue
        if last_period_end and f.end > last_period_end:
            continue
        label = labels.get((f.metric, f.start, f.end)) or labels.get((f.end, kind == "annual"))
        if label is None:
            continue  # a comparative of a period whose own filing predates XBRL
        key = (f.metric, f.start, f.end)
        prev = last_value.get(key)
        if prev is not None and math.isclose(prev, f.value, rel_tol=1e-12, abs_tol=1e-12):
            continue  # the same figure repeated in a later filing is not a new fact
        last_value[key] = f.value
        rows.append({
            "security_id": security_id, "metric": f.metric, "period_start": f.start,
            "period_end": f.end, "fiscal_year": label[0], "fiscal_period": label[1],
            "filed_date": f.filed, "value_basis": basis, "value": f.value,
            "unit": _unit_label(f.unit), "form": f.form, "accession": f.accn, "source": source,
        })
    return _unique_on_key(rows)


def _unique_on_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per contract key: a 10-Q's 3-month figure wins over its year-to-date one
    (both end on the same day and share the filed date); dbt derives the rest."""
    best: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = (row["metric"], row["period_end"], row["fiscal_period"], row["filed_date"])
        cur = best.get(key)
        if cur is None or (cur["value_basis"] == "ytd" and row["value_basis"] == "discrete"):
            best[key] = row
    return sorted(best.values(), key=lambda r: (r["metric"], r["period_end"], r["filed_date"]))


def companyfacts_to_shares(doc: dict, security_id: str, *, target: str,
                           first_as_of: dt.date | None = None, last_as_of: dt.date | None = None,
                           source: str = SOURCE) -> list[dict[str, Any]]:
    """Cover-page share counts, summed over share classes (same date, same accession).

    A company with several classes (Alphabet: A, B, C) reports one
    dei:EntityCommonStockSharesOutstanding per class; their sum is share_class 'total'.
    The first filing that reports a date wins (what was known first, point in time).
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("facts"), dict):
        raise MalformedPayload(SOURCE, target, "facts", "missing or not an object")
    facts: list[_Fact] = []
    for taxonomy, concept in SHARES_CONCEPTS:
        facts = [f for f in _facts_of(doc, taxonomy, concept, target, duration=False)
                 if f.unit == "shares"]
        if facts:
            break
    groups: dict[tuple[dt.date, str], list[_Fact]] = defaultdict(list)
    for f in facts:
        groups[(f.end, f.accn)].append(f)
    by_date: dict[dt.date, dict[str, Any]] = {}
    for (end, _accn), group in sorted(groups.items(), key=lambda kv: min(f.filed for f in kv[1])):
        if first_as_of and end < first_as_of or last_as_of and end > last_as_of:
            continue
        total = sum(f.value for f in group)
        if end in by_date or total <= 0:
            continue
        by_date[end] = {"security_id": security_id, "as_of_date": end, "share_class": "total",
                        "shares": total, "filed_date": min(f.filed for f in group),
                        "source": source}
    return [by_date[d] for d in sorted(by_date)]


class SecEdgarAdapter:
    """fundamentals and shares_outstanding for US securities with a CIK."""

    name = SOURCE

    def __init__(self, user_agent: str | None, policy: RetryPolicy, log: FetchLog, *,
                 base_url: str = SEC_BASE_URL, rate_per_second: float = 10.0,
                 today: dt.date | None = None,
                 fundamentals_lookback_days: int = FUNDAMENTALS_LOOKBACK_DAYS,
                 shares_lookback_days: int = SHARES_LOOKBACK_DAYS):
        self.base_url = base_url.rstrip("/")
        if not user_agent or not user_agent.strip():
            raise LiveConfigError(
                SOURCE, self.base_url,
                "SEC_USER_AGENT is not set: the SEC requires every request to name the "
                "requester and a contact address, e.g. SEC_USER_AGENT='Jane Doe jane@example.com'")
        self.log = log
        self.today = today
        self.fundamentals_lookback = dt.timedelta(days=fundamentals_lookback_days)
        self.shares_lookback = dt.timedelta(days=shares_lookback_days)
        self.http = HttpClient(
            SOURCE, policy, rate_per_second=rate_per_second,
            headers={"User-Agent": user_agent.strip(), "Accept-Encoding": "gzip, deflate"},
            hint_on_status={403: " (the SEC refuses requests without a descriptive User-Agent:"
                                 " check SEC_USER_AGENT)",
                            404: " (no such CIK, or no XBRL facts filed under it)"})
        self._cache: dict[str, dict] = {}

    def _json(self, url: str) -> dict:
        if url in self._cache:
            return self._cache[url]
        resp = self.http.get(url)
        try:
            doc = resp.json()
        except ValueError:
            raise MalformedPayload(SOURCE, url, "<body>", "not JSON") from None
        if not isinstance(doc, dict):
            raise MalformedPayload(SOURCE, url, "<body>", "not a JSON object")
        self._cache[url] = doc
        return doc

    def companyfacts_url(self, cik: str) -> str:
        return f"{self.base_url}/api/xbrl/companyfacts/CIK{cik10(cik)}.json"

    def submissions_url(self, cik: str) -> str:
        return f"{self.base_url}/submissions/CIK{cik10(cik)}.json"

    def fundamentals(self, companies: Iterable[tuple[str, str]], start: dt.date,
                     end: dt.date) -> pl.DataFrame | None:
        """companies: (security_id, cik) pairs, one per company."""
        frames = []
        first = start - self.fundamentals_lookback
        for security_id, cik in companies:
            sub_url = self.submissions_url(cik)
            ends = report_periods(self._json(sub_url))
            self.log.add(SOURCE, "fundamentals", sub_url, len(ends))
            url = self.companyfacts_url(cik)
            doc = self._json(url)
            rows = companyfacts_to_fundamentals(doc, security_id, target=url, report_ends=ends,
                                                first_period_end=first, last_period_end=end)
            self.log.add(SOURCE, "fundamentals", url, len(rows))
            df = require_rows(typed_frame("fundamentals", rows), source=SOURCE, target=url,
                              market="US", start=first, end=end, today=self.today)
            if df is not None:
                frames.append(df)
        return pl.concat(frames) if frames else None

    def shares_outstanding(self, companies: Iterable[tuple[str, str]], start: dt.date,
                           end: dt.date) -> pl.DataFrame | None:
        frames = []
        first = start - self.shares_lookback
        for security_id, cik in companies:
            url = self.companyfacts_url(cik)
            doc = self._json(url)
            rows = companyfacts_to_shares(doc, security_id, target=url, first_as_of=first,
                                          last_as_of=end)
            self.log.add(SOURCE, "shares_outstanding", url, len(rows))
            df = require_rows(typed_frame("shares_outstanding", rows), source=SOURCE, target=url,
                              market="US", start=first, end=end, today=self.today)
            if df is not None:
                frames.append(df)
        return pl.concat(frames) if frames else None
