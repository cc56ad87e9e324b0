"""The sell-off report: a self-contained HTML page, its charts, and table previews."""

from selloff.report.html_report import (
    SECTION_IDS,
    chart_images,
    markdown_table,
    render_selloff_report,
    resolve_main_window,
    write_selloff_report,
)

__all__ = [
    "SECTION_IDS",
    "chart_images",
    "markdown_table",
    "render_selloff_report",
    "resolve_main_window",
    "write_selloff_report",
]
