"""Episodes: one sell-off described in one folder (`<folder>/episode.yaml`).

An episode holds everything the warehouse needs to know about one sell-off: its markets,
where the windows are searched (`detection`), its named windows (exactly one `main`), the
baskets the data may lack, the default claim parameters and the claims themselves. The
analytics compute every table once per episode and write `episode_id` in every row, so a
new sell-off is a new folder, not code.

Bundled episodes live in `selloff/config/episodes/<id>/episode.yaml`; `selloff run
--episode PATH` builds any other folder. An invalid file fails with every problem at
once, each naming the file, the entry (claim, window, basket) and the rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from selloff.claims.metrics import METRICS, Param, month_bounds
from selloff.claims.registry import ConfigProblems, Registry, RegistryError, parse_registry
from selloff.episode_model import Detection, Episode, NamedWindow, Valuation, as_date, search_period
from selloff.markets import MARKETS, id_pattern

EPISODE_FILE = "episode.yaml"
_EPISODE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
# Window and basket ids end up in table rows, file names, HTML and chart labels: letters,
# digits and _ only (no markup, no '$', no whitespace, no line breaks).
_SAFE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
SAFE_ID_RULE = "letters, digits and _, starting with a letter"
# Parsing bounds: an episode file is a few KB; these stop a hostile one early.
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 20
WINDOW_KEYS = ("id", "start", "end", "main", "description")
DETECTION_KEYS = ("search_start", "search_end", "drawdown_lookback_start")
_PART_VALUE_KEYS = ("stated_value", "comparator", "unit", "field", "tolerance", "tolerance_kind")
CLAIM_KEYS = ("id", "section", "quote", "text", "metric", "params", "parts", "stated_text",
              "note", *_PART_VALUE_KEYS)
PART_KEYS = ("name", "metric", "params", "required", *_PART_VALUE_KEYS)
_ENTITY_ID = re.compile(id_pattern())
# The format's keys (issue #11); `headline` is ours: the basket or index whose
# peak-to-trough fall leads the report.
REQUIRED_KEYS = ("id", "title", "markets", "detection", "windows", "claims")
OPTIONAL_KEYS = ("baskets", "defaults", "headline", "valuation")
# `valuation`: whose P/E the valuation spread compares, {ai_baskets: [...],
# dividend_basket: ..., dividend_index: ...}; without it the episode has no spread rows.
VALUATION_KEYS = ("ai_baskets", "dividend_basket", "dividend_index")


class EpisodeError(ConfigProblems):
    """An episode file breaks rules; `problems` lists every one, each naming its entry."""

    what = "episode file"


def bundled_dir() -> Path:
    """The packaged episodes: `selloff/config/episodes/`."""
    return Path(str(resources.files("selloff").joinpath("config", "episodes")))


def bundled_episode_paths() -> list[Path]:
    """Every bundled episode folder, in name order."""
    return sorted(p.parent for p in bundled_dir().glob(f"*/{EPISODE_FILE}"))


def _as_date(value: Any, where: str, problems: list[str]) -> dt.date | None:
    # YAML gives a date for a bare ISO date and a str when quoted; accept both, and a
    # datetime only at a zone-less midnight (anything else is not a day).
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time(0):
            return value.date()
    elif isinstance(value, dt.date):
        return value
    elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            problems.append(f"{where}: {value!r} is not a real date ({exc})")
            return None
    problems.append(f"{where}: expected an ISO date (YYYY-MM-DD), got {value!r}")
    return None


def _safe_id(value: Any, where: str, problems: list[str]) -> bool:
    """An id from the file is a plain string of SAFE_ID_RULE's characters: it is shown in
    terminals, HTML and charts and keys table rows, so nothing in it may be read as markup
    and no trailing whitespace may make a second, silently different id."""
    if isinstance(value, str) and _SAFE_ID.fullmatch(value):
        return True
    problems.append(f"{where}: id {value!r} refused: ids are {SAFE_ID_RULE}")
    return False


def _unknown(raw: Mapping, known: Sequence[str], where: str, problems: list[str]) -> None:
    for key in raw:
        if key not in known:
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(known)})")


def _non_finite(value: Any, where: str, problems: list[str]) -> None:
    """NaN or infinity anywhere (a stated value, a tolerance) would compare false with
    everything and pass or fail a claim silently."""
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{where}: {value!r} refused: numbers must be finite (no NaN or infinity)")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _non_finite(v, f"{where}.{k}", problems)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _non_finite(v, f"{where}[{i}]", problems)


def _detection(raw: Any, problems: list[str]) -> Detection | None:
    if not isinstance(raw, Mapping):
        problems.append("detection: must be a mapping with search_start, search_end and "
                        "drawdown_lookback_start")
        return None
    _unknown(raw, DETECTION_KEYS, "detection", problems)
    got = {}
    for key in DETECTION_KEYS:
        if key not in raw:
            problems.append(f"detection: missing {key!r}")
            continue
        got[key] = _as_date(raw[key], f"detection.{key}", problems)
    if len(got) < 3 or None in got.values():
        return None
    det = Detection(**got)
    if det.search_start > det.search_end:
        problems.append(f"detection: search_start {det.search_start} is after search_end "
                        f"{det.search_end}")
    if det.drawdown_lookback_start > det.search_start:
        problems.append(f"detection: drawdown_lookback_start {det.drawdown_lookback_start} is "
                        f"after search_start {det.search_start}")
    return det


def _windows(raw: Any, problems: list[str]) -> tuple[NamedWindow, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append("windows: must be a non-empty list")
        return ()
    out: list[NamedWindow] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            problems.append(f"windows[{i}]: must be a mapping, got {entry!r}")
            continue
        raw_id = entry.get("id")
        where = f"window {raw_id!r}" if raw_id is not None else f"windows[{i}]"
        _unknown(entry, WINDOW_KEYS, where, problems)
        if raw_id is None:
            problems.append(f"{where}: missing 'id'")
        # ':' is outside the safe characters too: detected windows use it.
        wid = raw_id if raw_id is not None and _safe_id(raw_id, where, problems) else ""
        main = entry.get("main", False)
        if not isinstance(main, bool):
            problems.append(f"{where}: main must be true or false, got {main!r}")
        description = entry.get("description")
        if description is not None and not isinstance(description, str):
            problems.append(f"{where}: description must be text, got {description!r}")
        dates = []
        for key in ("start", "end"):
            if key not in entry:
                problems.append(f"{where}: missing {key!r}")
            else:
                dates.append(_as_date(entry[key], f"{where}.{key}", problems))
        if len(dates) != 2 or None in dates or not wid:
            continue
        start, end = dates
        if start > end:
            problems.append(f"{where}: start {start} is after end {end}")
            continue
        out.append(NamedWindow(wid, start, end, bool(entry.get("main", False)),
                               str(entry.get("description") or "").strip()))
    ids = [w.window_id for w in out]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"window {dup!r}: duplicate id")
    mains = [w.window_id for w in out if w.main]
    if out and len(mains) != 1:
        problems.append(f"windows: exactly one window must be 'main: true', found {mains or 'none'}")
    return tuple(out)


def _markets(raw: Any, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"markets: must be a non-empty list of market codes ({', '.join(MARKETS)})")
        return ()
    out = []
    for m in raw:
        if str(m) not in MARKETS:
            problems.append(f"markets: {m!r} is not in the market registry (selloff/markets.py: "
                            f"{', '.join(MARKETS)})")
        else:
            out.append(str(m))
    return tuple(out)


def _baskets(raw: Any, markets: Sequence[str], problems: list[str]) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append("baskets: must be a mapping of basket_id -> list of security ids")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for basket_id, members in raw.items():
        where = f"basket {basket_id!r}"
        if not _safe_id(basket_id, where, problems):
            continue
        if not isinstance(members, list) or not members:
            problems.append(f"{where}: must be a non-empty list of security ids")
            continue
        ok = []
        for sid in members:
            if not isinstance(sid, str) or not _ENTITY_ID.fullmatch(sid):
                problems.append(f"{where}: member {sid!r} is not a <MARKET>:<code> id of a "
                                "registered market")
            elif sid.split(":", 1)[0] not in markets:
                problems.append(f"{where}: member {sid!r} is outside the episode's markets "
                                f"{list(markets)}")
            else:
                ok.append(sid)
        if len(set(ok)) != len(ok):
            problems.append(f"{where}: a member is listed twice")
        out[str(basket_id)] = tuple(dict.fromkeys(ok))
    return out


def _window_refs(claims: Any, windows: tuple[NamedWindow, ...], problems: list[str]) -> None:
    """A claim's (or part's) `window:` names one of the episode's windows. Checked on the
    raw entries, so it is reported even when other rules of the claim fail too."""
    if not isinstance(claims, list):
        return
    known = {w.window_id for w in windows}
    for claim in claims:
        if not isinstance(claim, Mapping):
            continue
        scopes = [claim.get("params")]
        scopes += [p.get("params") for p in claim.get("parts") or [] if isinstance(p, Mapping)]
        for params in scopes:
            wid = params.get("window") if isinstance(params, Mapping) else None
            if wid is not None and str(wid) not in known:
                problems.append(f"claim {claim.get('id')}: window {wid!r} is not a window of "
                                f"this episode ({', '.join(sorted(known))})")


def _basket_or_entity(value: Any) -> bool:
    return isinstance(value, str) and bool(_SAFE_ID.fullmatch(value) or _ENTITY_ID.fullmatch(value))


def _claim_schema(claims: Any, problems: list[str]) -> None:
    """The claim entries' own keys and ids (the registry checks what they mean)."""
    if not isinstance(claims, list):
        return
    for i, claim in enumerate(claims):
        if not isinstance(claim, Mapping):
            continue
        cid = claim.get("id")
        where = f"claim {cid!r}" if cid is not None else f"claims[{i}]"
        if cid is not None:
            _safe_id(cid, where, problems)
        _unknown(claim, CLAIM_KEYS, where, problems)
        parts = claim.get("parts")
        for j, part in enumerate(parts if isinstance(parts, list) else []):
            if isinstance(part, Mapping):
                _unknown(part, PART_KEYS, f"{where} part {j + 1}", problems)


