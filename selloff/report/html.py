"""The one HTML stack of the reports: formatting, tables, verdict badges and the page.

Both pages (reports/selloff_report.html and reports/fact_check.html) are rendered by
`render_page` from the same template and stylesheet. A page is a list of `Block`s (an
episode, the comparison, a fact-check episode), each a heading, an introduction and
`Section`s. Everything is inline: no scripts, fonts, stylesheets or images are loaded,
so a page opens offline and can be mailed as one file.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from jinja2 import Environment
from markupsafe import Markup

from selloff.markdown import format_value

# --------------------------------------------------------------------------- formatting


def fmt_bn(v: float | None) -> str:
    return "–" if v is None else f"{v / 1e9:+,.1f} bn"


def fmt_level_bn(v: float | None) -> str:
    return "–" if v is None else f"{v / 1e9:,.1f} bn"


def fmt_pct(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{100 * v:+.{digits}f}%"


def fmt_num(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def fmt_dates(start: dt.date | None, end: dt.date | None) -> str:
    if start is None and end is None:
        return "–"
    if start == end:
        return str(start)
    return f"{start or '?'} → {end or '?'}"


def sign_class(v: object) -> str | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return "neg" if v < 0 else "pos" if v > 0 else None
    return None


def html_table(df: pl.DataFrame, formats: Mapping[str, Callable[[object], str]] | None = None,
               headers: Mapping[str, str] | None = None, max_rows: int = 200,
               classes: Mapping[str, Callable[[object], str | None]] | None = None,
               raw: Sequence[str] = ()) -> Markup:
    """An escaped HTML table; `formats` per column, `classes` gives a cell CSS class;
    the cells of the `raw` columns are Markup already (not escaped again)."""
    formats, headers, classes = formats or {}, headers or {}, classes or {}
    numeric = {c for c, t in df.schema.items() if t.is_numeric()}
    out = ["<table><thead><tr>"]
    num_attr = ' class="num"'
    out += [f"<th{num_attr if c in numeric else ''}>{html.escape(headers.get(c, c))}</th>"
            for c in df.columns]
    out.append("</tr></thead><tbody>")
    for row in df.head(max_rows).iter_rows(named=True):
        out.append("<tr>")
        for c in df.columns:
            v = row[c]
            if c in raw:
                text = str(v or "")
            else:
                text = html.escape(formats[c](v) if c in formats else format_value(v))
            cls = [classes[c](v)] if c in classes and classes[c](v) else []
            if c in numeric:
                cls.append("num")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            out.append(f"<td{attr}>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if df.height > max_rows:
        out.append(f'<p class="small">{df.height - max_rows} more rows not shown.</p>')
    return Markup("".join(out))


def no_data(message: str) -> Markup:
    return Markup('<p class="insufficient">{}</p>').format(message)


# --------------------------------------------------------------------------- verdicts

VERDICT_LABELS = {"supported": "supported", "contradicted": "contradicted",
                  "insufficient_data": "insufficient data", "external": "external"}


def badge(verdict: str | None) -> Markup:
    v = verdict if verdict in VERDICT_LABELS else "insufficient_data"
    return Markup('<span class="badge b-{}">{}</span>').format(v, VERDICT_LABELS[v])


# --------------------------------------------------------------------------- the page


class NoData(Exception):
    """A section has its tables but no rows for its episode or window: the message says
    which, and the page shows it in place of the section's body."""


@dataclass
class Section:
    id: str
    title: str
    parts: list[Markup] = field(default_factory=list)
    chart: Markup | None = None
    missing: str | None = None


@dataclass
class Block:
    id: str
    title: str
    intro: list[Markup] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, "PingFang SC",
       "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; margin: 0;
       color: #1f2d3d; background: #f7f9fb; }
