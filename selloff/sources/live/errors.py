"""Exceptions of the live adapters.

Every message names the source and what was asked of it (a URL, a symbol, a function),
so a failed run says where to look. Secrets never reach a message: callers pass values
through `selloff.sources.live.http.redact` before building one.
"""

from __future__ import annotations


class SourceError(RuntimeError):
    """A live source failed; `source` is its short name, `target` the URL/symbol/function."""

    def __init__(self, source: str, target: str, message: str):
        self.source = source
        self.target = target
        self.detail = message
        super().__init__(f"{source}: {message} [{target}]")


class SourceUnavailable(SourceError):
    """The source answered with errors (HTTP 429/5xx, rate limits) until retries ran out."""


class SourceUnreachable(SourceUnavailable):
    """No connection at all (DNS, refused, connect timeout): the network or host is down."""


class MalformedPayload(SourceError):
    """The answer does not have the documented shape; `field` names what is wrong."""

    def __init__(self, source: str, target: str, field: str, detail: str):
        self.field = field
        super().__init__(source, target, f"malformed payload: field {field!r}: {detail}")


class EmptyAnswer(SourceError):
    """No rows for a window that holds trading days of the market (DESIGN §8)."""


class LiveConfigError(SourceError, ValueError):
    """Missing or invalid configuration (an environment variable, the universe file)."""
