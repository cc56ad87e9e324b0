"""Korea Exchange data through pykrx: net buying by investor type, listed shares.

pykrx functions (https://github.com/sharebook-kr/pykrx) and the frames they return,
indexed by 날짜 (date), amounts in won (KRW):
  stock.get_market_trading_value_by_date(from, to, "KOSPI"|"KOSDAQ"|<ticker>)   on=순매수
      기관합계 (institutions) 기타법인 (other corporations) 개인 (individuals)
      외국인합계 (foreigners) 전체 (total, 0 for net buying)
  stock.get_market_cap_by_date(from, to, <ticker>)
      시가총액 (market cap) 거래량 거래대금 상장주식수 (listed shares)
KRX's data portal needs a login since 2025: KRX_ID / KRX_PW are read when the adapter
first runs (never at import) and go only to KRX's login form, never to a log line or a
message. pykrx logs in by itself at import when those variables are set, printing the
account name, so it is imported with them hidden and the adapter logs in instead.
Tests mock these pykrx functions with frames in this shape.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import polars as pl

from selloff.sources.live.common import FetchLog, need_columns, require_rows, typed_frame
from selloff.sources.live.errors import MalformedPayload, SourceError
from selloff.sources.live.http import (
    RetryPolicy,
    TokenBucket,
    call_with_retry,
    is_garbled_answer,
    redact,
)
from selloff.sources.live.universe import SecuritySpec

log = logging.getLogger("selloff.sources.live")

SOURCE = "KRX (pykrx)"
INVESTOR_COLUMNS = {"기관합계": "institution", "기타법인": "corporate", "개인": "individual",
                    "외국인합계": "foreign"}
SHARES_LOOKBACK_DAYS = 30


@contextlib.contextmanager
def _quiet_import_env() -> Iterator[None]:
    """Hide KRX_ID/KRX_PW and pykrx's prints while importing it; restore matplotlib's
    settings, which pykrx changes globally (a Korean font) on import."""
    saved = {k: os.environ.pop(k) for k in ("KRX_ID", "KRX_PW") if k in os.environ}
    try:
        import matplotlib

        with matplotlib.rc_context(), contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        os.environ.update(saved)


class KrxAdapter:
    name = SOURCE

    def __init__(self, policy: RetryPolicy, log: FetchLog, *,
                 credentials: tuple[str | None, str | None] = (None, None),
                 today: dt.date | None = None, rate_per_second: float = 1.0,
                 api: Any | None = None):
        self.policy = policy
        self.log = log
        self.today = today
        self._credentials = credentials
        self._api = api
        self.bucket = TokenBucket(rate_per_second)

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return tuple(self._credentials)

    def api(self) -> Any:
        """pykrx.stock, imported and logged in on first use."""
        if self._api is None:
            with _quiet_import_env():
                self._api = importlib.import_module("pykrx.stock")
            self._login()
        return self._api

    def _login(self) -> None:
        login_id, login_pw = self._credentials
        if not (login_id and login_pw):
            log.warning("%s: KRX_ID/KRX_PW are not set; data.krx.co.kr may refuse anonymous "
                        "requests (empty answers)", SOURCE)
            return
        auth = importlib.import_module("pykrx.website.comm.auth")

        def login() -> Any:
            with contextlib.redirect_stdout(io.StringIO()):
                session = auth.KRXSession()
                return session if session.refresh(login_id, login_pw) else None

        session = call_with_retry(SOURCE, "KRX login (KRX_ID/KRX_PW)", login, self.policy,
                                  secrets=self.secrets, deadline=True)
        if session is None:
            raise SourceError(SOURCE, "KRX login (KRX_ID/KRX_PW)",
                              "login refused: check the KRX_ID / KRX_PW account")
        auth.set_auth_session(session)

    def _call(self, function: str, target: str, *args: Any) -> pd.DataFrame:
        fn: Callable[..., Any] = getattr(self.api(), function)

        def once() -> Any:
            self.bucket.acquire()
            with contextlib.redirect_stdout(io.StringIO()):
                return fn(*args)

        out = call_with_retry(SOURCE, target, once, self.policy, secrets=self.secrets,
                              deadline=True, retry_also=is_garbled_answer)
        if out is None:
            return pd.DataFrame()
        if not isinstance(out, pd.DataFrame):
            raise MalformedPayload(SOURCE, redact(target, self.secrets), "<result>",
                                   f"expected a DataFrame, got {type(out).__name__}")
        return out

    @staticmethod
    def _dates(df: pd.DataFrame, target: str) -> list[dt.date]:
        try:
            return [pd.Timestamp(d).date() for d in df.index]
        except (TypeError, ValueError):
            raise MalformedPayload(SOURCE, target, "날짜 (index)", "not dates") from None

    def net_buying(self, entity: str, entity_id: str, scope: str, start: dt.date, end: dt.date
                   ) -> pl.DataFrame | None:
        """Net buying by investor type for a market (KOSPI/KOSDAQ) or a ticker."""
        target = (f"pykrx.stock.get_market_trading_value_by_date"
                  f"({start:%Y%m%d}, {end:%Y%m%d}, {entity!r})")
        df = self._call("get_market_trading_value_by_date", target, f"{start:%Y%m%d}",
                        f"{end:%Y%m%d}", entity)
        rows: list[dict[str, Any]] = []
        if not df.empty:
            need_columns(df.columns, tuple(INVESTOR_COLUMNS), source=SOURCE, target=target)
            for day, rec in zip(self._dates(df, target), df.to_dict("records"), strict=True):
                if not start <= day <= end:
                    continue
                for column, investor in INVESTOR_COLUMNS.items():
                    value = pd.to_numeric(rec[column], errors="coerce")
                    if pd.isna(value):
                        raise MalformedPayload(SOURCE, target, f"{day}: {column}",
                                               f"{rec[column]!r} is not a number")
                    rows.append({"flow_scope": scope, "entity_id": entity_id, "trade_date": day,
                                 "investor_type": investor, "period": "day",
                                 "net_buy_value": float(value), "currency": "KRW",
                                 "source": SOURCE})
        self.log.add(SOURCE, "fund_flows_daily", target, len(rows))
        return require_rows(typed_frame("fund_flows_daily", rows), source=SOURCE, target=target,
                            market="KR", start=start, end=end, today=self.today)

    def market_flows(self, markets: tuple[str, ...], start: dt.date, end: dt.date
                     ) -> pl.DataFrame | None:
        frames = [self.net_buying(m, f"KR:{m}", "market", start, end) for m in markets]
        frames = [f for f in frames if f is not None]
        return pl.concat(frames) if frames else None

    def security_flows(self, securities: list[SecuritySpec], start: dt.date, end: dt.date
                       ) -> pl.DataFrame | None:
        frames = [self.net_buying(s.code, s.security_id, "security", start, end)
                  for s in securities]
        frames = [f for f in frames if f is not None]
        return pl.concat(frames) if frames else None

    def shares_outstanding(self, securities: list[SecuritySpec], start: dt.date, end: dt.date
                           ) -> pl.DataFrame | None:
        """Listed shares (상장주식수) per trading day, from the market-cap table."""
        frames = []
        first = start - dt.timedelta(days=SHARES_LOOKBACK_DAYS)
        for spec in securities:
            target = (f"pykrx.stock.get_market_cap_by_date"
                      f"({first:%Y%m%d}, {end:%Y%m%d}, {spec.code!r})")
            df = self._call("get_market_cap_by_date", target, f"{first:%Y%m%d}", f"{end:%Y%m%d}",
                            spec.code)
            rows: list[dict[str, Any]] = []
            if not df.empty:
                need_columns(df.columns, ("시가총액", "상장주식수"), source=SOURCE, target=target)
                for day, rec in zip(self._dates(df, target), df.to_dict("records"), strict=True):
                    shares = pd.to_numeric(rec["상장주식수"], errors="coerce")
                    if pd.isna(shares) or shares <= 0:
                        raise MalformedPayload(SOURCE, target, f"{day}: 상장주식수",
                                               f"{rec['상장주식수']!r} is not a positive count")
                    if first <= day <= end:
                        rows.append({"security_id": spec.security_id, "as_of_date": day,
                                     "share_class": "total", "shares": float(shares),
                                     "filed_date": None, "source": SOURCE})
            self.log.add(SOURCE, "shares_outstanding", target, len(rows))
            out = require_rows(typed_frame("shares_outstanding", rows), source=SOURCE,
                               target=target, market="KR", start=first, end=end, today=self.today)
            if out is not None:
                frames.append(out)
        return pl.concat(frames) if frames else None
