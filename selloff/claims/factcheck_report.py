"""The fact-check report: `reports/fact_check.md` and a self-contained `fact_check.html`.

The HTML has everything inline (CSS in a <style> block, system fonts, no scripts, images
or links to the network), so it opens offline and can be mailed as one file. When the
verdicts come from the synthetic demo market the page says so at the top, in a banner that
cannot be missed: its figures are generated, not market data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import jinja2
import polars as pl

from selloff.claims.verdicts import VERDICTS
from selloff.markdown import markdown_table

TITLE = "Fact check: the Oct-Nov 2025 AI sell-off commentary"
ARTICLE = "000_a979d1da63498dff.txt"

BADGE = {
    "supported": ("#1b7f3b", "supported"),
    "contradicted": ("#b3261e", "contradicted"),
    "insufficient_data": ("#8a6d00", "insufficient data"),
    "external": ("#4a5568", "external"),
}

_HTML = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
  :root { --ink:#1f2328; --muted:#59636e; --line:#d0d7de; --bg:#f6f8fa; }
  * { box-sizing: border-box; }
  body { margin: 0; color: var(--ink); background: #fff;
         font: 15px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", Arial,
               "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }
  main { max-width: 1100px; margin: 0 auto; padding: 24px; }
  h1 { font-size: 24px; margin: 0 0 4px; }
  .sub { color: var(--muted); margin: 0 0 16px; }
  .synthetic { border: 3px solid #b3261e; background: #fff4e5; color: #7a1c14; padding: 14px 18px;
               margin: 0 0 20px; border-radius: 8px; font-size: 18px; font-weight: 700; }
  .synthetic span { display: block; font-size: 14px; font-weight: 400; margin-top: 4px; }
  .summary { display: flex; flex-wrap: wrap; gap: 10px; margin: 0 0 20px; }
  .summary div { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; background: var(--bg); }
  .badge { display: inline-block; color: #fff; border-radius: 999px; padding: 2px 10px;
           font-size: 12px; font-weight: 700; letter-spacing: .02em; white-space: nowrap; }
  table.overview { width: 100%; border-collapse: collapse; margin: 0 0 28px; font-size: 14px; }
  table.overview th, table.overview td { border-bottom: 1px solid var(--line); padding: 6px 8px;
           text-align: left; vertical-align: top; }
  table.overview th { background: var(--bg); }
  .num { font-variant-numeric: tabular-nums; }
  .nowrap { white-space: nowrap; }
  table.overview td.claimcol { width: 42%; }
  .claim { border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px; margin: 0 0 16px; }
  .claim h2 { font-size: 17px; margin: 0 0 6px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
  .claim h2 .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
  blockquote { margin: 6px 0; padding: 6px 12px; border-left: 4px solid var(--line); background: var(--bg); }
  .en { margin: 4px 0 10px; }
  dl { display: grid; grid-template-columns: 150px 1fr; gap: 4px 12px; margin: 0; }
  dt { color: var(--muted); }
  dd { margin: 0; }
  ul.note { margin: 4px 0 0; padding-left: 18px; color: #303840; font-size: 14px; }
  footer { color: var(--muted); font-size: 13px; margin-top: 28px; border-top: 1px solid var(--line); padding-top: 10px; }
</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<p class="sub">Article <code>{{ article }}</code>; {{ n }} claims; generated {{ generated_at }}{% if data_label %}; data: {{ data_label }}{% endif %}.</p>
{% if synthetic %}
<div class="synthetic" role="alert">SYNTHETIC DEMO DATA &mdash; these verdicts are computed on the built-in synthetic demo market, not on market data.
<span>The figures below are generated; they say nothing about what happened in the markets. Run on a snapshot or live source for real verdicts.</span></div>
{% endif %}
<div class="summary">
{% for v, count in counts %}<div><span class="badge" style="background:{{ badge[v][0] }}">{{ badge[v][1] }}</span> {{ count }}</div>
{% endfor %}</div>
<table class="overview">
<thead><tr><th>Claim</th><th>Stated</th><th>Computed</th><th>Verdict</th><th>Window</th></tr></thead>
<tbody>
{% for r in rows %}<tr><td class="claimcol"><a href="#{{ r.claim_id }}">{{ r.claim_id }}</a> {{ r.claim_text }}</td>
<td class="num">{{ r.stated_text or "-" }}</td><td class="num">{{ r.computed_text or "-" }}</td>
<td><span class="badge" style="background:{{ badge[r.verdict][0] }}">{{ badge[r.verdict][1] }}</span></td>
<td class="num nowrap">{{ r.window }}</td></tr>
{% endfor %}</tbody>
</table>
{% for r in rows %}
<section class="claim" id="{{ r.claim_id }}">
<h2><span class="id">{{ r.claim_id }}</span> <span class="badge" style="background:{{ badge[r.verdict][0] }}">{{ badge[r.verdict][1] }}</span> <small>&sect;{{ r.section }}</small></h2>
<blockquote lang="zh-Hans">{{ r.quote }}</blockquote>
<p class="en">{{ r.claim_text }}</p>
<dl>
<dt>Stated</dt><dd class="num">{{ r.stated_text or "-" }}</dd>
<dt>Computed</dt><dd class="num">{{ r.computed_text or "-" }}</dd>
<dt>Window</dt><dd class="num">{{ r.window }}</dd>
<dt>Entities</dt><dd>{{ r.entities or "-" }}</dd>
<dt>Metric</dt><dd><code>{{ r.metric }}</code></dd>
<dt>Note</dt><dd><ul class="note">{% for line in r.note_lines %}<li>{{ line }}</li>{% endfor %}</ul></dd>
</dl>
</section>
{% endfor %}
<footer>Verdicts: supported = the warehouse's figure is within the claim's tolerance
(&asymp; within 10 % for amounts and multiples, 0.5 pp for returns; &lt; and &gt; strict);
contradicted = outside it; insufficient data = the data needed is not in the warehouse (the note
names it); external = an outside study or forecast that market data cannot check.</footer>
</main>
</body>
</html>
""",
    autoescape=True,
)


