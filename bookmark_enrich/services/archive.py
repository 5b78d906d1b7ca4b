"""The web archive client: find a dead page's closest snapshot and fetch its raw capture.

It speaks the Wayback Machine's availability API
(``GET {archive_url}/wayback/available?url=…&timestamp=…``, answering
``{"archived_snapshots": {"closest": {"available": true, "url": …, "timestamp": …,
"status": "200"}}}`` or ``{"archived_snapshots": {}}``) and fetches the capture's raw
form (``/web/<timestamp>id_/<url>``: the page as it was crawled, without the
archive's toolbar). A self-hosted pywb or another archive with the same two
endpoints serves as well.

The archive is one host with its own politeness: at most ``archive_concurrency``
requests in flight, at most ``archive_rate`` a second, and a 429's ``Retry-After``
pauses every request, not only the one that met it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..attempts import with_retries
from ..errors import StageError
from ..reasons import Reason
from ..settings import Settings
from .health import Check
from .http import error_for_exception, error_for_status
from .netpolicy import NetworkPolicy, Resolver, policy_transport

__all__ = ["ArchiveClient", "Capture", "Snapshot", "archive_checks", "wayback_timestamp"]

_MIN_RETRIES = 3
"""A busy archive (429, 5xx) is asked this many more times at least, within the deadline."""

_RAW = re.compile(r"/(\d{4,14})(?:[a-z]{2}_)?/")
"""The timestamp segment of a snapshot URL (with any replay modifier, e.g. ``im_``)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The archive's closest capture of a URL."""

    url: str
    """The snapshot as the archive shows it to people (with its toolbar)."""
    timestamp: str
    """The capture time, ``YYYYMMDDhhmmss`` (UTC)."""

    @property
    def raw_url(self) -> str:
        """The ``id_`` form: the page as it was crawled."""
        return _RAW.sub(lambda m: f"/{m.group(1)}id_/", self.url, count=1)

    @property
    def captured_at(self) -> str:
        """The capture time in ISO 8601."""
        digits = (self.timestamp + "0" * 14)[:14]
        try:
            when = datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            return self.timestamp
        return when.isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Capture:
    """A snapshot's raw body, for the extract stage."""

    body: bytes
    charset: str | None
    content_type: str | None


