"""The one mapping from HTTP answers and httpx errors to reason codes.

Every download made on behalf of a bookmark (the page fetch, media files) goes
through these two functions, so a 429 or a reset connection means the same
thing, and is retried the same way, whichever stage met it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

import httpx

from ..errors import StageError
from ..reasons import Reason
from .netpolicy import AddressBlocked, NameNotResolved

__all__ = ["connect_reason", "error_for_exception", "error_for_status", "parse_retry_after"]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(status: int, headers: Mapping[str, str] | None = None, *,
                     what: str = "", gone_is_retryable: bool = False) -> StageError | None:
    """The StageError an HTTP status means, or None for a success.

    429 and 5xx can heal (retryable, honouring Retry-After); 404/410 mean the link
    is dead, unless ``gone_is_retryable`` (an expired download tunnel that asking
    again replaces).
    """
    if status < 400:
        return None
    prefix = f"{what}: " if what else ""
    retry_after = parse_retry_after((headers or {}).get("retry-after"))
    if status == 429:
        return StageError(Reason.RATE_LIMITED, f"{prefix}HTTP 429 Too Many Requests",
                          retryable=True, retry_after=retry_after)
    if status >= 500:
        return StageError(Reason.SERVER_ERROR, f"{prefix}HTTP {status}", retryable=True,
                          retry_after=retry_after)
    if status in (404, 410):
        return StageError(Reason.GONE if status == 410 else Reason.NOT_FOUND,
                          f"{prefix}HTTP {status}", retryable=gone_is_retryable)
    return StageError(Reason.HTTP_ERROR, f"{prefix}HTTP {status}")


_DNS_WORDS = ("name or service not known", "nodename nor servname", "no address associated",
              "getaddrinfo failed", "temporary failure in name resolution", "no such host",
              "cannot resolve")


def connect_reason(exc: httpx.ConnectError) -> Reason:
    """Which kind of failed connection: an unknown name, a refusal, or something else."""
    if isinstance(exc, NameNotResolved):
        return Reason.DNS_ERROR
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return Reason.CONNECTION_REFUSED
    text = " ".join(str(e) for e in chain).lower()
    if any(word in text for word in _DNS_WORDS):
        return Reason.DNS_ERROR
    if "refused" in text or "errno 111" in text or "connect call failed" in text:
        return Reason.CONNECTION_REFUSED
    return Reason.CONNECTION_ERROR


def error_for_exception(exc: httpx.HTTPError | httpx.InvalidURL, *, what: str = "",
                        max_redirects: int | None = None,
                        broken_body: Reason = Reason.CONNECTION_ERROR,
                        other: Reason = Reason.HTTP_ERROR) -> StageError:
    """The StageError an httpx exception means.

    ``broken_body`` is the reason for a connection that ended mid-answer: a page
    fetch retries it as a connection error, a media download calls it truncated.
    """
    prefix = f"{what}: " if what else ""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, AddressBlocked):
        return StageError(Reason.BLOCKED_ADDRESS, prefix + exc.message)
    if isinstance(exc, httpx.TooManyRedirects):
        limit = f"more than {max_redirects} redirects" if max_redirects is not None else detail
        return StageError(Reason.TOO_MANY_REDIRECTS, prefix + limit)
    if isinstance(exc, httpx.TimeoutException):
        return StageError(Reason.TIMEOUT, prefix + type(exc).__name__, retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return StageError(connect_reason(exc), prefix + detail, retryable=True)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        if broken_body == Reason.TRUNCATED:
            return StageError(Reason.TRUNCATED, f"{prefix}the connection ended before the "
                              f"whole answer arrived ({type(exc).__name__})")
        return StageError(broken_body, prefix + detail, retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return StageError(Reason.INVALID_URL, prefix + detail)
    if isinstance(exc, httpx.DecodingError):
        return StageError(Reason.DECODING_ERROR, prefix + detail)
    return StageError(other, f"{prefix}{type(exc).__name__}: {exc}" if other != Reason.HTTP_ERROR
                      else prefix + detail)
