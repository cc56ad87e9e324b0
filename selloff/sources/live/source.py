"""LiveSource and its configuration (see the package doc for what comes from where)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from selloff.markets import MARKETS
from selloff.settings import CN_PRICE_SOURCES, LiveSettings
from selloff.sources.base import Source
from selloff.sources.live.akshare_cn import AkshareAdapter
from selloff.sources.live.common import FetchLog, typed_frame
from selloff.sources.live.ecb import ECB_BASE_URL, EcbAdapter
from selloff.sources.live.errors import LiveConfigError, SourceUnreachable
from selloff.sources.live.http import RetryPolicy
from selloff.sources.live.jpx import JPX_BASE_URL, JpxAdapter
from selloff.sources.live.krx import KrxAdapter
from selloff.sources.live.sec_edgar import SEC_BASE_URL, SecEdgarAdapter
from selloff.sources.live.universe import SecuritySpec, Universe, load_universe
from selloff.sources.live.yahoo import YahooAdapter

log = logging.getLogger("selloff.sources.live")
T = TypeVar("T")

DEFAULT_START = dt.date(2025, 9, 1)
DEFAULT_END = dt.date(2025, 12, 31)


@dataclass(frozen=True)
class LiveConfig:
    """Everything the live source needs; secrets are kept out of repr()."""

    start: dt.date = DEFAULT_START
    end: dt.date = DEFAULT_END
    universe_path: Path | None = None
    sec_user_agent: str | None = field(default=None, repr=False)
    krx_id: str | None = field(default=None, repr=False)
    krx_pw: str | None = field(default=None, repr=False)
    cn_prices: str = "akshare"
    sec_base_url: str = SEC_BASE_URL
    ecb_base_url: str = ECB_BASE_URL
    jpx_base_url: str = JPX_BASE_URL
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise LiveConfigError("live", "SELLOFF_LIVE_START/SELLOFF_LIVE_END",
                                  f"window start {self.start} is after its end {self.end}")
        if self.cn_prices not in CN_PRICE_SOURCES:
            raise LiveConfigError("live", "SELLOFF_LIVE_CN_PRICES",
                                  f"{self.cn_prices!r} is not one of {', '.join(CN_PRICE_SOURCES)}")

    @classmethod
    def from_settings(cls, live: LiveSettings) -> LiveConfig:
        """The source's configuration from the settings' live section (selloff.settings,
        where the environment is read); base URLs left unset are the services' own."""
        policy = replace(RetryPolicy(), attempts=live.max_attempts,
                         connect_timeout=live.connect_timeout)
        return cls(start=live.start, end=live.end, universe_path=live.universe_path,
                   sec_user_agent=live.sec_user_agent, krx_id=live.krx_id, krx_pw=live.krx_pw,
                   cn_prices=live.cn_prices, sec_base_url=live.sec_base_url or SEC_BASE_URL,
                   ecb_base_url=live.ecb_base_url or ECB_BASE_URL,
                   jpx_base_url=live.jpx_base_url or JPX_BASE_URL, policy=policy)