def parse_episode(data: Any, source: str, path: Path | None = None) -> Episode:
    """Validate parsed YAML into an Episode, or raise EpisodeError with every problem."""
    if not isinstance(data, Mapping):
        raise EpisodeError(["the file must be a mapping (id, title, markets, detection, "
                            "windows, claims ...)"], source)
    problems: list[str] = []
    for key in REQUIRED_KEYS:
        if key not in data:
            problems.append(f"missing key {key!r}")
    for key in data:
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            problems.append(f"unknown key {key!r} (known: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)})")
    eid = str(data.get("id") or "")
    if "id" in data and not (isinstance(data["id"], str) and _EPISODE_ID.fullmatch(eid)):
        problems.append(f"id {eid!r}: must be lower case letters, digits and _ (it becomes "
                        "episode_id in every analytics row)")
    title = str(data.get("title") or "").strip()
    if "title" in data and not title:
        problems.append("title: must not be empty")
    markets = _markets(data.get("markets"), problems) if "markets" in data else ()
    detection = _detection(data.get("detection"), problems) if "detection" in data else None
    windows = _windows(data.get("windows"), problems) if "windows" in data else ()
    baskets = _baskets(data.get("baskets"), markets, problems)
    defaults = data.get("defaults") or {}
    _non_finite(data, "file", problems)
    _claim_schema(data.get("claims"), problems)
    headline = data.get("headline")
    if headline is not None and not _basket_or_entity(headline):
        problems.append(f"headline: {headline!r} must name a basket id ({SAFE_ID_RULE}) or "
                        "an index id (<MARKET>:<code>)")
    valuation = data.get("valuation") or {}
    if not isinstance(valuation, Mapping):
        problems.append(f"valuation: must be a mapping of {', '.join(VALUATION_KEYS)}")
        valuation = {}
    for key in valuation:
        if key not in VALUATION_KEYS:
            problems.append(f"valuation: unknown key {key!r} (known: {', '.join(VALUATION_KEYS)})")
    if "ai_baskets" in valuation and not isinstance(valuation["ai_baskets"], list):
        problems.append("valuation.ai_baskets: must be a list of basket ids")
    for key, value in valuation.items():
        for item in value if isinstance(value, list) else [value]:
            if not _basket_or_entity(item):
                problems.append(f"valuation.{key}: {item!r} must be a basket id ({SAFE_ID_RULE}) "
                                "or an index id (<MARKET>:<code>)")
    if valuation.get("ai_baskets") and not (valuation.get("dividend_basket")
                                            or valuation.get("dividend_index")):
        problems.append("valuation: ai_baskets need a dividend_basket or a dividend_index to "
                        "compare with")
    registry: Registry | None = None
    if "claims" in data:
        try:
            registry = parse_registry({"claims": data.get("claims"), "defaults": defaults}, source)
        except RegistryError as exc:
            problems.extend(f"claims: {p}" for p in exc.problems)
    _window_refs(data.get("claims"), windows, problems)
    if problems or detection is None or registry is None:
        raise EpisodeError(problems or ["the file is incomplete"], source)
    return Episode(eid, title, markets, detection, windows, baskets, registry,
                   None if headline is None else str(headline), path, dict(defaults),
                   _valuation(valuation))


