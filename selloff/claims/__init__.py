"""Claim registry, named metrics, verdicts and the fact-check report (DESIGN §6).

Public entry points:
- `compute_claim_verdicts(frames, registry, synthetic=False)` -> the
  `claim_verdicts` frame, one row per claim of an episode's registry;
- the fact-check page is the report's (`selloff.report.fact_check`), which imports this
  package; nothing here imports the report back;
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
]

