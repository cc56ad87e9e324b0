"""Fail fast without network: one short TCP connect per service before a live run.

Without this, a run with no network spends its first half-minute inside AKShare's and
yfinance's own retry loops before the first error surfaces.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

from selloff.sources.live.errors import SourceUnreachable

# (source name, host) in the order the run needs them; port 443 for all.
SERVICES: tuple[tuple[str, str], ...] = (
    ("ECB", "data-api.ecb.europa.eu"),
    ("Yahoo Finance", "query2.finance.yahoo.com"),
    ("SEC EDGAR", "data.sec.gov"),
    ("AKShare (Eastmoney)", "push2his.eastmoney.com"),
    ("pykrx (KRX)", "data.krx.co.kr"),
    ("JPX", "www.jpx.co.jp"),
)


def _reachable(host: str, timeout: float) -> str | None:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def check_reachable(services: tuple[tuple[str, str], ...] = SERVICES, timeout: float = 3.0) -> None:
    """Raise SourceUnreachable naming the first service (in run order) that cannot be reached."""
    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        errors = list(pool.map(lambda s: _reachable(s[1], timeout), services))
    for (name, host), error in zip(services, errors, strict=True):
        if error:
            down = [n for (n, _), e in zip(services, errors, strict=True) if e]
            raise SourceUnreachable(
                name, f"https://{host}",
                f"cannot connect ({error}); unreachable: {', '.join(down)}. "
                "Without internet, use SELLOFF_SOURCE=snapshot or demo.")
