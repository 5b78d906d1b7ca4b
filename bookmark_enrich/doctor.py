"""`doctor`: run every health check at once, each with a timeout.

Each service client has its own check (:func:`providers` lists them in order);
this module adds the checks it owns (the cache file, a SOURCE, which stages are
on, risky settings) and runs every provider concurrently. A provider that hangs
or raises costs its own line, never the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import BookmarkEnrichError
from .services.archive import archive_checks
from .services.embeddings import embedding_checks
from .services.health import Check, CheckProvider
from .services.llm import llm_checks
from .services.mediabackend import media_checks
from .services.storage import s3_checks
from .settings import Settings
from .stages import STAGES
from .summarizers.select import describe_choice

__all__ = ["DoctorReport", "providers", "run_doctor"]

DEFAULT_TIMEOUT = 5.0


@dataclass(slots=True)
class DoctorReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """True when no required check failed."""
        return not any(c.status == "fail" and c.required for c in self.checks)

    @property
    def warned(self) -> bool:
        """True when some check warned (``doctor --strict`` fails then)."""
        return any(c.status == "warn" for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


def _queue_checks() -> CheckProvider:
    """The queue's check, or a note when the [queue] extra is not installed."""
    try:
        from .queue import queue_checks
    except ImportError as exc:
        missing = f"{type(exc).__name__}: {exc}"

        async def not_installed(settings: Settings, options: dict[str, Any]) -> list[Check]:
            if not options.get("queue"):
                return []
            return [Check("queue", "fail", f"the [queue] extra is not installed ({missing}); "
                          "pip install 'bookmark-enrich[queue]'")]

        return not_installed
    return queue_checks


def providers() -> list[tuple[str, CheckProvider]]:
    """Every check provider, in the order doctor prints them."""
    return [
        ("cache", cache_checks),
        ("source", source_checks),
        ("summarizer", describe_choice),
        ("llm", llm_checks),
        ("cobalt", media_checks),
        ("s3", s3_checks),
        ("archive", archive_checks),
        ("embeddings", embedding_checks),
        ("queue", _queue_checks()),
        ("stages", stage_checks),
        ("settings", settings_checks),
    ]


async def _run_provider(name: str, provider: CheckProvider, settings: Settings,
                        options: dict[str, Any],
                        timeout: float) -> list[Check]:  # noqa: ASYNC109 - per provider
    start = time.perf_counter()
    try:
        checks = await asyncio.wait_for(provider(settings, options), timeout)
    except TimeoutError:
        return [Check(name, "fail", f"no answer within {timeout:g} s (--timeout)",
                      latency_ms=timeout * 1000)]
    except BookmarkEnrichError as exc:
        return [Check(name, "fail", str(exc))]
    except Exception as exc:  # a bug in one check costs that line only
        return [Check(name, "fail", f"check crashed: {type(exc).__name__}: {exc}")]
    elapsed = (time.perf_counter() - start) * 1000
    if len(checks) == 1 and checks[0].latency_ms is None and checks[0].status != "skip":
        checks[0].latency_ms = elapsed
    return checks


async def run_doctor(
    settings: Settings, *, deep: bool = False,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - per provider, not for the call
    source: str | None = None, only: Iterable[str] | None = None, **options: Any,
) -> DoctorReport:
    """Run every provider concurrently (each within ``timeout`` seconds)."""
    opts = {"deep": deep, "timeout": timeout, "source": source, **options}
    wanted = None if only is None else set(only)
    chosen = [(n, p) for n, p in providers() if wanted is None or n in wanted]
    results = await asyncio.gather(*(_run_provider(n, p, settings, opts, timeout)
                                     for n, p in chosen))
    return DoctorReport([c for group in results for c in group])


# ------------------------------------------------------------------ stages
async def stage_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    """One line per stage: on, or skipped because the settings turn it off."""
    checks = []
    for cls in STAGES:
        on = cls.enabled(settings)
        checks.append(Check(f"stage {cls.name}", "ok" if on else "skip",
                            "enabled" if on else "disabled by the settings", required=False))
    return checks


# ------------------------------------------------------------------- cache
def _size(path: Path) -> int:
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def check_cache_file(path: Path, deadline: float) -> Check:
    """Writable, ``PRAGMA integrity_check``, size and row counts (never creates the file)."""
    name = "cache"
    if str(path) == ":memory:":
        return Check(name, "ok", "in memory (nothing kept)")
    if not path.exists():
        folder = next((p for p in path.parents if p.exists()), Path("/"))
        if not os.access(folder, os.W_OK):
            return Check(name, "fail", f"{path}: no cache yet and {folder} is not writable")
        return Check(name, "ok", f"{path}: no cache yet; the first run creates it",
                     data={"path": str(path), "exists": False})
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        return Check(name, "fail", f"{path}: not writable (file or folder)",
                     data={"path": str(path)})
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error as exc:
        return Check(name, "fail", f"{path}: cannot open: {exc}")
    try:
        # Stop a long integrity check at the deadline instead of outliving doctor.
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            verdict = [r[0] for r in conn.execute("PRAGMA integrity_check(5)")]
        except sqlite3.OperationalError as exc:
            if "interrupt" in str(exc):
                return Check(name, "warn", f"{path}: integrity check unfinished within the "
                             "timeout (raise --timeout)", required=False)
            raise
        if verdict != ["ok"]:
            lines = [ln.strip() for v in verdict for ln in str(v).splitlines()
                     if ln.strip() and not ln.startswith("***")]
            return Check(name, "fail", f"{path}: damaged: {'; '.join(lines[:3])}; keep it and "
                         "restore a backup or move it aside", data={"path": str(path)})
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        counts = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                  for t in ("bookmarks", "results", "runs") if t in tables}
    except sqlite3.DatabaseError as exc:
        return Check(name, "fail", f"{path}: not a usable cache: {exc}", data={"path": str(path)})
    finally:
        conn.close()
    size = _size(path)
    detail = f"{path}: {_mb(size)}, integrity ok, " + ", ".join(
        f"{n} {t}" for t, n in counts.items())
    return Check(name, "ok", detail, data={"path": str(path), "bytes": size, "rows": counts})


