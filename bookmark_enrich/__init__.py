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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
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

# Names are imported on first use (PEP 562), so that `import bookmark_enrich.cli`
# (every command, --help, --version) does not pay for the pipeline, the HTTP
# client, trafilatura or openai. tests/test_startup.py keeps it that way.
_LAZY = {
    "ResultCache": "cache",
    **dict.fromkeys(("BookmarkEnrichError", "CacheError", "CacheLocked", "ConfigError",
                     "InputError", "ServiceUnavailable", "StageError", "UsageError"), "errors"),
    "RunStats": "events",
    **dict.fromkeys(("Bookmark", "Enrichment", "OutputRecord", "StageOutcome"), "models"),
    "Pipeline": "pipeline",
    "enrich": "runner",
    "Settings": "settings",
    "load_settings": "settings",
    "open_sink": "sinks",
    "Source": "sources",
    "open_source": "sources",
    **dict.fromkeys(("STAGES", "Stage", "StageContext", "build_stages"), "stages"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


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
