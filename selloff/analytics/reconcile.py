"""Reconciliation of the decomposition and the roll-up (the blocking asset check, DESIGN §5).

Checks, each with relative tolerance `rel_tol` (default 1e-9):
- per security: price + shares + fx == change == mcap_end - mcap_start, and
  rerating + earnings + no_earnings_basis == price + shares, scaled by
  max(1, |change|, mcap_usd_start); no amount is null or NaN;
- per window and partitioning group kind (total, market, is_ai, sector_group, sector)
  present in the roll-up: the group rows add up to the sum over the window's securities
  (every amount column and n_securities), scaled by max(1, sum of |mcap_usd_start|);
- per window and basket: the basket row equals the sum over its members valid at t1,
  and no basket row is missing or extra;
- share_of_total == change_usd / the window's total change_usd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from selloff.analytics.baskets import basket_membership
from selloff.analytics.tables import AMOUNT_COLUMNS, PARTITION_GROUP_KINDS, require_columns

LEVEL2_PARTS = ("rerating_usd", "earnings_usd", "no_earnings_basis_usd")


@dataclass
class ReconciliationResult:
    """`failures`: human-readable messages, empty when everything reconciles.
    `metrics`: numbers for the asset check's metadata (max relative errors, counts)."""

    failures: list[str] = field(default_factory=list)
    metrics: dict[str, float | int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def _fmt(x: float | None) -> str:
    return "null" if x is None else f"{x:,.6g}"


def _listed(failures: list[str], messages: list[str], what: str, max_listed: int) -> None:
    failures.extend(messages[:max_listed])
    if len(messages) > max_listed:
        failures.append(f"... and {len(messages) - max_listed} more {what} failures")


def _max(frame: pl.DataFrame, column: str) -> float:
    if frame.height == 0:
        return 0.0
    value = frame.select(pl.col(column).fill_nan(float("inf")).max()).item()
    return float(value) if value is not None else 0.0


def _security_checks(d: pl.DataFrame, rel_tol: float, max_listed: int,
                     failures: list[str], metrics: dict[str, float | int]) -> None:
    scale = pl.max_horizontal(
        pl.lit(1.0), pl.col("change_usd").abs(), pl.col("mcap_usd_start").abs()
    )
    local = pl.col("price_usd") + pl.col("shares_usd")
    checked = d.with_columns(
        pl.any_horizontal([pl.col(c).is_null() | pl.col(c).is_nan() for c in AMOUNT_COLUMNS])
        .alias("has_null"),
        ((local + pl.col("fx_usd") - pl.col("change_usd")).abs() / scale).alias("rel_l1"),
        ((pl.col("mcap_usd_end") - pl.col("mcap_usd_start") - pl.col("change_usd")).abs() / scale)
        .alias("rel_change"),
        ((pl.sum_horizontal(LEVEL2_PARTS) - local).abs() / scale).alias("rel_l2"),
    )
    metrics["max_rel_error_level1"] = max(_max(checked, "rel_l1"), _max(checked, "rel_change"))
    metrics["max_rel_error_level2"] = _max(checked, "rel_l2")

    nulls = checked.filter(pl.col("has_null"))
    _listed(failures, [
        f"window {w}, security {s}: an amount is null or NaN"
        for w, s in nulls.select("window_id", "security_id").rows()
    ], "null-amount", max_listed)

    rows = checked.filter(~pl.col("has_null"))
    bad1 = rows.filter((pl.col("rel_l1") > rel_tol) | (pl.col("rel_change") > rel_tol))
    _listed(failures, [
        f"level 1, window {r['window_id']}, security {r['security_id']}: "
        f"price+shares+fx = {_fmt(r['price_usd'] + r['shares_usd'] + r['fx_usd'])}, "
        f"change = {_fmt(r['change_usd'])}, mcap end-start = "
        f"{_fmt(r['mcap_usd_end'] - r['mcap_usd_start'])} "
        f"(relative error {max(r['rel_l1'], r['rel_change']):.3g} > {rel_tol:g})"
        for r in bad1.iter_rows(named=True)
    ], "level-1", max_listed)
    bad2 = rows.filter(pl.col("rel_l2") > rel_tol)
    _listed(failures, [
        f"level 2, window {r['window_id']}, security {r['security_id']}: "
        f"rerating+earnings+no_earnings_basis = "
        f"{_fmt(r['rerating_usd'] + r['earnings_usd'] + r['no_earnings_basis_usd'])}, "
        f"price+shares = {_fmt(r['price_usd'] + r['shares_usd'])} "
        f"(relative error {r['rel_l2']:.3g} > {rel_tol:g})"
        for r in bad2.iter_rows(named=True)
    ], "level-2", max_listed)


def _compare(expected: pl.DataFrame, actual: pl.DataFrame, keys: list[str], scale: pl.DataFrame,
             rel_tol: float, label: str) -> tuple[list[str], float]:
    """Full-join expected and actual sums on `keys`; messages for gaps and differences."""
    cols = ["n_securities", *AMOUNT_COLUMNS]
    j = expected.join(actual, on=keys, how="full", coalesce=True, suffix="_actual").join(
        scale, on="window_id", how="left"
    )
    messages: list[str] = []
    max_rel = 0.0
    for r in j.iter_rows(named=True):
        where = f"{label}, window {r['window_id']}" + "".join(
            f", {k} {r[k]}" for k in keys if k != "window_id"
        )
        if r["n_securities"] is None:
            messages.append(f"{where}: roll-up row has no securities behind it")
            continue
        if r["n_securities_actual"] is None:
            messages.append(f"{where}: missing from the roll-up ({r['n_securities']} securities)")
            continue
        if r["n_securities"] != r["n_securities_actual"]:
            messages.append(f"{where}: n_securities {r['n_securities_actual']} in the roll-up, "
                            f"{r['n_securities']} over securities")
        for c in cols[1:]:
            exp, act = r[c], r[f"{c}_actual"]
            if exp is None or act is None:
                messages.append(f"{where}: {c} is null")
                continue
            rel = abs(exp - act) / r["_scale"]
            if math.isnan(rel):
                rel = math.inf
            if rel > rel_tol:
                messages.append(f"{where}: {c} {_fmt(act)} in the roll-up, {_fmt(exp)} over "
                                f"securities (relative error {rel:.3g} > {rel_tol:g})")
            max_rel = max(max_rel, rel)
    return messages, max_rel


def reconcile(
    decomposition: pl.DataFrame,
    rollup: pl.DataFrame,
    basket_members: pl.DataFrame | None = None,
    *,
    rel_tol: float = 1e-9,
    max_listed: int = 20,
) -> ReconciliationResult:
    """Check the identities of `decomposition` and that `rollup` adds up to it.

    Returns the failures (at most `max_listed` messages per check, then a count) and
    metrics: n_security_rows, n_windows, n_rollup_rows, max_rel_error_level1,
    max_rel_error_level2, max_rel_error_groups, max_rel_error_baskets, n_failures.
    Basket rows are checked against `basket_members` when given.
    """
    require_columns(decomposition, "selloff_decomposition",
                    ("window_id", "security_id", "t1_date", *AMOUNT_COLUMNS))
    require_columns(rollup, "selloff_rollup",
                    ("window_id", "group_kind", "group_id", "n_securities", *AMOUNT_COLUMNS,
                     "share_of_total"))
    failures: list[str] = []
    metrics: dict[str, float | int] = {
        "n_security_rows": decomposition.height,
        "n_windows": decomposition["window_id"].n_unique(),
        "n_rollup_rows": rollup.height,
    }
    _security_checks(decomposition, rel_tol, max_listed, failures, metrics)

    sums = [pl.col(c).sum() for c in AMOUNT_COLUMNS]
    scale = decomposition.group_by("window_id").agg(
        pl.max_horizontal(pl.lit(1.0), pl.col("mcap_usd_start").abs().sum(),
                          pl.col("mcap_usd_end").abs().sum()).alias("_scale")
    )
    window_sums = decomposition.group_by("window_id").agg(
        pl.len().cast(pl.Int64).alias("n_securities"), *sums
    )

    # A partitioning kind is summed over its groups and compared with the window's total.
    kinds_present = [k for k in PARTITION_GROUP_KINDS
                     if k in set(rollup["group_kind"].unique().to_list())]
    group_messages: list[str] = []
    max_rel_groups = 0.0
    for kind in kinds_present:
        actual = (
            rollup.filter(pl.col("group_kind") == kind)
            .group_by("window_id")
            .agg(pl.col("n_securities").sum(), *sums)
        )
        messages, rel = _compare(window_sums, actual, ["window_id"], scale, rel_tol,
                                 f"group kind {kind}")
        group_messages += messages
        max_rel_groups = max(max_rel_groups, rel)
    if decomposition.height and not kinds_present:
        group_messages.append("roll-up has no partitioning group kind (total, market, ...)")
    _listed(failures, group_messages, "group-sum", max_listed)
    metrics["max_rel_error_groups"] = max_rel_groups

    if basket_members is not None:
        members = basket_membership(decomposition, basket_members)
        expected = (
            decomposition.join(members, on=["window_id", "security_id"])
            .group_by("window_id", pl.col("basket_id").alias("group_id"))
            .agg(pl.len().cast(pl.Int64).alias("n_securities"), *sums)
        )
        actual = rollup.filter(pl.col("group_kind") == "basket").select(
            "window_id", "group_id", "n_securities", *AMOUNT_COLUMNS
        )
        messages, rel = _compare(expected, actual, ["window_id", "group_id"], scale, rel_tol,
                                 "basket")
        _listed(failures, messages, "basket", max_listed)
        metrics["max_rel_error_baskets"] = rel

    totals = rollup.filter(pl.col("group_kind") == "total").select(
        "window_id", pl.col("change_usd").alias("_total")
    )
    shares = rollup.join(totals, on="window_id", how="left").with_columns(
        pl.when(pl.col("_total") != 0).then(pl.col("change_usd") / pl.col("_total"))
        .otherwise(None).alias("_expected")
    )
    bad_share = shares.filter(
        (pl.col("_expected").is_null() != pl.col("share_of_total").is_null())
        | ((pl.col("_expected") - pl.col("share_of_total")).abs() > rel_tol
           * pl.max_horizontal(pl.lit(1.0), pl.col("_expected").abs()))
    )
    _listed(failures, [
        f"share_of_total, window {r['window_id']}, {r['group_kind']} {r['group_id']}: "
        f"{_fmt(r['share_of_total'])}, expected {_fmt(r['_expected'])}"
        for r in bad_share.iter_rows(named=True)
    ], "share_of_total", max_listed)

    metrics["n_failures"] = len(failures)
    return ReconciliationResult(failures, metrics)
