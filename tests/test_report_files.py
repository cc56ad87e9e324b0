"""Both pages written again from a warehouse file (selloff.report.files, for `selloff report`)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from selloff.report import ReportInputError
from selloff.report.files import write_reports
from tests.test_report import AI, report_frames


def _warehouse(tmp_path: Path, skip: str | None = None) -> Path:
    """A DuckDB file with the report's analytics tables (tests.test_report)."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA analytics")
        for name, frame in report_frames().items():
            if name == skip:
                continue
            con.register("f", frame.to_arrow())
            con.execute(f"CREATE TABLE analytics.{name} AS SELECT * FROM f")
            con.unregister("f")
    return path


def test_write_reports_from_a_warehouse_file(tmp_path: Path) -> None:
    page, md, html = write_reports(_warehouse(tmp_path), tmp_path / "reports", episodes=[AI])
    assert ("US_AI_BIG8 fell 8.1 % (-1,950 bn USD) from its peak on 2025-10-29 to its trough "
            "on 2025-11-20.") in page.read_text(encoding="utf-8")
    assert md.name == "fact_check.md" and 'id="C01"' in html.read_text(encoding="utf-8")


def test_a_missing_table_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="entity_moves"):
        write_reports(_warehouse(tmp_path, skip="entity_moves"), tmp_path / "reports",
                      episodes=[AI])
