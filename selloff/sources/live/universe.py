"""What the live source fetches: securities, indexes, baskets, boards, market flows, FX.

Read from a YAML file (the full format, see selloff/config/live_universe.yaml) or a CSV
file with a `security_id` column (and optionally any security field of the YAML format);
a CSV universe has no indexes, baskets, boards or market flows, and the default FX list.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from selloff.contracts import CURRENCIES, MARKETS
from selloff.markets import MARKETS_BY_CODE, market_of
from selloff.sources.live.common import CURRENCY_OF_MARKET, MIC_OF_SUFFIX, split_id, typed_frame
from selloff.sources.live.errors import LiveConfigError

DEFAULT_FX = ("USD", "CNY", "JPY", "KRW", "HKD", "GBP")
_TRUE = {"true", "1", "yes", "y", "t"}


def default_universe_path() -> Path:
    return Path(str(resources.files("selloff") / "config" / "live_universe.yaml"))


def _bool(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def _opt(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass(frozen=True)
class SecuritySpec:
    security_id: str
    name: str | None = None
    name_local: str | None = None
    sector: str | None = None
    industry: str | None = None
    listing_board: str | None = None
    is_ai: bool = False
    cik: str | None = None
    exchange_mic: str | None = None
    yahoo: str | None = None
    sec: bool = True
    flows: bool = True

    @property
    def market(self) -> str:
        return split_id(self.security_id)[0]

    @property
    def code(self) -> str:
        return split_id(self.security_id)[1]

    @property
    def symbol(self) -> str:
        return self.code.split(".")[0] if self.market == "CN" else self.code

    @property
    def currency(self) -> str:
        return CURRENCY_OF_MARKET[self.market]

    @property
    def mic(self) -> str | None:
        if self.exchange_mic:
            return self.exchange_mic
        if self.market == "CN":
            return MIC_OF_SUFFIX.get(self.code.rsplit(".", 1)[-1])
        # A market with one exchange names it (registry); a US name needs its own given.
        mics = MARKETS_BY_CODE[self.market].mics if self.market in MARKETS_BY_CODE else ()
        return mics[0] if len(mics) == 1 else None


@dataclass(frozen=True)
class IndexSpec:
    index_id: str
    name: str
    yahoo: str | None = None
    csindex: str | None = None

    @property
    def market(self) -> str:
        return split_id(self.index_id)[0]

    @property
    def currency(self) -> str:
        return CURRENCY_OF_MARKET[self.market]


@dataclass(frozen=True)
class ConceptBoard:
    name: str
    basket_id: str | None = None
    code: str | None = None
    expand_universe: bool = False


@dataclass(frozen=True)
class Universe:
    securities: tuple[SecuritySpec, ...]
    indexes: tuple[IndexSpec, ...] = ()
    baskets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    concept_boards: tuple[ConceptBoard, ...] = ()
    kr_markets: tuple[str, ...] = ()
    jp_flow_entity: str | None = None
    jp_flow_sheet: str | None = None
    fx: tuple[str, ...] = DEFAULT_FX
    path: str = "<memory>"

    def in_market(self, market: str) -> list[SecuritySpec]:
        return [s for s in self.securities if s.market == market]

    def with_securities(self, extra: list[SecuritySpec]) -> Universe:
        known = {s.security_id for s in self.securities}
        new = tuple(s for s in extra if s.security_id not in known)
        return replace(self, securities=self.securities + new)

    def securities_frame(self, source: str) -> pl.DataFrame:
        rows = [{
            "security_id": s.security_id, "market": s.market, "exchange_mic": s.mic,
            "symbol": s.symbol, "name": s.name, "name_local": s.name_local,
            "currency": s.currency, "sector": s.sector, "industry": s.industry,
            "listing_board": s.listing_board, "is_ai": s.is_ai, "cik": s.cik, "source": source,
        } for s in self.securities]
        return typed_frame("securities", rows)

    def indexes_frame(self, source: str) -> pl.DataFrame:
        return typed_frame("indexes", [
            {"index_id": i.index_id, "market": i.market, "name": i.name,
             "currency": i.currency, "source": source} for i in self.indexes])


_ID = re.compile(r"^[A-Z]{2}:\S+$")


def _check_id(value: str, where: str, path: str) -> str:
    if not _ID.match(value) or market_of(value) not in MARKETS:
        raise LiveConfigError("universe", path,
                              f"{where}: {value!r} is not '<MARKET>:<code>' with a market of "
                              f"{', '.join(MARKETS)}")
    return value


def _security(raw: dict[str, Any], where: str, path: str) -> SecuritySpec:
    if not isinstance(raw, dict) or not raw.get("security_id"):
        raise LiveConfigError("universe", path, f"{where}: needs a security_id")
    sid = _check_id(str(raw["security_id"]).strip(), where, path)
    if sid.startswith("CN:") and not re.fullmatch(r"CN:\d{6}\.(SH|SZ|BJ)", sid):
        raise LiveConfigError("universe", path,
                              f"{where}: {sid!r} needs the exchange suffix (.SH/.SZ/.BJ)")
    cik = _opt(raw.get("cik"))
    if cik is not None:
        cik = cik.split(".")[0].lstrip("0") or "0"
        if not cik.isdigit():
            raise LiveConfigError("universe", path, f"{where}: cik {raw.get('cik')!r} is not a number")
    return SecuritySpec(
        security_id=sid, name=_opt(raw.get("name")), name_local=_opt(raw.get("name_local")),
        sector=_opt(raw.get("sector")), industry=_opt(raw.get("industry")),
        listing_board=_opt(raw.get("listing_board")), is_ai=_bool(raw.get("is_ai"), False),
        cik=cik, exchange_mic=_opt(raw.get("exchange_mic")), yahoo=_opt(raw.get("yahoo")),
        sec=_bool(raw.get("sec"), True), flows=_bool(raw.get("flows"), True),
    )


def load_universe(path: str | Path | None = None) -> Universe:
    """Read a universe file (YAML or CSV); None means the packaged default."""
    p = Path(path) if path else default_universe_path()
    shown = str(p)
    if not p.is_file():
        raise LiveConfigError("universe", shown, "universe file not found (SELLOFF_LIVE_UNIVERSE)")
    if p.suffix.lower() == ".csv":
        with p.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        secs = tuple(_security(r, f"row {i}", shown) for i, r in enumerate(rows, start=1))
        _unique([s.security_id for s in secs], "security_id", shown)
        if not secs:
            raise LiveConfigError("universe", shown, "no securities listed")
        return Universe(securities=secs, path=shown)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise LiveConfigError("universe", shown, f"not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise LiveConfigError("universe", shown, "expected a mapping with 'securities:'")
    secs = tuple(_security(r, f"securities[{i}]", shown)
                 for i, r in enumerate(doc.get("securities") or []))
    if not secs:
        raise LiveConfigError("universe", shown, "no securities listed")
    _unique([s.security_id for s in secs], "security_id", shown)
    indexes = []
    for i, r in enumerate(doc.get("indexes") or []):
        if not isinstance(r, dict) or not r.get("index_id") or not r.get("name"):
            raise LiveConfigError("universe", shown, f"indexes[{i}]: needs index_id and name")
        indexes.append(IndexSpec(_check_id(str(r["index_id"]), f"indexes[{i}]", shown),
                                 str(r["name"]), _opt(r.get("yahoo")), _opt(r.get("csindex"))))
    _unique([i.index_id for i in indexes], "index_id", shown)
    baskets: dict[str, tuple[str, ...]] = {}
    for bid, members in (doc.get("baskets") or {}).items():
        if not isinstance(members, list):
            raise LiveConfigError("universe", shown, f"baskets.{bid}: expected a list of ids")
        baskets[str(bid)] = tuple(_check_id(str(m), f"baskets.{bid}", shown) for m in members)
    boards = []
    for i, r in enumerate(doc.get("concept_boards") or []):
        if not isinstance(r, dict) or not r.get("name"):
            raise LiveConfigError("universe", shown, f"concept_boards[{i}]: needs a name")
        boards.append(ConceptBoard(str(r["name"]), _opt(r.get("basket_id")), _opt(r.get("code")),
                                   _bool(r.get("expand_universe"), False)))
    flows = doc.get("market_flows") or {}
    kr = tuple(str(m).upper() for m in (flows.get("KR") or []))
    for m in kr:
        if m not in ("KOSPI", "KOSDAQ", "KONEX"):
            raise LiveConfigError("universe", shown, f"market_flows.KR: {m!r} is not KOSPI/KOSDAQ/KONEX")
    jp = flows.get("JP")
    jp_entity = jp_sheet = None
    if jp:
        jp = jp if isinstance(jp, dict) else {}
        jp_entity = _check_id(str(jp.get("entity_id") or "JP:TSE"), "market_flows.JP", shown)
        jp_sheet = _opt(jp.get("sheet"))
    fx = tuple(str(c).upper() for c in (doc.get("fx") or DEFAULT_FX))
    for c in fx:
        if c not in CURRENCIES:
            raise LiveConfigError("universe", shown, f"fx: {c!r} is not one of {', '.join(CURRENCIES)}")
    return Universe(securities=secs, indexes=tuple(indexes), baskets=baskets,
                    concept_boards=tuple(boards), kr_markets=kr, jp_flow_entity=jp_entity,
                    jp_flow_sheet=jp_sheet, fx=fx, path=shown)


def _unique(ids: list[str], what: str, path: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise LiveConfigError("universe", path, f"{what} {i!r} is listed twice")
        seen.add(i)
