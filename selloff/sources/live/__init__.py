"""The live source: the canonical datasets fetched from the services themselves.

| dataset               | from                                                        |
|-----------------------|-------------------------------------------------------------|
| securities, indexes   | the universe file (+ concept-board members when expanded)   |
| baskets               | the universe file + Eastmoney concept boards (AKShare)      |
| prices_daily          | Yahoo (US, KR, JP; CN too with SELLOFF_LIVE_CN_PRICES=yahoo), AKShare (CN) |
| index_levels_daily    | Yahoo                                                       |
| shares_outstanding    | SEC (US, cover page), pykrx (KR), Yahoo (CN, JP)            |
| fundamentals          | SEC company facts (US)                                      |
| fund_flows_daily      | AKShare (CN stocks and boards), pykrx (KR), JPX (JP weekly) |
| fx_rates_daily        | ECB reference rates crossed to USD                          |
| index_valuation_daily | CSIndex through AKShare                                     |

Configuration is the live section of the run's settings (`selloff.settings.LiveSettings`,
read from the environment by `settings_from_env` when a run starts, never at import;
docs/LIVE_SOURCES.md lists the variables). The live source itself reads no environment.
"""

from __future__ import annotations

from selloff.sources.live.capture import capture_snapshot
from selloff.sources.live.errors import (
    EmptyAnswer,
    LiveConfigError,
    MalformedPayload,
    SourceError,
    SourceUnavailable,
    SourceUnreachable,
)
from selloff.sources.live.http import RetryPolicy
from selloff.sources.live.source import LiveConfig, LiveSource

__all__ = [
    "EmptyAnswer", "LiveConfig", "LiveConfigError", "LiveSource", "MalformedPayload",
    "RetryPolicy", "SourceError", "SourceUnavailable", "SourceUnreachable", "capture_snapshot",
]
