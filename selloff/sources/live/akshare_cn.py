"""China A-shares through AKShare (which scrapes Eastmoney and CSIndex).

Functions used (documented at https://akshare.akfamily.xyz/data/stock/stock.html and
.../index/index.html) and the columns they return:
  stock_zh_a_hist(symbol, period="daily", start_date, end_date, adjust="")  unadjusted bars
      日期 股票代码 开盘 收盘 最高 最低 成交量 (手 = 100 shares) 成交额 (元) 振幅 涨跌幅 涨跌额 换手率
  stock_individual_fund_flow(stock, market)   Eastmoney keeps ~100 trading days only
      日期 收盘价 涨跌幅 主力净流入-净额 主力净流入-净占比 超大单净流入-净额 ... 小单净流入-净额 (元)
  stock_concept_fund_flow_hist(symbol=<concept name>)   same 净额 columns (元)
  stock_board_concept_name_em()   板块名称 板块代码 ...
  stock_board_concept_cons_em(symbol=<name or BKxxxx>)   代码 名称 ...
  stock_zh_index_hist_csindex(symbol, start_date, end_date)   日期 ... 收盘 ... 滚动市盈率
  stock_zh_index_value_csindex(symbol)   日期 ... 市盈率1 市盈率2 股息率1 股息率2 (%), ~20 days
Amounts may come as numbers (元) or as text with 亿/万; both are converted to full yuan.
Tests mock at this function boundary (the functions are AKShare's documented API).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import polars as pl

from selloff.sources.live.common import (
    LOT,
    FetchLog,
    cn_security_id,
    need_columns,
    parse_cn_amount,
    require_rows,
    typed_frame,
)
from selloff.sources.live.errors import EmptyAnswer, MalformedPayload
from selloff.sources.live.http import RetryPolicy, TokenBucket, call_with_retry, is_garbled_answer
from selloff.sources.live.universe import ConceptBoard, IndexSpec, SecuritySpec

log = logging.getLogger("selloff.sources.live")

SOURCE = "AKShare"
FLOW_COLUMNS = {
    "主力净流入-净额": "main_force",
    "超大单净流入-净额": "super_large",
    "大单净流入-净额": "large",
    "中单净流入-净额": "medium",
    "小单净流入-净额": "small",
}
PRICE_COLUMNS = ("日期", "开盘", "收盘", "最高", "最低", "成交量", "成交额")


def _date(value: Any, target: str, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, pd.Timestamp):
        return value.date()
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text[:10] if "-" in text or "/" in text else text, fmt).date()
        except ValueError:
            continue
    raise MalformedPayload(SOURCE, target, field, f"{value!r} is not a date")


def _amount(value: Any, target: str, field: str) -> float | None:
    try:
        return parse_cn_amount(value)
    except ValueError:
        raise MalformedPayload(SOURCE, target, field, f"{value!r} is not an amount") from None


class AkshareAdapter:
    name = SOURCE

    def __init__(self, policy: RetryPolicy, log: FetchLog, *, today: dt.date | None = None,
                 rate_per_second: float = 2.0, api: Any | None = None):
        self.policy = policy
        self.log = log
        self.today = today
        self._api = api
        self.bucket = TokenBucket(rate_per_second)
        self._board_codes: dict[str, str] | None = None

    def api(self) -> Any:
        """The akshare module, imported on first use (it is slow to import)."""
        if self._api is None:
            self._api = importlib.import_module("akshare")
        return self._api

    def _call(self, function: str, target: str, **kwargs: Any) -> Any:
        fn: Callable[..., Any] = getattr(self.api(), function)

        def once() -> Any:
            self.bucket.acquire()
            return fn(**kwargs)

        out = call_with_retry(SOURCE, f"akshare.{function}({target})", once, self.policy,
                              deadline=True, retry_also=is_garbled_answer)
        if out is None:
            return pd.DataFrame()
        if not isinstance(out, pd.DataFrame):
            raise MalformedPayload(SOURCE, f"akshare.{function}({target})", "<result>",
                                   f"expected a DataFrame, got {type(out).__name__}")
        return out

    # -- prices ---------------------------------------------------------------------------
    def prices_daily(self, securities: list[SecuritySpec], start: dt.date, end: dt.date
                     ) -> pl.DataFrame | None:
        frames = []
        for spec in securities:
            args = (f"symbol={spec.symbol!r}, start_date={start:%Y%m%d}, "
                    f"end_date={end:%Y%m%d}, adjust=''")
            target = f"akshare.stock_zh_a_hist({args})"
            df = self._call("stock_zh_a_hist", args, symbol=spec.symbol, period="daily",
                            start_date=f"{start:%Y%m%d}", end_date=f"{end:%Y%m%d}", adjust="")
            rows = self._price_rows(df, spec, target, start, end)
            self.log.add(SOURCE, "prices_daily", target, len(rows))
            out = require_rows(typed_frame("prices_daily", rows), source=SOURCE, target=target,
                               market="CN", start=start, end=end, today=self.today)
            if out is not None:
                frames.append(out)
        return pl.concat(frames) if frames else None

    def _price_rows(self, df: pd.DataFrame, spec: SecuritySpec, target: str, start: dt.date,
                    end: dt.date) -> list[dict[str, Any]]:
        if df.empty:
            return []
        need_columns(df.columns, PRICE_COLUMNS, source=SOURCE, target=target)
        raw = []
        for i, rec in enumerate(df.to_dict("records")):
            day = _date(rec["日期"], target, f"row {i + 1}: 日期")
            if not start <= day <= end:
                continue
            values = {c: _amount(rec[c], target, f"row {i + 1}: {c}")
                      for c in ("开盘", "收盘", "最高", "最低", "成交量", "成交额")}
            if values["收盘"] is None:
                raise MalformedPayload(SOURCE, target, f"row {i + 1}: 收盘", "empty close")
            raw.append((day, values))
        factor = self._volume_factor(raw, target)
        return [{"security_id": spec.security_id, "trade_date": day, "open": v["开盘"],
                 "high": v["最高"], "low": v["最低"], "close": v["收盘"], "adj_close": None,
                 "volume": None if v["成交量"] is None else v["成交量"] * factor,
                 "currency": "CNY", "source": SOURCE} for day, v in raw]

    @staticmethod
    def _volume_factor(raw: list[tuple[dt.date, dict]], target: str) -> float:
        """Shares per unit of 成交量: 100 (手, Eastmoney's A-share quote) unless the turnover
        says otherwise. The average price turnover/volume must lie within the day's range."""
        votes = {LOT: 0, 1: 0}
        for _day, v in raw:
            vol, amount, low, high = v["成交量"], v["成交额"], v["最低"], v["最高"]
            if not vol or not amount or not low or not high:
                continue
            for factor in votes:
                avg = amount / (vol * factor)
                if low * 0.98 <= avg <= high * 1.02:
                    votes[factor] += 1
        if votes[LOT] == 0 and votes[1] == 0:
            if any(v["成交量"] and v["成交额"] for _d, v in raw):
                raise MalformedPayload(SOURCE, target, "成交量",
                                       "volume fits neither lots of 100 shares nor shares "
                                       "(成交额/成交量 is outside the day's range)")
            return LOT
        return LOT if votes[LOT] >= votes[1] else 1

    # -- flows ----------------------------------------------------------------------------
    def security_flows(self, securities: list[SecuritySpec], start: dt.date, end: dt.date
                       ) -> pl.DataFrame | None:
        frames = []
        for spec in securities:
            market = spec.code.rsplit(".", 1)[-1].lower()
            args = f"stock={spec.symbol!r}, market={market!r}"
            df = self._call("stock_individual_fund_flow", args, stock=spec.symbol, market=market)
            frame = self._flow_frame(df, "security", spec.security_id,
                                     f"akshare.stock_individual_fund_flow({args})", start, end)
            if frame is not None:
                frames.append(frame)
        return pl.concat(frames) if frames else None

    def board_code(self, board: ConceptBoard) -> str:
        if board.code:
            return board.code
        if self._board_codes is None:
            df = self._call("stock_board_concept_name_em", "")
            need_columns(df.columns, ("板块名称", "板块代码"), source=SOURCE,
                         target="akshare.stock_board_concept_name_em()")
            self._board_codes = {str(n).strip(): str(c).strip()
                                 for n, c in zip(df["板块名称"], df["板块代码"], strict=True)}
            self.log.add(SOURCE, "baskets", "akshare.stock_board_concept_name_em()", len(df))
        code = self._board_codes.get(board.name)
        if not code:
            raise MalformedPayload(SOURCE, "akshare.stock_board_concept_name_em()", "板块名称",
                                   f"no concept board named {board.name!r}")
        return code

    def board_flows(self, boards: list[ConceptBoard], start: dt.date, end: dt.date
                    ) -> pl.DataFrame | None:
        frames = []
        for board in boards:
            code = self.board_code(board)
            args = f"symbol={board.name!r}"
            df = self._call("stock_concept_fund_flow_hist", args, symbol=board.name)
            frame = self._flow_frame(df, "board", f"CN:{code}",
                                     f"akshare.stock_concept_fund_flow_hist({args})", start, end)
            if frame is not None:
                frames.append(frame)
        return pl.concat(frames) if frames else None

    def _flow_frame(self, df: pd.DataFrame, scope: str, entity_id: str, target: str,
                    start: dt.date, end: dt.date) -> pl.DataFrame | None:
        rows: list[dict[str, Any]] = []
        held: list[dt.date] = []
        if not df.empty:
            need_columns(df.columns, ("日期", *FLOW_COLUMNS), source=SOURCE, target=target)
            for i, rec in enumerate(df.to_dict("records")):
                day = _date(rec["日期"], target, f"row {i + 1}: 日期")
                held.append(day)
                if not start <= day <= end:
                    continue
                for column, investor in FLOW_COLUMNS.items():
                    value = _amount(rec[column], target, f"row {i + 1}: {column}")
                    if value is None:
                        continue
                    rows.append({"flow_scope": scope, "entity_id": entity_id, "trade_date": day,
                                 "investor_type": investor, "period": "day",
                                 "net_buy_value": value, "currency": "CNY", "source": SOURCE})
        self.log.add(SOURCE, "fund_flows_daily", target, len(rows),
                     error=self._retention_note(held, start, end))
        if not rows and held and min(held) > end:
            # Eastmoney keeps only the last ~100 trading days of flows: an answer that has
            # data, all after the window, is the source's retention, not a failed request.
            log.warning("%s: %s holds %s..%s only; nothing for %s..%s (flows are kept about "
                        "100 trading days at the source: capture soon after the window)",
                        SOURCE, target, min(held), max(held), start, end)
            return None
        out = require_rows(typed_frame("fund_flows_daily", rows), source=SOURCE, target=target,
                           market="CN", start=start, end=end, today=self.today)
        return out

    @staticmethod
    def _retention_note(held: list[dt.date], start: dt.date, end: dt.date) -> str | None:
        if held and min(held) > start:
            return (f"source holds {min(held)}..{max(held)} only (about 100 trading days are "
                    f"kept); {start}..{min(min(held) - dt.timedelta(days=1), end)} is missing")
        return None

    # -- boards ---------------------------------------------------------------------------
    def board_members(self, board: ConceptBoard) -> list[tuple[str, str | None]]:
        """(security_id, local name) of a concept board's members today (no history)."""
        code = self.board_code(board)
        target = f"akshare.stock_board_concept_cons_em(symbol={code!r})"
        df = self._call("stock_board_concept_cons_em", f"symbol={code!r}", symbol=code)
        if df.empty:
            raise EmptyAnswer(SOURCE, target, f"concept board {board.name!r} has no members")
        need_columns(df.columns, ("代码", "名称"), source=SOURCE, target=target)
        out = []
        for i, (c, n) in enumerate(zip(df["代码"], df["名称"], strict=True)):
            try:
                out.append((cn_security_id(str(c)), None if pd.isna(n) else str(n)))
            except ValueError:
                raise MalformedPayload(SOURCE, target, f"row {i + 1}: 代码",
                                       f"{c!r} is not a 6-digit code") from None
        self.log.add(SOURCE, "baskets", target, len(out))
        return out

    # -- index valuation --------------------------------------------------------------------
    def index_valuation(self, indexes: list[IndexSpec], start: dt.date, end: dt.date
                        ) -> pl.DataFrame | None:
        frames = []
        for spec in indexes:
            if not spec.csindex:
                continue
            args = f"symbol={spec.csindex!r}, start_date={start:%Y%m%d}, end_date={end:%Y%m%d}"
            target = f"akshare.stock_zh_index_hist_csindex({args})"
            hist = self._call("stock_zh_index_hist_csindex", args, symbol=spec.csindex,
                              start_date=f"{start:%Y%m%d}", end_date=f"{end:%Y%m%d}")
            pe: dict[dt.date, float | None] = {}
            if not hist.empty:
                need_columns(hist.columns, ("日期", "滚动市盈率"), source=SOURCE, target=target)
                for i, rec in enumerate(hist.to_dict("records")):
                    day = _date(rec["日期"], target, f"row {i + 1}: 日期")
                    if start <= day <= end:
                        pe[day] = _amount(rec["滚动市盈率"], target, f"row {i + 1}: 滚动市盈率")
            self.log.add(SOURCE, "index_valuation_daily", target, len(pe))
            # The indicator file adds dividend yields (in %) for its last ~20 sessions.
            vtarget = f"akshare.stock_zh_index_value_csindex(symbol={spec.csindex!r})"
            value = self._call("stock_zh_index_value_csindex", f"symbol={spec.csindex!r}",
                               symbol=spec.csindex)
            dy: dict[dt.date, float | None] = {}
            if not value.empty:
                need_columns(value.columns, ("日期", "市盈率2", "股息率2"), source=SOURCE,
                             target=vtarget)
                for i, rec in enumerate(value.to_dict("records")):
                    day = _date(rec["日期"], vtarget, f"row {i + 1}: 日期")
                    if start <= day <= end:
                        y = _amount(rec["股息率2"], vtarget, f"row {i + 1}: 股息率2")
                        dy[day] = None if y is None else y / 100.0
                        if pe.get(day) is None:
                            pe[day] = _amount(rec["市盈率2"], vtarget, f"row {i + 1}: 市盈率2")
            self.log.add(SOURCE, "index_valuation_daily", vtarget, len(dy))
            rows = [{"index_id": spec.index_id, "trade_date": d, "pe_ttm": pe.get(d), "pb": None,
                     "dividend_yield": dy.get(d), "source": SOURCE}
                    for d in sorted(set(pe) | set(dy))]
            out = require_rows(typed_frame("index_valuation_daily", rows), source=SOURCE,
                               target=target, market="CN", start=start, end=end, today=self.today)
            if out is not None:
                frames.append(out)
        return pl.concat(frames) if frames else None
