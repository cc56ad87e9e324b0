"""JPX weekly "Trading by Type of Investors" (投資部門別売買状況) Excel files.

JPX publishes one workbook a week (stock_val_1_YYMMDD.xls, values; linked from
https://www.jpx.co.jp/markets/statistics-equities/investor-type/index.html and its yearly
archive pages 00-00-archives-NN.html). Each sheet (a market section: "Tokyo & Nagoya",
"TSE Prime", ...) has the week in its heading, e.g. "2025年11月第1週 (11/04 - 11/07)",
the unit (単位：千円 / Unit: thousand yen; some JPX tables use 百万円 / million yen, so the
unit is read from the sheet, never assumed), and for each investor type two rows (売り
Sales / 買い Purchases) with the label in the first columns (Japanese on the first row,
English on the second) and the net balance in the column headed 差引き / Balance.

Parsed into fund_flows_daily rows: flow_scope 'market', period 'week', trade_date = the
week's last trading day (selloff.calendars), one row per investor type of the contract.
The leaves of JPX's tree are kept (aggregates such as 委託計 and 法人 are not, so the types
sum to the market's net, about 0); その他法人等, その他金融機関 and 証券会社 are summed into 'other'.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import unicodedata
from typing import Any

import pandas as pd
import polars as pl

from selloff.calendars import trading_days
from selloff.sources.live.common import HYAKUMAN_YEN, SEN_YEN, FetchLog, require_rows, typed_frame
from selloff.sources.live.errors import MalformedPayload
from selloff.sources.live.http import HttpClient, RetryPolicy

JPX_BASE_URL = "https://www.jpx.co.jp"
SOURCE = "JPX"
INDEX_PATH = "/markets/statistics-equities/investor-type/index.html"
ARCHIVE_PATH = "/markets/statistics-equities/investor-type/00-00-archives-{n:02d}.html"
_LINK = re.compile(r'href="([^"]*stock_val_1_(\d{6})\.xlsx?)"', re.IGNORECASE)
PUBLICATION_LAG_DAYS = 14   # a week's file appears a few business days after it ends

# (investor_type, Japanese labels, English labels, required)
LEAVES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], bool], ...] = (
    ("proprietary", ("自己計",), ("proprietary",), True),
    ("investment_trust", ("投資信託",), ("investment trusts",), True),
    ("corporate", ("事業法人",), ("business cos.", "business companies"), True),
    ("other", ("その他法人等",), ("other cos.", "other institutions"), True),
    ("insurance", ("生保・損保",), ("life & non-life insurance", "life&non-life insurance"), True),
    ("bank", ("都銀・地銀等",), ("city & regional banks", "city & regional bks"), True),
    ("trust_bank", ("信託銀行",), ("trust banks",), True),
    ("other", ("その他金融機関",), ("other financial institutions",), True),
    ("individual", ("個人",), ("individuals",), True),
    ("foreign", ("海外投資家",), ("foreigners",), True),
    ("other", ("証券会社",), ("securities cos.", "securities companies"), False),
)
_RANGE = re.compile(r"(\d{1,2})\s*/\s*(\d{1,2})\s*[-~～〜－]\s*(\d{1,2})\s*/\s*(\d{1,2})")
_YEAR = re.compile(r"(20\d{2})\s*年")
_YEAR_EN = re.compile(r"\b(20\d{2})\b")
_MONTH = re.compile(r"(\d{1,2})\s*月")


def _norm(text: str) -> str:
    """NFKC, no whitespace (JPX pads labels with full-width spaces: 個　人), lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = unicodedata.normalize("NFKC", str(value)).strip().replace(",", "")
    if text in ("", "-", "―", "—"):
        return None
    # Japanese tables mark negatives with ▲ or △.
    text = re.sub(r"^[▲△]", "-", text)
    try:
        return float(text)
    except ValueError:
        return None


