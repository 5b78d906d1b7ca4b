"""Client for a Cobalt API instance (v10/v11): ask it for a media link, check its health.

Cobalt answers ``POST /`` with one of ``tunnel``/``redirect`` (a URL to download
right away: tunnels expire in about 90 s), ``picker`` (several items),
``local-processing`` (the client must merge streams with ffmpeg) or ``error`` (an
``error.code`` such as ``error.api.content.video.private``). The request needs both
``Accept`` and ``Content-Type: application/json`` and rejects unknown body keys.
``GET /`` describes the instance (version, services); v7 instances used
``/api/serverInfo`` and ``/api/json`` and are not supported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import ServiceUnavailable, StageError
from ..redaction import url_host
from ..settings import Settings
from .http import parse_retry_after

__all__ = [
    "CobaltClient",
    "CobaltItem",
    "CobaltReply",
    "CobaltUnavailable",
    "ServerInfo",
    "error_reason",
    "rate_limit_wait",
]

# error.code prefix → (reason, transient). The longest matching prefix wins.
_ERROR_REASONS: dict[str, tuple[str, bool]] = {
    "error.api.link.unsupported": ("unsupported", False),
    "error.api.service.unsupported": ("unsupported", False),
    "error.api.service.disabled": ("unsupported", False),
    "error.api.service.audio_not_supported": ("unsupported", False),
    "error.api.link.invalid": ("invalid_url", False),
    "error.api.content.video.private": ("private", False),
    "error.api.content.post.private": ("private", False),
    "error.api.content.video.age": ("age_restricted", False),
    "error.api.content.post.age": ("age_restricted", False),
    "error.api.content.video.region": ("geo_blocked", False),
    "error.api.content.video.live": ("live", False),
    "error.api.content.too_long": ("too_large", False),
    "error.api.content": ("unavailable", False),
    "error.api.youtube.login": ("login_required", False),
    "error.api.youtube": ("youtube_error", False),
    "error.api.rate_exceeded": ("rate_limited", True),
    "error.api.fetch.rate": ("rate_limited", True),
    "error.api.capacity": ("rate_limited", True),
    "error.api.fetch.empty": ("no_media", False),
    "error.api.fetch.short_link": ("unsupported", False),
    "error.api.fetch": ("fetch_failed", True),
    "error.api.timed_out": ("timeout", True),
    "error.api.unreachable": ("fetch_failed", True),
    "error.api.auth": ("cobalt_auth", False),
    "error.api.header": ("cobalt_protocol", False),
    "error.api.invalid_body": ("cobalt_protocol", False),
}
_BODY_KEYS = ("url", "videoQuality", "audioFormat", "downloadMode", "filenameStyle")


def error_reason(code: str) -> tuple[str, bool]:
    """``error.api.content.video.private`` → (``private``, transient=False)."""
    best = ""
    for prefix in _ERROR_REASONS:
        if (code == prefix or code.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return _ERROR_REASONS[best] if best else ("cobalt_error", False)




def rate_limit_wait(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``Retry-After`` or ``RateLimit-Reset`` (both in seconds here)."""
    wait = parse_retry_after(headers.get("retry-after"))
    if wait is None:
        reset = headers.get("ratelimit-reset")
        if reset and reset.strip().isdigit():
            wait = float(reset.strip())
    return wait


class CobaltUnavailable(ServiceUnavailable):
    """The configured Cobalt instance cannot be used (down, v7, refuses our key)."""

    reason = "cobalt_unreachable"


@dataclass(frozen=True, slots=True)
class CobaltItem:
    """One downloadable thing Cobalt pointed at."""

    url: str
    filename: str | None = None
    kind: str | None = None
    """``photo``/``video``/``gif`` for picker items."""


@dataclass(slots=True)
class CobaltReply:
    """A successful answer: what to download, or that local processing is needed."""

    status: str
    items: list[CobaltItem] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version: str
    services: list[str]
    url: str


