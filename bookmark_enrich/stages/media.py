"""Media stage: download a bookmark's video/audio through Cobalt (or yt-dlp) and store it.

Which bookmarks: links to services Cobalt supports (YouTube, TikTok, X, …), direct
links to media files (by extension, or by the content type the fetch stage saw),
and hosts added with ``--media-hosts``. Everything else is skipped (``not_media``).

The back end is chosen once, in :meth:`MediaStage.preflight`: ``COBALT_API_URL``
when set (down → exit 3 unless ``--keep-going``); otherwise Cobalt at the usual
local address if it answers, else yt-dlp if installed, else the stage skips media
with one warning line. Downloads stream to a temporary file with the size cap
enforced while streaming and SHA-256 computed on the way; only a complete file is
stored, under a content-addressed key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
import os
import re
import time
import unicodedata
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

from ..attempts import with_retries
from ..errors import ServiceUnavailable, StageError
from ..models import StageOutcome, fingerprint_of
from ..reasons import Reason
from ..redaction import url_host
from ..services import ytdlp
from ..services.cobalt import CobaltClient, CobaltItem, CobaltUnavailable, probe
from ..services.http import error_for_exception, error_for_status
from ..services.mediabackend import PROBE_SECONDS
from ..services.netpolicy import (
    AddressBlocked,
    NetworkPolicy,
    Resolver,
    policy_transport,
    system_resolver,
)
from ..services.storage import MediaStore, StorageUnavailable, open_store, temp_file
from ..settings import Settings
from .base import Stage, StageContext

__all__ = ["COBALT_HOSTS", "MEDIA_EXTENSIONS", "MediaStage", "media_link", "sanitize_filename"]

_CHUNK = 1 << 20

COBALT_HOSTS = (
    "youtube.com", "youtu.be", "youtube-nocookie.com", "tiktok.com", "twitter.com", "x.com",
    "vxtwitter.com", "fixvx.com", "instagram.com", "ddinstagram.com", "reddit.com", "redd.it",
    "vimeo.com", "soundcloud.com", "bsky.app", "bilibili.com", "bilibili.tv", "b23.tv",
    "dailymotion.com", "dai.ly", "facebook.com", "fb.watch", "pinterest.com", "pin.it",
    "streamable.com", "tumblr.com", "clips.twitch.tv", "twitch.tv", "vk.com", "vkvideo.ru",
    "vk.ru", "loom.com", "ok.ru", "rutube.ru", "snapchat.com", "xiaohongshu.com",
    "xhslink.com", "newgrounds.com",
)
"""Hosts (and their subdomains) Cobalt downloads from."""

MEDIA_EXTENSIONS = frozenset({
    "mp4", "m4v", "mov", "webm", "mkv", "avi", "mpg", "mpeg", "ogv", "3gp",
    "mp3", "m4a", "aac", "ogg", "oga", "opus", "flac", "wav",
})
_YOUTUBE_PATHS = re.compile(r"^/(watch|shorts/|embed/|live/|v/)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_NAME = 150


def _host_match(host: str, names: tuple[str, ...] | list[str]) -> bool:
    return any(host == n or host.endswith("." + n) for n in names)


def media_link(url: str, content_type: str | None = None,
               extra_hosts: list[str] | None = None) -> str | None:
    """``service`` (ask Cobalt), ``direct`` (download as is) or None (not media)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower().removeprefix("www.")
    if extra_hosts and _host_match(host, extra_hosts):
        return "service"
    ext = PurePosixPath(unquote(parts.path)).suffix.lower().lstrip(".")
    if ext in MEDIA_EXTENSIONS:
        return "direct"
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime.startswith(("video/", "audio/")):
        return "direct"
    if _host_match(host, ("youtube.com", "youtube-nocookie.com")):
        return "service" if _YOUTUBE_PATHS.match(parts.path) else None
    if _host_match(host, ("twitch.tv",)) and host != "clips.twitch.tv":
        return "service" if "/clip/" in parts.path else None
    return "service" if _host_match(host, COBALT_HOSTS) else None


