"""Fixtures of the live-adapter tests: recorded/hand-built answers in the services' shapes.

No test here reaches the internet. The HTTP services (SEC, ECB, JPX) are answered by respx
at the httpx transport, so the adapters run their real request code; the libraries
(yfinance, akshare, pykrx) are replaced at their documented function boundary by fakes that
return frames in the exact shape the real functions return (loaded from fixture files).
"""

from __future__ import annotations

import pytest

from selloff.sources.live.common import FetchLog
from selloff.sources.live.http import RetryPolicy


@pytest.fixture()
def policy() -> RetryPolicy:
    """Retries without waiting, so 429 sequences run in milliseconds."""
    return RetryPolicy.fast(attempts=4)


@pytest.fixture()
def fetch_log() -> FetchLog:
    return FetchLog()