async def cache_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    return [await asyncio.to_thread(_timed_call, check_cache_file, Path(settings.cache),
                                    time.monotonic() + timeout * 0.9)]


def _timed_call(fn: Any, *args: Any) -> Check:
    """Run a blocking check in its thread and time it there (the loop may be busy)."""
    start = time.perf_counter()
    check: Check = fn(*args)
    check.latency_ms = (time.perf_counter() - start) * 1000
    return check


# ------------------------------------------------------------------ source
def check_source(spec: str, options: dict[str, Any]) -> Check:
    """Open SOURCE as a run would: file readable and its format known, or DB table usable."""
    from .sources import open_source

    db_opts = {k: v for k in ("table", "id_column", "url_column", "where")
               if (v := options.get(k)) is not None}
    try:
        src = open_source(spec, input_format=options.get("input_format"),
                          url_field=options.get("url_field"), **db_opts)
    except BookmarkEnrichError as exc:
        return Check("source", "fail", str(exc))
    try:
        detail = f"{src.display}: format {src.format_name}"
        data: dict[str, Any] = {"source": src.display, "format": src.format_name}
        columns = getattr(src, "columns", None)
        if columns:
            detail += (f", id column {getattr(src, 'id_column', None)}, URL column "
                       f"{getattr(src, 'url_column', None)}, {len(columns)} columns")
            data["columns"] = columns
        total = src.estimate_total()
        if total is not None:
            detail += f", about {total} records"
            data["records"] = total
    finally:
        src.close()
    return Check("source", "ok", detail, data=data)


async def source_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    spec = options.get("source")
    if not spec:
        return []
    if spec == "-":
        return [Check("source", "skip", "stdin: nothing to check before the run",
                      required=False)]
    return [await asyncio.to_thread(_timed_call, check_source, spec, options)]


# ---------------------------------------------------------------- settings
def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def risky_settings(settings: Settings) -> list[Check]:
    """Warnings: default S3 credentials, plain HTTP off this machine, keys sent in the clear."""
    found: list[Check] = []
    services_urls = [("LLM", settings.lm_studio_api_url, settings.lm_studio_api_key,
                      "LM_STUDIO_API_KEY"),
                     ("Cobalt", settings.cobalt_api_url, settings.cobalt_api_key,
                      "COBALT_API_KEY"),
                     ("S3", settings.s3_endpoint, settings.s3_secret_key, "S3_SECRET_KEY")]
    for label, url, key, key_name in services_urls:
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme != "http" or _is_loopback(parts.hostname):
            continue
        if key is not None and key.get_secret_value():
            found.append(Check(f"security {label.lower()}", "warn",
                               f"{key_name} is sent over plain HTTP to {parts.hostname}; "
                               "use https://", required=False))
        else:
            found.append(Check(f"security {label.lower()}", "warn",
                               f"plain HTTP to {parts.hostname} (not this machine); "
                               "prefer https://", required=False))
    access = settings.s3_access_key.get_secret_value() if settings.s3_access_key else None
    secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
    if settings.s3_endpoint and "minioadmin" in (access, secret):
        found.append(Check("security s3", "warn", "default credentials (minioadmin); "
                           "create a key for bookmark-enrich", required=False))
    elif settings.s3_endpoint and not (access and secret):
        found.append(Check("security s3", "warn", "S3_ENDPOINT is set but S3_ACCESS_KEY or "
                           "S3_SECRET_KEY is empty", required=False))
    return found


def exposed_files(settings: Settings) -> list[Check]:
    """Warnings: a .env or cache file other users of this machine can read."""
    found: list[Check] = []
    for label, path in ((".env", Path(".env")), ("cache", settings.cache)):
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & 0o044:
            found.append(Check(f"security {label}", "warn",
                               f"{path} is readable by other users (mode {mode & 0o777:o}); "
                               f"chmod 600 {path}", required=False))
    return found


def exposed_network(settings: Settings, queue: str | None) -> list[Check]:
    """Warnings: bookmarks allowed onto private networks; a Redis queue without a password."""
    found: list[Check] = []
    if os.environ.get("BOOKMARK_ENRICH_ALLOW_PRIVATE_NETWORK", "").strip().lower() in (
            "1", "true", "yes", "on"):
        found.append(Check("security network", "warn",
                           "BOOKMARK_ENRICH_ALLOW_PRIVATE_NETWORK is set in the environment: any "
                           "bookmark may read this machine's and its network's services",
                           required=False))
    for item in settings.allow_hosts:
        if item.startswith("169.254") or item.lower().startswith("fe80"):
            found.append(Check("security network", "warn",
                               f"--allow-host {item} opens link-local addresses (cloud "
                               "metadata) to bookmarks", required=False))
    if queue:
        parts = urlsplit(queue)
        if parts.password is None and parts.scheme != "unix" and \
                not _is_loopback(parts.hostname):
            found.append(Check("security queue", "warn",
                               f"the Redis queue at {parts.hostname} has no password; anyone "
                               "on the network can read and inject work", required=False))
    return found


async def settings_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    return [*risky_settings(settings), *exposed_files(settings),
            *exposed_network(settings, options.get("queue"))]
