"""Fetch stage: download the page with caps, limits, retries; record where it ended."""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import SplitResult, unquote, urlsplit

import httpx

from ..attempts import HostBreaker, with_retries
from ..errors import StageError
from ..extraction.documents import DOCUMENT_TYPES, document_kind, may_be_document
from ..extraction.parked import parking_marker
from ..models import StageOutcome, fingerprint_of
from ..reasons import Reason
from ..services.http import error_for_exception, error_for_status
from ..services.netpolicy import NetworkPolicy, Resolver, policy_transport
from ..settings import Settings
from .base import Stage, StageContext

__all__ = ["FetchStage", "Page", "is_textual"]

_POOL_SIZE = 8
_SNIFF = 1024
"""Bytes read before deciding whether a body of a generic type is a document."""
_TEXTUAL = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")


@dataclass(slots=True)
class Page:
    """A fetched body, kept in memory for the extract stage only."""

    body: bytes
    charset: str | None
    content_type: str | None


@dataclass(slots=True)
class _Budget:
    """One bookmark's fetch deadline (loop time), set when its first attempt starts."""

    end: float | None = None
    last: StageError | None = None


def origin_of(parts: SplitResult) -> str:
    """A host as the breaker counts it: scheme, name and port (a dead port is its own)."""
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return f"{parts.scheme}://{parts.hostname or ''}:{port}"


def is_textual(content_type: str | None) -> bool:
    """Whether extraction can read this content type (unknown counts as HTML)."""
    if not content_type:
        return True
    return content_type.split(";", 1)[0].strip().lower() in _TEXTUAL


