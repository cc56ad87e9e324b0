"""Claim registry, named metrics, verdicts and the fact-check report (DESIGN §6).

Public entry points:
- `compute_claim_verdicts(frames, registry, synthetic=False)` -> the
  `claim_verdicts` frame, one row per claim of an episode's registry;
- `write_factcheck_report(verdicts, out_dir)` -> `fact_check.md` and a self-contained
  `fact_check.html`;
- `parse_registry(data)` (claims of an episode, selloff.episode) and the metric
  registry `METRICS`.
"""

from selloff.claims.factcheck_report import (
    render_html,
    render_markdown,
    write_factcheck_report,
)
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