class LiveSource(Source):
    """Fetches every canonical dataset from the live services (see the module doc).

    `hooks` replace the libraries' entry points in tests: `ticker_factory` (yfinance's
    Ticker), `akshare_api` (the akshare module), `pykrx_api` (pykrx.stock), and
    `rate_per_second` (the client-side pacing of every source).
    """

    name = "live"
    synthetic = False

    def __init__(self, config: LiveConfig | None = None, *, universe: Universe | None = None,
                 hooks: Mapping[str, Any] | None = None, today: dt.date | None = None):
        self.config = config or LiveConfig()
        self.universe = universe or load_universe(self.config.universe_path)
        self.hooks = dict(hooks or {})
        self.today = today
        self.fetch_log = FetchLog()
        self._adapters: dict[str, Any] = {}
        self._down: dict[str, SourceUnreachable] = {}
        self._members: dict[str, list[tuple[str, str | None]]] | None = None

    @classmethod
    def from_settings(cls, live: LiveSettings) -> LiveSource:
        """The live source of the settings' live section (window, universe, secrets)."""
        return cls(LiveConfig.from_settings(live))

    @property
    def start(self) -> dt.date:
        return self.config.start

    @property
    def end(self) -> dt.date:
        """The window end, at most yesterday: today's bar may still be trading (a partial
        close is not a close)."""
        today = self.today or dt.datetime.now(dt.UTC).date()
        return min(self.config.end, today - dt.timedelta(days=1))

    # -- adapters ---------------------------------------------------------------------------
    def _adapter(self, key: str) -> Any:
        if key in self._adapters:
            return self._adapters[key]
        c, p, fl = self.config, self.config.policy, self.fetch_log
        rate = self.hooks.get("rate_per_second")
        if key == "yahoo":
            a: Any = YahooAdapter(p, fl, ticker_factory=self.hooks.get("ticker_factory"),
                                  today=self.today, rate_per_second=rate or 2.0)
        elif key == "akshare":
            a = AkshareAdapter(p, fl, today=self.today, api=self.hooks.get("akshare_api"),
                               rate_per_second=rate or 2.0)
        elif key == "krx":
            a = KrxAdapter(p, fl, credentials=(c.krx_id, c.krx_pw), today=self.today,
                           api=self.hooks.get("pykrx_api"), rate_per_second=rate or 1.0)
        elif key == "sec":
            a = SecEdgarAdapter(c.sec_user_agent, p, fl, base_url=c.sec_base_url, today=self.today,
                                rate_per_second=rate or 10.0)
        elif key == "ecb":
            a = EcbAdapter(p, fl, base_url=c.ecb_base_url, today=self.today,
                           rate_per_second=rate or 5.0)
        elif key == "jpx":
            a = JpxAdapter(p, fl, base_url=c.jpx_base_url, today=self.today,
                           rate_per_second=rate or 2.0)
        else:  # pragma: no cover - programming error
            raise KeyError(key)
        self._adapters[key] = a
        return a

    def _run(self, key: str, fn: Callable[[Any], T]) -> T:
        """Call an adapter; once a source proved unreachable, fail at once for the rest of
        the run instead of waiting for its timeouts again."""
        if key in self._down:
            first = self._down[key]
            raise SourceUnreachable(first.source, first.target,
                                    f"unreachable earlier in this run ({first.detail})")
        try:
            return fn(self._adapter(key))
        except SourceUnreachable as exc:
            self._down[key] = exc
            raise

    # -- universe ---------------------------------------------------------------------------
    def _board_members(self) -> dict[str, list[tuple[str, str | None]]]:
        if self._members is None:
            self._members = {}
            for board in self.universe.concept_boards:
                self._members[board.name] = self._run("akshare", lambda a, b=board: a.board_members(b))
        return self._members

    def full_universe(self) -> Universe:
        """The universe plus the members of concept boards marked expand_universe."""
        extra: list[SecuritySpec] = []
        for board in self.universe.concept_boards:
            if board.expand_universe:
                for sid, local in self._board_members()[board.name]:
                    extra.append(SecuritySpec(security_id=sid, name_local=local,
                                              listing_board=None, is_ai=False))
        return self.universe.with_securities(extra) if extra else self.universe

    # -- datasets ---------------------------------------------------------------------------
    def fetch(self, dataset: str) -> pl.DataFrame | None:
        handler = getattr(self, f"_fetch_{dataset}", None)
        if handler is None:
            raise KeyError(f"unknown dataset {dataset!r}")
        log.info("live: fetching %s for %s..%s", dataset, self.start, self.end)
        return handler()

    def origin(self, dataset: str) -> str:
        return f"live:{dataset} ({self.start}..{self.end}, universe {self.universe.path})"

    def describe(self) -> dict:
        return {"name": self.name, "synthetic": False, "start": str(self.start),
                "end": str(self.end), "universe": self.universe.path,
                "fetch_log": self.fetch_log.as_list()}

    def _source_tag(self) -> str:
        return f"universe:{Path(self.universe.path).name}"

    def _fetch_securities(self) -> pl.DataFrame | None:
        return self.full_universe().securities_frame(self._source_tag())

    def _fetch_indexes(self) -> pl.DataFrame | None:
        return self.universe.indexes_frame(self._source_tag()) if self.universe.indexes else None

    def _fetch_baskets(self) -> pl.DataFrame | None:
        rows = [{"basket_id": b, "security_id": s, "valid_from": None, "valid_to": None,
                 "source": self._source_tag()}
                for b, members in self.universe.baskets.items() for s in members]
        if self.universe.concept_boards:
            known = {s.security_id for s in self.full_universe().securities}
            for board in self.universe.concept_boards:
                members = self._board_members()[board.name]
                basket = board.basket_id or "CN_CONCEPT_" + self._run(
                    "akshare", lambda a, b=board: a.board_code(b))
                kept = [sid for sid, _ in members if sid in known]
                if len(kept) < len(members):
                    log.info("live: board %s: %d of %d members are outside the universe and "
                             "left out (set expand_universe: true to add them)", board.name,
                             len(members) - len(kept), len(members))
                # Eastmoney lists today's members only: validity dates stay open.
                rows += [{"basket_id": basket, "security_id": sid, "valid_from": None,
                          "valid_to": None, "source": "AKShare"} for sid in kept]
        if not rows:
            return None
        return typed_frame("baskets", rows).unique(["basket_id", "security_id"], keep="first")

    def _concat(self, parts: list[pl.DataFrame | None]) -> pl.DataFrame | None:
        parts = [p for p in parts if p is not None and p.height]
        return pl.concat(parts, how="vertical_relaxed") if parts else None

    def _fetch_prices_daily(self) -> pl.DataFrame | None:
        u, s, e = self.full_universe(), self.start, self.end
        yahoo_markets = ["US", "KR", "JP"] + (["CN"] if self.config.cn_prices == "yahoo" else [])
        parts = []
        for market in MARKETS:
            secs = u.in_market(market)
            if not secs:
                continue
            if market in yahoo_markets:
                parts.append(self._run("yahoo", lambda a, x=secs: a.prices_daily(x, s, e)))
            elif market == "CN":
                parts.append(self._run("akshare", lambda a, x=secs: a.prices_daily(x, s, e)))
            else:
                # A registry market no live adapter serves yet (e.g. TW): say so, rather
                # than send its codes to a source that does not list them.
                raise LiveConfigError("universe", market,
                                      f"no live price adapter for market {market} "
                                      f"({len(secs)} securities in the universe)")
        return self._concat(parts)

    def _fetch_index_levels_daily(self) -> pl.DataFrame | None:
        idx = [i for i in self.universe.indexes if i.yahoo]
        if not idx:
            return None
        return self._run("yahoo", lambda a: a.index_levels(idx, self.start, self.end))

    def _sec_companies(self) -> list[tuple[str, str]]:
        seen: set[str] = set()
        out = []
        for spec in self.universe.in_market("US"):
            if spec.cik and spec.sec and spec.cik not in seen:
                seen.add(spec.cik)  # one line per company: a second class would count twice
                out.append((spec.security_id, spec.cik))
        return out

    def _fetch_shares_outstanding(self) -> pl.DataFrame | None:
        u, s, e = self.full_universe(), self.start, self.end
        parts = []
        companies = self._sec_companies()
        if companies:
            parts.append(self._run("sec", lambda a: a.shares_outstanding(companies, s, e)))
        yahoo = u.in_market("CN") + u.in_market("JP")
        if yahoo:
            parts.append(self._run("yahoo", lambda a: a.shares_outstanding(yahoo, s, e)))
        kr = u.in_market("KR")
        if kr:
            parts.append(self._run("krx", lambda a: a.shares_outstanding(kr, s, e)))
        return self._concat(parts)

    def _fetch_fundamentals(self) -> pl.DataFrame | None:
        companies = self._sec_companies()
        if not companies:
            return None
        return self._run("sec", lambda a: a.fundamentals(companies, self.start, self.end))

    def _fetch_fund_flows_daily(self) -> pl.DataFrame | None:
        u, s, e = self.full_universe(), self.start, self.end
        parts = []
        cn = [x for x in u.in_market("CN") if x.flows]
        if cn:
            parts.append(self._run("akshare", lambda a: a.security_flows(cn, s, e)))
        if self.universe.concept_boards:
            boards = list(self.universe.concept_boards)
            parts.append(self._run("akshare", lambda a: a.board_flows(boards, s, e)))
        if self.universe.kr_markets:
            parts.append(self._run("krx", lambda a: a.market_flows(self.universe.kr_markets, s, e)))
        kr = [x for x in u.in_market("KR") if x.flows]
        if kr:
            parts.append(self._run("krx", lambda a: a.security_flows(kr, s, e)))
        if self.universe.jp_flow_entity:
            parts.append(self._run("jpx", lambda a: a.weekly_flows(
                s, e, entity_id=self.universe.jp_flow_entity, sheet=self.universe.jp_flow_sheet)))
        return self._concat(parts)

    def _fetch_fx_rates_daily(self) -> pl.DataFrame | None:
        return self._run("ecb", lambda a: a.fx_rates_daily(self.start, self.end, self.universe.fx))

    def _fetch_index_valuation_daily(self) -> pl.DataFrame | None:
        idx = [i for i in self.universe.indexes if i.csindex]
        if not idx:
            return None
        return self._run("akshare", lambda a: a.index_valuation(idx, self.start, self.end))