def parse_sheet(raw: pd.DataFrame, target: str) -> tuple[dt.date, dt.date, float, dict[str, float]]:
    """(week start, week end, yen per unit, {investor_type: net balance in units})."""
    cells: list[tuple[int, int, str]] = []
    for r in range(raw.shape[0]):
        for c in range(raw.shape[1]):
            v = raw.iat[r, c]
            if isinstance(v, str) and v.strip():
                cells.append((r, c, v))

    units = set()
    for _r, _c, text in cells:
        t = _norm(text)
        if "千円" in t or "thousandyen" in t or "thousandsofyen" in t:
            units.add(SEN_YEN)
        if "百万円" in t or "millionyen" in t or "millionsofyen" in t:
            units.add(HYAKUMAN_YEN)
    if len(units) != 1:
        raise MalformedPayload(SOURCE, target, "unit (単位)",
                               "no unit stated" if not units else "both 千円 and 百万円 stated")
    unit = units.pop()

    balance_cells = [(r, c) for r, c, text in cells
                     if "差引" in _norm(text) or "balance" in _norm(text)]
    if not balance_cells:
        raise MalformedPayload(SOURCE, target, "差引き / Balance", "no balance column")
    col = max(c for _r, c in balance_cells)
    header_row = min(r for r, c in balance_cells if c == col)

    # Every week heading on the sheet: a workbook may show last week beside this week,
    # each block under its own heading, so the week is the one over the balance column
    # read (the nearest heading at or left of it, above its header), not the first found.
    weeks: list[tuple[int, int, dt.date, dt.date]] = []
    for r, c, text in sorted(cells)[:200]:
        m = _RANGE.search(unicodedata.normalize("NFKC", text))
        if not m:
            continue
        # The year (and the month the heading names) may sit in a cell of their own on
        # the heading rows: look at the cell first, then at its neighbours.
        near = " ".join(t for rr, _cc, t in cells if abs(rr - r) <= 2)
        year_m = _YEAR.search(text) or _YEAR.search(near) or _YEAR_EN.search(near)
        if not year_m:
            continue
        year = int(year_m.group(1))
        month_m = _MONTH.search(text) or _MONTH.search(near)
        m1, d1, m2, d2 = map(int, m.groups())
        y1 = y2 = year
        if m2 < m1:  # a week across New Year: the heading's month says which year it names
            if month_m and int(month_m.group(1)) == m2:
                y1 = year - 1
            else:
                y2 = year + 1
        try:
            weeks.append((r, c, dt.date(y1, m1, d1), dt.date(y2, m2, d2)))
        except ValueError:
            continue
    over = [w for w in weeks if w[1] <= col and w[0] <= header_row]
    if not over:
        raise MalformedPayload(SOURCE, target, "week (期間)",
                               "no 'YYYY年 ... (MM/DD - MM/DD)' heading found over the "
                               "差引き / Balance column")
    _r, _c, start, end = max(over, key=lambda w: (w[1], w[0]))

    label_rows: dict[str, int] = {}
    for r, c, text in cells:
        if c <= 2:
            label_rows.setdefault(_norm(text), r)

    nets: dict[str, float] = {}
    for investor, ja, en, required in LEAVES:
        rows: list[int] = []
        for label in ja:
            if _norm(label) in label_rows:
                r = label_rows[_norm(label)]
                rows = [r, r + 1]
                break
        if not rows:
            for label in en:
                if _norm(label) in label_rows:
                    r = label_rows[_norm(label)]
                    rows = [r - 1, r]
                    break
        name = f"{ja[0]} / {en[0]}"
        if not rows:
            if required:
                raise MalformedPayload(SOURCE, target, name, "investor type not found")
            continue
        values = {v for v in (_number(raw.iat[r, col]) for r in rows if 0 <= r < raw.shape[0])
                  if v is not None}
        if len(values) != 1:
            raise MalformedPayload(SOURCE, target, f"{name}: 差引き / Balance",
                                   "no balance" if not values else f"several balances {sorted(values)}")
        nets[investor] = nets.get(investor, 0.0) + values.pop()
    return start, end, unit, nets


