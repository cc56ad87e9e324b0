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

from importlib import import_module
from typing import Any

# The errors need nothing beyond the standard library, so the extract assets import them
# on any install; the rest needs the `live` extra (httpx, tenacity, ...) and is imported
# only when asked for, so a core install (`make run`) runs the demo and snapshot sources.
from selloff.sources.live.errors import (
    EmptyAnswer,
    LiveConfigError,
    MalformedPayload,
    SourceError,
    SourceUnavailable,
    SourceUnreachable,
)

_LAZY = {"capture_snapshot": "selloff.sources.live.capture",
         "RetryPolicy": "selloff.sources.live.http",
         "LiveConfig": "selloff.sources.live.source",
         "LiveSource": "selloff.sources.live.source"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = import_module(_LAZY[name])
    except ImportError as exc:
        raise LiveConfigError(
            "live", exc.name or "import",
            f"the live sources need the `live` extra ({exc.name} is missing): "
            "`SELLOFF_SOURCE=live make run` installs it, or "
            "`.venv/bin/uv pip install -c constraints.txt -e '.[live]'`") from exc
    return getattr(module, name)


__all__ = [
    "EmptyAnswer", "LiveConfig", "LiveConfigError", "LiveSource", "MalformedPayload",
    "RetryPolicy", "SourceError", "SourceUnavailable", "SourceUnreachable", "capture_snapshot",
]
