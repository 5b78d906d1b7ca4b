"""Read the cache for people and scripts: run history, stage rates, failures, one bookmark.

Every function takes an open :class:`ResultCache` and returns plain data
(dicts and lists), which the CLI renders as tables or JSON. The selection of
failures (``--stage``, ``--reason``, ``--since``) is shared by ``runs --failed``,
``retry`` and ``cache prune --failed``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .cache import ResultCache
from .errors import UsageError
from .lock import process_alive
from .models import STAGE_NAMES
from .reasons import Reason, is_dead
from .urls import InvalidURL, bookmark_key, normalize_url, resolve_url

__all__ = [
    "DEAD_COLUMNS",
    "KNOWN_REASONS",
    "FailureFilter",
    "bookmark_detail",
    "dead_bookmarks",
    "failed_bookmarks",
    "failure_filter",
    "last_runs",
    "parse_age",
    "parse_since",
    "stage_rates",
    "status_report",
    "top_reasons",
]

KNOWN_REASONS = frozenset(Reason)
"""Reason codes the built-in stages use; codes found in the cache are accepted too."""

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``90d``, ``12h``, ``30m``, ``2w``, ``45s`` → seconds."""
    m = _AGE.match(text)
    if m is None:
        raise UsageError(f"bad age {text!r}: use a number and a unit, like 90d, 12h, 30m, 2w")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_since(text: str, now: float | None = None) -> float:
    """An age (``24h``: that long ago) or an ISO date/time (local time) → epoch seconds."""
    now = time.time() if now is None else now
    if _AGE.match(text):
        return now - parse_age(text)
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"bad --since {text!r}: use an age (24h, 7d) or a date "
                         "(2026-11-01, 2026-11-01T08:00)") from None
    return when.timestamp()


def stage_names() -> list[str]:
    """Every built-in stage, in pipeline order (without importing the stages: status is quick)."""
    return list(STAGE_NAMES)


@dataclass(slots=True)
class FailureFilter:
    """Which failed stage results to look at: all of them when nothing is given."""

    stages: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    since: float | None = None

    def where(self, alias: str = "r") -> tuple[str, list[Any]]:
        """SQL condition on the results table (aliased ``alias``) and its parameters."""
        conds = [f"{alias}.status = 'failed'"]
        params: list[Any] = []
        if self.stages:
            conds.append(f"{alias}.stage IN ({','.join('?' * len(self.stages))})")
            params += self.stages
        if self.reasons:
            conds.append(f"{alias}.reason IN ({','.join('?' * len(self.reasons))})")
            params += self.reasons
        if self.since is not None:
            conds.append(f"{alias}.finished_at >= ?")
            params.append(self.since)
        return " AND ".join(conds), params


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def failure_filter(cache: ResultCache, stage: str | None = None, reason: str | None = None,
                   since: str | None = None) -> FailureFilter:
    """Validate ``--stage a,b --reason x,y --since 24h``; unknown names are usage errors."""
    known_stages = stage_names()
    stages = _split(stage)
    for name in stages:
        if name not in known_stages:
            raise UsageError(f"unknown stage {name!r} (stages: {', '.join(known_stages)})")
    reasons = _split(reason)
    if reasons:
        in_cache = {r["reason"] for r in cache.iter_rows(
            "SELECT DISTINCT reason FROM results WHERE reason IS NOT NULL")}
        known = KNOWN_REASONS | in_cache
        for name in reasons:
            if name not in known:
                seen = sorted(r for r in in_cache if r)
                hint = f"failure reasons in this cache: {', '.join(seen)}" if seen else \
                    "this cache has no failures"
                raise UsageError(f"unknown reason {name!r} ({hint})")
    return FailureFilter(stages, reasons, parse_since(since) if since else None)