class _HostLimits:
    """A semaphore per host, dropped when idle so memory stays flat."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._sems: dict[str, tuple[asyncio.Semaphore, int]] = {}

    async def acquire(self, host: str) -> None:
        sem, users = self._sems.get(host, (asyncio.Semaphore(self.per_host), 0))
        self._sems[host] = (sem, users + 1)
        await sem.acquire()

    def release(self, host: str) -> None:
        sem, users = self._sems[host]
        sem.release()
        if users <= 1:
            del self._sems[host]
        else:
            self._sems[host] = (sem, users - 1)


class FetchStage(Stage):
    name: ClassVar[str] = "fetch"
    version: ClassVar[str] = "1"
    follows_network_policy: ClassVar[bool] = True

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None,
                 resolver: Resolver | None = None):
        super().__init__(settings)
        self._policy = NetworkPolicy.from_settings(settings.allow_private_network,
                                                   settings.allow_hosts)
        self._transport, self._resolver = transport, resolver
        self._clients: list[httpx.AsyncClient] = []
        self._turn: Iterator[httpx.AsyncClient] = iter(())
        self.file_roots = [Path(root).resolve() for root in settings.allow_file_roots]
        self.hosts = _HostLimits(settings.per_host)
        self.breaker = HostBreaker(settings.host_failures)
        self.bytes_read = 0

    @property
    def clients(self) -> list[httpx.AsyncClient]:
        """The HTTP clients, made on first use: a fully cached run fetches nothing, and
        making them (TLS context, pools) cost ~35 ms of its start (bench_startup c)."""
        if not self._clients:
            self._clients = self._make_clients()
        return self._clients

    def _make_clients(self) -> list[httpx.AsyncClient]:
        settings = self.settings
        # httpcore's pool scans every connection for every queued request, which
        # turns quadratic at high concurrency; several small pools used in turn
        # keep keep-alive reuse and make that scan cheap (measured: bench part a).
        shards = max(1, -(-settings.concurrency // _POOL_SIZE))
        per_pool = -(-settings.concurrency // shards)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        return [
            httpx.AsyncClient(
                follow_redirects=True,
                max_redirects=settings.max_redirects,
                timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
                limits=limits,
                headers={
                    "User-Agent": settings.user_agent,
                    "Accept": "text/html,application/xhtml+xml,application/pdf,"
                              "text/plain;q=0.9,text/markdown;q=0.9,*/*;q=0.5",
                },
                # Every connection, redirect hops included, goes through the policy.
                transport=self._transport or policy_transport(
                    self._policy, limits=limits, resolver=self._resolver),
                trust_env=False,
            )
            for _ in range(shards)
        ]

    def fingerprint(self) -> str:
        return fingerprint_of(self.name, self.version)

    async def run(self, ctx: StageContext) -> StageOutcome:
        url = ctx.bookmark.url
        if url.startswith("file:"):
            return await self._read_file(url)
        s = self.settings
        budget = _Budget()
        (output, page), attempts = await with_retries(
            lambda: self._get(url, budget, ctx),
            retries=s.retries,
            backoff=s.backoff,
            max_retry_after=s.max_retry_after,
            deadline=lambda: budget.end,
        )
        if page is not None and is_textual(page.content_type):
            marker = parking_marker(page.body)
            if marker is not None:  # the domain lapsed: a dead link the archive may rescue
                raise StageError(Reason.PARKED, f"a parked domain's placeholder page "
                                 f"({marker})", attempts=attempts)
        return StageOutcome.ok(output, attempts=attempts, payload=page)

    async def _get(self, url: str, budget: _Budget,
                   ctx: StageContext) -> tuple[dict[str, Any], Page | None]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        origin = origin_of(parts)
        async with ctx.parked():  # a busy host: other hosts' bookmarks go on meanwhile
            await self.hosts.acquire(host)
        try:
            failures = self.breaker.dead(origin)
            if failures and budget.last is not None:
                budget.last.retryable = False  # tried already: its own error stands
                raise budget.last
            async with ctx.parked():
                failures = await self.breaker.admit(origin)
            if failures:
                raise StageError(Reason.HOST_UNREACHABLE, f"{origin}: not tried, the host "
                                 f"failed {failures} times in a row in this run")
            # The clock starts with the first attempt, not while queued behind the host.
            if budget.end is None:
                budget.end = asyncio.get_running_loop().time() + self.settings.fetch_deadline
            failed: bool | None = None  # cancelled (a stop): says nothing about the host
            try:
                async with asyncio.timeout_at(budget.end):
                    result = await self._get_once(url)
                failed = False
                return result
            except TimeoutError:
                failed = True
                budget.last = StageError(Reason.DEADLINE, "no complete answer within "
                                         f"{self.settings.fetch_deadline:g} s (fetch_deadline)")
                raise budget.last from None
            except StageError as exc:
                budget.last = exc
                failed = exc.reason in (Reason.TIMEOUT, Reason.CONNECTION_ERROR,
                                        Reason.CONNECTION_REFUSED, Reason.DNS_ERROR)
                raise
            finally:
                self.breaker.finished(origin, failed=failed)
        finally:
            self.hosts.release(host)

    async def _get_once(self, url: str) -> tuple[dict[str, Any], Page | None]:
        try:
            if not self._clients:
                self._turn = itertools.cycle(self.clients)
            async with next(self._turn).stream("GET", url) as resp:
                status = resp.status_code
                problem = error_for_status(status, resp.headers)
                if problem is not None:
                    raise problem
                content_type = resp.headers.get("content-type")
                output: dict[str, Any] = {
                    "final_url": str(resp.url),
                    "http_status": status,
                    "content_type": content_type,
                }
                if not is_textual(content_type) and not may_be_document(content_type):
                    return output, None  # not ours to extract; no need to download it
                return output, await self._read_body(resp, content_type)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise error_for_exception(exc, max_redirects=self.settings.max_redirects) from None

    def _check_file_root(self, path: Path) -> None:
        """A ``file:`` bookmark reads only inside the bookmarks file's folder (or a root)."""
        real = path.resolve()
        if any(real.is_relative_to(root) for root in self.file_roots):
            return
        where = "outside the allowed folders" if self.file_roots else \
            "not from a bookmarks file (stdin or a database)"
        raise StageError(Reason.BLOCKED_FILE, f"{path} is {where}; allow it with "
                         "--allow-file-root DIR (BOOKMARK_ENRICH_ALLOW_FILE_ROOTS)")

    def _cap(self, document: bool) -> int:
        s = self.settings
        return s.max_document_bytes if document else s.max_page_bytes

    async def _read_body(self, resp: httpx.Response, content_type: str | None) -> Page | None:
        """The body within its cap (documents have their own); None if not ours after all."""
        url = str(resp.url)
        cap = self._cap(may_be_document(content_type))
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap and \
                not resp.headers.get("content-encoding"):
            raise StageError("too_large", f"body is {int(declared)} bytes, "
                             f"over the {cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        sniffed = False
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            chunks.append(chunk)
            if not sniffed and size >= _SNIFF:
                sniffed = True
                kind = document_kind(content_type, url, b"".join(chunks)[:_SNIFF])
                if kind is None and not is_textual(content_type):
                    return None  # a download of some other kind: stop reading it
                cap = self._cap(kind is not None)
            if size > cap:
                raise StageError("too_large", f"body exceeds the {cap}-byte cap")
        body = b"".join(chunks)
        if not sniffed and document_kind(content_type, url, body) is None and \
                not is_textual(content_type):
            return None
        self.bytes_read += size
        return Page(body, resp.charset_encoding, content_type)

    async def _read_file(self, url: str) -> StageOutcome:
        path = Path(unquote(urlsplit(url).path))
        guess = mimetypes.guess_type(path.name)[0]
        cap = self._cap(guess is None or document_kind(guess, url) is not None)
        self._check_file_root(path)
        # In a thread: a slow disk or network mount never blocks the loop.
        body = await asyncio.to_thread(_read_regular_file, path, cap)
        kind = document_kind(guess, url, body[:_SNIFF])
        if kind is None and len(body) > self.settings.max_page_bytes:
            raise StageError("too_large", f"file is {len(body)} bytes, over the "
                             f"{self.settings.max_page_bytes}-byte cap")
        content_type = DOCUMENT_TYPES[kind] if kind else guess or "text/html"
        output = {"final_url": url, "http_status": None, "content_type": content_type}
        page = Page(body, None, content_type) if kind or is_textual(content_type) else None
        return StageOutcome.ok(output, payload=page)

    def metrics(self) -> dict[str, Any]:
        return {"downloaded": f"{self.bytes_read / 1e6:.1f} MB"}

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def _read_regular_file(path: Path, cap: int) -> bytes:
    """A regular file's bytes, at most ``cap`` of them whatever ``st_size`` says.

    Opened without blocking (a FIFO would wait for a writer) and checked after
    opening, so devices, FIFOs, sockets and folders are refused with ``not_a_file``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise StageError(Reason.NOT_FOUND, f"no such file: {path}") from None
    except PermissionError:
        raise StageError(Reason.PERMISSION_DENIED, f"cannot read {path}") from None
    except OSError as exc:
        raise StageError(Reason.READ_ERROR, f"{path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise StageError(Reason.NOT_A_FILE, f"{path} is {what}; only regular files "
                             "are read")
        declared = os.fstat(fd).st_size
        if declared > cap:
            raise StageError(Reason.TOO_LARGE, f"file is {declared} bytes, over the "
                             f"{cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, cap + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                raise StageError(Reason.TOO_LARGE, f"file is over the {cap}-byte cap")
        return b"".join(chunks)
    except OSError as exc:
        raise StageError(Reason.READ_ERROR, f"{path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
