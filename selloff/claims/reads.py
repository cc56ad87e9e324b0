"""What an episode's claims read, derived from what their metrics declare.

Each metric declares the tables it reads and what each of its parameters names
(`selloff.claims.metrics.register`); from the claims' parameters this gives the tables,
the securities whose daily rows are needed and the first day to read. A parameter its
metric does not declare is an error here, so a new parameter can never be silently left
out of the reads (and its claim come back insufficient_data).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from selloff.analytics.baskets import normalize_basket_members
from selloff.claims.metrics import DAILY, METRICS, Param, month_bounds
from selloff.claims.registry import ClaimPart, Registry
from selloff.episode_model import as_date, search_period


@dataclass(frozen=True)
class ClaimReads:
    tables: frozenset[str]
    securities: frozenset[str]
    first_day: dt.date | None


def _parts(registry: Registry) -> Iterable[ClaimPart]:
    for claim in registry.claims:
        yield from claim.parts


def _day(kind: Param, value: Any, where: str) -> dt.date | None:
    if kind is Param.DATE:
        return as_date(value, where)
    if kind is Param.YEAR:
        return dt.date(int(value), 1, 1)
    if kind is Param.MONTH:
        return month_bounds(value)[0]
    if kind is Param.PERIOD:
        return search_period({"search_period": value})[0]
    return None


def claim_reads(registry: Registry, basket_members: pl.DataFrame | None,
                securities: pl.DataFrame | None) -> ClaimReads:
    """The tables, daily securities and first day the registry's claims read.

    `basket_members` (dim_basket_member with the episode's baskets) resolves BASKET
    parameters to their members; `securities` (dim_security) resolves AI_OF_MARKET."""
    tables: set[str] = set()
    ids: set[str] = set()
    days: list[dt.date] = []
    members = None if basket_members is None else normalize_basket_members(basket_members)
    for part in _parts(registry):
        spec = METRICS[part.metric]
        tables.update(spec.tables)
        daily = bool(set(spec.tables) & set(DAILY))
        for key, value in part.params.items():
            kind = spec.kind(key)
            where = f"{part.metric}.{key}"
            day = _day(kind, value, where) if value is not None else None
            if day is not None:
                days.append(day)
            if not daily or value in (None, "", []):
                continue
            ids.update(_securities(kind, value, members, securities))
    return ClaimReads(frozenset(tables), frozenset(ids), min(days) if days else None)


def _securities(kind: Param, value: Any, members: pl.LazyFrame | None,
                securities: pl.DataFrame | None) -> set[str]:
    if kind is Param.SECURITY:
        return {str(value)}
    if kind is Param.SECURITIES:
        return {str(v) for v in value}
    if kind is Param.BASKET and members is not None:
        return set(members.filter(pl.col("basket_id") == str(value)).select("security_id")
                   .collect()["security_id"].to_list())
    if kind is Param.AI_OF_MARKET and securities is not None \
            and {"market", "is_ai", "security_id"} <= set(securities.columns):
        return set(securities.filter((pl.col("market") == str(value))
                                     & pl.col("is_ai").fill_null(False))["security_id"].to_list())
    return set()


def declared(metrics: Mapping[str, Any] = METRICS) -> frozenset[str]:
    """Every table some metric declares: the claims asset's deps."""
    return frozenset(t for spec in metrics.values() for t in spec.tables)