# ------------------------------------------------------------------- status
def _iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def last_runs(cache: ResultCache, limit: int = 10) -> list[dict[str, Any]]:
    """The latest runs, newest first, with duration and rate."""
    rows = list(cache.iter_rows(
        "SELECT id, source, format, started_at, finished_at, status, total, ok, partial, "
        "failed, cached, issues, wall_seconds, host, pid FROM runs ORDER BY id DESC LIMIT ?",
        (limit,)))
    for row in rows:
        if row["status"] == "running":
            settle_run(cache, row)
        wall = row.get("wall_seconds") or (
            (row["finished_at"] or 0) - (row["started_at"] or 0) if row["finished_at"] else None)
        row["duration_s"] = round(wall, 3) if wall else None
        total = row.get("total") or 0
        row["rate"] = round(total / wall, 2) if wall else None
        row["started"] = _iso(row["started_at"])
        row["finished"] = _iso(row["finished_at"])
    return rows


def settle_run(cache: ResultCache, row: dict[str, Any]) -> None:
    """A run marked running whose process is gone (``kill -9``, a crash) is ``killed``,
    with what it got done counted from the cache."""
    if row.get("host") != socket.gethostname() or not row.get("pid") or \
            process_alive(row["pid"], row["started_at"] or 0):
        return
    row["status"] = "killed"
    counts = {"total": 0, "ok": 0, "partial": 0, "failed": 0}
    for done in cache.iter_rows(
            "SELECT sum(status = 'failed') AS failed, sum(status = 'ok') AS ok "
            "FROM results WHERE run_id = ? GROUP BY key", (row["id"],)):
        counts["total"] += 1
        counts["failed" if not done["ok"] else "partial" if done["failed"] else "ok"] += 1
    row.update(counts, cached=0)


def stage_rates(cache: ResultCache) -> list[dict[str, Any]]:
    """Per stage, over the whole cache: ok / failed / skipped and the success rate."""
    counts: dict[str, dict[str, int]] = {}
    for row in cache.iter_rows(
            "SELECT stage, status, count(*) AS n FROM results GROUP BY stage, status"):
        counts.setdefault(row["stage"], {})[row["status"]] = row["n"]
    order = {name: i for i, name in enumerate(stage_names())}
    out = []
    for stage in sorted(counts, key=lambda s: (order.get(s, len(order)), s)):
        c = counts[stage]
        ok, failed = c.get("ok", 0), c.get("failed", 0)
        out.append({"stage": stage, "ok": ok, "failed": failed, "skipped": c.get("skipped", 0),
                    "success_rate": round(ok / (ok + failed), 4) if ok + failed else None})
    return out


def top_reasons(cache: ResultCache, limit: int = 10) -> list[dict[str, Any]]:
    """The most frequent (stage, reason) of failures in the cache."""
    return list(cache.iter_rows(
        "SELECT stage, reason, count(*) AS count FROM results WHERE status = 'failed' "
        "GROUP BY stage, reason ORDER BY count DESC, stage, reason LIMIT ?", (limit,)))


def status_report(cache: ResultCache, runs: int = 10) -> dict[str, Any]:
    """Everything ``status`` shows, as one JSON-able document."""
    counts = {t: next(cache.iter_rows(f"SELECT count(*) AS n FROM {t}"))["n"]
              for t in ("bookmarks", "results", "runs")}
    dead = list(dead_bookmarks(cache))
    rescued = sum(1 for d in dead if d["rescued"])
    return {"cache": str(cache.path), "counts": counts, "runs": last_runs(cache, runs),
            "stages": stage_rates(cache), "reasons": top_reasons(cache),
            "dead": {"dead": len(dead), "rescued": rescued, "not_rescued": len(dead) - rescued}}


# --------------------------------------------------------------------- show
def key_for(url: str) -> str:
    """The cache key of a URL as a run computes it."""
    try:
        return bookmark_key(normalize_url(resolve_url(url)))
    except InvalidURL as exc:
        raise UsageError(str(exc)) from None


