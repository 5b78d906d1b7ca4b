"""bookmark-enrich: enrich bookmarks in batches.

The library is usable without the CLI::

    import asyncio
    from bookmark_enrich import enrich, load_settings, open_source, open_sink

    settings = load_settings(concurrency=8)
    source = open_source("bookmarks.html")
    sink = open_sink("out.jsonl")
    stats = asyncio.run(enrich(source, settings, sink=sink))
    sink.close()
"""

from ._version import __version__
from .cache import ResultCache
from .errors import (
    BookmarkEnrichError,
    CacheError,
    CacheLocked,
    ConfigError,
    InputError,
    ServiceUnavailable,
    StageError,
    UsageError,
)
from .events import RunStats
from .models import Bookmark, Enrichment, OutputRecord, StageOutcome
from .pipeline import Pipeline
from .runner import enrich
from .settings import Settings, load_settings
from .sinks import open_sink
from .sources import Source, open_source
from .stages import STAGES, Stage, StageContext, build_stages

__all__ = [
    "STAGES",
    "Bookmark",
    "BookmarkEnrichError",
    "CacheError",
    "CacheLocked",
    "ConfigError",
    "Enrichment",
    "InputError",
    "OutputRecord",
    "Pipeline",
    "ResultCache",
    "RunStats",
    "ServiceUnavailable",
    "Settings",
    "Source",
    "Stage",
    "StageContext",
    "StageError",
    "StageOutcome",
    "UsageError",
    "__version__",
    "build_stages",
    "enrich",
    "load_settings",
    "open_sink",
    "open_source",
]
