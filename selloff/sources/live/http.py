"""Retries, rate limits and the shared HTTP client of the live adapters.

One retry policy serves both the services called directly over HTTP (SEC, ECB, JPX, via
httpx) and the libraries that call their services themselves (yfinance, akshare, pykrx):
rate limits (HTTP 429, Yahoo's YFRateLimitError) and server errors (5xx, dropped
connections) are retried with exponential backoff and jitter; a connection that cannot be
opened at all (DNS, refused, connect timeout) is retried at most once, so a machine with
no network fails in seconds instead of minutes.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from selloff.sources.live.errors import SourceError, SourceUnavailable, SourceUnreachable

log = logging.getLogger("selloff.sources.live")

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

# Exception class names (anywhere in the MRO) that mean "no connection could be opened".
_CONNECT_NAMES = frozenset({
    "ConnectError", "ConnectTimeout", "ConnectionError", "ProxyError", "NewConnectionError",
    "NameResolutionError", "DNSError", "ConnectionRefusedError", "gaierror",
    "CouldntResolveHost", "CouldntConnect",
})
# ... and names that mean "the server was reached but the exchange failed": worth a full retry.
_TRANSIENT_NAMES = frozenset({
    "ReadTimeout", "ReadError", "RemoteProtocolError", "ChunkedEncodingError",
    "RemoteDisconnected", "ConnectionResetError", "IncompleteRead", "ProtocolError",
    "WriteError", "PoolTimeout", "Timeout",
})
_TRANSIENT_TEXT = ("RemoteDisconnected", "Connection aborted", "Connection reset")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Tests use `RetryPolicy.fast()` (no waiting at all).

    wait before retry n (1-based) = min(wait_max, wait_initial * 2**(n-1)) + U(0, jitter),
    or the server's Retry-After when it asks for longer (capped at wait_max).
    """

    attempts: int = 5
    connect_attempts: int = 2
    wait_initial: float = 1.0
    wait_max: float = 60.0
    jitter: float = 1.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    # Library calls (akshare, pykrx) set no timeout of their own: this bounds each call.
    call_deadline: float | None = 300.0

    @classmethod
    def fast(cls, **overrides: Any) -> RetryPolicy:
        base = cls(wait_initial=0.0, wait_max=0.0, jitter=0.0, connect_timeout=2.0,
                   read_timeout=10.0, call_deadline=30.0)
        return replace(base, **overrides)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        wait = min(self.wait_max, self.wait_initial * 2 ** max(attempt - 1, 0))
        wait += random.uniform(0, self.jitter) if self.jitter > 0 else 0.0
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.wait_max))
        return wait


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every non-trivial secret value replaced by ***."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def is_connection_error(exc: BaseException | None) -> bool:
    """True when no connection could be opened (DNS failure, refused, connect timeout)."""
    if exc is None or isinstance(exc, SourceError) or is_transient_error(exc):
        return False
    return bool(_names(exc) & _CONNECT_NAMES) or isinstance(
        exc, ConnectionError | socket.gaierror | TimeoutError)


def is_transient_error(exc: BaseException | None) -> bool:
    """True when the server was reached but the exchange broke off (worth a full retry)."""
    if exc is None or isinstance(exc, SourceError):
        return False
    text = str(exc)
    if any(t in text for t in _TRANSIENT_TEXT) or isinstance(exc, ConnectionResetError):
        return True  # e.g. requests' ConnectionError('Connection aborted.', RemoteDisconnected)
    if "Connect" in type(exc).__name__ or isinstance(exc, TimeoutError):
        return False  # connect timeouts and our own deadline count as "cannot connect"
    return bool(_names(exc) & _TRANSIENT_NAMES)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status carried by an exception (httpx, requests, our own), if any."""
    if isinstance(exc, RetryableStatus):
        return exc.status
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return int(code) if isinstance(code, int) else None


def is_rate_limited(exc: BaseException) -> bool:
    """HTTP 429/5xx from any client, or a library's own rate-limit exception."""
    if "YFRateLimitError" in _names(exc):
        return True
    code = status_of(exc)
    return code is not None and (code in RETRY_STATUSES or code >= 500)