def wayback_timestamp(created: Any) -> str | None:
    """A record's ``created`` value (ISO 8601 or epoch seconds) as ``YYYYMMDDhhmmss``."""
    if created is None or created == "":
        return None
    try:
        if isinstance(created, int | float) or str(created).strip().isdigit():
            seconds = float(created)
            if seconds > 1e11:  # milliseconds or microseconds
                seconds /= 1000 if seconds < 1e14 else 1_000_000
            when = datetime.fromtimestamp(seconds, UTC)
        else:
            when = datetime.fromisoformat(str(created).strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S")


class ArchiveClient:
    """One web archive, shared by every bookmark of a run."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None,
                 resolver: Resolver | None = None) -> None:
        self.settings = settings
        self.base = settings.archive_url.rstrip("/")
        self.host = urlsplit(self.base).hostname or ""
        timeout = httpx.Timeout(min(settings.read_timeout, settings.archive_timeout),
                                connect=min(settings.connect_timeout, settings.archive_timeout))
        limits = httpx.Limits(max_connections=settings.archive_concurrency,
                              max_keepalive_connections=settings.archive_concurrency)
        headers = {"User-Agent": settings.user_agent}
        # The lookup goes to the archive the user configured (a service, like the LLM);
        # captures are pages of the web, fetched under the bookmarks' network policy,
        # with the archive's own host allowed.
        self.api = httpx.AsyncClient(timeout=timeout, limits=limits, headers=headers,
                                     transport=transport, trust_env=False)
        policy = NetworkPolicy.from_settings(settings.allow_private_network,
                                             [*settings.allow_hosts, self.host])
        self.captures = httpx.AsyncClient(
            timeout=timeout, limits=limits, headers=headers, follow_redirects=True,
            max_redirects=settings.max_redirects, trust_env=False,
            transport=transport or policy_transport(policy, limits=limits, resolver=resolver))
        self._slots = asyncio.Semaphore(settings.archive_concurrency)
        self._pace = asyncio.Lock()
        self._not_before = 0.0
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    # ------------------------------------------------------------ politeness
    async def _wait_turn(self) -> None:
        """Keep to ``archive_rate`` and to any pause a 429 asked for."""
        async with self._pace:
            delay = self._not_before - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            rate = self.settings.archive_rate
            self._not_before = max(self._not_before, time.monotonic()) + \
                (1.0 / rate if rate > 0 else 0.0)

    def _pause(self, seconds: float) -> None:
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    async def _request(self, client: httpx.AsyncClient, url: str,
                       params: dict[str, str] | None = None) -> tuple[httpx.Response, bytes]:
        """One request within the archive's limits; a 429 pauses all of them."""
        async with self._slots:
            await self._wait_turn()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.requests += 1
            try:
                async with client.stream("GET", url, params=params) as resp:
                    problem = error_for_status(resp.status_code, resp.headers, what="archive")
                    if problem is not None:
                        if problem.reason == Reason.RATE_LIMITED:
                            self._pause(problem.retry_after or self.settings.backoff)
                        raise problem
                    body = await self._read(resp)
                    return resp, body
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise error_for_exception(exc, what="archive") from None
            finally:
                self.in_flight -= 1

    async def _read(self, resp: httpx.Response) -> bytes:
        cap = self.settings.max_page_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise StageError(Reason.TOO_LARGE, f"the snapshot exceeds the {cap}-byte cap")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _with_retries(self, call: Any) -> Any:
        s = self.settings
        try:
            value, _ = await with_retries(call, retries=max(s.retries, _MIN_RETRIES),
                                          backoff=s.backoff,
                                          max_retry_after=s.archive_timeout)
        except StageError as exc:
            if exc.reason in (Reason.TOO_LARGE, Reason.BLOCKED_ADDRESS, Reason.ARCHIVE_ERROR):
                raise
            if exc.reason in (Reason.NOT_FOUND, Reason.GONE, Reason.HTTP_ERROR):
                raise StageError(Reason.ARCHIVE_ERROR, exc.message,
                                 attempts=exc.attempts) from None
            raise StageError(Reason.ARCHIVE_UNAVAILABLE, exc.message,
                             attempts=exc.attempts) from None
        return value

    # ------------------------------------------------------------------ API
    async def lookup(self, url: str, timestamp: str | None = None) -> Snapshot | None:
        """The closest snapshot of ``url`` (near ``timestamp`` when given), or None."""
        params = {"url": url}
        if timestamp:
            params["timestamp"] = timestamp

        async def ask() -> tuple[httpx.Response, bytes]:
            result: tuple[httpx.Response, bytes] = await self._request(
                self.api, f"{self.base}/wayback/available", params)
            return result

        _, body = await self._with_retries(ask)
        return parse_availability(body)

    async def capture(self, snapshot: Snapshot) -> Capture:
        """The snapshot's raw capture."""
        async def get() -> tuple[httpx.Response, bytes]:
            result: tuple[httpx.Response, bytes] = await self._request(
                self.captures, snapshot.raw_url)
            return result

        resp, body = await self._with_retries(get)
        return Capture(body, resp.charset_encoding, resp.headers.get("content-type"))

    async def health(self) -> Check:
        """Ask the availability API about a well-known URL; the archive must answer JSON."""
        try:
            async with asyncio.timeout(self.settings.archive_timeout):
                resp = await self.api.get(f"{self.base}/wayback/available",
                                          params={"url": "example.com"})
        except TimeoutError:
            return Check("archive", "warn", f"{self.base}: no answer", required=False)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            problem = error_for_exception(exc, what=self.base)
            return Check("archive", "warn", f"{problem.message} ({problem.reason}); dead "
                         "links will not be rescued", required=False)
        if resp.status_code != 200:
            return Check("archive", "warn", f"{self.base}: HTTP {resp.status_code} from "
                         "/wayback/available", required=False)
        try:
            parse_availability(resp.content)
        except StageError as exc:
            return Check("archive", "warn", f"{self.base}: {exc.message}", required=False)
        return Check("archive", "ok", f"{self.base} answers the availability API",
                     required=False)

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.captures.aclose()


def parse_availability(body: bytes) -> Snapshot | None:
    """The snapshot in an availability API answer; None when it has none.

    Raises ``archive_error`` for an answer that is not the API's JSON.
    """
    try:
        doc = json.loads(body)
        snapshots = doc["archived_snapshots"]
        if not isinstance(snapshots, dict):
            raise TypeError("archived_snapshots is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise StageError(Reason.ARCHIVE_ERROR, "the archive's answer is not the availability "
                         f"API's JSON ({type(exc).__name__})") from None
    closest = snapshots.get("closest")
    if not isinstance(closest, dict) or closest.get("available") is False:
        return None
    url, stamp = closest.get("url"), str(closest.get("timestamp") or "")
    status = str(closest.get("status") or "200")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise StageError(Reason.ARCHIVE_ERROR, "the archive's snapshot has no usable URL")
    if not status.isdigit() or int(status) >= 400:
        return None  # it archived the error page, not the page
    return Snapshot(url, stamp)


async def archive_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    """`doctor`'s line for the web archive (optional: a run goes on without it)."""
    if not settings.archive:
        return [Check("archive", "skip", "off (--no-archive)", required=False)]
    client = ArchiveClient(settings)
    try:
        return [await client.health()]
    finally:
        await client.aclose()
