"""The output record of one bookmark, built from its stages' outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..models import SCHEMA_VERSION, Bookmark, StageOutcome
from ..reasons import is_dead
from .base import Stage

__all__ = ["build_record", "record_status"]


def record_status(outcomes: dict[str, StageOutcome]) -> str:
    """ok: no stage failed; partial: some failed, some ok; failed: nothing ok."""
    statuses = [o.status for o in outcomes.values()]
    if "failed" not in statuses:
        return "ok"
    return "partial" if "ok" in statuses else "failed"


def _page_is_dead(outcomes: dict[str, StageOutcome]) -> bool:
    fetched = outcomes.get("fetch")
    return fetched is not None and fetched.status == "failed" and \
        is_dead(fetched.reason, fetched.message)


def build_record(
    bookmark: Bookmark,
    outcomes: dict[str, StageOutcome],
    stages: Iterable[Stage],
    *,
    include_text: bool = False,
    force_cached: bool = False,
) -> dict[str, Any]:
    """The output record (shape of :class:`models.OutputRecord`) as a plain dict."""
    enrichment: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    reports: dict[str, dict[str, Any]] = {}
    all_cached = True
    for stage in stages:
        o = outcomes.get(stage.name)
        if o is None:
            continue
        stage.contribute(o, enrichment, include_text=include_text)
        cached = o.cached or force_cached
        all_cached = all_cached and cached
        reports[stage.name] = {
            "status": o.status, "reason": o.reason, "cached": cached,
            "attempts": o.attempts, "duration_ms": int(o.duration * 1000),
        }
        if o.status == "failed":
            errors.append({"stage": stage.name, "reason": o.reason or "unknown",
                           "message": o.message or ""})
    return {
        "schema_version": SCHEMA_VERSION,
        "url": bookmark.url,
        "normalized_url": bookmark.normalized,
        "status": record_status(outcomes),
        "dead": _page_is_dead(outcomes),
        "position": bookmark.position,
        "cached": all_cached and bool(reports),
        "record": bookmark.record,
        "enrichment": enrichment,
        "errors": errors,
        "stages": reports,
    }
