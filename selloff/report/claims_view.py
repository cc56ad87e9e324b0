"""Claims at a glance: one row a claim (badge, stated vs computed, window, entities and a
one-line note), the full note and the parts one click away in a <details>.

Used by the sell-off report's claims section and by the fact-check page alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import polars as pl
from markupsafe import Markup

from selloff.markdown import format_value
from selloff.report.html import VERDICT_LABELS, badge, fmt_dates

NOTE_CHARS = 120
EPISODE_COLUMN = "episode_id"


def note_clauses(note: str | None) -> list[str]:
    """The clauses of a verdict's note (they are joined with ' | ')."""
    return [x.strip() for x in (note or "").split(" | ") if x.strip()]


def one_line(note: str | None, limit: int = NOTE_CHARS) -> str:
    """The note's first clause, cut to `limit` characters."""
    clauses = note_clauses(note)
    if not clauses:
        return ""
    first = clauses[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def short_entities(entities: str | None, keep: int = 3) -> str:
    """The first `keep` entities of a comma-separated list, and how many more."""
    items = [x.strip() for x in (entities or "").split(",") if x.strip()]
    if not items:
        return "–"
    more = len(items) - keep
    return ", ".join(items[:keep]) + (f" (+{more} more)" if more > 0 else "")


def claim_rows(verdicts: pl.DataFrame) -> list[dict]:
    """The verdict rows as dicts, sorted by claim id, with `window`, `note_line`,
    `note_lines` and `parts` (the parsed parts_json, [] without) added."""
    out = []
    for r in verdicts.sort("claim_id").iter_rows(named=True):
        r = dict(r)
        if r.get("verdict") not in VERDICT_LABELS:
            r["verdict"] = "insufficient_data"
        r["window"] = fmt_dates(r.get("window_start"), r.get("window_end"))
        r["note_line"] = one_line(r.get("note"))
        r["note_lines"] = note_clauses(r.get("note"))
        r["parts"] = json.loads(r["parts_json"]) if r.get("parts_json") else []
        out.append(r)
    return out


def verdict_counts(rows: Sequence[dict]) -> list[tuple[str, int]]:
    return [(v, sum(1 for r in rows if r["verdict"] == v)) for v in VERDICT_LABELS]


def counts_markup(rows: Sequence[dict]) -> Markup:
    cells = Markup("").join(Markup('{} <span class="n">{}</span>').format(badge(v), n)
                            for v, n in verdict_counts(rows))
    return Markup('<p class="counts">{} claims: {}</p>').format(len(rows), cells)


def _part_line(p: dict) -> Markup:
    """One part of a claim on one line: name, metric and field, stated vs computed, verdict."""
    def num(v: object) -> str:
        # Amounts in billions of their currency, as the stated and computed texts have them.
        currency = re.fullmatch(r"[A-Z]{3}", str(p.get("unit") or ""))
        if currency and isinstance(v, int | float) and abs(v) >= 1e6:
            return f"{v / 1e9:,.2f} bn"
        return "–" if v is None else format_value(v)

    metric = p.get("metric") or ""
    if p.get("field"):
        metric += f".{p['field']}"
    optional = "" if p.get("required", True) else " (optional)"
    window = fmt_dates(p.get("window_start"), p.get("window_end"))
    return Markup("<li><b>{}</b>{}: <code>{}</code> {} {} vs computed {} {} → {} {}</li>").format(
        p.get("name") or "part", optional, metric, p.get("comparator") or "",
        num(p.get("stated_value")), num(p.get("computed_value")), p.get("unit") or "",
        badge(p.get("verdict")), window)


def _parts_list(parts: Sequence[dict]) -> Markup:
    return Markup('<p class="small">parts:</p><ul>{}</ul>').format(
        Markup("").join(_part_line(p) for p in parts))


def _details(r: dict, with_quote: bool) -> Markup:
    inner = Markup("")
    if with_quote and r.get("quote"):
        inner += Markup('<blockquote lang="zh-Hans">{}</blockquote>').format(r["quote"])
    if r.get("metric"):
        inner += Markup("<p class=\"small\">metric <code>{}</code></p>").format(r["metric"])
    if len((r.get("entities") or "").split(",")) > 3:
        inner += Markup("<p class=\"small\">entities: {}</p>").format(r["entities"])
    if r["note_lines"]:
        inner += Markup("<ul>{}</ul>").format(
            Markup("").join(Markup("<li>{}</li>").format(x) for x in r["note_lines"]))
    if r["parts"]:
        inner += _parts_list(r["parts"])
    if not inner:
        return Markup("")
    return Markup("<details><summary>full note and parts</summary>{}</details>").format(inner)


def claims_table(rows: Sequence[dict], *, anchors: bool = False, anchor_prefix: str = "",
                 with_quote: bool = True) -> Markup:
    """The claims table: id and claim, verdict badge, stated, computed, window, entities,
    one-line note (details below it). `anchors` gives every row
    id="<anchor_prefix><claim_id>"."""
    out = [Markup('<table class="claims"><colgroup><col style="width:27%"><col style="width:9%">'
                  '<col style="width:11%"><col style="width:11%"><col style="width:9%">'
                  '<col style="width:10%"><col style="width:23%"></colgroup><thead><tr>'
                  '<th>claim</th><th>verdict</th><th class="num">stated</th>'
                  '<th class="num">computed</th><th>window</th><th>entities</th><th>note</th>'
                  "</tr></thead><tbody>")]
    for r in rows:
        row_id = (Markup(' id="{}{}"').format(anchor_prefix, r["claim_id"]) if anchors
                  else Markup(""))
        out.append(Markup(
            "<tr{}><td><b>{}</b> {}</td><td>{}</td><td class=\"fig\">{}</td>"
            "<td class=\"fig\">{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>").format(
            row_id, r["claim_id"], r.get("claim_text") or "", badge(r["verdict"]),
            r.get("stated_text") or "–", r.get("computed_text") or "–", r["window"],
            short_entities(r.get("entities")), r["note_line"], _details(r, with_quote)))
    out.append(Markup("</tbody></table>"))
    return Markup("").join(out)


def by_episode(verdicts: pl.DataFrame, episode_ids: Sequence[str]) -> list[tuple[str | None,
                                                                                 pl.DataFrame]]:
    """(episode_id, its verdicts) in the order of `episode_ids`, then any other episode of
    the table; one (None, all) group when the table has no episode_id column."""
    if EPISODE_COLUMN not in verdicts.columns:
        return [(None, verdicts)]
    present = verdicts[EPISODE_COLUMN].unique().sort().to_list()
    order = [e for e in episode_ids] + [e for e in present if e not in episode_ids]
    return [(e, verdicts.filter(pl.col(EPISODE_COLUMN) == e).drop(EPISODE_COLUMN))
            for e in order]
