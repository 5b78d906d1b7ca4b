"""Which media back end a run would use (Cobalt, yt-dlp or none), and why: for `doctor`.

The media stage makes the same choice at the start of a run; both read the
same settings and the same probe.
"""

from __future__ import annotations

from typing import Any

from ..redaction import url_host
from ..settings import Settings
from . import ytdlp
from .cobalt import probe
from .health import Check

__all__ = ["PROBE_SECONDS", "describe_backend", "media_checks"]

PROBE_SECONDS = 1.0
"""How long an unconfigured Cobalt at the default address gets to answer."""


async def describe_backend(settings: Settings, seconds: float = 5.0) -> Check:
    """For ``doctor``: which media back end a run would use, and why."""
    def check(status: Any, detail: str, backend: str | None, why: str, *,
              required: bool = True, **extra: Any) -> Check:
        return Check("cobalt", status, detail, required=required,
                     data={"backend": backend, "why": why, **extra})

    if not settings.enable_media_download:
        return check("skip", "media off (ENABLE_MEDIA_DOWNLOAD=false or --no-media)", None,
                     "disabled", required=False)
    if settings.media_backend == "ytdlp":
        if ytdlp.available():
            return check("ok", "media back end: yt-dlp (--media-backend ytdlp)", "ytdlp",
                         "chosen")
        return check("fail", "--media-backend ytdlp but yt-dlp is not installed; a run "
                     "exits 3", "ytdlp", "missing")
    url = settings.cobalt_api_url or settings.cobalt_probe_url
    configured = bool(settings.cobalt_api_url)
    info, problem, ms = (await probe(settings, url, seconds if configured else PROBE_SECONDS)
                         if url.strip() else (None, "no address to probe", 0.0))
    if info is not None:
        where = "COBALT_API_URL" if configured else "found at the default address"
        result = check("ok", f"Cobalt {info.version} at {url_host(url)} ({where}); "
                       f"{len(info.services)} services", "cobalt",
                       "configured" if configured else "discovered",
                       version=info.version, services=info.services)
        result.latency_ms = ms
        return result
    if configured or settings.media_backend == "cobalt":
        return check("fail", f"{problem}; a run exits 3 (or records failures with "
                     "--keep-going)", "cobalt", "configured_down")
    if ytdlp.available():
        return check("ok", f"media back end: yt-dlp (no Cobalt at {url_host(url)})", "ytdlp",
                     "fallback", required=False)
    return check("warn", f"media downloads off: no Cobalt at {url_host(url)} and no yt-dlp",
                 None, "none", required=False)


async def media_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    """Which media back end a run would use and why; the configured Cobalt's version."""
    return [await describe_backend(settings, float(options.get("timeout") or 5.0))]
