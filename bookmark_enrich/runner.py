"""Run an enrichment from Python: the same path the CLI's ``run`` takes.

Also where a run's results meet the source again: :func:`open_writer` pairs a
writer with a replay of the cache, for ``run --writeback`` and ``writeback``.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .cache import ResultCache
from .errors import BookmarkEnrichError, UsageError
from .events import RunStats, Subscriber
from .models import Bookmark, InputIssue, RawRecord
from .pipeline import Executor, Pipeline, Sink, build_record, preflight
from .settings import Settings
from .sources import Source, iter_bookmarks, to_bookmark
from .sources.base import URL_FIELD_NAMES
from .stages import Stage, TagHintProvider, build_stages
from .stages.neighbours import neighbour_tags
from .tags import TagVocabulary
from .writeback import (
    Report,
    Results,
    WritebackOptions,
    Writer,
    refuse_url_field,
    writer_for,
)

__all__ = ["SourceWriter", "cached_records", "catch_up_index", "enrich", "enrich_queued",
           "open_writer", "preflight", "tag_hints", "tag_vocabulary"]

_REPLAY_CHUNK = 500
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,62}")
STDIN_NOTE = "note: stdin has no source to write back to; the results go to stdout"


def with_file_root(settings: Settings, source: Source) -> Settings:
    """``settings`` letting ``file:`` bookmarks read the source file's own folder."""
    if source.file_root is None or source.file_root in settings.allow_file_roots:
        return settings
    roots = [*settings.allow_file_roots, source.file_root]
    return settings.model_copy(update={"allow_file_roots": roots})


def tag_vocabulary(settings: Settings, cache: ResultCache) -> TagVocabulary:
    """The collection's tags so far, from recent summaries in the cache."""
    return TagVocabulary(cache.recent_tags(), lowercase=settings.lowercase_tags)


def tag_hints(settings: Settings, cache: ResultCache, stages: list[Stage]) -> TagHintProvider:
    """The vocabulary, with neighbours' tags as suggestions when bookmarks are embedded."""
    vocabulary = tag_vocabulary(settings, cache)
    return neighbour_tags(settings, stages, vocabulary, cache) or vocabulary


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
    settings = with_file_root(settings, source)
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
                            executor=executor, tag_hints=tag_hints(settings, cache, stages))
        pipeline.stats.run_id = run_id
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
        if not stats.interrupted:
            catch_up_index(cache)
        return stats
    finally:
        for stage in stages:
            await stage.aclose()
        if own_cache:
            cache.close()


def catch_up_index(cache: ResultCache) -> None:
    """Index what a run changed, when the cache has a search index: under a millisecond
    a bookmark (bench/README.md), so the next search starts at once. A cache never
    searched is indexed on its first search instead, with a progress bar."""
    from .search.index import SearchIndex

    try:
        index = SearchIndex(cache.conn)
        if index.exists():
            index.sync()
    except (sqlite3.Error, BookmarkEnrichError):
        pass  # a busy or damaged cache: the next search catches up, or says why


async def enrich_queued(source: Source, settings: Settings, *, url: str,
                        notify: Callable[[str], None], name: str | None = None,
                        batch_size: int = 8, no_worker_timeout: float | None = None,
                        max_inflight: int | None = None, quiet: bool = False,
                        **kw: Any) -> RunStats:
    """:func:`enrich` with the stages run by the workers of the queue at ``url``.

    Needs the ``[queue]`` extra (ImportError without it). ``max_inflight`` (the
    coordinator's ``--concurrency``) caps the bookmarks in flight; by default it
    follows the live workers' total concurrency.
    """
    from .queue import remote_executor

    # Here the stages only plan and shape records, built with the settings as given
    # (their clients stay small); the pipeline's concurrency is just a ceiling, as the
    # executor paces the sending by the live workers' capacity.
    stages = build_stages(settings)
    settings = with_file_root(settings, source)
    settings = settings.model_copy(update={"concurrency": max_inflight or 1024})
    async with remote_executor(url, stages, notify=notify, name=name, batch_size=batch_size,
                               no_worker_timeout=no_worker_timeout, quiet=quiet,
                               policy=settings.network_policy()) as executor:
        return await enrich(source, settings, stages=stages, executor=executor, **kw)


