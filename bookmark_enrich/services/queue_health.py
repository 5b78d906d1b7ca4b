"""`doctor --queue URL`: is the broker there, and which workers are alive (their heartbeats)."""

from __future__ import annotations

from typing import Any

from .._version import __version__
from ..errors import BookmarkEnrichError
from ..settings import Settings
from .health import Check, timed

__all__ = ["queue_checks"]


async def queue_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    """One line for the broker, one per live worker; nothing without ``--queue``."""
    url = options.get("queue")
    if not url:
        return []
    try:
        from ..queue import DEFAULT_QUEUE_NAME, list_workers, redact
    except BookmarkEnrichError as exc:  # the [queue] extra is missing
        return [Check("queue", "fail", str(exc))]
    name = options.get("queue_name") or DEFAULT_QUEUE_NAME
    try:
        workers, ms = await timed(list_workers(url, name=name))
    except BookmarkEnrichError as exc:
        return [Check("queue", "fail", str(exc))]
    usable = [w for w in workers if w.version == __version__]
    data = {"url": redact(url), "name": name,
            "workers": [{"host": w.host, "pid": w.pid, "version": w.version,
                         "concurrency": w.concurrency, "busy": w.busy, "done": w.done}
                        for w in workers]}
    if usable:
        detail = (f"{redact(url)} queue {name!r}: {len(usable)} live worker(s), "
                  f"{sum(w.concurrency for w in usable)} bookmarks at once")
    else:
        detail = (f"{redact(url)} queue {name!r}: answers, but no live worker of version "
                  f"{__version__} (start `bookmark-enrich worker --queue URL`)")
    checks = [Check("queue", "ok" if usable else "warn", detail, latency_ms=ms, data=data)]
    for w in workers:
        same = w.version == __version__
        checks.append(Check(
            f"worker {w.label}", "ok" if same else "warn",
            f"bookmark-enrich {w.version}, concurrency {w.concurrency}, busy {w.busy}, "
            f"done {w.done}" + ("" if same else f" (not {__version__}: gets no work)"),
            required=False))
    return checks
