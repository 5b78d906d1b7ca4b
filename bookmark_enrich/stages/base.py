"""The one small interface every stage implements."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ..models import Bookmark, StageOutcome, fingerprint_of
from ..settings import Settings
from ..tags import TagHints

__all__ = ["Stage", "StageContext", "TagHintProvider"]


class TagHintProvider(Protocol):
    """Where the summarize stage gets the tags it may reuse; the pipeline hands it one.

    :class:`~bookmark_enrich.tags.TagVocabulary` (the collection's tags, counted) is
    the default; :class:`~.neighbours.NeighbourTags` adds per-bookmark suggestions.
    """

    async def prepare(self, bookmark: Bookmark, meta: dict[str, Any], text: str) -> None:
        """Work out ``bookmark``'s suggestions (say, by asking a server) before :meth:`hints`."""
        ...

    def hints(self, bookmark: Bookmark) -> TagHints:
        """Tags to offer for ``bookmark``."""
        ...

    def observe(self, tags: Iterable[str], bookmark: Bookmark | None = None) -> None:
        """Tags just given to a bookmark (``bookmark``: its summary's tags)."""
        ...


@dataclass(slots=True)
class StageContext:
    """What a stage sees of one bookmark's progress in this pass."""

    bookmark: Bookmark
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)
    tag_hints: TagHintProvider | None = None
    """The run's tag vocabulary (None: the stage keeps its own)."""
    parked: Callable[[], AbstractAsyncContextManager[None]] = contextlib.nullcontext
    """Wraps a wait on others' work (a busy host): the bookmark's slot is free meanwhile."""

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
    ``after`` lists stages whose result this one reads whatever it was (it runs
    again when they do, but is never skipped for their failure). A stage that
    ``rescues`` another stands in for it when it failed: stages requiring that
    one run when the rescuer is ok (the archive rescues a dead fetch).
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ()
    needs_payload: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    rescues: ClassVar[str | None] = None
    follows_network_policy: ClassVar[bool] = False
    """True for stages that connect on a bookmark's behalf (see Settings.network_policy)."""

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

    def still_valid(self, outcome: StageOutcome) -> bool:
        """Whether a cached outcome (with the current fingerprint) may still be used."""
        return True

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
