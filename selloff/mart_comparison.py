"""Table-by-table comparison of the marts two engines built (DESIGN §8: portable models).

Rows are matched on each mart's grain, `selloff.marts.MART_KEYS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class TableDiff:
    """How two builds of one table differ; `problems` empty means they agree."""

    table: str
    rows_left: int
    rows_right: int
    max_rel_diff: float
    worst_column: str | None
    problems: tuple[str, ...]

    @property
    def same(self) -> bool:
        return not self.problems


def compare_tables(table: str, left: pl.DataFrame, right: pl.DataFrame,
                   key: tuple[str, ...], rel_tol: float = 1e-9) -> TableDiff:
    """Same columns and types, same keys (each once), equal non-float values and nulls,
    floats within rel_tol of the larger magnitude (exact zero must stay exact zero)."""
    problems: list[str] = []
    if left.columns != right.columns:
        problems.append(f"columns differ: {left.columns} vs {right.columns}")
    elif left.schema != right.schema:
        problems.append(f"types differ: {dict(left.schema)} vs {dict(right.schema)}")
    for name, df in (("left", left), ("right", right)):
        dupes = df.height - df.select(key).unique().height
        if dupes:
            problems.append(f"{name}: {dupes} duplicate keys on {key}")
    if problems:
        return TableDiff(table, left.height, right.height, float("nan"), None, tuple(problems))

    joined = left.join(right, on=list(key), how="full", suffix="__r", coalesce=False,
                       nulls_equal=True)
    only_left = joined.filter(pl.col(f"{key[0]}__r").is_null() & pl.col(key[0]).is_not_null()).height
    only_right = joined.filter(pl.col(key[0]).is_null() & pl.col(f"{key[0]}__r").is_not_null()).height
    if only_left or only_right:
        problems.append(f"keys only in left: {only_left}, only in right: {only_right}")

    max_rel, worst = 0.0, None
    both = joined.filter(pl.col(key[0]).is_not_null() & pl.col(f"{key[0]}__r").is_not_null())
    for col in (c for c in left.columns if c not in key):
        a, b = pl.col(col), pl.col(f"{col}__r")
        null_mismatch = both.filter(a.is_null() != b.is_null()).height
        if null_mismatch:
            problems.append(f"{col}: null in one build only on {null_mismatch} rows")
        if left.schema[col].is_float():
            scale = pl.max_horizontal(a.abs(), b.abs())
            rel = both.select(
                pl.when(scale > 0).then((a - b).abs() / scale).otherwise(0.0).max()).item()
            rel = float(rel or 0.0)
            if rel > max_rel:
                max_rel, worst = rel, col
            if rel > rel_tol:
                problems.append(f"{col}: relative difference {rel:.3g} > {rel_tol:g}")
        else:
            unequal = both.filter(a.is_not_null() & b.is_not_null() & (a != b)).height
            if unequal:
                problems.append(f"{col}: {unequal} rows differ")
    return TableDiff(table, left.height, right.height, max_rel, worst, tuple(problems))
