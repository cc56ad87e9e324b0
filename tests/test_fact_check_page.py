"""The fact-check page: the report's HTML stack, one table of claims per episode."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from selloff.analytics.tables import tag_episode
from selloff.claims import compute_claim_verdicts
from selloff.episode import load_episodes
from selloff.report import fact_check, html
from selloff.report.claims_view import NOTE_CHARS

EPISODES = load_episodes()
_NETWORK_ATTR = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _verdicts(synthetic: bool) -> pl.DataFrame:
    frames = [tag_episode(compute_claim_verdicts({}, e.registry, synthetic=synthetic),
                          e.episode_id) for e in EPISODES]
    return pl.concat(frames, how="vertical_relaxed")


def _style(text: str) -> str:
    return text[text.index("<style>"):text.index("</style>")]


def test_fact_check_uses_the_report_stack_per_episode(tmp_path: Path) -> None:
    v = _verdicts(synthetic=True)
    md, page = fact_check.write_factcheck_report(v, tmp_path, episodes=EPISODES)
    text = page.read_text(encoding="utf-8")
    # The same template and stylesheet as the sell-off report.
    same = html.render_page("x", [], synthetic=False)
    assert _style(text) == _style(same)
    assert "SYNTHETIC DEMO DATA" in text and "SYNTHETIC DEMO DATA" in md.read_text()
    for e in EPISODES:
        assert f'<h2 id="fc-{e.episode_id}">{e.title}</h2>' in text
        assert f"## {e.title}" in md.read_text()
    assert f"<title>{fact_check.page_title(EPISODES)}</title>" in text
    for cid in v["claim_id"].to_list():
        assert f'id="{cid}"' in text
    assert "美股 AI 八巨头单周市值蒸发近 8000 亿美元" in text  # the quote, in the details
    assert not _NETWORK_ATTR.search(text)
    assert "<script" not in text.lower() and "<link" not in text.lower()


def test_notes_are_one_line_with_the_rest_in_details() -> None:
    v = _verdicts(synthetic=False)
    text = fact_check.render_html(v, episodes=EPISODES)
    assert "SYNTHETIC DEMO DATA" not in text
    notes = re.findall(r"<td>([^<]*)<details>", text)
    assert len(notes) == v.height
    assert all(len(n) <= NOTE_CHARS + 10 for n in notes)  # entities escaped at most
    assert text.count("<summary>full note and parts</summary>") == v.height


def test_markdown_table_and_escaping() -> None:
    v = _verdicts(synthetic=False).with_columns(
        pl.when(pl.col("claim_id") == "C01").then(pl.lit('<img src="https://x/y.png">'))
        .otherwise(pl.col("note")).alias("note"))
    text = fact_check.render_html(v, episodes=EPISODES)
    assert '<img src="https://x' not in text and not _NETWORK_ATTR.search(text)
    md = fact_check.render_markdown(v, episodes=EPISODES)
    assert "| id | claim | verdict | stated | computed | window | note |" in md


def test_verdicts_without_episode_id_are_one_group() -> None:
    v = compute_claim_verdicts({}, EPISODES[0].registry)
    text = fact_check.render_html(v)
    assert '<h2 id="fc-claims">Claims</h2>' in text and "<title>Fact check</title>" in text


def test_claim_ids_shared_by_two_episodes_get_distinct_anchors() -> None:
    one = compute_claim_verdicts({}, EPISODES[0].registry)
    v = pl.concat([tag_episode(one, "a"), tag_episode(one, "b")])
    text = fact_check.render_html(v)
    assert 'id="fc-a-C01"' in text and 'id="fc-b-C01"' in text
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids))
