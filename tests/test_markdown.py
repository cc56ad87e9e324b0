"""The one Markdown table renderer (selloff/markdown.py)."""

from __future__ import annotations

import polars as pl

from selloff.markdown import markdown_table


def test_markdown_table() -> None:
    df = pl.DataFrame({"a": [1, 2, 3], "b": ["x|y", None, "z"], "c": [1.5, 2e9, None]})
    md = markdown_table(df, max_rows=2)
    lines = md.splitlines()
    assert lines[0] == "| a | b | c |"
    assert lines[1] == "|---|---|---|"
    assert lines[2] == "| 1 | x\\|y | 1.5 |"
    assert lines[3] == "| 2 | – | 2,000,000,000 |"
    assert "1 more rows (3 in all)" in md
    assert "(no rows)" in markdown_table(df.head(0))
    assert "more rows" not in markdown_table(df, max_rows=None)
    assert len(markdown_table(df, max_rows=None).splitlines()) == 5
