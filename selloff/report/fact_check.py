"""The fact-check page: `reports/fact_check.html` (the report's HTML stack) and
`reports/fact_check.md` (`selloff.markdown.markdown_table`).

Per episode: the verdict counts and one table of its claims (badge, stated vs computed,
window, entities, one-line note; the quote, full note and parts in a <details>). When
the verdicts come from the synthetic demo market both files say so at the top.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
from markupsafe import Markup

from selloff.episode import Episode
from selloff.markdown import escape_markdown, markdown_table
from selloff.report.claims_view import by_episode, claim_rows, claims_table, counts_markup
from selloff.report.html import (
    VERDICT_LABELS,
    Block,
    Section,
    generated_now,
    render_page,
    write_atomic,
)

FOOTER = Markup(
    "Verdicts: supported = the warehouse's figure is within the claim's tolerance (&asymp; "
    "within 10 % for amounts and multiples, 0.5 pp for returns; &lt; and &gt; strict); "
    "contradicted = outside it; insufficient data = the data needed is not in the warehouse "
    "(the note names it); external = an outside study or forecast that market data cannot "
    "check.")
SYNTHETIC_MD = ("> **SYNTHETIC DEMO DATA** — these verdicts are computed on the built-in "
                "synthetic demo market, not on market data. The figures are generated.")


def page_title(episodes: Sequence[Episode]) -> str:
    if not episodes:
        return "Fact check"
    return "Fact check: " + "; ".join(e.title for e in episodes)


def is_synthetic(verdicts: pl.DataFrame, synthetic: bool | None) -> bool:
    if synthetic is not None:
        return synthetic
    return "synthetic" in verdicts.columns and bool(verdicts["synthetic"].fill_null(False).any())


def _groups(verdicts: pl.DataFrame, episodes: Sequence[Episode]
            ) -> list[tuple[str, str, list[dict]]]:
    """(anchor id, heading, claim rows) per episode of the verdicts."""
    titles = {e.episode_id: e.title for e in episodes}
    out = []
    for eid, frame in by_episode(verdicts, [e.episode_id for e in episodes]):
        heading = titles.get(eid, eid) if eid else "Claims"
        out.append((f"fc-{eid or 'claims'}", heading, claim_rows(frame)))
    return out


def render_html(verdicts: pl.DataFrame, *, synthetic: bool | None = None,
                data_label: str | None = None, generated_at: str | None = None,
                title: str | None = None, episodes: Sequence[Episode] = ()) -> str:
    """The self-contained HTML page (inline CSS only; no scripts, fonts or images fetched)."""
    blocks = []
    groups = _groups(verdicts, episodes)
    ids = [r["claim_id"] for _, _, rows in groups for r in rows]
    shared = len(ids) != len(set(ids))  # two episodes use one claim id: prefix the anchors
    for anchor, heading, rows in groups:
        table = claims_table(rows, anchors=True, anchor_prefix=f"{anchor}-" if shared else "")
        blocks.append(Block(anchor, heading, sections=[Section(
            f"{anchor}-claims", "Claims checked against the data",
            [counts_markup(rows), table])]))
    meta = [f"{verdicts.height} claims · generated {generated_at or generated_now()}"
            + (f" · data: {data_label}" if data_label else "")]
    return render_page(title or page_title(episodes), blocks,
                       synthetic=is_synthetic(verdicts, synthetic), meta=meta, footer=FOOTER)


def render_markdown(verdicts: pl.DataFrame, *, synthetic: bool | None = None,
                    data_label: str | None = None, generated_at: str | None = None,
                    title: str | None = None, episodes: Sequence[Episode] = ()) -> str:
    # Everything from episode files and data is escaped (shown literally); only the
    # page's own emphasis and code spans are Markdown.
    md = escape_markdown
    lines = [f"# {md(title or page_title(episodes))}", ""]
    if is_synthetic(verdicts, synthetic):
        lines += [SYNTHETIC_MD, ""]
    lines += [f"{verdicts.height} claims; generated {generated_at or generated_now()}"
              + (f"; data: {md(data_label)}" if data_label else "") + ".", ""]
    for _, heading, rows in _groups(verdicts, episodes):
        lines += [f"## {md(heading)}", ""]
        lines.append(" · ".join(f"{VERDICT_LABELS[v]}: {sum(r['verdict'] == v for r in rows)}"
                                for v in VERDICT_LABELS))
        cells = {"id": "claim_id", "claim": "claim_text", "verdict": None,
                 "stated": "stated_text", "computed": "computed_text", "window": "window",
                 "note": "note_line"}
        table = pl.DataFrame(
            {h: [f"**{VERDICT_LABELS[r['verdict']]}**" if k is None
                 else str(r[k] if r.get(k) not in (None, "") else "-") for r in rows]
             for h, k in cells.items()}, schema=dict.fromkeys(cells, pl.Utf8))
        lines += ["", markdown_table(table, max_rows=None, raw=("verdict",)), ""]
        for r in rows:
            lines += [f"### {md(r['claim_id'])} (§{md(r.get('section') or '-')}): "
                      f"{VERDICT_LABELS[r['verdict']]}", "",
                      f"> {md(r.get('quote') or '-')}", "", md(r.get("claim_text") or ""), "",
                      f"- stated: {md(r.get('stated_text') or '-')}",
                      f"- computed: {md(r.get('computed_text') or '-')}",
                      f"- window: {md(r['window'])}",
                      f"- entities: {md(r.get('entities') or '-')}",
                      f"- metric: `{str(r.get('metric') or '-').replace('`', '')}`",
                      "- note:"]
            lines += [f"  - {md(x)}" for x in r["note_lines"]] or ["  - -"]
            lines.append("")
    return "\n".join(lines)


def write_factcheck_report(verdicts: pl.DataFrame, out_dir: str | Path = "reports", *,
                           synthetic: bool | None = None, data_label: str | None = None,
                           episodes: Sequence[Episode] = ()) -> tuple[Path, Path]:
    """Write fact_check.md and fact_check.html into out_dir; returns (md_path, html_path).

    `synthetic=None` takes the flag from the verdicts' `synthetic` column; `episodes`
    gives the headings and their order (verdicts of other episodes follow, by id).
    """
    out = Path(out_dir)
    gen = generated_now()
    kw = {"synthetic": synthetic, "data_label": data_label, "generated_at": gen,
          "episodes": episodes}
    md = write_atomic(out / "fact_check.md", render_markdown(verdicts, **kw))
    html = write_atomic(out / "fact_check.html", render_html(verdicts, **kw))
    return md, html
