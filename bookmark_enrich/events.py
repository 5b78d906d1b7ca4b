"""Pipeline events. Progress bars, log lines and the summary all subscribe to these."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BookmarkDone",
    "Event",
    "InputProblem",
    "Notice",
    "RunFinished",
    "RunStarted",
    "RunStats",
    "StageDone",
    "Subscriber",
    "Tick",
]


@dataclass(slots=True)
class RunStarted:
    source: str
    format: str
    stages: list[str]
    total: int | None
    """Expected number of records, when the source can tell cheaply."""


@dataclass(slots=True)
class InputProblem:
    position: int
    message: str
    fatal: bool = False


@dataclass(slots=True)
class Notice:
    """A one-off line for the user (what was discovered, a stage switched off)."""

    message: str
    level: str = "info"


@dataclass(slots=True)
class StageDone:
    stage: str
    status: str
    reason: str | None
    cached: bool


@dataclass(slots=True)
class Tick:
    """Sent every second during a run: what is in flight, finished or not."""

    in_flight: int
    oldest_url: str | None
    oldest_age: float


@dataclass(slots=True)
class BookmarkDone:
    url: str
    status: str
    cached: bool


@dataclass
class RunStats:
    """Counts for the summary, the runs table and the exit code."""

    total: int = 0
    ok: int = 0
    partial: int = 0
    failed: int = 0
    cached: int = 0
    issues: int = 0
    fatal_issues: int = 0
    interrupted: bool = False
    unfinished: int = 0
    """Bookmarks cancelled mid-way by a stop: not cached, the next run does them."""
    stop_signal: int | None = None
    """The signal that stopped the run (SIGINT, SIGTERM), if one did."""
    wall_seconds: float = 0.0
    stage_counts: dict[str, Counter[str]] = field(default_factory=dict)
    """Per stage: ok / failed / skipped / cached counts."""
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(stage, reason) → count of failures."""
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per stage figures from Stage.metrics()."""
    issue_kinds: Counter[str] = field(default_factory=Counter)
    """Skipped input records by kind (a message up to its first colon)."""
    run_id: int | None = None
    """The run's row in the cache's runs table (reports and metrics read it back)."""

    def observe(self, event: Event) -> None:
        if isinstance(event, BookmarkDone):
            self.total += 1
            if event.status == "ok":
                self.ok += 1
            elif event.status == "partial":
                self.partial += 1
            else:
                self.failed += 1
            if event.cached:
                self.cached += 1
        elif isinstance(event, StageDone):
            counts = self.stage_counts.setdefault(event.stage, Counter())
            counts["cached" if event.cached else event.status] += 1
            if event.status == "failed":
                self.reasons[(event.stage, event.reason or "unknown")] += 1
        elif isinstance(event, InputProblem):
            self.issues += 1
            self.issue_kinds[event.message.split(":", 1)[0]] += 1
            if event.fatal:
                self.fatal_issues += 1

    @property
    def rate(self) -> float:
        return self.total / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def counts(self) -> dict[str, Any]:
        return {
            "total": self.total, "ok": self.ok, "partial": self.partial, "failed": self.failed,
            "cached": self.cached, "issues": self.issues,
            "wall_seconds": round(self.wall_seconds, 3),
        }


@dataclass(slots=True)
class RunFinished:
    stats: RunStats


Event = RunStarted | InputProblem | Notice | StageDone | BookmarkDone | Tick | RunFinished


Subscriber = Callable[[Any], None]
