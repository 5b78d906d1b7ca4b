"""Data shapes: the bookmark going in, stage outcomes, the record coming out.

The output record (:class:`OutputRecord`) is a documented, versioned interface:
``bookmark-enrich schema`` prints its JSON Schema. Hot-path internals are plain
dataclasses; only the output shape is pydantic.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "STAGE_NAMES",
    "ArchivedSnapshot",
    "Bookmark",
    "Enrichment",
    "ErrorItem",
    "FileTarget",
    "InputIssue",
    "MediaItem",
    "OutputRecord",
    "RawRecord",
    "StageOutcome",
    "StageReport",
    "StageStatus",
    "fingerprint_of",
]

SCHEMA_VERSION = 1

StageStatus = Literal["ok", "failed", "skipped"]
RecordStatus = Literal["ok", "partial", "failed"]

STAGE_NAMES: tuple[str, ...] = ("fetch", "archive", "extract", "summarize", "embed",
                                 "media")
"""The built-in stages in pipeline order, for reports that must start without importing
them (``status``); tests/test_startup.py checks it names ``stages.STAGES``."""


@dataclass(slots=True)
class Bookmark:
    """One input record on its way through the pipeline."""

    url: str
    """The URL as resolved from the record (file: URLs made absolute)."""
    normalized: str
    """Dedupe form of ``url``."""
    key: str
    """Cache key derived from ``normalized``."""
    record: dict[str, Any]
    """The original record, every field as the source had it."""
    position: int
    """Line number (text formats) or record index (1-based) in the source."""
    source_id: Any = None
    """The source's own identity for the record (a DB primary key), if any."""


@dataclass(slots=True)
class RawRecord:
    """A record as the source holds it, before URL validation."""

    position: int
    record: dict[str, Any]
    url_field: str | None = None
    """Which key holds the URL; None means find it by name."""
    source_id: Any = None


@dataclass(frozen=True, slots=True)
class FileTarget:
    """A bookmarks file that results can be written back into."""

    path: Path
    display: str
    container: str | None
    """The plain file shape the records sit in (``json``, ``jsonl``, ``csv``, ``netscape``);
    None: not one writeback can rewrite."""
    format_name: str
    refusal: str | None
    """Why this format cannot be written back (a browser-owned file), if it cannot."""
    baseline: tuple[int, int]
    """(size, mtime_ns) when it was read: a file that changed since is left alone."""
    codec: str = "utf-8"
    """The text's encoding, as the reader detected it; writeback writes the same."""
    bom: bytes = b""
    """The byte order mark the file starts with, if any (kept as it was)."""


@dataclass(slots=True)
class InputIssue:
    """A record the source could not turn into a bookmark."""

    position: int
    message: str
    fatal: bool = False
    """True when reading cannot continue (a truncated file)."""


@dataclass(slots=True)
class StageOutcome:
    """What one stage did for one bookmark; a cache row in memory."""

    status: StageStatus
    output: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    message: str | None = None
    attempts: int = 1
    duration: float = 0.0
    fingerprint: str = ""
    finished_at: float = field(default_factory=time.time)
    text: str | None = None
    """Large text kept in the cache beside the output (extracted page text)."""
    cached: bool = False
    payload: Any = None
    """In-memory data for later stages in this pass (a page body); never cached."""
    run_id: int | None = None
    """The run that wrote this result (set on cached outcomes)."""

    @classmethod
    def ok(cls, output: dict[str, Any] | None = None, **kw: Any) -> StageOutcome:
        return cls("ok", output or {}, **kw)

    @classmethod
    def failed(cls, reason: str, message: str, **kw: Any) -> StageOutcome:
        return cls("failed", {}, reason=reason, message=message, **kw)

    @classmethod
    def skipped(cls, reason: str, message: str | None = None, **kw: Any) -> StageOutcome:
        return cls("skipped", kw.pop("output", {}), reason=reason, message=message, **kw)


