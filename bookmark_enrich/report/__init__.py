"""The HTML report of a run (or the whole cache) and a run's Prometheus metrics.

:func:`write_report` streams one self-contained page (inline CSS, SVG charts, a
few lines of script for filtering; no network request) into ``target``,
replaced atomically; :func:`write_run_metrics` writes the textfile the
node_exporter collector reads.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from ..cache import ResultCache
from ..errors import UsageError
from ..fileio import atomic_replace
from .collect import Scope, choose_scope
from .page import render, render_empty

__all__ = ["DEFAULT_REPORT", "Scope", "choose_scope", "write_report", "write_run_metrics"]

DEFAULT_REPORT = Path("bookmark-enrich-report.html")


def write_report(cache: ResultCache | None, target: Path, *, run_id: int | None = None,
                 whole: bool = False, cache_path: str = "",
                 failures_limit: int = 1000) -> dict[str, Any]:
    """Write the report of run ``run_id`` (default: the latest) or of the ``whole`` cache.

    ``cache`` None (no cache file yet) or a cache without runs gives the page that
    says there is nothing yet. Returns what was written: path, scope, bytes.
    """
    scope = choose_scope(cache, run_id, whole) if cache is not None else None
    now = time.time()
    try:
        _write(cache, scope, target, cache_path, failures_limit, now)
    except OSError as exc:
        raise UsageError(f"{target}: cannot write the report: {exc.strerror or exc}") from None
    return {"report": str(target), "scope": scope.label if scope else None,
            "bytes": target.stat().st_size, "seconds": round(time.time() - now, 3)}


def _write(cache: ResultCache | None, scope: Scope | None, target: Path, cache_path: str,
           failures_limit: int, now: float) -> None:
    with atomic_replace(target, suffix=".html.tmp", mode=0o600) as raw:
        # Private: titles, URLs and summaries of the owner's bookmarks.
        out = io.TextIOWrapper(raw, encoding="utf-8", newline="\n",
                               write_through=False)
        try:
            if cache is None or scope is None:
                render_empty(out, cache_path, now)
            else:
                render(out, cache, scope, cache_path=cache_path,
                       failures_limit=failures_limit, now=now)
            out.flush()
        finally:
            out.detach()


def write_run_metrics(cache: ResultCache, run_id: int | None, target: Path) -> int:
    """Write the metrics of run ``run_id`` (default: the latest) to ``target``."""
    from .metrics import write_metrics

    scope = choose_scope(cache, run_id)
    if scope is None:
        raise UsageError("no run in the cache yet: nothing to measure")
    try:
        return write_metrics(cache, scope, target)
    except OSError as exc:
        raise UsageError(f"{target}: cannot write the metrics: {exc.strerror or exc}") from None