def _valuation(raw: Mapping[str, Any]) -> Valuation:
    def text(key: str) -> str | None:
        return None if raw.get(key) is None else str(raw[key])

    return Valuation(tuple(str(b) for b in raw.get("ai_baskets") or ()),
                     text("dividend_basket"), text("dividend_index"))


class _Refused(yaml.YAMLError):
    """A construct the episode format does not allow; the message names the line."""

    def __init__(self, rule: str, mark: yaml.Mark | None):
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        super().__init__(f"{where}{rule}")


class _StrictLoader(yaml.SafeLoader):
    """YAML with the episode format's bounds: no anchors or aliases (no expansion bombs),
    at most MAX_DEPTH levels of nesting, no duplicate keys, no NaN or infinity, and a
    date-like scalar that is not a real date (2025-02-30) an error, not a crash."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(f"alias *{event.anchor} refused: anchors and aliases are not "
                           "allowed in episode files (write the value out)", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise _Refused(f"anchor &{event.anchor} refused: anchors and aliases are not "
                           "allowed in episode files (write the value out)", event.start_mark)
        nested = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels refused",
                               event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    raise _Refused("a mapping key must be a plain value",
                                   key_node.start_mark) from None
                if first is not None:
                    raise _Refused(f"duplicate key {key!r} (first on line {first.line + 1}); "
                                   "each key may appear once", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_float(self, node: yaml.Node) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise _Refused(f"{node.value!r} refused: numbers must be finite (no NaN or "
                           "infinity)", node.start_mark)
        return value

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise _Refused(f"{node.value!r} is not a real date ({exc})", node.start_mark) from None


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_yaml_float)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp",
                              _StrictLoader.construct_yaml_timestamp)


def read_yaml(file: Path) -> Any:
    """The file's YAML within the format's bounds, or EpisodeError naming the file and
    the rule (never a parser's traceback)."""
    source = str(file)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise EpisodeError([f"file larger than {MAX_FILE_BYTES:,} bytes refused"], source)
        data = file.read_bytes()
    except OSError as exc:
        raise EpisodeError([f"cannot read the file: {exc.strerror or exc}"], source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EpisodeError([f"line {line}: byte {data[exc.start]:#04x} at offset {exc.start} "
                            "is not UTF-8 (save the file as UTF-8)"], source) from None
    loader: _StrictLoader | None = None
    try:
        # The reader checks the characters as it is made: inside the try too.
        loader = _StrictLoader(text)
        return loader.get_single_data()
    except _Refused as exc:
        raise EpisodeError([str(exc)], source) from None
    except yaml.YAMLError as exc:
        raise EpisodeError([f"not valid YAML: {exc}"], source) from None
    except RecursionError:
        raise EpisodeError([f"nesting deeper than {MAX_DEPTH} levels refused"], source) from None
    finally:
        if loader is not None:
            loader.dispose()


def load_episode(path: str | Path) -> Episode:
    """Read an episode folder (or its episode.yaml) and validate it."""
    p = Path(path)
    file = p / EPISODE_FILE if p.is_dir() else p
    if not file.is_file():
        raise EpisodeError([f"file not found: {file} (an episode is a folder holding "
                            f"{EPISODE_FILE})"], str(file))
    return parse_episode(read_yaml(file), str(file), file.parent)


def load_episodes(paths: Sequence[str | Path] = ()) -> tuple[Episode, ...]:
    """The given episode folders, or every bundled one when none is given. Episode ids
    must be distinct: they key every analytics row."""
    folders = [Path(p) for p in paths] or bundled_episode_paths()
    episodes = tuple(load_episode(p) for p in folders)
    ids = [e.episode_id for e in episodes]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise EpisodeError([f"episode id {d!r} is used by more than one folder" for d in dup],
                           ", ".join(str(f) for f in folders))
    return episodes


# A move's t0 is the close before its first day: a week after a long holiday (China's
# Golden Week) reaches back this far at most (assets/analytics/windows.py reads with it).
T0_SLACK = dt.timedelta(days=21)
# The factor betas regress on BETA_LOOKBACK_DAYS index return days before each t0
# (selloff.analytics.factor_exposures): 250 sessions, given here as calendar days with
# room for holidays and gaps in an index's history.
BETA_LOOKBACK_CALENDAR = dt.timedelta(days=500)
# How far before a changed day the daily facts may change too: a share-count step is
# classified (split or vendor glitch) by the close two sessions after it
# (int_shares_outstanding_glitches), so a new close can re-classify a step of a few
# sessions earlier; two weeks covers two sessions across any holiday.
FACTS_LOOKAHEAD = dt.timedelta(days=14)
# Claims that still read the daily facts look this far before their first day
# (an opening close, a month's flows: assets/analytics/claims.py).
CLAIM_LOOKBACK = dt.timedelta(days=45)


@dataclass(frozen=True)
class EpisodeSpan:
    """The days an episode's analytics read from the daily facts: [first, last]."""

    first: dt.date
    last: dt.date

    def touched_by(self, changed_from: dt.date | None) -> bool:
        """Whether daily facts changed from `changed_from` on (None: everything changed)
        reach this span.

        A refreshed day changes the daily facts from that day to the end of the data, not
        only the day itself (the next day's return, an as-of share count or FX rate carried
        forward: dbt_project/macros/incremental_window.sql), and a share step a few
        sessions before it may be re-classified (FACTS_LOOKAHEAD), so the changed days are
        [changed_from - FACTS_LOOKAHEAD, end of data]: they reach the span iff that start
        is on or before its last day.
        """
        return changed_from is None or changed_from - FACTS_LOOKAHEAD <= self.last


def episode_span(episode: Episode) -> EpisodeSpan:
    """The one span every analytics computation of `episode` stays inside.

    last = the latest of the detection search end, the named windows' ends and every claim
    parameter's end (a search period's end, a month's last day, a year's 31 December, a
    date) of a claim that reads a daily fact. first = the earliest of the drawdown lookback, the detection search, the
    windows and claim periods (`Episode.first_day`), and the claims' own dates less
    CLAIM_LOOKBACK, less T0_SLACK (a window's t0 is the session before its start), less
    BETA_LOOKBACK_CALENDAR (the factor betas' lookback before t0). One caveat on `first`:
    a market whose index has no returns is regressed on a proxy built from every day of
    the market caps (assets/analytics/factor_attribution.py), so `first` bounds the reads
    only when the indexes have returns; `touched_by` does not need `first` (changes reach
    forward, never back).
    """
    starts = [episode.first_day]
    ends = [episode.last_day]
    for claim in episode.claims:
        for part in claim.parts:
            spec = METRICS.get(part.metric)
            # Filings and reference data are not daily: a change there is caught by the
            # landing's content hash (selloff.refresh_state), not by the span.
            if spec is None or not any(t.endswith("_daily") for t in spec.tables):
                continue
            for key, value in part.params.items():
                if value is None:
                    continue
                kind = spec.kinds.get(key)
                if kind is Param.PERIOD:
                    s, e = search_period({"search_period": value})
                elif kind is Param.MONTH:
                    s, e = month_bounds(value)
                elif kind is Param.YEAR:
                    s, e = dt.date(int(value), 1, 1), dt.date(int(value), 12, 31)
                elif kind is Param.DATE:
                    s = e = as_date(value, f"{part.metric}.{key}")
                else:
                    continue
                starts.append(s - CLAIM_LOOKBACK)
                ends.append(e)
    return EpisodeSpan(min(starts) - T0_SLACK - BETA_LOOKBACK_CALENDAR, max(ends))


def definition_hash(episode: Episode) -> str:
    """A digest of what defines the episode: the files of its folder (or its file) when it
    has one, so any edit changes it, else the parsed model's repr."""
    digest = hashlib.sha256(episode.episode_id.encode() + b"\0")
    path = None if episode.path is None else Path(episode.path)
    if path is not None and path.exists():
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    else:
        digest.update(repr(episode).encode())
    return digest.hexdigest()[:16]
