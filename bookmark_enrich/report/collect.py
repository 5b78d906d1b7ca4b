"""What the HTML report and the metrics file show, read from the cache in bounded memory.

Counting, grouping and percentiles happen in SQLite (``GROUP BY``, ``json_each``,
``ORDER BY … LIMIT 1 OFFSET n``), so a cache of any size costs a handful of
queries and small result sets. Only hosts are counted in Python (SQLite cannot
take a URL apart), one row at a time.

A *scope* is either one run or the whole cache. A run's bookmarks are those it
touched (``bookmarks.last_seen`` inside the run's time window: every bookmark of a
run is written back, cached or not, and runs on one cache never overlap); what
its stages did is the results it wrote (``results.run_id``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..cache import ResultCache
from ..errors import UsageError
from ..redaction import MASK, redact_url
from ..stages import STAGES

__all__ = ["DEAD_REASONS", "Scope", "choose_scope", "failed_rows", "failure_reasons",
           "host_figures", "overview", "stage_table", "timeline"]

DEAD_REASONS = frozenset({"connection_error", "timeout", "dns_error", "connection_refused",
                          "host_unreachable"})
"""A host is dead when no fetch from it worked and every failure was one of these (the
connection failures, with DNS and refusals told apart since issue 19)."""
_HISTORY = 500
_SECRET_WORDS = ("key", "password", "secret", "token")


@dataclass(slots=True)
class Scope:
    """One run (``run`` is its row) or the whole cache (``run`` is None)."""

    run: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    """Runs, oldest first: the chosen one, or the latest few hundred for the whole cache."""
    memo: dict[str, Any] = field(default_factory=dict)
    """Figures read in one pass and shared by several sections (see ``summaries``)."""

    @property
    def label(self) -> str:
        return "the whole cache" if self.run is None else f"run {self.run['id']}"

    def window(self) -> tuple[float, float]:
        assert self.run is not None
        start = float(self.run["started_at"] or 0)
        end = float(self.run["finished_at"] or time.time())
        return start, end + 1.0

    def results(self, *extra: str) -> tuple[str, list[Any]]:
        """``FROM … WHERE …`` over this scope's results (alias ``r``, bookmarks ``b``)."""
        joins = "".join(f", {e}" for e in extra)
        if self.run is None:
            return f"FROM results r{joins} WHERE 1", []
        start, end = self.window()
        # CROSS JOIN keeps bookmarks the outer loop: the run's bookmarks are found by
        # last_seen (indexed), then their results by primary key (key, stage), instead
        # of every result of a stage in the cache being joined to its bookmark.
        return (f"FROM bookmarks b CROSS JOIN results r ON r.key = b.key{joins} "
                "WHERE b.last_seen >= ? AND b.last_seen <= ?", [start, end])

    def bookmarks(self) -> tuple[str, list[Any]]:
        """``FROM … WHERE …`` over this scope's bookmarks (alias ``b``)."""
        if self.run is None:
            return "FROM bookmarks b WHERE 1", []
        start, end = self.window()
        return "FROM bookmarks b WHERE b.last_seen >= ? AND b.last_seen <= ?", [start, end]