def _window(start: dt.date | None, end: dt.date | None) -> str:
    if start is None and end is None:
        return "-"
    if start == end:
        return str(start)
    return f"{start or '?'} → {end or '?'}"


def _rows(verdicts: pl.DataFrame) -> list[dict]:
    out = []
    for r in verdicts.iter_rows(named=True):
        r = dict(r)
        r["window"] = _window(r.get("window_start"), r.get("window_end"))
        r["note_lines"] = [x.strip() for x in (r.get("note") or "").split(" | ") if x.strip()]
        if r.get("verdict") not in BADGE:
            r["verdict"] = "insufficient_data"
        out.append(r)
    return out


def _is_synthetic(verdicts: pl.DataFrame, synthetic: bool | None) -> bool:
    if synthetic is not None:
        return synthetic
    return "synthetic" in verdicts.columns and bool(verdicts["synthetic"].fill_null(False).any())


def _counts(rows: Sequence[dict]) -> list[tuple[str, int]]:
    return [(v, sum(1 for r in rows if r["verdict"] == v)) for v in VERDICTS]


def render_html(verdicts: pl.DataFrame, *, synthetic: bool | None = None, data_label: str | None = None,
                generated_at: str | None = None, title: str = TITLE) -> str:
    """The self-contained HTML page (inline CSS only; no scripts, fonts or images fetched)."""
    rows = _rows(verdicts)
    return _HTML.render(
        title=title, article=ARTICLE, n=len(rows), rows=rows, counts=_counts(rows), badge=BADGE,
        synthetic=_is_synthetic(verdicts, synthetic), data_label=data_label,
        generated_at=generated_at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def render_markdown(verdicts: pl.DataFrame, *, synthetic: bool | None = None, data_label: str | None = None,
                    generated_at: str | None = None, title: str = TITLE) -> str:
    rows = _rows(verdicts)
    gen = generated_at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {title}", ""]
    if _is_synthetic(verdicts, synthetic):
        lines += ["> **SYNTHETIC DEMO DATA** — these verdicts are computed on the built-in synthetic "
                  "demo market, not on market data. The figures are generated.", ""]
    lines += [f"Article `{ARTICLE}`; {len(rows)} claims; generated {gen}"
              + (f"; data: {data_label}" if data_label else "") + ".", ""]
    lines.append(" · ".join(f"{BADGE[v][1]}: {c}" for v, c in _counts(rows)))
    cells = {"id": "claim_id", "claim": "claim_text", "stated": "stated_text",
             "computed": "computed_text", "verdict": None, "window": "window"}
    table = pl.DataFrame({h: [f"**{BADGE[r['verdict']][1]}**" if k is None
                              else str(r[k] if r[k] not in (None, "") else "-") for r in rows]
                          for h, k in cells.items()}, schema=dict.fromkeys(cells, pl.Utf8))
    lines += ["", markdown_table(table, max_rows=None), ""]
    for r in rows:
        lines += [f"## {r['claim_id']} (§{r['section']}): {BADGE[r['verdict']][1]}", "",
                  f"> {r['quote']}", "", r["claim_text"], "",
                  f"- stated: {r['stated_text'] or '-'}",
                  f"- computed: {r['computed_text'] or '-'}",
                  f"- window: {r['window']}",
                  f"- entities: {r['entities'] or '-'}",
                  f"- metric: `{r['metric']}`",
                  "- note:"]
        lines += [f"  - {x}" for x in r["note_lines"]] or ["  - -"]
        lines.append("")
    return "\n".join(lines)


def write_factcheck_report(verdicts: pl.DataFrame, out_dir: str | Path = "reports", *,
                           synthetic: bool | None = None, data_label: str | None = None) -> tuple[Path, Path]:
    """Write fact_check.md and fact_check.html into out_dir; returns (md_path, html_path).

    `synthetic=None` takes the flag from the verdicts' `synthetic` column.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    md = out / "fact_check.md"
    html = out / "fact_check.html"
    md.write_text(render_markdown(verdicts, synthetic=synthetic, data_label=data_label, generated_at=gen),
                  encoding="utf-8")
    html.write_text(render_html(verdicts, synthetic=synthetic, data_label=data_label, generated_at=gen),
                    encoding="utf-8")
    return md, html