def bookmark_detail(cache: ResultCache, url: str) -> dict[str, Any] | None:
    """Everything cached for one bookmark (None: the cache has never seen it)."""
    key = key_for(url)
    found = list(cache.iter_rows(
        "SELECT key, url, normalized, record, source, position, first_seen, last_seen "
        "FROM bookmarks WHERE key = ?", (key,)))
    stages = list(cache.iter_rows(
        "SELECT r.stage, r.status, r.reason, r.error, r.attempts, r.duration_ms, "
        "r.finished_at, r.run_id, r.output FROM results r WHERE r.key = ?", (key,)))
    if not found and not stages:
        return None
    order = {name: i for i, name in enumerate(stage_names())}
    stages.sort(key=lambda s: (order.get(s["stage"], len(order)), s["stage"]))
    for s in stages:
        s["output"] = json.loads(s["output"]) if s["output"] else {}
        s["finished"] = _iso(s.pop("finished_at"))
    bookmark: dict[str, Any] = found[0] if found else {"key": key, "url": url}
    if "record" in bookmark:
        bookmark["record"] = json.loads(bookmark["record"]) if bookmark["record"] else {}
        bookmark["first_seen"] = _iso(bookmark["first_seen"])
        bookmark["last_seen"] = _iso(bookmark["last_seen"])
    enrichment: dict[str, Any] = {}
    for s in stages:
        if s["status"] == "ok":
            enrichment.update(s["output"])
    return {"bookmark": bookmark, "stages": stages, "enrichment": enrichment}


# ------------------------------------------------------------------ failures
def failed_bookmarks(cache: ResultCache, flt: FailureFilter,
                     limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Failed stage results with their bookmark's URL, newest first."""
    cond, params = flt.where("r")
    sql = ("SELECT b.url, r.stage, r.reason, r.error, r.attempts, r.finished_at, r.run_id, "
           "b.source, b.position FROM results r LEFT JOIN bookmarks b ON b.key = r.key "
           f"WHERE {cond} ORDER BY r.finished_at DESC")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    for row in cache.iter_rows(sql, params):
        row["finished"] = _iso(row.pop("finished_at"))
        yield row


# --------------------------------------------------------------------- dead
DEAD_COLUMNS = ("url", "reason", "rescued", "snapshot_url", "snapshot_timestamp",
                "first_seen_dead", "last_seen_dead", "message")


def dead_bookmarks(cache: ResultCache, seen_between: tuple[float, float] | None = None
                   ) -> Iterator[dict[str, Any]]:
    """Bookmarks whose page is dead (see :func:`reasons.is_dead`), with their snapshot.

    A bookmark is dead when its latest fetch failed with a dead-link reason.
    ``first_seen_dead`` and ``last_seen_dead`` are the first and the last fetch that
    found it dead since it was last seen alive (the cache's ``dead_links`` table); a
    cache from before that table reports the latest fetch as both. ``seen_between``
    keeps the bookmarks a run listed (its time window), as the report scopes a run.
    """
    history = bool(next(cache.iter_rows(
        "SELECT count(*) AS n FROM sqlite_master WHERE name = 'dead_links'"))["n"])
    seen = ("d.first_dead, d.last_dead" if history
            else "f.finished_at AS first_dead, f.finished_at AS last_dead")
    sql = (f"SELECT b.url, f.reason, f.error, f.finished_at AS fetched_at, {seen}, "
           "a.status AS archive_status, a.output AS archive_output FROM results f "
           "JOIN bookmarks b ON b.key = f.key "
           "LEFT JOIN results a ON a.key = f.key AND a.stage = 'archive' "
           + ("LEFT JOIN dead_links d ON d.key = f.key " if history else "")
           + "WHERE f.stage = 'fetch' AND f.status = 'failed'"
           + (" AND b.last_seen >= ? AND b.last_seen <= ?" if seen_between else "")
           + " ORDER BY b.url")
    for row in cache.iter_rows(sql, seen_between or ()):
        if not is_dead(row["reason"], row["error"]):
            continue
        snapshot: dict[str, Any] = {}
        if row["archive_status"] == "ok" and row["archive_output"]:
            snapshot = json.loads(row["archive_output"]).get("archived") or {}
        fetched = row["fetched_at"]
        yield {
            "url": row["url"], "reason": row["reason"], "rescued": bool(snapshot),
            "snapshot_url": snapshot.get("snapshot_url"),
            "snapshot_timestamp": snapshot.get("timestamp"),
            "first_seen_dead": _iso(row["first_dead"] or fetched),
            "last_seen_dead": _iso(row["last_dead"] or fetched),
            "message": row["error"],
        }
