"""The one small interface every stage implements, and the registry of stages."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from ..errors import StageError
from ..models import Bookmark, StageOutcome
from ..settings import Settings

__all__ = [
    "STAGE_TYPES",
    "Stage",
    "StageContext",
    "fingerprint_of",
    "register_stage",
    "retry_delay",
    "with_retries",
]

T = TypeVar("T")


def fingerprint_of(*parts: Any) -> str:
    """A short stable hash of the settings that shape a stage's output."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(slots=True)
class StageContext:
    """What a stage sees of one bookmark's progress in this pass."""

    bookmark: Bookmark
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)

    def output(self, stage: str) -> dict[str, Any]:
        outcome = self.outcomes.get(stage)
        return outcome.output if outcome is not None and outcome.status == "ok" else {}

    def payload(self, stage: str) -> Any:
        outcome = self.outcomes.get(stage)
        return outcome.payload if outcome is not None else None


class Stage(ABC):
    """One step of enrichment for one bookmark.

    Subclasses set ``name`` and implement :meth:`run`. ``requires`` lists the
    stages whose ok result this one needs (otherwise it is skipped);
    ``needs_payload`` lists stages whose in-memory payload (never cached, like a
    page body) it reads, so the pipeline re-runs those when this one must run.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ()
    needs_payload: ClassVar[tuple[str, ...]] = ()

    notice: Callable[[str], None] | None = None
    """Set by the runner: one line for the user (what was discovered, chosen, refused)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return True

    def fingerprint(self) -> str:
        """Changes whenever a setting that changes this stage's output changes."""
        return fingerprint_of(self.name, self.version)

    async def preflight(self) -> None:  # noqa: B027 - optional hook
        """Check the stage's service before a run; raise ServiceUnavailable."""

    @abstractmethod
    async def run(self, ctx: StageContext) -> StageOutcome:
        """Enrich one bookmark. Raise StageError for a failure with a reason."""

    def contribute(self, outcome: StageOutcome, enrichment: dict[str, Any], *,
                   include_text: bool = False) -> None:
        """Copy this stage's output into the output record's enrichment."""
        if outcome.status == "ok":
            enrichment.update(outcome.output)

    def metrics(self) -> dict[str, Any]:
        """Figures for the end-of-run summary (calls, tokens, bytes...)."""
        return {}

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and pools."""


STAGE_TYPES: list[type[Stage]] = []
"""Stage classes in pipeline order."""


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Class decorator: add a stage at the end of the pipeline order."""
    if all(existing.name != cls.name for existing in STAGE_TYPES):
        STAGE_TYPES.append(cls)
    return cls


def retry_delay(attempt: int, base: float, retry_after: float | None, cap: float) -> float:
    """Exponential backoff with jitter; a server's Retry-After wins (capped)."""
    if retry_after is not None:
        return max(0.0, min(retry_after, cap))
    return float(min(cap, base * (2**attempt) * (0.5 + random.random())))


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    retries: int,
    backoff: float,
    max_retry_after: float,
    on_retry: Callable[[StageError, int], None] | None = None,
) -> tuple[T, int]:
    """Run ``call``; retry StageErrors marked retryable. Returns (value, attempts)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except StageError as exc:
            if not exc.retryable or attempt > retries:
                exc.attempts = attempt
                raise
            if on_retry is not None:
                on_retry(exc, attempt)
            await asyncio.sleep(retry_delay(attempt - 1, backoff, exc.retry_after,
                                            max_retry_after))


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