def fingerprint_of(*parts: Any) -> str:
    """A short stable hash of the settings that shape a stage's output."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------- output


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ErrorItem(_Out):
    stage: str
    reason: str = Field(description="Stable machine-readable reason code, e.g. `timeout`.")
    message: str = Field(description="Human explanation; may change between versions.")


class StageReport(_Out):
    status: StageStatus
    reason: str | None = None
    cached: bool = Field(False, description="True when the result came from the cache.")
    attempts: int = 1
    duration_ms: int = 0


class MediaItem(_Out):
    kind: str = Field(description="`video`, `audio`, `image` or `file`.")
    uri: str = Field(description="`s3://bucket/key` or a local path.")
    bytes: int
    sha256: str
    content_type: str | None = None
    filename: str | None = None
    source_url: str | None = None


class ArchivedSnapshot(_Out):
    """Where a dead page's text came from: the web archive's closest snapshot."""

    snapshot_url: str = Field(description="The snapshot in the archive (open it to see "
                              "the page as it was).")
    timestamp: str = Field(description="When the archive captured it, ISO 8601 (UTC).")
    archive: str = Field(description="The archive asked (`BOOKMARK_ENRICH_ARCHIVE_URL`).")
    reason: str | None = Field(None, description="Why the page itself is dead: the fetch "
                               "stage's reason code (`not_found`, `gone`, `dns_error`...).")


class Enrichment(_Out):
    """What the tool found out. Never merged into the user's own fields."""

    # fetch
    final_url: str | None = Field(None, description="URL after redirects.")
    http_status: int | None = None
    content_type: str | None = Field(
        None, description="The body's type: as served for pages; for documents the "
        "document type read (`application/pdf`, `text/plain`, `text/markdown`, "
        "`text/x-rst`), also when the server sent a generic one.")
    # extract
    title: str | None = None
    author: str | None = None
    date: str | None = Field(None, description="Publication date, ISO 8601 when known.")
    site_name: str | None = None
    description: str | None = None
    language: str | None = None
    image: str | None = None
    categories: list[str] | None = None
    page_tags: list[str] | None = Field(None, description="Tags the page declares itself.")
    word_count: int | None = None
    page_count: int | None = Field(None, description="Pages of a PDF document.")
    text: str | None = Field(None, description="Main text; only with --include-text.")
    # summarize
    summary: str | None = None
    keywords: list[str] | None = None
    tags: list[str] | None = Field(
        None, description="Suggested tags (the user's own stay in `record`)."
    )
    summarizer: str | None = Field(None, description="`llm` or `builtin`.")
    model: str | None = None
    # media
    media: list[MediaItem] | None = None
    # archive
    archived: ArchivedSnapshot | None = Field(
        None, description="Set when the page is dead and the text, summary and tags come "
        "from a web archive's snapshot; the fetch error stays in `errors`.")


class OutputRecord(_Out):
    """One line of output for one input record."""

    schema_version: int = SCHEMA_VERSION
    url: str = Field(description="The bookmark's URL as read (file: URLs made absolute).")
    normalized_url: str
    status: RecordStatus = Field(
        description="`ok`: every enabled stage ok or skipped; `partial`: some failed; "
        "`failed`: nothing succeeded. A dead page's record also says `dead`."
    )
    dead: bool = Field(
        False, description="True when the page is dead: the fetch failed with a dead-link "
        "reason (`not_found`, `gone`, `dns_error`...). The enrichment rescued from a web "
        "archive stays, in `enrichment` with `enrichment.archived` set; `status` keeps "
        "`partial` (rescued) or `failed` (not), so counts and exit codes do not change.")
    position: int = Field(description="Line number or record index in the source.")
    cached: bool = Field(description="True when every stage result came from the cache.")
    record: dict[str, Any] = Field(description="The original record, unchanged.")
    enrichment: Enrichment
    errors: list[ErrorItem] = Field(default_factory=list)
    stages: dict[str, StageReport] = Field(default_factory=dict)
