"""The report's section cache (selloff.report.section_cache): a page assembled from kept
sections is byte for byte the page rendered from scratch, and a changed table redraws
the sections that read it, no others."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from selloff.report import build_report, chart_images, page_html
from selloff.report import html_report as html_report_module
from selloff.report.section_cache import SectionCache
from selloff.report.sections import SECTION_IDS
from tests.test_discovery import _synthetic
from tests.test_report import AI, EP, report_frames

CONTEXT = "code-v1"


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # The page's "generated" line is the only part that depends on the clock.
    monkeypatch.setattr(html_report_module, "generated_now", lambda: "2025-12-31 00:00 UTC")


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    from selloff.analytics.discovery import discover

    index, caps, _ = _synthetic()
    found, _ = discover(index, caps, None)
    return {**report_frames(), "episode_candidates": found}


def _page(frames: dict[str, pl.DataFrame], cache: SectionCache | None = None) -> tuple[str, dict]:
    report = build_report(frames, [AI], cache=cache)
    return page_html(report, [AI], synthetic=True), chart_images(report, dpi=70)


def test_a_page_of_kept_sections_is_the_page_rendered_from_scratch(tmp_path: Path,
                                                                   frames: dict) -> None:
    fresh, fresh_pngs = _page(frames)
    first = SectionCache(tmp_path, CONTEXT)
    drawn, drawn_pngs = _page(frames, first)
    assert first.hits == [] and len(first.misses) == len(SECTION_IDS) + 1
    again = SectionCache(tmp_path, CONTEXT)
    kept, kept_pngs = _page(frames, again)
    assert again.misses == [] and len(again.hits) == len(SECTION_IDS) + 1
    assert fresh == drawn == kept
    # The previews are the PNGs chart_images draws without a cache.
    assert fresh_pngs.keys() == drawn_pngs.keys() == kept_pngs.keys() and fresh_pngs
    assert all(fresh_pngs[k] == drawn_pngs[k] == kept_pngs[k] for k in fresh_pngs)


def test_a_changed_table_redraws_only_the_sections_that_read_it(tmp_path: Path,
                                                              frames: dict) -> None:
    _page(frames, SectionCache(tmp_path, CONTEXT))
    changed = dict(frames)
    changed["claim_verdicts"] = frames["claim_verdicts"].with_columns(
        pl.col("computed_text").str.replace(r"$", " (revised)"))
    cache = SectionCache(tmp_path, CONTEXT)
    page, _ = _page(changed, cache)
    assert page == _page(changed)[0]
    assert "(revised)" in page
    assert cache.misses == [f"{EP}: claims"]
    # A changed candidate redraws the timeline block alone.
    moved = dict(changed)
    moved["episode_candidates"] = frames["episode_candidates"].with_columns(
        pl.col("severity") * 1.0000001)
    cache = SectionCache(tmp_path, CONTEXT)
    assert _page(moved, cache)[0] == _page(moved)[0]
    assert cache.misses == ["episode_candidates: timeline"]


def test_another_code_version_or_a_torn_entry_draws_again(tmp_path: Path, frames: dict) -> None:
    _page(frames, SectionCache(tmp_path, CONTEXT))
    other = SectionCache(tmp_path, "code-v2")
    assert _page(frames, other)[0] == _page(frames)[0]
    assert other.hits == []
    torn = next(tmp_path.glob("*.pkl"))
    torn.write_bytes(b"not a pickle")
    cache = SectionCache(tmp_path, "code-v2")
    assert _page(frames, cache)[0] == _page(frames)[0]
    assert len(cache.misses) == 1