class RetryableStatus(Exception):
    """An HTTP answer that asks to be retried (429, 5xx); carries Retry-After if sent."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"HTTP {status} {reason}".strip())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


class _Stop(stop_base):
    def __init__(self, policy: RetryPolicy):
        self.policy = policy

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        limit = self.policy.connect_attempts if is_connection_error(exc) else self.policy.attempts
        return state.attempt_number >= limit


class _Wait(wait_base):
    def __init__(self, policy: RetryPolicy):
        self.policy = policy

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, RetryableStatus) else None
        return self.policy.backoff(state.attempt_number, retry_after)


def _should_retry(exc: BaseException) -> bool:
    return (isinstance(exc, RetryableStatus) or is_rate_limited(exc)
            or is_transient_error(exc) or is_connection_error(exc))


def _run_with_deadline(fn: Callable[[], T], deadline: float | None, what: str) -> T:
    """Run fn in a daemon thread and give up waiting after `deadline` seconds.

    Some libraries call requests without any timeout; a host that swallows packets would
    otherwise hang the run forever. The abandoned thread is a daemon, so it cannot keep
    the interpreter alive.
    """
    if deadline is None:
        return fn()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"live-call:{what}", daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {deadline:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def is_garbled_answer(exc: BaseException) -> bool:
    """A JSON body that does not parse: how Eastmoney and KRX answer when they throttle
    (an HTML error page where JSON was expected), since the libraries calling them do not
    check the HTTP status first."""
    return "JSONDecodeError" in _names(exc)


def call_with_retry(source: str, target: str, fn: Callable[[], T], policy: RetryPolicy, *,
                    secrets: Iterable[str | None] = (), deadline: bool = False,
                    retry_also: Callable[[BaseException], bool] | None = None) -> T:
    """Call fn under the policy; turn the final failure into a SourceError naming source+target.

    Exceptions that are not about transport (a SourceError raised by fn, a parsing error)
    are not retried and pass through unchanged, except plain library exceptions, which are
    wrapped so the message still names the source and the target.
    """
    secrets = tuple(secrets)
    shown = redact(target, secrets)
    limit = policy.call_deadline if deadline else None

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s: attempt %d failed (%s) for %s; retrying in %.1f s", source,
                    state.attempt_number, redact(_describe(exc), secrets) if exc else "?",
                    shown, state.next_action.sleep if state.next_action else 0.0)

    def should_retry(exc: BaseException) -> bool:
        return _should_retry(exc) or (retry_also is not None and retry_also(exc))

    retrying = Retrying(stop=_Stop(policy), wait=_Wait(policy),
                        retry=retry_if_exception(should_retry), reraise=True,
                        before_sleep=before_sleep)
    attempts = 0
    try:
        for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                return _run_with_deadline(fn, limit, source)
    except SourceError:
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        detail = redact(_describe(exc), secrets)
        if is_connection_error(exc):
            raise SourceUnreachable(
                source, shown, f"cannot connect after {attempts} attempt(s): {detail}") from None
        if should_retry(exc):
            raise SourceUnavailable(
                source, shown, f"gave up after {attempts} attempt(s): {detail}") from None
        # A library's own message may hold a secret (redacted above): do not chain it.
        raise SourceError(source, shown, f"call failed: {detail}") from (
            None if any(secrets) else exc)
    raise AssertionError("unreachable")  # pragma: no cover


class TokenBucket:
    """At most `rate` acquisitions per second on average, bursts up to `capacity`.

    Shared by every request a client makes, so the SEC's 10 requests/second holds across
    all companies fetched in a run.
    """

    def __init__(self, rate: float, capacity: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(rate, 1.0)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate
                self._sleep(wait)
                self._last = self._clock()
                self._tokens = 0.0
            else:
                self._tokens -= 1.0


class HttpClient:
    """A rate-limited, retrying httpx client for one source.

    `base_url` is kept by the adapters, not here, so every message shows the full URL.
    Headers (which may hold a contact address) are never put in a message or a log line.
    """

    def __init__(self, source: str, policy: RetryPolicy, *, rate_per_second: float | None = None,
                 headers: Mapping[str, str] | None = None, secrets: Iterable[str | None] = (),
                 hint_on_status: Mapping[int, str] | None = None):
        self.source = source
        self.policy = policy
        self.bucket = TokenBucket(rate_per_second) if rate_per_second else None
        self.secrets = tuple(secrets)
        self.hint_on_status = dict(hint_on_status or {})
        self._client = httpx.Client(
            headers=dict(headers or {}),
            timeout=httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout),
            follow_redirects=True,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def shown_url(url: str, params: Mapping[str, Any] | None = None) -> str:
        return f"{url}?{urlencode(params)}" if params else url

    def get(self, url: str, params: Mapping[str, Any] | None = None, *,
            ok_statuses: frozenset[int] = frozenset()) -> httpx.Response:
        """GET with retries; returns a 2xx response (or one of `ok_statuses`, e.g. a 404 that
        means "no data" for this service) or raises a SourceError subclass."""
        shown = self.shown_url(url, params)

        def once() -> httpx.Response:
            if self.bucket is not None:
                self.bucket.acquire()
            resp = self._client.get(url, params=params)
            if resp.status_code in ok_statuses:
                return resp
            if resp.status_code in RETRY_STATUSES or resp.status_code >= 500:
                raise RetryableStatus(resp.status_code, resp.reason_phrase,
                                      _retry_after(resp.headers))
            if resp.status_code >= 400:
                hint = self.hint_on_status.get(resp.status_code, "")
                raise SourceUnavailable(
                    self.source, redact(shown, self.secrets),
                    f"HTTP {resp.status_code} {resp.reason_phrase}{hint}")
            return resp

        return call_with_retry(self.source, shown, once, self.policy, secrets=self.secrets)
