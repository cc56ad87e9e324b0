"""The shared retry policy and HTTP client: backoff, Retry-After, connection failures,
redaction of secrets."""

from __future__ import annotations

import httpx
import pytest
import requests
import respx

from selloff.sources.live.errors import SourceUnavailable, SourceUnreachable
from selloff.sources.live.http import (
    HttpClient,
    RetryPolicy,
    call_with_retry,
    is_connection_error,
    is_rate_limited,
    redact,
)


def test_backoff_grows_exponentially_is_capped_and_honours_retry_after():
    p = RetryPolicy(wait_initial=1.0, wait_max=30.0, jitter=0.0)
    assert [p.backoff(n) for n in (1, 2, 3, 4, 6)] == [1.0, 2.0, 4.0, 8.0, 30.0]
    assert p.backoff(1, retry_after=10.0) == 10.0
    assert p.backoff(1, retry_after=600.0) == 30.0  # a server's wish is capped too
    jittered = RetryPolicy(wait_initial=1.0, jitter=1.0)
    assert all(1.0 <= jittered.backoff(1) <= 2.0 for _ in range(50))
    assert RetryPolicy.fast().backoff(5, retry_after=30) == 0.0


def test_classification():
    assert is_connection_error(httpx.ConnectError("refused"))
    assert is_connection_error(requests.exceptions.ProxyError("proxy down"))
    assert not is_connection_error(httpx.ReadTimeout("slow"))
    assert is_rate_limited(httpx.HTTPStatusError("x", request=httpx.Request("GET", "http://a"),
                                                 response=httpx.Response(429)))


def test_a_connection_failure_is_retried_once_only():
    calls = []

    def fn():
        calls.append(1)
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    with pytest.raises(SourceUnreachable) as err:
        call_with_retry("Demo", "https://demo.test/x", fn, RetryPolicy.fast(attempts=6))
    assert len(calls) == 2
    assert str(err.value).startswith("Demo: cannot connect after 2 attempt(s)")


def test_dropped_connections_get_the_full_retries():
    calls = []

    def fn():
        calls.append(1)
        raise requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected())")

    with pytest.raises(SourceUnavailable):
        call_with_retry("Demo", "t", fn, RetryPolicy.fast(attempts=3))
    assert len(calls) == 3


def test_secrets_are_redacted_from_messages():
    assert redact("login pw=hunter22 for bob", ["hunter22", None, ""]) == "login pw=*** for bob"

    def fn():
        raise RuntimeError("rejected hunter22")

    with pytest.raises(Exception) as err:
        call_with_retry("Demo", "user hunter22", fn, RetryPolicy.fast(), secrets=["hunter22"])
    assert "hunter22" not in str(err.value) and err.value.__cause__ is None


@respx.mock
def test_http_client_retries_5xx_and_returns_the_answer():
    route = respx.get("https://demo.test/a").mock(side_effect=[
        httpx.Response(502), httpx.Response(200, text="ok")])
    with HttpClient("Demo", RetryPolicy.fast()) as client:
        assert client.get("https://demo.test/a").text == "ok"
    assert route.call_count == 2


@respx.mock
def test_http_client_does_not_retry_a_404():
    route = respx.get("https://demo.test/a").mock(return_value=httpx.Response(404))
    with HttpClient("Demo", RetryPolicy.fast(), hint_on_status={404: " (no such page)"}) as client, \
            pytest.raises(SourceUnavailable) as err:
        client.get("https://demo.test/a", {"q": "1"})
    assert route.call_count == 1
    assert str(err.value) == "Demo: HTTP 404 Not Found (no such page) [https://demo.test/a?q=1]"
