"""Claim registry, named metrics, verdicts and the fact-check report (DESIGN §6).

Public entry points:
- `compute_claim_verdicts(frames, registry, synthetic=False)` -> the
  `claim_verdicts` frame, one row per claim of an episode's registry;
- `write_factcheck_report(verdicts, out_dir)` -> `fact_check.md` and a self-contained
  `fact_check.html` (rendered by `selloff.report.fact_check`, the report's HTML stack;
  re-exported here lazily, since selloff.report imports selloff.claims);
- `parse_registry(data)` (claims of an episode, selloff.episode) and the metric
  registry `METRICS`.
"""

from selloff.claims.metrics import METRICS, MetricResult, MissingData
from selloff.claims.registry import (
    Claim,
    ClaimPart,
    Registry,
    RegistryError,
)
from selloff.claims.verdicts import (
    VERDICT_SCHEMA,
    VERDICTS,
    combine_verdicts,
    compare,
    compute_claim_verdicts,
)

__all__ = [
    "METRICS",
    "VERDICTS",
    "VERDICT_SCHEMA",
    "Claim",
    "ClaimPart",
    "MetricResult",
    "MissingData",
    "Registry",
    "RegistryError",
    "combine_verdicts",
    "compare",
    "compute_claim_verdicts",
    "render_html",
    "render_markdown",
    "write_factcheck_report",
]


_REPORT_NAMES = ("render_html", "render_markdown", "write_factcheck_report")


def __getattr__(name: str):
    if name in _REPORT_NAMES:
        from selloff.report import fact_check

        return getattr(fact_check, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