def _one(cache: ResultCache, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
    row = next(cache.iter_rows(sql, params), None)
    return None if row is None else next(iter(row.values()))


def choose_scope(cache: ResultCache, run_id: int | None = None,
                 whole: bool = False) -> Scope | None:
    """The run asked for (default: the latest), or the whole cache; None: no run yet."""
    if not _one(cache, "SELECT count(*) FROM sqlite_master WHERE name = 'runs'"):
        return None
    cols = ("id, source, format, options, started_at, finished_at, status, total, ok, "
            "partial, failed, cached, issues, wall_seconds")
    if whole:
        rows = list(cache.iter_rows(f"SELECT {cols} FROM runs ORDER BY id DESC LIMIT ?",
                                    (_HISTORY,)))
        if not rows and not _one(cache, "SELECT count(*) FROM results"):
            return None
        return Scope(None, rows[::-1])
    if run_id is None:
        rows = list(cache.iter_rows(f"SELECT {cols} FROM runs ORDER BY id DESC LIMIT 1"))
        if not rows:
            return None
    else:
        rows = list(cache.iter_rows(f"SELECT {cols} FROM runs WHERE id = ?", (run_id,)))
        if not rows:
            latest = _one(cache, "SELECT max(id) FROM runs")
            hint = f"runs go from 1 to {latest}" if latest else "this cache has no run yet"
            raise UsageError(f"no run {run_id} in the cache ({hint}; see `runs`)")
    return Scope(rows[0], rows)


# ------------------------------------------------------------------ overview
def masked_options(text: str | None) -> dict[str, Any]:
    """The settings a run recorded, with secrets and URL passwords masked (again)."""
    try:
        options = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(options, dict):
        return {}
    out: dict[str, Any] = {}
    for name, value in sorted(options.items()):
        if any(w in name.lower() for w in _SECRET_WORDS) and value not in (None, "", MASK):
            value = MASK
        elif isinstance(value, str) and "://" in value:
            value = redact_url(value)
        out[str(name)] = value
    return out


def bookmark_counts(cache: ResultCache, scope: Scope) -> dict[str, int]:
    """total / ok / partial / failed / cached: the run's own row, or per bookmark."""
    if scope.run is not None:
        return {k: int(scope.run.get(k) or 0)
                for k in ("total", "ok", "partial", "failed", "cached", "issues")}
    row = next(cache.iter_rows(
        "SELECT count(*) AS total, coalesce(sum(f = 0), 0) AS ok, "
        "coalesce(sum(f > 0 AND o > 0), 0) AS partial, "
        "coalesce(sum(f > 0 AND o = 0), 0) AS failed FROM (SELECT key, "
        "sum(status = 'failed') AS f, sum(status = 'ok') AS o FROM results GROUP BY key)"))
    return {**row, "cached": 0, "issues": sum(int(r.get("issues") or 0)
                                              for r in scope.history)}


def overview(cache: ResultCache, scope: Scope) -> dict[str, Any]:
    """The figures at the top of the report."""
    counts = bookmark_counts(cache, scope)
    run = scope.run
    if run is not None:
        wall = float(run.get("wall_seconds") or 0) or (
            float(run["finished_at"] or 0) - float(run["started_at"] or 0)
            if run.get("finished_at") else 0.0)
    else:
        wall = sum(float(r.get("wall_seconds") or 0) for r in scope.history)
    return {
        "scope": scope.label, "counts": counts, "wall_seconds": round(wall, 3),
        "rate": round(counts["total"] / wall, 2) if wall > 0 else None,
        "run": None if run is None else {
            "id": run["id"], "source": redact_url(str(run.get("source") or "")),
            "format": run.get("format"), "status": run.get("status"),
            "started_at": run.get("started_at"), "finished_at": run.get("finished_at")},
        "runs": len(scope.history),
        "options": masked_options(run.get("options")) if run is not None else {},
        "summarizers": [],  # filled by collection.summarizers (read with the tags)
    }


# -------------------------------------------------------------------- stages
def _stage_order(name: str) -> tuple[int, str]:
    order = [cls.name for cls in STAGES]
    return (order.index(name) if name in order else len(order), name)


def _quantile_index(n: int, q: float) -> int:
    return min(n - 1, int(q * (n - 1) + 0.5))


def stage_table(cache: ResultCache, scope: Scope) -> list[dict[str, Any]]:
    """Per stage: ok / skipped / failed / cached, median and p95 ms, retries.

    One pass: counts per (stage, status, fresh) with the durations of timed
    results grouped by value (a few thousand distinct ms at most), in duration
    order, so the percentiles are found by counting up.
    """
    frm, params = scope.results()
    fresh = "1" if scope.run is None else "r.run_id = ?"
    fresh_params = [] if scope.run is None else [scope.run["id"]]
    rows: dict[str, dict[str, Any]] = {}
    durations: dict[str, list[tuple[int, int]]] = {}
    for row in cache.iter_rows(
            f"SELECT r.stage, r.status, ({fresh}) AS fresh, CASE WHEN ({fresh}) AND "
            "r.status IN ('ok', 'failed') THEN coalesce(r.duration_ms, 0) END AS ms, "
            "count(*) AS n, "
            f"coalesce(sum(max(coalesce(r.attempts, 1) - 1, 0)), 0) AS retries {frm} "
            "GROUP BY 1, 2, 3, 4", [*fresh_params, *fresh_params, *params]):
        s = rows.setdefault(row["stage"], {"stage": row["stage"], "ok": 0, "skipped": 0,
                                           "failed": 0, "cached": 0, "retries": 0,
                                           "median_ms": None, "p95_ms": None})
        key = row["status"] if row["fresh"] or scope.run is None else "cached"
        s[key] = s.get(key, 0) + row["n"]
        if row["fresh"]:
            s["retries"] += row["retries"]
        if row["ms"] is not None:
            durations.setdefault(row["stage"], []).append((row["ms"], row["n"]))
    for stage, counts in durations.items():
        counts.sort()
        n = sum(c for _, c in counts)
        for name, q in (("median_ms", 0.5), ("p95_ms", 0.95)):
            index, seen = _quantile_index(n, q), 0
            for ms, c in counts:
                seen += c
                if seen > index:
                    rows[stage][name] = ms
                    break
    return [rows[k] for k in sorted(rows, key=_stage_order)]


# ------------------------------------------------------------------ failures
def failure_reasons(cache: ResultCache, scope: Scope) -> list[dict[str, Any]]:
    """(stage, reason, count) of the failed results, most frequent first."""
    frm, params = scope.results()
    rows = list(cache.iter_rows(
        f"SELECT r.stage, coalesce(r.reason, 'unknown') AS reason, count(*) AS count {frm} "
        "AND r.status = 'failed' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2", params))
    return sorted(rows, key=lambda r: (_stage_order(r["stage"]), -r["count"], r["reason"]))


def host_of(url: str | None) -> str:
    """The host of ``url`` without ``www.`` (string slicing: urlsplit is 5x slower)."""
    rest = (url or "").partition("://")[2]
    if not rest:
        return ""
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if netloc.startswith("["):
        return netloc.split("]", 1)[0] + "]"
    return netloc.split(":", 1)[0].lower().removeprefix("www.")


_ORIGIN = ("substr(b.url, 1, instr(b.url, '://') + 1 + "
           "instr(substr(b.url, instr(b.url, '://') + 3) || '/', '/'))")
"""``b.url`` up to (not including) the first ``/`` after ``://``: what :func:`host_of` reads."""


@dataclass(slots=True)
class _Host:
    bookmarks: int = 0
    fetched: int = 0
    failures: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


def host_figures(cache: ResultCache, scope: Scope, limit: int = 25
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(sites by bookmarks, hosts by failures with their reasons and whether dead)."""
    hosts: dict[str, _Host] = {}
    frm, params = scope.bookmarks()
    # SQLite groups by the URL up to its path (a few rows per host), Python takes the
    # host out of each group: no row per bookmark crosses into Python.
    for row in cache.iter_rows(
            f"SELECT {_ORIGIN} AS origin, count(*) AS n, coalesce(sum((SELECT r.status = 'ok' "
            "FROM results r WHERE r.key = b.key AND r.stage = 'fetch')), 0) AS fetched "
            f"{frm} GROUP BY 1", params):
        h = hosts.setdefault(host_of(row["origin"]) or "(no host)", _Host())
        h.bookmarks += row["n"]
        h.fetched += row["fetched"]
    rfrm, rparams = scope.results()
    joined = rfrm if scope.run is not None else rfrm.replace(
        "FROM results r", "FROM results r JOIN bookmarks b ON b.key = r.key", 1)
    for row in cache.iter_rows(
            f"SELECT {_ORIGIN} AS origin, r.stage, coalesce(r.reason, 'unknown') AS reason, "
            f"count(*) AS n {joined} AND r.status = 'failed' GROUP BY 1, 2, 3", rparams):
        h = hosts.setdefault(host_of(row["origin"]) or "(no host)", _Host())
        h.failures += row["n"]
        h.reasons[f"{row['stage']}: {row['reason']}"] += row["n"]
    sites = sorted(hosts.items(), key=lambda kv: (-kv[1].bookmarks, kv[0]))[:limit]
    failing = sorted(((k, v) for k, v in hosts.items() if v.failures),
                     key=lambda kv: (-kv[1].failures, kv[0]))[:limit]
    return (
        [{"site": k, "bookmarks": v.bookmarks} for k, v in sites],
        [{"host": k, "failures": v.failures, "bookmarks": v.bookmarks,
          "reasons": v.reasons.most_common(3),
          "dead": v.fetched == 0 and all(r.split(": ", 1)[1] in DEAD_REASONS
                                         for r in v.reasons if r.startswith("fetch: "))
          and any(r.startswith("fetch: ") for r in v.reasons)}
         for k, v in failing],
    )


def failed_rows(cache: ResultCache, scope: Scope, limit: int) -> Iterator[dict[str, Any]]:
    """Failed stage results with URL and title, grouped by stage and reason; at most ``limit``."""
    frm, params = scope.results()
    joined = frm if scope.run is not None else frm.replace(
        "FROM results r", "FROM results r JOIN bookmarks b ON b.key = r.key", 1)
    yield from cache.iter_rows(
        "SELECT b.url, coalesce((SELECT json_extract(e.output, '$.title') FROM results e "
        "WHERE e.key = r.key AND e.stage = 'extract' AND json_valid(e.output)), "
        "CASE WHEN json_valid(b.record) THEN json_extract(b.record, '$.title') END) AS title, "
        "r.stage, coalesce(r.reason, 'unknown') AS reason, r.error AS message "
        f"{joined} AND r.status = 'failed' ORDER BY r.stage, r.reason, b.url LIMIT ?",
        [*params, limit])


def failure_count(cache: ResultCache, scope: Scope) -> int:
    frm, params = scope.results()
    return int(_one(cache, f"SELECT count(*) {frm} AND r.status = 'failed'", params) or 0)


# ---------------------------------------------------------------- over time
def timeline(cache: ResultCache, scope: Scope) -> list[dict[str, Any]]:
    """Per minute of the run: bookmarks completed and how many of them had a failure."""
    frm, params = scope.bookmarks()
    start = scope.window()[0]
    return list(cache.iter_rows(
        "SELECT CAST((b.last_seen - ?) / 60 AS INTEGER) AS minute, count(*) AS done, "
        "sum(EXISTS (SELECT 1 FROM results r WHERE r.key = b.key AND r.status = 'failed')) "
        f"AS failed {frm} GROUP BY 1 ORDER BY 1", [start, *params]))
