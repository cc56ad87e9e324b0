"""The claim registry: an episode's `claims:` (selloff.episode), validated up front.

Every problem is collected and reported at once, each naming the claim (and part) and the
rule, so a data engineer adding a claim sees all typos in one go instead of one per run.

YAML shape (inside episode.yaml; see selloff/config/episodes/*/episode.yaml):

    defaults:                      # params merged into every claim (claim params win)
      search_period: {start: 2025-10-27, end: 2025-11-28}
    claims:
      - id: C02
        section: "1.1"
        quote: 英伟达单周跌幅超 7%
        text: Nvidia fell more than 7% in a single week
        metric: security_worst_week_return
        params: {security_id: "US:NVDA"}
        stated_value: -7
        comparator: lt
        unit: pct
      - id: C05                    # two figures: one claim, several parts
        metric: security_worst_day
        params: {...}
        parts:
          - {name: daily return, field: return_pct, stated_value: -5, comparator: lt, unit: pct}
          - {name: market cap, field: mcap_change_local, stated_value: -30e9, comparator: lt, unit: CNY}

A part may name its own `metric` and `params` (merged over the claim's); `required: false`
marks a part whose missing data does not make the whole claim insufficient.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Importing the metric modules registers their metrics in METRICS.
import selloff.claims.filing_metrics  # noqa: F401
import selloff.claims.flow_metrics  # noqa: F401
import selloff.claims.lookups  # noqa: F401
import selloff.claims.market_metrics  # noqa: F401
from selloff.claims.metrics import COMMON_PARAMS, METRICS, Param, month_bounds
from selloff.contracts import CURRENCIES
from selloff.episode_model import search_period

COMPARATORS = ("approx", "lt", "gt", "le", "ge", "none")
TOLERANCE_KINDS = ("relative", "absolute_pp")
UNITS = ("pct", "pp", "x", *CURRENCIES)
# CLAIMS.md: "≈ X" is within 10 % of X for amounts and multiples, 0.5 pp for returns.
DEFAULT_TOLERANCE = {"pct": (0.5, "absolute_pp"), "pp": (0.5, "absolute_pp")}
DEFAULT_RELATIVE = (0.10, "relative")
_ID = re.compile(r"^[A-Z][A-Z_]*\d{2,}$")


class ConfigProblems(ValueError):
    """A configuration file breaks rules; `problems` lists every one (all at once, each
    naming its entry and the rule), `source` names the file."""

    what = "configuration"

    def __init__(self, problems: list[str], source: str):
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: {len(problems)} problem(s) in the {self.what}:\n  - "
                         + "\n  - ".join(problems))


class RegistryError(ConfigProblems):
    """The claim registry is invalid."""

    what = "claim registry"


@dataclass(frozen=True)
class ClaimPart:
    name: str
    metric: str
    params: Mapping[str, Any]
    field: str | None
    stated_value: float | None
    comparator: str
    tolerance: float | None
    tolerance_kind: str | None
    unit: str
    required: bool = True


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    quote: str
    text: str
    metric: str
    params: Mapping[str, Any]
    parts: tuple[ClaimPart, ...]
    stated_text: str | None = None
    note: str = ""

    @property
    def depends_on(self) -> set[str]:
        return {str(p.params["window_from"]) for p in self.parts if p.params.get("window_from")}


@dataclass(frozen=True)
class Registry:
    claims: tuple[Claim, ...]
    source: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.claims]

    def get(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(f"no claim {claim_id!r} in {self.source}; known: {', '.join(self.ids)}")

    def evaluation_order(self) -> list[Claim]:
        """Claims ordered so a `window_from` source is evaluated before its users."""
        done: set[str] = set()
        order: list[Claim] = []
        pending = list(self.claims)
        while pending:
            ready = [c for c in pending if c.depends_on <= done]
            if not ready:  # validation rejects cycles; this only guards hand-built registries
                raise RegistryError([f"window_from cycle among {', '.join(c.id for c in pending)}"],
                                    self.source)
            for c in ready:
                order.append(c)
                done.add(c.id)
            pending = [c for c in pending if c.id not in done]
        return order


def _number(value: Any) -> float:
    # PyYAML reads 6.501e9 or -30e9 as strings (YAML 1.1 wants a dot and a signed exponent);
    # accept them as numbers rather than make every amount in the file awkward to write.
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _check_values(where: str, metric: str, merged: Mapping[str, Any], ids: set[str],
                  problems: list[str]) -> None:
    """Required params present and well-formed (dates, months, window_from targets)."""
    spec = METRICS[metric]
    for key in spec.required:
        if merged.get(key) in (None, "", [], {}):
            problems.append(f"{where}: metric {metric} needs param {key!r}")
    if "search_period" in spec.required or "search_period" in merged:
        try:
            search_period(merged)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if "month" in spec.params and merged.get("month") is not None:
        try:
            month_bounds(merged["month"])
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    for key in (k for k in spec.params if spec.kinds[k] is Param.DATE):
        if merged.get(key) is not None and not isinstance(merged[key], dt.date):
            try:
                dt.date.fromisoformat(str(merged[key]))
            except ValueError:
                problems.append(f"{where}: {key} {merged[key]!r} is not a date (YYYY-MM-DD)")
    src = merged.get("window_from")
    if src is not None and "window_from" in spec.params and str(src) not in ids:
        problems.append(f"{where}: window_from {src!r} is not a claim id of the registry")


def _unknown_params(where: str, keys: list[str], metrics: set[str], problems: list[str]) -> None:
    allowed = set(COMMON_PARAMS).union(*(METRICS[m].params for m in metrics))
    for key in keys:
        if key not in allowed:
            problems.append(f"{where}: unknown param {key!r} for metric {', '.join(sorted(metrics))} "
                            f"(allowed: {', '.join(sorted(allowed))})")


def _parse_part(where: str, raw: Mapping[str, Any], metric: str, merged: Mapping[str, Any],
                ids: set[str], problems: list[str], default_name: str) -> ClaimPart:
    spec = METRICS[metric]
    _check_values(where, metric, merged, ids, problems)
    fld = raw.get("field")
    if fld is not None and fld != "value" and fld not in spec.fields:
        problems.append(f"{where}: metric {metric} has no field {fld!r} "
                        f"(fields: {', '.join(('value', *spec.fields))})")
    comparator = str(raw.get("comparator", "")).strip()
    if comparator not in COMPARATORS:
        problems.append(f"{where}: comparator {comparator or '(missing)'!r} is not one of "
                        f"{', '.join(COMPARATORS)}")
    unit = str(raw.get("unit") or "").strip()
    if comparator != "none" and unit not in UNITS:
        problems.append(f"{where}: unit {unit or '(missing)'!r} is not one of {', '.join(UNITS)}")
    stated = raw.get("stated_value")
    value: float | None = None
    if stated is not None:
        try:
            value = _number(stated)
        except (TypeError, ValueError):
            problems.append(f"{where}: stated_value {stated!r} is not a number")
    elif comparator not in ("none", ""):
        problems.append(f"{where}: comparator {comparator} needs a stated_value")
    tol, kind = raw.get("tolerance"), raw.get("tolerance_kind")
    if comparator == "approx":
        dflt = DEFAULT_TOLERANCE.get(unit, DEFAULT_RELATIVE)
        tol = dflt[0] if tol is None else tol
        kind = dflt[1] if kind is None else kind
        try:
            tol = _number(tol)
            if tol < 0:
                raise ValueError(tol)
        except (TypeError, ValueError):
            problems.append(f"{where}: tolerance {tol!r} is not a non-negative number")
            tol = None
        if kind not in TOLERANCE_KINDS:
            problems.append(f"{where}: tolerance_kind {kind!r} is not one of {', '.join(TOLERANCE_KINDS)}")
    elif tol is not None or kind is not None:
        problems.append(f"{where}: tolerance only applies to comparator approx ('<' and '>' are strict)")
        tol = kind = None
    return ClaimPart(name=str(raw.get("name") or default_name), metric=metric, params=dict(merged),
                     field=fld, stated_value=value, comparator=comparator, tolerance=tol,
                     tolerance_kind=kind, unit=unit, required=bool(raw.get("required", True)))


_PART_KEYS = ("stated_value", "comparator", "unit", "field", "tolerance", "tolerance_kind")


def parse_registry(data: Any, source: str = "claims.yaml") -> Registry:
    """Validate parsed YAML (a mapping with `claims`) into a Registry, or raise RegistryError."""
    problems: list[str] = []
    if not isinstance(data, Mapping) or not isinstance(data.get("claims"), list):
        raise RegistryError(["the file must be a mapping with a 'claims' list"], source)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.append("defaults must be a mapping of params")
        defaults = {}
    raw_claims = data["claims"]
    ids: set[str] = set()
    for i, rc in enumerate(raw_claims):
        cid = str(rc.get("id")) if isinstance(rc, Mapping) else None
        if not cid or not _ID.match(cid):
            problems.append(f"claim #{i + 1}: id {cid!r} is not of the form C01 (letters, then two or more digits)")
        elif cid in ids:
            problems.append(f"{cid}: duplicate id")
        else:
            ids.add(cid)
    claims: list[Claim] = []
    for i, rc in enumerate(raw_claims):
        if not isinstance(rc, Mapping):
            problems.append(f"claim #{i + 1}: must be a mapping")
            continue
        cid = str(rc.get("id"))
        for key in ("section", "quote", "text", "metric"):
            if not rc.get(key):
                problems.append(f"{cid}: missing {key!r}")
        metric = rc.get("metric")
        if metric and metric not in METRICS:
            problems.append(f"{cid}: unknown metric {metric!r} (known: {', '.join(sorted(METRICS))})")
            continue
        params = rc.get("params") or {}
        if not isinstance(params, Mapping):
            problems.append(f"{cid}: params must be a mapping")
            params = {}
        raw_parts = rc.get("parts")
        if raw_parts is None:
            raw_parts = [{k: rc[k] for k in _PART_KEYS if k in rc}]
            multi = False
        else:
            multi = True
            beside = [k for k in _PART_KEYS if k in rc]
            if beside:
                problems.append(f"{cid}: give {', '.join(beside)} inside parts, not beside them")
            if not isinstance(raw_parts, list) or not raw_parts:
                problems.append(f"{cid}: parts must be a non-empty list")
                continue
        parts: list[ClaimPart] = []
        used_metrics: set[str] = set()
        for j, rp in enumerate(raw_parts):
            where = f"{cid} part {j + 1}" if multi else cid
            if not isinstance(rp, Mapping):
                problems.append(f"{where}: must be a mapping")
                continue
            pmetric = rp.get("metric") or metric
            if not pmetric:
                continue  # reported above as a missing metric
            if pmetric not in METRICS:
                problems.append(f"{where}: unknown metric {pmetric!r} (known: {', '.join(sorted(METRICS))})")
                continue
            own = rp.get("params") or {}
            if not isinstance(own, Mapping):
                problems.append(f"{where}: params must be a mapping")
                own = {}
            _unknown_params(where, list(own), {pmetric}, problems)
            used_metrics.add(pmetric)
            parts.append(_parse_part(where, rp, pmetric, {**defaults, **params, **own}, ids,
                                     problems, f"part {j + 1}" if multi else "figure"))
        # A claim-level param must mean something to at least one metric the claim uses.
        if used_metrics:
            _unknown_params(cid, list(params), used_metrics, problems)
        claims.append(Claim(id=cid, section=str(rc.get("section", "")), quote=str(rc.get("quote", "")),
                            text=str(rc.get("text", "")), metric=str(metric or ""),
                            params={**defaults, **params}, parts=tuple(parts),
                            stated_text=rc.get("stated_text"), note=str(rc.get("note") or "").strip()))
    reg = Registry(tuple(claims), source, defaults)
    if not problems:
        try:
            reg.evaluation_order()
        except RegistryError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RegistryError(problems, source)
    return reg
