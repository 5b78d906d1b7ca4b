"""Archive stage: when the page is dead, enrich from the web archive's closest snapshot.

It runs after fetch and looks at fetch's result only: a live page never asks
the archive (``not_dead``). For a dead one (see :func:`reasons.is_dead`) it asks
for the snapshot nearest the bookmark's ``created`` date and fetches its raw
capture, which extract, summarize and media then read as they would the page.
Fetch keeps its failure, so the record still says the link is dead.

Its result is cached like any stage's: a re-run asks the archive nothing, except
for links it had no snapshot of, asked again after ``archive_miss_ttl`` days.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from ..errors import StageError
from ..models import StageOutcome, fingerprint_of
from ..reasons import Reason, is_dead
from ..services.archive import ArchiveClient, wayback_timestamp
from ..services.netpolicy import Resolver
from ..settings import Settings
from .base import Stage, StageContext
from .fetch import Page

__all__ = ["ArchiveStage"]

_CREATED_FIELDS = ("created", "add_date", "date_added", "time_added", "created_at", "time")


class ArchiveStage(Stage):
    name: ClassVar[str] = "archive"
    version: ClassVar[str] = "1"
    after: ClassVar[tuple[str, ...]] = ("fetch",)
    rescues: ClassVar[str | None] = "fetch"
    follows_network_policy: ClassVar[bool] = True

    def __init__(self, settings: Settings, transport: Any = None,
                 resolver: Resolver | None = None) -> None:
        super().__init__(settings)
        self.client = ArchiveClient(settings, transport, resolver)
        self.rescued = 0
        self.missing = 0

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.archive and bool(settings.archive_url.strip())

    def fingerprint(self) -> str:
        return fingerprint_of(self.name, self.version, self.client.base)

    def still_valid(self, outcome: StageOutcome) -> bool:
        """"No snapshot" answers expire after ``archive_miss_ttl`` days; the rest keep."""
        if outcome.status == "skipped" and outcome.reason == Reason.NO_SNAPSHOT:
            return time.time() - outcome.finished_at < self.settings.archive_miss_ttl * 86400
        return True

    async def run(self, ctx: StageContext) -> StageOutcome:
        fetched = ctx.outcomes.get("fetch")
        if fetched is None or fetched.status != "failed" or \
                not is_dead(fetched.reason, fetched.message):
            return StageOutcome.skipped(Reason.NOT_DEAD)
        url = ctx.bookmark.url
        near = next((stamp for f in _CREATED_FIELDS
                     if (stamp := wayback_timestamp(ctx.bookmark.record.get(f)))), None)
        limit = self.settings.archive_timeout
        try:
            async with asyncio.timeout(limit):
                snapshot = await self.client.lookup(url, near)
                if snapshot is None:
                    self.missing += 1
                    return StageOutcome.skipped(
                        Reason.NO_SNAPSHOT, f"{self.client.base} has no snapshot of {url}")
                capture = await self.client.capture(snapshot)
        except TimeoutError:
            raise StageError(Reason.ARCHIVE_UNAVAILABLE, f"the archive did not answer within "
                             f"{limit:g} s (archive_timeout)") from None
        self.rescued += 1
        output = {
            "archived": {"snapshot_url": snapshot.url, "timestamp": snapshot.captured_at,
                         "archive": self.client.base, "reason": fetched.reason},
            "final_url": snapshot.raw_url,
            "content_type": capture.content_type,
        }
        return StageOutcome.ok(output, payload=Page(capture.body, capture.charset,
                                                    capture.content_type))

    def contribute(self, outcome: StageOutcome, enrichment: dict[str, Any], *,
                   include_text: bool = False) -> None:
        if outcome.status == "ok":
            enrichment["archived"] = outcome.output.get("archived")
            enrichment.setdefault("content_type", outcome.output.get("content_type"))

    def metrics(self) -> dict[str, Any]:
        if not self.client.requests:
            return {}
        return {"rescued": self.rescued, "no snapshot": self.missing,
                "archive requests": self.client.requests}

    async def aclose(self) -> None:
        await self.client.aclose()