# ----------------------------------------------------------------- writeback
def cached_records(
    items: Iterable[RawRecord | InputIssue],
    *,
    cache: ResultCache,
    stages: list[Stage],
    base_dir: Path | None,
    url_field: str | None,
    include_text: bool = False,
) -> Iterator[tuple[RawRecord, dict[str, Any] | None]]:
    """Each raw record with its output record rebuilt from the cache (None: nothing cached).

    Keys are computed exactly as the run computes them; lookups go in chunks so
    memory stays flat whatever the size of the source.
    """
    chunk: list[tuple[RawRecord, Bookmark | None]] = []

    def drain() -> Iterator[tuple[RawRecord, dict[str, Any] | None]]:
        keys = [b.key for _, b in chunk if b is not None]
        found = cache.lookup(keys, with_text=include_text) if keys else {}
        for raw, bookmark in chunk:
            outcomes = found.get(bookmark.key) if bookmark is not None else None
            if bookmark is None or not outcomes:
                yield raw, None
            else:
                yield raw, build_record(bookmark, outcomes, stages, include_text=include_text)
        chunk.clear()

    for item in items:
        if isinstance(item, InputIssue):
            continue
        made = to_bookmark(item, base_dir, url_field)
        chunk.append((item, made if isinstance(made, Bookmark) else None))
        if len(chunk) >= _REPLAY_CHUNK:
            yield from drain()
    yield from drain()


class SourceWriter:
    """A source's writer, with what it needs to replay the cache into it."""

    def __init__(self, writer: Writer, source: Source) -> None:
        self.writer = writer
        self.source = source

    def wrap(self, sink: Sink) -> Sink:
        """A sink that also hands every output record to the writer."""
        return self.writer.wrap(sink)

    def finish_run(self, settings: Settings, *, interrupted: bool) -> None:
        """After a run: rewrite the file from the cache, or write what is pending."""
        if interrupted:
            self.writer.interrupted()
        elif self.writer.rewrites_after_run:
            self.apply_cached(settings)
        else:
            self.writer.flush()

    def apply_cached(self, settings: Settings) -> None:
        """Write what the cache holds for every record of the source, enriching nothing."""
        stages = build_stages(settings)
        try:
            with ResultCache(settings.cache) as cache:
                self.writer.write(self.replay(cache, stages, settings.include_text))
        finally:
            asyncio.run(_close_stages(stages))

    def replay(self, cache: ResultCache, stages: list[Stage], include_text: bool) -> Results:
        return cached_records(self.source.replay(), cache=cache, stages=stages,
                              base_dir=self.source.base_dir, url_field=self.source.url_field,
                              include_text=include_text)

    def close(self) -> None:
        self.writer.close()

    def summary_line(self) -> str:
        return self.writer.summary_line()


async def _close_stages(stages: list[Stage]) -> None:
    for stage in stages:
        await stage.aclose()


def _check_archive_field(name: str, source: Source) -> None:
    # A plain name: it becomes a JSON key, a CSV header, an HTML attribute or a column.
    if not _FIELD_NAME.fullmatch(name):
        raise UsageError(f"--archive-field {name!r}: use letters, digits, _ . - "
                         "(starting with a letter or _)")
    # A file's URL field is found per record when not named: every usual name is its.
    refuse_url_field(name, [source.url_field] if source.url_field else URL_FIELD_NAMES)
    if name.lower().startswith("enrich"):
        raise UsageError(f"--archive-field {name}: the tool's own fields start so; "
                         "name another field (e.g. archive_url)")


def open_writer(source: Source, options: WritebackOptions,
                report: Report) -> SourceWriter | None:
    """The writer for ``source``, checked (columns, permissions, locks) before any work.

    Returns None for stdin (after saying so). Raises a one-line error when the
    source cannot be written back, or when ``--archive-field`` names its URL field.
    """
    if options.archive_field is not None:
        _check_archive_field(options.archive_field, source)
    target = source.writeback_target()
    if target is None:
        if getattr(source, "is_stdin", False):
            report(STDIN_NOTE)
            return None
        raise UsageError(f"{source.display}: this source cannot be written back")
    return SourceWriter(writer_for(target, options, report), source)
