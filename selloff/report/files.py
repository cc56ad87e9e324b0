"""Both pages written again from a warehouse file (for `selloff report`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from selloff.episode import Episode, load_episodes
from selloff.report.fact_check import write_factcheck_report
from selloff.report.html_report import REPORT_TABLES, write_selloff_report
from selloff.warehouse import connect, read_table


def write_reports(warehouse: Path, reports_dir: Path, *, synthetic: bool | None = None,
                  episodes: Sequence[Episode] | None = None,
                  out: Path | None = None) -> list[Path]:
    """selloff_report.html (or `out`), fact_check.md and fact_check.html from the
    analytics tables of `warehouse` (opened read-only). `synthetic=None` takes the flag
    from claim_verdicts; `episodes` defaults to the bundled ones."""
    eps = tuple(episodes) if episodes is not None else load_episodes()
    with connect(warehouse, read_only=True) as con:
        frames = {t: read_table(con, "analytics", t)
                  for t in (*REPORT_TABLES, "episode_candidates")}
    verdicts = frames["claim_verdicts"]
    if synthetic is None:
        synthetic = bool(verdicts is not None and verdicts["synthetic"].fill_null(False).any())
    page = write_selloff_report(frames, out or reports_dir / "selloff_report.html",
                                synthetic=synthetic, episodes=eps)
    if verdicts is None:
        return [page]
    md, html = write_factcheck_report(verdicts, reports_dir, synthetic=synthetic, episodes=eps)
    return [page, md, html]
