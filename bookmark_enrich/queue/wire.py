"""The JSON a coordinator and its workers exchange: batches out, replies back.

A batch is ``{"version", "run", "items": [{"bookmark", "cached", "run"}]}``; a reply
is ``{"version", "worker", "items": [{"key", "outcomes"}]}``, or a refusal
(``{"refused": "version", ...}``) or ``{"abandoned": true}`` when the batch's
coordinator is gone. Only the cacheable part of an outcome travels.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .._version import __version__
from ..errors import UsageError
from ..models import Bookmark, StageOutcome

__all__ = [
    "VersionMismatch",
    "abandoned_reply",
    "batch_payload",
    "bookmark_from_json",
    "bookmark_to_json",
    "dumps",
    "outcome_from_json",
    "outcome_to_json",
    "refusal",
    "results_reply",
    "version_mismatch",
]

_OUTCOME_FIELDS = ("status", "output", "reason", "message", "attempts", "duration",
                   "fingerprint", "finished_at", "text")


class VersionMismatch(UsageError):
    """A worker and a coordinator of different tool versions met (exit 2)."""


def dumps(value: Any) -> str:
    """Compact JSON; records from databases may hold dates or decimals, read as text."""
    return json.dumps(value, default=str, separators=(",", ":"))


def outcome_to_json(outcome: StageOutcome) -> dict[str, Any]:
    """The cacheable part of an outcome (never its in-memory payload)."""
    return {name: getattr(outcome, name) for name in _OUTCOME_FIELDS}


def outcome_from_json(data: Mapping[str, Any], *, cached: bool = False) -> StageOutcome:
    """The outcome back; ValueError for a status that is not one of ours."""
    values = {name: data[name] for name in _OUTCOME_FIELDS if name in data}
    if values.get("status") not in ("ok", "failed", "skipped"):
        raise ValueError(f"bad outcome status {values.get('status')!r}")
    return StageOutcome(**values, cached=cached)


def bookmark_to_json(bookmark: Bookmark) -> dict[str, Any]:
    """The bookmark without its source identity (a database key stays with the coordinator)."""
    return {"url": bookmark.url, "normalized": bookmark.normalized, "key": bookmark.key,
            "record": bookmark.record, "position": bookmark.position}


def bookmark_from_json(data: Mapping[str, Any]) -> Bookmark:
    return Bookmark(url=data["url"], normalized=data["normalized"], key=data["key"],
                    record=dict(data.get("record") or {}), position=int(data["position"]))


def batch_payload(run: str, items: Iterable[tuple[Bookmark, Mapping[str, StageOutcome],
                                                  Iterable[str]]],
                  policy: Mapping[str, Any] | None = None) -> str:
    """One message: each bookmark with the cached outcomes later stages read, and what to run.

    ``policy`` is the coordinator's network policy (what bookmarks may reach): the
    worker applies it, not its own.
    """
    return dumps({
        "version": __version__,
        "run": run,
        "policy": dict(policy) if policy is not None else None,
        "items": [{"bookmark": bookmark_to_json(bookmark),
                   "cached": {n: outcome_to_json(o) for n, o in cached.items()},
                   "run": sorted(to_run)} for bookmark, cached, to_run in items],
    })


def results_reply(worker: str, items: list[dict[str, Any]]) -> str:
    return dumps({"version": __version__, "worker": worker, "items": items})


def refusal(worker: str) -> str:
    """A worker's answer to a batch of another version: it runs nothing."""
    return dumps({"refused": "version", "version": __version__, "worker": worker})


def abandoned_reply() -> str:
    return dumps({"abandoned": True})


def version_mismatch(reply: Mapping[str, Any]) -> VersionMismatch:
    """The coordinator's error for a worker's refusal."""
    return VersionMismatch(
        f"worker {reply.get('worker')} runs bookmark-enrich {reply.get('version')}, "
        f"this coordinator {__version__}: versions must match (results would differ)")