main { max-width: 1100px; margin: 0 auto; padding: 0 24px 48px; }
header { padding: 20px 24px 8px; max-width: 1100px; margin: 0 auto; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 21px; border-bottom: 3px solid #1f2d3d; padding-bottom: 4px; margin: 40px 0 8px; }
h3 { font-size: 16px; margin: 4px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 6px; }
section { background: #fff; border: 1px solid #e3e8ee; border-radius: 6px; padding: 8px 18px 14px;
          margin-top: 14px; }
.banner { background: #b03a2e; color: #fff; text-align: center; font-size: 28px; font-weight: 800;
          letter-spacing: 4px; padding: 16px; }
.banner small { display: block; font-size: 13px; letter-spacing: 0; font-weight: 400; }
.meta { color: #5d6d7e; font-size: 13px; margin: 2px 0; }
nav a { margin-right: 12px; font-size: 13px; color: #2e86c1; text-decoration: none; }
.lead { font-size: 20px; font-weight: 600; margin: 10px 0 4px; }
.lead small { display: block; font-size: 12px; font-weight: 400; color: #5d6d7e; }
header .lead { font-size: 18px; margin: 6px 0; }
.beside { color: #34495e; margin: 2px 0 8px; }
.chart svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0; width: 100%; }
th, td { border-bottom: 1px solid #e3e8ee; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef2f6; } th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.neg { color: #c0392b; } td.pos { color: #1e8449; }
td.nowrap { white-space: nowrap; }
table.claims { table-layout: fixed; } table.claims td { overflow-wrap: anywhere; }
td.fig { text-align: right; font-variant-numeric: tabular-nums; }
.insufficient { background: #fdf2e9; border-left: 4px solid #e67e22; padding: 8px 12px;
                color: #784212; }
.small { font-size: 12px; color: #5d6d7e; }
.cols { display: flex; gap: 16px; align-items: flex-start; } .cols > table { flex: 1; }
.badge { display: inline-block; color: #fff; border-radius: 999px; padding: 1px 9px;
         font-size: 11.5px; font-weight: 700; white-space: nowrap; }
.b-supported { background: #1b7f3b; } .b-contradicted { background: #b3261e; }
.b-insufficient_data { background: #8a6d00; } .b-external { background: #4a5568; }
.counts .badge { margin-right: 4px; } .counts span.n { margin-right: 14px; }
details summary { cursor: pointer; color: #2e86c1; font-size: 12px; }
details ul { margin: 4px 0; padding-left: 18px; font-size: 12px; }
details table { font-size: 11.5px; }
blockquote { margin: 4px 0; padding: 4px 10px; border-left: 4px solid #d5dde5; background: #f4f6f8; }
footer { color: #5d6d7e; font-size: 12px; margin-top: 28px; border-top: 1px solid #d5dde5;
         padding-top: 8px; }
</style>
</head>
<body>
{% if synthetic %}<div class="banner" role="alert">SYNTHETIC DEMO DATA
<small>Generated by the built-in demo market: the figures below are not real market data.</small></div>{% endif %}
<header>
<h1>{{ title }}</h1>
{% for p in leads %}{{ p }}
{% endfor %}{% for m in meta %}<p class="meta">{{ m }}</p>
{% endfor %}
<nav>{% for b in blocks %}<a href="#{{ b.id }}">{{ b.title }}</a>{% endfor %}</nav>
</header>
<main>
{% for b in blocks %}
<h2 id="{{ b.id }}">{{ b.title }}</h2>
{% for p in b.intro %}{{ p }}{% endfor %}
{% for s in b.sections %}
<section>
<h3 id="{{ s.id }}">{{ s.title }}</h3>
{% if s.missing %}<p class="insufficient">{{ s.missing }}</p>{% endif %}
{% if s.chart %}<div class="chart">{{ s.chart }}</div>{% endif %}
{% for p in s.parts %}{{ p }}{% endfor %}
</section>
{% endfor %}
{% endfor %}
{% if footer %}<footer>{{ footer }}</footer>{% endif %}
</main>
</body>
</html>
"""

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)


def generated_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_page(title: str, blocks: Sequence[Block], *, synthetic: bool,
                meta: Sequence[str] = (), footer: str | Markup | None = None,
                leads: Sequence[Markup] = ()) -> str:
    """The self-contained page: banner when `synthetic`, title, the lead lines, meta
    lines, a link to every block, then the blocks."""
    return _ENV.from_string(_TEMPLATE).render(title=title, blocks=blocks, synthetic=synthetic,
                                              meta=meta, footer=footer, leads=leads)


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file, so readers never see half a page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
