"""Run an enrichment from Python: the same path the CLI's ``run`` takes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from .cache import ResultCache
from .events import Notice, RunStats, Subscriber
from .pipeline import Executor, Pipeline, Sink
from .settings import Settings
from .sources import Source, iter_bookmarks
from .stages import Stage, build_stages

__all__ = ["enrich", "preflight"]


async def preflight(stages: Iterable[Stage], *, keep_going: bool = False,
                    notify: Subscriber | None = None) -> None:
    """Check every stage's service concurrently before any bookmark is touched.

    Raises the first ServiceUnavailable; with ``keep_going`` the problems become
    notices and the run records per-bookmark failures instead.
    """
    stages = list(stages)
    # Checks run concurrently, but their lines come out in pipeline order, so the
    # run's first line is always the summarizer choice, then media, and so on.
    held: dict[int, list[str]] = {i: [] for i in range(len(stages))}
    for i, stage in enumerate(stages):
        stage.notice = held[i].append
    results = await asyncio.gather(*(s.preflight() for s in stages), return_exceptions=True)
    for i, stage in enumerate(stages):
        if notify is not None:
            for message in held[i]:
                notify(Notice(message))
            stage.notice = lambda message: notify(Notice(message))
        else:
            stage.notice = None
    for result in results:
        if isinstance(result, BaseException):
            if keep_going and notify is not None:
                notify(Notice(f"warning: {result} (continuing: --keep-going)", "warning"))
                continue
            raise result


async def enrich(
    source: Source,
    settings: Settings,
    *,
    sink: Sink,
    subscribers: Iterable[Subscriber] = (),
    stages: list[Stage] | None = None,
    url_field: str | None = None,
    keep_going: bool = False,
    run_options: dict[str, Any] | None = None,
    cache: ResultCache | None = None,
    executor: Executor | None = None,
) -> RunStats:
    """Enrich every bookmark of ``source``; records go to ``sink`` as they finish.

    ``executor`` runs the stages elsewhere (a queue's workers), which check their
    own services, so the local preflight is skipped.
    """
    subscribers = list(subscribers)
    own_cache = cache is None
    cache = cache or ResultCache(settings.cache)
    stages = stages if stages is not None else build_stages(settings)

    def notify(event: Any) -> None:
        for sub in subscribers:
            sub(event)

    try:
        if executor is None:
            await preflight(stages, keep_going=keep_going, notify=notify)
        run_id = cache.start_run(source.display, source.format_name,
                                 run_options if run_options is not None else settings.masked())
        pipeline = Pipeline(settings, cache, stages, run_id=run_id, sink=sink,
                            subscribers=subscribers, source_location=source.location,
                            executor=executor)
        status = "failed"
        try:
            stats = await pipeline.run(
                iter_bookmarks(source, url_field),
                source=source.display, fmt=source.format_name,
                total=source.estimate_total(),
            )
            status = "interrupted" if stats.interrupted else "finished"
        finally:
            cache.finish_run(run_id, status, pipeline.stats.counts())
        return stats
    finally:
        for stage in stages:
            await stage.aclose()
        if own_cache:
            cache.close()