def pick_sheet(book: dict[str, pd.DataFrame], wanted: str | None, target: str) -> pd.DataFrame:
    if wanted is None:
        return next(iter(book.values()))
    for name, frame in book.items():
        if _norm(name) == _norm(wanted):
            return frame
    for name, frame in book.items():
        if _norm(wanted) in _norm(name):
            return frame
    raise MalformedPayload(SOURCE, target, "sheet", f"no sheet {wanted!r} (have {list(book)})")


def week_rows(content: bytes, *, target: str, entity_id: str, sheet: str | None,
              source: str = SOURCE) -> tuple[dt.date, list[dict[str, Any]]]:
    """fund_flows_daily rows of one weekly workbook; also returns the week's end date."""
    try:
        book = pd.read_excel(io.BytesIO(content), sheet_name=None, header=None)
    except Exception as exc:  # xlrd/openpyxl raise many types for a corrupt file
        raise MalformedPayload(SOURCE, target, "<workbook>", f"not a readable Excel file ({exc})") from None
    start, end, unit, nets = parse_sheet(pick_sheet(book, sheet, target), target)
    days = trading_days("JP", start, end)
    if not days:
        return end, []
    trade_date = days[-1]
    return end, [{"flow_scope": "market", "entity_id": entity_id, "trade_date": trade_date,
                  "investor_type": inv, "period": "week", "net_buy_value": net * unit,
                  "currency": "JPY", "source": source} for inv, net in nets.items()]


class JpxAdapter:
    name = SOURCE

    def __init__(self, policy: RetryPolicy, log: FetchLog, *, base_url: str = JPX_BASE_URL,
                 today: dt.date | None = None, rate_per_second: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self.log = log
        self.today = today
        self.http = HttpClient(SOURCE, policy, rate_per_second=rate_per_second,
                               headers={"User-Agent": "Mozilla/5.0 (selloff warehouse)"})

    def file_links(self, start: dt.date) -> dict[str, dt.date]:
        """URL -> the date in its file name, from the index page and the archive pages
        back to the year of `start`."""
        today = self.today or dt.date.today()
        pages = [INDEX_PATH] + [ARCHIVE_PATH.format(n=n)
                                for n in range(0, today.year - start.year + 1)]
        links: dict[str, dt.date] = {}
        for page in pages:
            url = f"{self.base_url}{page}"
            resp = self.http.get(url, ok_statuses=frozenset({404}))
            found = 0
            if resp.status_code != 404:
                for href, code in _LINK.findall(resp.text):
                    try:
                        day = dt.datetime.strptime(code, "%y%m%d").date()
                    except ValueError:
                        continue
                    full = href if href.startswith("http") else f"{self.base_url}{href if href.startswith('/') else '/' + href}"
                    links[full] = day
                    found += 1
            self.log.add(SOURCE, "fund_flows_daily", url, found)
        return links

    def weekly_flows(self, start: dt.date, end: dt.date, *, entity_id: str = "JP:TSE",
                     sheet: str | None = None) -> pl.DataFrame | None:
        today = self.today or dt.date.today()
        links = self.file_links(start)
        by_week: dict[dt.date, list[dict[str, Any]]] = {}
        lo, hi = start - dt.timedelta(days=7), end + dt.timedelta(days=PUBLICATION_LAG_DAYS)
        for url, day in sorted(links.items(), key=lambda kv: kv[1]):
            if not lo <= day <= hi:
                continue
            content = self.http.get(url).content
            week_end, week = week_rows(content, target=url, entity_id=entity_id, sheet=sheet)
            kept = [r for r in week if start <= r["trade_date"] <= end]
            self.log.add(SOURCE, "fund_flows_daily", url, len(kept))
            by_week[week_end] = kept  # a week published twice: the later file corrects
        rows = [r for week_end in sorted(by_week) for r in by_week[week_end]]
        # The last week or two of a window are not published yet: only older days count.
        return require_rows(typed_frame("fund_flows_daily", rows), source=SOURCE,
                            target=f"{self.base_url}{INDEX_PATH}", market="JP", start=start,
                            end=min(end, today - dt.timedelta(days=PUBLICATION_LAG_DAYS)),
                            today=today)
