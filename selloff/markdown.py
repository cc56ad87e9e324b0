"""The one Markdown table renderer (Dagster metadata previews, the fact-check page, the
lake's table list) and the cell formatting it shares with the HTML report."""

from __future__ import annotations

import datetime as dt

import polars as pl


def format_value(v: object) -> str:
    """A cell as text: null and NaN as '–', large floats with thousands separators,
    other floats to 4 significant digits, dates ISO, lists comma-joined."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:  # NaN
            return "–"
        if abs(v) >= 1e6:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return ", ".join(format_value(x) for x in v)
    return str(v)


def markdown_table(df: pl.DataFrame, max_rows: int | None = 20) -> str:
    """A GitHub-flavoured Markdown table of the first `max_rows` rows (all if None), with
    a line saying how many rows were left out."""
    cols = df.columns
    if not cols:
        return "_(no columns)_"

    def cell(v: object) -> str:
        return format_value(v).replace("|", "\\|").replace("\n", " ")

    shown = df if max_rows is None else df.head(max_rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in shown.iter_rows():
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    if df.height == 0:
        lines.append("_(no rows)_")
    elif df.height > shown.height:
        lines.append(f"\n_… {df.height - shown.height} more rows ({df.height} in all)_")
    return "\n".join(lines)
