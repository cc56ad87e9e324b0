"""The sell-off report: a self-contained HTML page and its charts."""

from selloff.report.html_report import (
    SECTION_IDS,
    chart_images,
    render_selloff_report,
    resolve_main_window,
    write_selloff_report,
)

__all__ = [
    "SECTION_IDS",
    "chart_images",
    "render_selloff_report",
    "resolve_main_window",
    "write_selloff_report",
]
