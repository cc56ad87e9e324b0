"""The one Markdown table renderer (Dagster metadata previews, the fact-check page, the
lake's table list) and the cell formatting it shares with the HTML report."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection

import polars as pl

# Characters that mean something in (GitHub-flavoured) Markdown: a backslash before each
# shows it literally, so text from files and data never becomes a link, emphasis, HTML
# or a table cell break.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~$])")
# "- ", "=" and "1. " mean something only at the start of a line (list item, heading rule).
_MD_LEADING = re.compile(r"^(\s*)(-(?=\s|$)|=|\d+(?=\.(?:\s|$)))")


def escape_markdown(text: str) -> str:
    """`text` shown literally in Markdown: specials backslash-escaped (GitHub renders
    `$..$` as math, so `$` too), line breaks as spaces, a leading list marker escaped."""
    out = _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")
    m = _MD_LEADING.match(out)
    if m is None:
        return out
    if m.group(2)[0].isdigit():  # "1. x" -> "1\. x"
        return out[:m.end()] + "\\" + out[m.end():]
    return out[:m.start(2)] + "\\" + out[m.start(2):]


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


def markdown_table(df: pl.DataFrame, max_rows: int | None = 20,
                   raw: Collection[str] = ()) -> str:
    """A GitHub-flavoured Markdown table of the first `max_rows` rows (all if None), with
    a line saying how many rows were left out. Cells and headers are shown literally
    (escaped), except the `raw` columns, which hold Markdown the caller wrote."""
    cols = df.columns
    if not cols:
        return "_(no columns)_"

    def cell(v: object, markup: bool) -> str:
        text = format_value(v)
        if markup:
            return text.replace("|", "\\|").replace("\n", " ")
        return escape_markdown(text)

    shown = df if max_rows is None else df.head(max_rows)
    flags = [c in raw for c in cols]
    lines = ["| " + " | ".join(escape_markdown(c) for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for row in shown.iter_rows():
        lines.append("| " + " | ".join(cell(v, f) for v, f in zip(row, flags, strict=True)) + " |")
    if df.height == 0:
        lines.append("_(no rows)_")
    elif df.height > shown.height:
        lines.append(f"\n_… {df.height - shown.height} more rows ({df.height} in all)_")
    return "\n".join(lines)