def sanitize_filename(name: str | None, fallback: str = "media") -> str:
    """No path separators, no control characters, no leading dots, bounded length."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip().lstrip(".").strip()
    if not name:
        return fallback
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 8:
            name = stem[: _MAX_NAME - len(ext) - 1] + "." + ext
        else:
            name = name[:_MAX_NAME]
    return name


def _disposition_name(header: str | None) -> str | None:
    if not header:
        return None
    msg = Message()
    msg["content-disposition"] = header
    name = msg.get_filename()
    return str(name) if name else None


def _extension(filename: str, content_type: str | None) -> str:
    ext = PurePosixPath(filename).suffix.lstrip(".").lower()
    if ext and len(ext) <= 5 and ext.isalnum():
        return ext
    guessed = mimetypes.guess_extension(content_type or "") if content_type else None
    return guessed.lstrip(".") if guessed else "bin"


def _kind(content_type: str | None, hint: str | None) -> str:
    main = (content_type or "").split("/", 1)[0]
    if main in ("video", "audio", "image"):
        return main
    return {"photo": "image", "gif": "image", "video": "video", "audio": "audio"}.get(
        hint or "", "file")


@dataclass(slots=True)
class _Download:
    path: Path
    size: int
    sha256: str
    content_type: str | None
    filename: str


class MediaStage(Stage):
    name: ClassVar[str] = "media"
    version: ClassVar[str] = "1"
    follows_network_policy: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Settings, resolver: Resolver | None = None) -> None:
        super().__init__(settings)
        self.backend: str | None = None
        """``cobalt``, ``ytdlp`` or None (no back end: media skipped)."""
        self.cobalt: CobaltClient | None = None
        self.store: MediaStore | None = None
        self._unavailable: ServiceUnavailable | None = None
        self._chosen = False
        self._choosing = asyncio.Lock()
        self._slots = asyncio.Semaphore(settings.media_concurrency)
        self._storing: dict[str, asyncio.Lock] = {}
        self.policy = NetworkPolicy.from_settings(settings.allow_private_network,
                                                  settings.allow_hosts)
        self.resolver = resolver or system_resolver
        limits = httpx.Limits(max_connections=settings.media_concurrency * 2)
        common: dict[str, Any] = {
            "follow_redirects": True, "max_redirects": settings.max_redirects,
            "timeout": httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            "headers": {"User-Agent": settings.user_agent}, "trust_env": False}
        # Media links come from bookmarks: the network policy holds for them. Files that
        # Cobalt itself serves (tunnels) come from a service the user configured.
        self.http = httpx.AsyncClient(
            transport=policy_transport(self.policy, limits=limits, resolver=self.resolver),
            **common)
        self.service_http = httpx.AsyncClient(limits=limits, **common)
        self.files = 0
        self.bytes = 0
        self.reused = 0
        self._active = 0
        self._busy_since = 0.0
        self._busy = 0.0

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.enable_media_download

    def fingerprint(self) -> str:
        s = self.settings
        where = self.store.description if self.store is not None else None
        return fingerprint_of(self.name, self.version, self.backend, s.media_backend,
                              s.video_quality, s.audio_only, s.max_picker_items,
                              s.max_media_size_mb, sorted(s.media_hosts), where)

    # ------------------------------------------------------------- choosing
    async def preflight(self) -> None:
        """Choose the back end and check storage; an unusable configured one raises."""
        await self._choose()
        if self._unavailable is not None:
            raise self._unavailable

    def _say(self, message: str) -> None:
        if self.notice is not None:
            self.notice(message)

    async def _choose(self) -> None:
        async with self._choosing:
            if self._chosen:
                return
            self._chosen = True
            try:
                chosen = await self._choose_backend()
                if self.backend is not None:
                    await self._open_store()
                    assert self.store is not None
                    # Announced once storage works too, so a failure is the only line.
                    self._say(f"{chosen}; storing in {self.store.description}")
            except ServiceUnavailable as exc:
                self._unavailable = exc

    async def _open_store(self) -> None:
        store = open_store(self.settings)
        try:
            await store.preflight()
        except StorageUnavailable:
            store.close()
            raise
        self.store = store

    async def _choose_backend(self) -> str:
        """Pick the back end; returns the line announcing it."""
        s = self.settings
        if s.media_backend == "ytdlp":
            if not ytdlp.available():
                raise ServiceUnavailable("--media-backend ytdlp but yt-dlp is not installed; "
                                         "pip install 'bookmark-enrich[ytdlp]'")
            self.backend = "ytdlp"
            return "media: yt-dlp (--media-backend ytdlp)"
        if s.cobalt_api_url:
            client = CobaltClient(s, s.cobalt_api_url)
            try:
                info = await client.server_info()
            except CobaltUnavailable:
                await client.aclose()
                raise
            self.cobalt, self.backend = client, "cobalt"
            return f"media: Cobalt {info.version} at {url_host(client.base_url)} (COBALT_API_URL)"
        found = None
        if s.cobalt_probe_url.strip():
            found, _, _ = await probe(s, s.cobalt_probe_url, PROBE_SECONDS)
        if found is not None:
            self.cobalt = CobaltClient(s, s.cobalt_probe_url)
            self.backend = "cobalt"
            return f"media: Cobalt {found.version} found at {url_host(s.cobalt_probe_url)}"
        missing = (f"no Cobalt at {url_host(s.cobalt_probe_url)}" if s.cobalt_probe_url.strip()
                   else "COBALT_API_URL unset, discovery off")
        if s.media_backend == "cobalt":
            raise CobaltUnavailable(f"--media-backend cobalt but {missing}; start Cobalt or "
                                    "set COBALT_API_URL")
        if ytdlp.available():
            self.backend = "ytdlp"
            return f"media: yt-dlp ({missing}; set COBALT_API_URL to use Cobalt)"
        self._say(f"warning: media downloads off: {missing} and yt-dlp is not installed; "
                  "set COBALT_API_URL or pip install 'bookmark-enrich[ytdlp]'")
        return ""

    # ------------------------------------------------------------------ run
    async def run(self, ctx: StageContext) -> StageOutcome:
        url = ctx.bookmark.url
        fetched = ctx.outcomes.get("fetch")
        content_type = fetched.output.get("content_type") if fetched is not None else None
        link = media_link(url, content_type, self.settings.media_hosts)
        if link is None:
            return StageOutcome.skipped("not_media", "not a media link")
        await self._choose()
        if self._unavailable is not None:
            raise StageError(getattr(self._unavailable, "reason", "cobalt_unreachable"),
                             str(self._unavailable))
        if self.backend is None:
            return StageOutcome.skipped("no_media_backend", "no Cobalt and no yt-dlp")
        s = self.settings
        async with self._slots:
            # The deadline runs once a slot is ours; a stall of no bytes for --timeout
            # seconds fails a download sooner (httpx's read timeout).
            end = asyncio.get_running_loop().time() + s.media_deadline
            try:
                async with asyncio.timeout_at(end):
                    items, attempts = await with_retries(
                        lambda: self._fetch(url, link), retries=s.retries, backoff=s.backoff,
                        max_retry_after=s.max_retry_after, deadline=lambda: end)
            except TimeoutError:
                raise StageError(Reason.DEADLINE, f"not done within {s.media_deadline:g} s "
                                 "(media_deadline)") from None
        return StageOutcome.ok({"media": items}, attempts=attempts)

    async def _fetch(self, url: str, link: str) -> list[dict[str, Any]]:
        if link == "direct":
            return [await self._keep(await self._download(url, None, None), url, None)]
        if self.backend == "ytdlp" or self.cobalt is None:
            return [await self._via_ytdlp(url)]
        try:
            reply = await self.cobalt.request(url)
        except StageError as exc:
            if exc.reason == "unsupported" and self._may_fallback():
                return [await self._via_ytdlp(url)]
            raise
        if reply.status == "local-processing":
            if self._may_fallback():
                return [await self._via_ytdlp(url)]
            raise StageError("needs_local_processing", "Cobalt needs local processing "
                             "(ffmpeg) for this link; install yt-dlp for a fallback")
        chosen = reply.items[: self.settings.max_picker_items]
        out: list[dict[str, Any]] = []
        # Tunnels expire in about 90 s: download now, one after another.
        for item in chosen:
            out.append(await self._keep(await self._download(item.url, item.filename, item),
                                        url, item))
        return out

    def _may_fallback(self) -> bool:
        return self.settings.media_backend == "auto" and ytdlp.available()

    def _client_for(self, url: str) -> httpx.AsyncClient:
        """The Cobalt instance's own files skip the bookmark network policy."""
        if self.cobalt is not None and url_host(url) == url_host(self.cobalt.base_url):
            return self.service_http
        return self.http

    async def _via_ytdlp(self, url: str) -> dict[str, Any]:
        # yt-dlp makes its own connections: the bookmark's host is checked first (the
        # pages it goes on to read are the video site's, out of our hands).
        parts = urlsplit(url)
        try:
            await self.policy.check(parts.hostname or "", parts.port or 443, self.resolver)
        except AddressBlocked as exc:
            raise StageError(Reason.BLOCKED_ADDRESS, exc.message) from None
        except (httpx.HTTPError, httpcore.ConnectError) as exc:
            raise StageError(Reason.CONNECTION_ERROR, str(exc), retryable=True) from None
        self._start()
        try:
            got = await ytdlp.download(url, max_bytes=self.settings.max_media_bytes,
                                       audio_only=self.settings.audio_only,
                                       directory=self.store.temp_dir if self.store else None)
        finally:
            self._stop()
        try:
            found = _Download(got.path, got.size, got.sha256, got.content_type,
                              sanitize_filename(got.filename))
            return await self._keep(found, url, None)
        finally:
            with contextlib.suppress(OSError):
                got.path.parent.rmdir()

    def _start(self) -> None:
        if self._active == 0:
            self._busy_since = time.monotonic()
        self._active += 1

    def _stop(self) -> None:
        self._active -= 1
        if self._active == 0:
            self._busy += time.monotonic() - self._busy_since

    async def _download(self, url: str, name_hint: str | None,
                        item: CobaltItem | None) -> _Download:
        """Stream ``url`` to a temporary file, hashing it; the cap holds while streaming."""
        cap = self.settings.max_media_bytes
        assert self.store is not None
        fd, path = temp_file(self.store.temp_dir)
        self._start()
        try:
            with os.fdopen(fd, "wb") as out:
                async with self._client_for(url).stream("GET", url) as resp:
                    # An expired tunnel (404/410) is gone for good; asking Cobalt again
                    # gives a new one, so that much is worth a retry.
                    problem = error_for_status(resp.status_code, resp.headers,
                                               what="media download",
                                               gone_is_retryable=item is not None)
                    if problem is not None:
                        raise problem
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > cap:
                        raise StageError("too_large", f"media is {int(declared)} bytes, over "
                                         f"the {cap}-byte cap")
                    digest = hashlib.sha256()
                    size = 0
                    async for chunk in resp.aiter_bytes(_CHUNK):
                        size += len(chunk)
                        if size > cap:
                            raise StageError("too_large", f"media exceeds the {cap}-byte "
                                             "cap (download aborted)")
                        digest.update(chunk)
                        out.write(chunk)
                    if size == 0:
                        raise StageError("truncated", "the server sent an empty body")
                    content_type = (resp.headers.get("content-type") or "").split(";")[0] \
                        .strip().lower() or None
                    filename = sanitize_filename(
                        _disposition_name(resp.headers.get("content-disposition"))
                        or name_hint or unquote(PurePosixPath(urlsplit(url).path).name))
            if content_type in (None, "application/octet-stream"):
                content_type = mimetypes.guess_type(filename)[0] or content_type
            self.bytes += size
            return _Download(path, size, digest.hexdigest(), content_type, filename)
        except BaseException as exc:
            path.unlink(missing_ok=True)
            if isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
                raise error_for_exception(exc, what="media download",
                                          broken_body=Reason.TRUNCATED,
                                          other=Reason.DOWNLOAD_FAILED) from None
            if isinstance(exc, OSError):
                raise StageError("storage_error", f"cannot write a temporary file: "
                                 f"{exc.strerror or exc}") from None
            raise
        finally:
            self._stop()

    async def _keep(self, got: _Download, source_url: str,
                    item: CobaltItem | None) -> dict[str, Any]:
        assert self.store is not None
        ext = _extension(got.filename, got.content_type)
        key = f"{got.sha256}.{ext}"
        lock = self._storing.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # the same file from two bookmarks at once is stored once
                uri, existed = await self.store.put(got.path, sha256=got.sha256, ext=ext,
                                                    content_type=got.content_type,
                                                    source_url=source_url)
        finally:
            got.path.unlink(missing_ok=True)
            if not lock.locked():
                self._storing.pop(key, None)
        self.files += 1
        self.reused += existed
        return {"kind": _kind(got.content_type, item.kind if item else None), "uri": uri,
                "bytes": got.size, "sha256": got.sha256, "content_type": got.content_type,
                "filename": got.filename, "source_url": source_url}

    # ---------------------------------------------------------------- output
    def contribute(self, outcome: StageOutcome, enrichment: dict[str, Any], *,
                   include_text: bool = False) -> None:
        if outcome.status == "ok" and outcome.output.get("media"):
            enrichment["media"] = outcome.output["media"]

    def metrics(self) -> dict[str, Any]:
        if not self.files:
            return {}
        busy = self._busy + (time.monotonic() - self._busy_since if self._active else 0.0)
        rate = self.bytes / 1e6 / busy if busy > 0 else 0.0
        return {"files": self.files, "downloaded": f"{self.bytes / 1e6:.1f} MB",
                "rate": f"{rate:.1f} MB/s", "already stored": self.reused}

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.service_http.aclose()
        if self.cobalt is not None:
            await self.cobalt.aclose()
        if self.store is not None:
            self.store.close()
