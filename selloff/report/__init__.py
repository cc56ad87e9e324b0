"""The reports: the sell-off report and the fact-check page, one HTML stack.

- `html`: formatting, tables, verdict badges and the page template both pages use;
- `html_report`: reports/selloff_report.html (every episode, and their comparison);
- `lead`: each episode's headline fall and the comparison of the episodes;
- `sections`: the sections of one episode;
- `claims_view`: the claims table (one line a claim, details one click away);
- `fact_check`: reports/fact_check.html and fact_check.md;
- `charts`: the matplotlib figures, rendered offline to SVG or PNG.
"""

from selloff.report.html_report import (
    REPORT_TABLES,
    Report,
    ReportInputError,
    build_report,
    chart_images,
    page_html,
    render_selloff_report,
    write_selloff_report,
)
from selloff.report.sections import SECTION_IDS

__all__ = [
    "REPORT_TABLES",
    "SECTION_IDS",
    "Report",
    "ReportInputError",
    "build_report",
    "chart_images",
    "page_html",
    "render_selloff_report",
    "write_selloff_report",
]