class CobaltClient:
    """One client per run; ``request(url)`` raises StageError with a reason on failure."""

    def __init__(self, settings: Settings, base_url: str, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float | None = None) -> None:
        self.settings = settings
        self.base_url = base_url.rstrip("/") + "/"
        headers = {"Accept": "application/json", "Content-Type": "application/json",
                   "User-Agent": settings.user_agent}
        if settings.cobalt_api_key is not None and settings.cobalt_api_key.get_secret_value():
            headers["Authorization"] = f"Api-Key {settings.cobalt_api_key.get_secret_value()}"
        seconds = timeout if timeout is not None else settings.cobalt_timeout / 1000
        self.client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
            transport=transport, trust_env=False)
        self.requests = 0

    def body(self, url: str) -> dict[str, Any]:
        """The request body: only keys the API accepts (it rejects unknown ones)."""
        s = self.settings
        body = {"url": url, "videoQuality": s.video_quality, "audioFormat": "best",
                "downloadMode": "audio" if s.audio_only else "auto",
                "filenameStyle": "basic"}
        return {k: body[k] for k in _BODY_KEYS}

    async def request(self, url: str) -> CobaltReply:
        """Ask Cobalt for ``url``'s media. Transient problems raise retryable StageErrors."""
        self.requests += 1
        try:
            resp = await self.client.post(self.base_url, json=self.body(url))
        except httpx.TimeoutException:
            raise StageError("timeout", f"Cobalt at {url_host(self.base_url)} timed out",
                             retryable=True) from None
        except httpx.HTTPError as exc:
            raise StageError("cobalt_unreachable", f"Cobalt at {url_host(self.base_url)}: "
                             f"{type(exc).__name__}", retryable=True) from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code == 429 and not (isinstance(data, dict)
                                            and data.get("status") == "error"):
            raise StageError("rate_limited", "Cobalt: HTTP 429 Too Many Requests",
                             retryable=True, retry_after=rate_limit_wait(resp.headers))
        if not isinstance(data, dict) or "status" not in data:
            transient = resp.status_code >= 500
            raise StageError("cobalt_error" if transient else "cobalt_protocol",
                             f"Cobalt answered HTTP {resp.status_code} without a status",
                             retryable=transient)
        return self._reply(data, resp.headers)

    @staticmethod
    def _reply(data: dict[str, Any], headers: httpx.Headers) -> CobaltReply:
        status = data.get("status")
        if status in ("tunnel", "redirect", "stream"):
            if not isinstance(data.get("url"), str):
                raise StageError("cobalt_protocol", f"Cobalt {status} without a url")
            return CobaltReply("tunnel" if status == "stream" else str(status),
                               [CobaltItem(data["url"], data.get("filename"))], data)
        if status == "picker":
            items = [CobaltItem(p["url"], None, p.get("type"))
                     for p in data.get("picker") or [] if isinstance(p, dict)
                     and isinstance(p.get("url"), str)]
            if not items and isinstance(data.get("audio"), str):
                items = [CobaltItem(data["audio"], data.get("audioFilename"), "audio")]
            if not items:
                raise StageError("no_media", "Cobalt picker with no items")
            return CobaltReply("picker", items, data)
        if status == "local-processing":
            return CobaltReply("local-processing", [], data)
        if status == "error":
            err: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else {}
            code = str(err.get("code") or "error.api.unknown")
            reason, transient = error_reason(code)
            context: dict[str, Any] = err["context"] if isinstance(err.get("context"),
                                                                   dict) else {}
            wait = rate_limit_wait(headers)
            if wait is None and reason == "rate_limited" and \
                    isinstance(context.get("limit"), int | float):
                wait = float(context["limit"])
            raise StageError(reason, f"Cobalt: {code}", retryable=transient, retry_after=wait)
        raise StageError("cobalt_protocol", f"Cobalt answered an unknown status {status!r}")

    async def server_info(self) -> ServerInfo:
        """``GET /``: version and services. Raises CobaltUnavailable with an actionable line."""
        where = url_host(self.base_url)
        try:
            resp = await self.client.get(self.base_url)
            data = resp.json() if resp.status_code == 200 else None
        except httpx.HTTPError as exc:
            raise CobaltUnavailable(f"no Cobalt answers at {where} ({type(exc).__name__}); "
                                    "start it or fix COBALT_API_URL") from None
        except ValueError:
            data = None
        info = data.get("cobalt") if isinstance(data, dict) else None
        if isinstance(info, dict) and info.get("version"):
            services = [str(s) for s in info.get("services") or []]
            return ServerInfo(str(info["version"]), services, str(info.get("url") or ""))
        if await self._is_v7():
            raise CobaltUnavailable(f"Cobalt at {where} is an old v7 instance (/api/serverInfo);"
                                    " bookmark-enrich needs API v10 or newer")
        raise CobaltUnavailable(f"the server at {where} is not a Cobalt API instance "
                                "(GET / has no cobalt.version); check COBALT_API_URL")

    async def _is_v7(self) -> bool:
        try:
            resp = await self.client.get(self.base_url + "api/serverInfo")
            data = resp.json()
        except (httpx.HTTPError, ValueError):
            return False
        return resp.status_code == 200 and isinstance(data, dict) and "version" in data

    async def aclose(self) -> None:
        await self.client.aclose()


async def probe(settings: Settings, base_url: str,
                seconds: float) -> tuple[ServerInfo | None, str, float]:
    """(info or None, problem, milliseconds) for one address."""
    client = CobaltClient(settings, base_url, timeout=seconds)
    start = time.perf_counter()
    try:
        return await client.server_info(), "", (time.perf_counter() - start) * 1000
    except CobaltUnavailable as exc:
        return None, str(exc), (time.perf_counter() - start) * 1000
    finally:
        await client.aclose()
