"""Claim registry, named metrics, verdicts and the fact-check report (DESIGN §6).

Public entry points:
- `compute_claim_verdicts(frames, registry_path=None, synthetic=False)` -> the
  `claim_verdicts` frame, one row per claim of `selloff/config/claims.yaml`;
- `write_factcheck_report(verdicts, out_dir)` -> `fact_check.md` and a self-contained
  `fact_check.html`;
- `load_registry(path=None)` and the metric registry `METRICS`.
"""

from selloff.claims.factcheck_report import (
    render_html,
    render_markdown,
    write_factcheck_report,
)
from selloff.claims.metrics import METRICS, MetricResult, MissingData
from selloff.claims.registry import (
    DEFAULT_REGISTRY_PATH,
    Claim,
    ClaimPart,
    Registry,
    RegistryError,
    load_registry,
)
from selloff.claims.verdicts import (
    VERDICT_SCHEMA,
    VERDICTS,
    combine_verdicts,
    compare,
    compute_claim_verdicts,
)

__all__ = [
    "DEFAULT_REGISTRY_PATH",
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
    "load_registry",
    "render_html",
    "render_markdown",
    "write_factcheck_report",
]
