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
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from selloff.claims.registry import ConfigProblems, Registry, RegistryError, parse_registry
from selloff.episode_model import Detection, Episode, NamedWindow, Valuation
from selloff.markets import MARKETS, id_pattern

EPISODE_FILE = "episode.yaml"
_EPISODE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
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
    # YAML gives a date for a bare ISO date and a str when quoted; accept both.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.append(f"{where}: expected an ISO date (YYYY-MM-DD), got {value!r}")
    return None


def _detection(raw: Any, problems: list[str]) -> Detection | None:
    if not isinstance(raw, Mapping):
        problems.append("detection: must be a mapping with search_start, search_end and "
                        "drawdown_lookback_start")
        return None
    got = {}
    for key in ("search_start", "search_end", "drawdown_lookback_start"):
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
        wid = str(entry.get("id") or "").strip()
        where = f"window {wid!r}" if wid else f"windows[{i}]"
        if not wid:
            problems.append(f"{where}: missing 'id'")
        elif ":" in wid:
            problems.append(f"{where}: ids may not contain ':' (detected windows use it)")
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
        if not isinstance(members, list) or not members:
            problems.append(f"{where}: must be a non-empty list of security ids")
            continue
        ok = []
        for sid in members:
            sid = str(sid)
            if not _ENTITY_ID.match(sid):
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
    if "id" in data and not _EPISODE_ID.match(eid):
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
    headline = data.get("headline")
    if headline is not None and not str(headline).strip():
        problems.append("headline: must name a basket or index id")
    valuation = data.get("valuation") or {}
    if not isinstance(valuation, Mapping):
        problems.append(f"valuation: must be a mapping of {', '.join(VALUATION_KEYS)}")
        valuation = {}
    for key in valuation:
        if key not in VALUATION_KEYS:
            problems.append(f"valuation: unknown key {key!r} (known: {', '.join(VALUATION_KEYS)})")
    if "ai_baskets" in valuation and not isinstance(valuation["ai_baskets"], list):
        problems.append("valuation.ai_baskets: must be a list of basket ids")
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


def load_episode(path: str | Path) -> Episode:
    """Read an episode folder (or its episode.yaml) and validate it."""
    p = Path(path)
    file = p / EPISODE_FILE if p.is_dir() else p
    if not file.exists():
        raise EpisodeError([f"file not found: {file} (an episode is a folder holding "
                            f"{EPISODE_FILE})"], str(file))
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise EpisodeError([f"not valid YAML: {exc}"], str(file)) from exc
    return parse_episode(data, str(file), file.parent)


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
