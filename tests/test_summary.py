"""What `selloff run` prints: per episode, the headline fall first."""

from __future__ import annotations

from pathlib import Path

import duckdb

from selloff.summary import summarize
from tests.test_report import AI, report_frames


def _warehouse(tmp_path: Path) -> Path:
    """A DuckDB file with the report's analytics tables (tests.test_report)."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA analytics")
        for name, frame in report_frames().items():
            con.register("f", frame.to_arrow())
            con.execute(f"CREATE TABLE analytics.{name} AS SELECT * FROM f")
            con.unregister("f")
    return path


def test_summary_leads_with_each_episodes_fall(tmp_path: Path) -> None:
    path = _warehouse(tmp_path)
    s = summarize(path, synthetic=False, episodes=[AI])
    [ep] = s.episodes
    assert ep.headline == ("US_AI_BIG8 fell 8.1 % (-1,950 bn USD) from its peak on 2025-10-29 "
                           "to its trough on 2025-11-20")
    assert ep.main_window == {"window_id": "selloff_period", "start": "2025-10-27",
                              "end": "2025-11-28"}
    assert ep.by_market is not None and ep.by_market["group_id"].to_list()[0] == "US"
    assert s.verdicts is not None and s.verdicts["episode_id"].unique().to_list() == [AI.episode_id]


def test_write_reports_from_a_warehouse_file(tmp_path: Path) -> None:
    from selloff.report.files import write_reports

    path = _warehouse(tmp_path)
    page, md, html = write_reports(path, tmp_path / "reports", episodes=[AI])
    assert "US_AI_BIG8 fell 8.1 %" in page.read_text(encoding="utf-8")
    assert md.name == "fact_check.md" and "C01" in html.read_text(encoding="utf-8")
