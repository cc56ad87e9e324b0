"""Verdicts: compare each claim's computed figure with the stated one (CLAIMS.md rules) and
build the `claim_verdicts` frame, one row per claim of the registry, always.

- "≈ X" (approx) is supported within the claim's tolerance: 10 % of X (relative) for
  amounts and multiples, 0.5 percentage points for returns, unless the claim says otherwise;
- "<" / ">" are strict, "<=" / ">=" are not;
- a claim with several figures (parts) is supported only if every part is; contradicted if
  any part is; insufficient_data if a required part lacks data;
- a metric that lacks data, or raises, gives insufficient_data with the reason in the note:
  no claim silently disappears.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from selloff.analytics.tables import VERDICT_SCHEMA
from selloff.claims.metrics import (
    METRICS,
    Frames,
    MetricContext,
    MetricResult,
    MissingData,
    UndeclaredRead,
    fmt_value,
)
from selloff.claims.registry import Claim, ClaimPart, Registry

VERDICTS = ("supported", "contradicted", "insufficient_data", "external")
OPS = {"approx": "≈", "lt": "<", "gt": ">", "le": "≤", "ge": "≥", "none": ""}


# Float noise must not turn "exactly 0.5 pp away" into a contradiction.
_EPS = 1e-9


def allowed_deviation(stated: float, tolerance: float, tolerance_kind: str) -> float:
    if tolerance_kind == "relative":
        return tolerance * abs(stated)
    if tolerance_kind == "absolute_pp":
        return tolerance
    raise ValueError(f"tolerance_kind must be relative or absolute_pp, not {tolerance_kind!r}")


def compare(computed: float, stated: float, comparator: str, tolerance: float | None = None,
            tolerance_kind: str | None = None) -> str:
    """'supported' or 'contradicted' for one figure."""
    if comparator == "approx":
        if tolerance is None or tolerance_kind is None:
            raise ValueError("approx needs a tolerance and a tolerance_kind")
        allowed = allowed_deviation(stated, tolerance, tolerance_kind)
        ok = abs(computed - stated) <= allowed * (1 + _EPS) + _EPS
    elif comparator == "lt":
        ok = computed < stated
    elif comparator == "gt":
        ok = computed > stated
    elif comparator == "le":
        ok = computed <= stated
    elif comparator == "ge":
        ok = computed >= stated
    else:
        raise ValueError(f"comparator {comparator!r} cannot compare figures")
    return "supported" if ok else "contradicted"


def combine_verdicts(parts: Sequence[tuple[str, bool]]) -> str:
    """Combine (verdict, required) of a claim's parts into the claim's verdict."""
    verdicts = [v for v, _ in parts]
    if not verdicts:
        return "insufficient_data"
    if "contradicted" in verdicts:
        return "contradicted"
    if all(v == "external" for v in verdicts):
        return "external"
    if any(v == "insufficient_data" and req for v, req in parts):
        return "insufficient_data"
    if "supported" in verdicts:
        return "supported"
    return "insufficient_data"


def _tolerance_text(part: ClaimPart) -> str:
    if part.comparator != "approx" or part.tolerance is None:
        return ""
    if part.tolerance_kind == "relative":
        return f"±{part.tolerance * 100:g} %"
    return f"±{part.tolerance:g} pp" if part.unit in ("pct", "pp") else f"±{fmt_value(part.tolerance, part.unit)}"


def stated_text(part: ClaimPart) -> str:
    if part.comparator == "none" or part.stated_value is None:
        return "-"
    return f"{OPS[part.comparator]} {fmt_value(part.stated_value, part.unit)}"


def _explain(part: ClaimPart, value: float | None, verdict: str, reason: str | None) -> str:
    if verdict == "external":
        return "external: not checkable against market data"
    if verdict == "insufficient_data":
        return f"insufficient data: {reason}"
    got, want = fmt_value(value, part.unit), stated_text(part)
    if part.comparator == "approx":
        assert value is not None and part.stated_value is not None
        gap = abs(value - part.stated_value)
        if part.tolerance_kind == "relative" and part.stated_value:
            off = f"{gap / abs(part.stated_value) * 100:.1f} % off"
        else:
            off = f"{gap:.2f} pp off" if part.unit in ("pct", "pp") else f"off by {fmt_value(gap, part.unit)}"
        return f"{verdict}: {got} vs {want} ({off}, tolerance {_tolerance_text(part)})"
    holds = "holds" if verdict == "supported" else "does not hold"
    return f"{verdict}: {got} {want} {holds}"


def _freeze(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in obj.items()))
    if isinstance(obj, list | tuple):
        return tuple(_freeze(v) for v in obj)
    return obj


def run_metric(name: str, frames: Frames, params: Mapping[str, Any], ctx: MetricContext) -> tuple[MetricResult, str | None]:
    """Run one metric; missing data and errors become a result, never an exception.

    Returns (result, error) where error is the exception text when the metric raised
    something other than MissingData.
    """
    spec = METRICS[name]
    try:
        return spec.fn(frames.scoped(spec), dict(params), ctx), None
    except UndeclaredRead as exc:
        # Not a data gap: the asset reads only declared tables, so this is a metric bug.
        raise UndeclaredRead(f"metric {name} {exc}") from None
    except MissingData as exc:
        return MetricResult(None, missing_dataset=exc.dataset), None
    except Exception as exc:  # a metric bug must not drop the claim: it becomes a row
        err = f"metric {name} failed: {type(exc).__name__}: {exc}"
        return MetricResult(None, missing_dataset=err), err


def evaluate_claim(claim: Claim, frames: Frames, ctx: MetricContext, *, synthetic: bool = False) -> dict[str, Any]:
    """One row of claim_verdicts for `claim` (also records its window in ctx)."""
    cache: dict[tuple, tuple[MetricResult, str | None]] = {}
    outcomes = []
    for part in claim.parts:
        key = (part.metric, _freeze(part.params))
        if key not in cache:
            cache[key] = run_metric(part.metric, frames, part.params, ctx)
        res, err = cache[key]
        value = res.get(part.field)
        reason = None
        if res.external:
            verdict = "external"
        elif value is None:
            verdict = "insufficient_data"
            reason = res.missing.get(part.field or "", None) or res.missing_dataset or "the metric gave no value"
        elif part.comparator == "none":
            verdict, reason = "insufficient_data", "nothing to compare (comparator none)"
        else:
            verdict = compare(value, part.stated_value, part.comparator, part.tolerance, part.tolerance_kind)
        outcomes.append((part, res, value, verdict, reason, err))
    if claim.parts:
        ctx.results[claim.id] = outcomes[0][1]
    verdict = combine_verdicts([(o[3], o[0].required) for o in outcomes])

    notes: list[str] = []
    seen_notes: set[str] = set()
    multi = len(outcomes) > 1
    for part, res, value, pv, reason, _err in outcomes:
        line = _explain(part, value, pv, reason)
        proxy = res.values.get("proxy_value")
        if pv == "insufficient_data" and proxy is not None and part.comparator not in ("none", ""):
            # Say what the proxy would give, so a reader can judge the scope question.
            pverdict = compare(proxy, part.stated_value, part.comparator, part.tolerance, part.tolerance_kind)
            line += f"; proxy check (not the verdict): {_explain(part, proxy, pverdict, None)}"
        if multi:
            line = f"[{part.name}{'' if part.required else ', optional'}] {line}"
            if res.window_start or res.window_end:
                line += f" (window {res.window_start}..{res.window_end})"
        notes.append(line)
        if res.note and res.note not in seen_notes:
            seen_notes.add(res.note)
            notes.append(res.note)
    if claim.note:
        notes.append(claim.note)

    first = outcomes[0] if outcomes else None
    with_window = next((o for o in outcomes if o[1].window_start or o[1].window_end), None)
    entities: list[str] = []
    for o in outcomes:
        for e in o[1].entities:
            if e not in entities:
                entities.append(e)
    parts_json = json.dumps([
        {"name": p.name, "metric": p.metric, "field": p.field, "comparator": p.comparator,
         "stated_value": p.stated_value, "computed_value": v, "unit": p.unit, "verdict": pv,
         "required": p.required, "tolerance": p.tolerance, "tolerance_kind": p.tolerance_kind,
         "window_start": str(r.window_start) if r.window_start else None,
         "window_end": str(r.window_end) if r.window_end else None}
        for p, r, v, pv, _reason, _err in outcomes], ensure_ascii=False)
    return {
        "claim_id": claim.id,
        "section": claim.section,
        "claim_text": claim.text,
        "quote": claim.quote,
        "metric": claim.metric,
        "stated_value": first[0].stated_value if first else None,
        "computed_value": first[2] if first else None,
        "unit": (first[0].unit or None) if first else None,
        "comparator": first[0].comparator if first else None,
        "stated_text": claim.stated_text or "; ".join(stated_text(o[0]) for o in outcomes),
        "computed_text": "; ".join(fmt_value(o[2], o[0].unit) if o[3] != "external" else "-" for o in outcomes),
        "verdict": verdict,
        "window_start": _date(with_window[1].window_start) if with_window else None,
        "window_end": _date(with_window[1].window_end) if with_window else None,
        "entities": ", ".join(entities),
        "note": " | ".join(notes),
        "parts_json": parts_json,
        "synthetic": synthetic,
    }


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def compute_claim_verdicts(frames: Mapping[str, pl.DataFrame | None], registry: Registry,
                           synthetic: bool = False) -> pl.DataFrame:
    """The claim_verdicts frame: one row per registry claim, in registry order.

    `frames` maps table names ("fct_market_cap_daily", "dim_basket_member", ...,
    "selloff_windows") to polars frames; missing tables make the claims that need them
    insufficient_data. `synthetic` marks rows computed on the demo market. An invalid
    registry raises RegistryError (a configuration bug, not a data gap).
    """
    reg = registry
    fr = Frames(frames)
    ctx = MetricContext()
    rows = {c.id: evaluate_claim(c, fr, ctx, synthetic=synthetic) for c in reg.evaluation_order()}
    return pl.DataFrame([rows[c.id] for c in reg.claims], schema=VERDICT_SCHEMA)
