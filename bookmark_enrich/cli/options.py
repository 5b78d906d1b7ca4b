"""Option types the commands share, and setting flags declared from their Settings field.

A setting flag is declared in one line with :func:`setting_option`; its help, default
and environment variable come from the field in ``settings.py``::

    concurrency: Annotated[int | None, setting_option("concurrency", "-c")] = None

Name the parameter after the field and leave it at ``None`` (or the flag's off
value): :func:`settings_from_ctx` lets a flag the user gave win over the
environment, ``.env`` and defaults. Everything here is cheap to import.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import typer
from rich.markup import escape

from ..config import default_text, describe
from ..settings import MediaBackendName, Settings, SummarizerName, VideoQuality, env_name
from ..sinks import OutputFormat

__all__ = ["choice", "option_help", "prompt_options", "setting_option"]

# Help panels, in the order `run --help` shows them.
INPUT = "Input"
OUTPUT = "Output"
CACHE = "Cache"
FETCH = "Fetching"
STAGES = "Stages"
SUMMARY = "Summaries"
TAGS = "Tags"
MEDIA = "Media"
ARCHIVE = "Web archive"
WRITEBACK = "Writeback"
DATABASE = "Database sources"
QUEUE = "Queue"
FILTER = "Which failures"
NETWORK = "Network policy"
ALLOWED = "Allowed hosts and folders"

DEFAULT_QUEUE_NAME = "bookmark-enrich"  # the queue package's default (not imported: heavy)

NEGATING_FLAGS = {"no_summary": "enable_ai_summarization"}
"""Flags that turn a setting off under another name: ``--no-summary`` sets it false."""


def option_help(text: str, *, default: str | None = None, env: str | None = None) -> str:
    """``text`` with ``[default: …]`` and ``[env: …]`` notes, escaped for rich markup."""
    notes = "".join(f"  [{name}: {value}]" for name, value in
                    (("default", default), ("env", env)) if value)
    return escape(text + notes)


def choice(values: Sequence[str], what: str) -> Callable[[str], str]:
    """A parser accepting only ``values``; anything else is ``unknown <what> 'x' (a, b)``."""

    def parse(value: str) -> str:
        if value in values:
            return value
        raise typer.BadParameter(f"unknown {what} {value!r} ({', '.join(values)})")

    return parse


def setting_option(field: str, *decls: str, panel: str | None = None,
                   help: str | None = None, **kwargs: Any) -> Any:
    """A ``typer.Option`` for the :class:`Settings` field ``field``.

    ``decls`` default to ``--field-name``; give short names ("-c") or a flag pair
    ("--media/--no-media") as for ``typer.Option``. ``help`` replaces the field's
    description (the default and env var are still added). A Literal field is a
    typed choice. Other keywords go to ``typer.Option`` (``metavar``, ``min``...).
    """
    info = Settings.model_fields[field]
    if not any(d.startswith("--") for d in decls):
        decls = ("--" + field.replace("_", "-"), *decls)
    default = default_text(field)
    if isinstance(info.default, bool):  # only an on/off pair needs to say which is the default
        default = ("on" if info.default else "off") if any("/" in d for d in decls) else None
    if get_origin(info.annotation) is Literal:
        kwargs.setdefault("parser", choice(get_args(info.annotation), field.replace("_", " ")))
    return typer.Option(*decls, help=option_help(help or describe(field), default=default,
                                                 env=env_name(field)),
                        show_default=False, rich_help_panel=panel, **kwargs)


# ------------------------------------------------------------------ input
def input_format(value: str) -> str:
    """A name from `formats` (the list is read only when the option is given)."""
    from ..sources.formats import FORMATS

    return choice(list(FORMATS), "input format")(value)


SourceArg = Annotated[str | None, typer.Argument(
    help="Bookmarks file, database URL, or - for stdin (the default when piped).",
    show_default=False)]
InputFormatOpt = Annotated[str | None, typer.Option(
    "--input-format", "-f", metavar="<name>", rich_help_panel=INPUT, show_default=False,
    parser=input_format,
    help="Read SOURCE as this format (a name from `formats`) instead of detecting it.")]
# doctor reports an unknown name as a failed check rather than a usage error.
CheckedFormatOpt = Annotated[str | None, typer.Option(
    "--input-format", "-f", metavar="<name>", rich_help_panel=INPUT, show_default=False,
    help="Check SOURCE as this format (a name from `formats`) instead of detecting it.")]
UrlFieldOpt = Annotated[str | None, typer.Option(
    "--url-field", rich_help_panel=INPUT, show_default=False,
    help="Record field or CSV column holding the URL.")]
StrictOpt = Annotated[bool, setting_option("strict", panel=INPUT)]
TableOpt = Annotated[str | None, typer.Option(
    "--table", rich_help_panel=DATABASE, show_default=False,
    help="Database table to read (and write back to).")]
IdColumnOpt = Annotated[str | None, typer.Option(
    "--id-column", rich_help_panel=DATABASE, show_default=False,
    help="Unique key column (default: the primary key).")]
UrlColumnOpt = Annotated[str | None, typer.Option(
    "--url-column", rich_help_panel=DATABASE, show_default=False,
    help="Column holding the URL (default: url/href/link/uri).")]
WhereOpt = Annotated[str | None, typer.Option(
    "--where", rich_help_panel=DATABASE, show_default=False,
    help="SQL filter on the table's rows (read-only).")]

# ----------------------------------------------------------------- output
OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-o", metavar="<file>", rich_help_panel=OUTPUT, show_default=False,
    help="Write the records to FILE (atomically) instead of stdout.")]
FormatOpt = Annotated[OutputFormat, typer.Option(
    "--format", rich_help_panel=OUTPUT, parser=choice(get_args(OutputFormat), "output format"),
    help="Output format.")]
IncludeTextOpt = Annotated[bool, setting_option("include_text", panel=OUTPUT)]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", rich_help_panel=OUTPUT, help="No progress and no summary on stderr.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
YesOpt = Annotated[bool, typer.Option(
    "--yes", "-y", help="Do not ask; needed when stdin is not a terminal.")]

# ------------------------------------------------------------------ cache
CacheOpt = Annotated[Path | None, setting_option("cache", metavar="<file>", panel=CACHE)]
ForceOpt = Annotated[bool, setting_option("force", panel=CACHE)]
RetryFailedOpt = Annotated[bool, setting_option("retry_failed", panel=CACHE)]
WaitLockOpt = Annotated[bool, typer.Option(
    "--wait-lock", rich_help_panel=CACHE,
    help="When another run holds the cache, wait instead of exiting 75.")]
KeepGoingOpt = Annotated[bool, typer.Option(
    "--keep-going", rich_help_panel=STAGES,
    help="Run even when a service fails its check; record the failures.")]

# --------------------------------------------------------------- fetching
ConcurrencyOpt = Annotated[int | None, setting_option("concurrency", "-c", panel=FETCH)]
PerHostOpt = Annotated[int | None, setting_option("per_host", panel=FETCH)]
TimeoutOpt = Annotated[float | None, setting_option("read_timeout", "--timeout", panel=FETCH)]
RetriesOpt = Annotated[int | None, setting_option("retries", panel=FETCH)]
MaxPageOpt = Annotated[float | None, setting_option("max_page_mb", panel=FETCH)]
# A panel of its own: its long environment name needs the width of a panel without a
# type column to show uncut at 80 columns.
AllowPrivateOpt = Annotated[bool, setting_option("allow_private_network", panel=NETWORK)]
AllowHostOpt = Annotated[list[str] | None, setting_option(
    "allow_hosts", "--allow-host", metavar="<host>", panel=ALLOWED,
    help="A host name, IP or network (CIDR) bookmarks may reach whatever its address "
    "(repeat for more).")]
AllowFileRootOpt = Annotated[list[Path] | None, setting_option(
    "allow_file_roots", "--allow-file-root", metavar="<dir>", panel=ALLOWED,
    help="A folder whose files file: bookmarks may read, besides the bookmarks file's own "
    "(repeat for more).")]
MaxDocumentOpt = Annotated[float | None, setting_option("max_document_mb", panel=FETCH)]
DocumentTimeoutOpt = Annotated[float | None, setting_option("document_timeout", panel=FETCH)]
MaxDocumentPagesOpt = Annotated[int | None, setting_option("max_document_pages", panel=FETCH)]
UserAgentOpt = Annotated[str | None, setting_option("user_agent", panel=FETCH)]

# -------------------------------------------------------------- summaries
NoSummaryOpt = Annotated[bool, typer.Option(
    "--no-summary", rich_help_panel=STAGES,
    help=option_help("Skip the summarize stage.",
                     env=env_name("enable_ai_summarization") + "=false"))]
SummarizerOpt = Annotated[SummarizerName | None, setting_option(
    "summarizer", metavar="<name>", panel=SUMMARY)]
LlmUrlOpt = Annotated[str | None, setting_option(
    "lm_studio_api_url", "--llm-url", metavar="<url>", panel=SUMMARY)]
ModelOpt = Annotated[str | None, setting_option("lm_studio_model", "--model", panel=SUMMARY)]
LlmTimeoutOpt = Annotated[float | None, setting_option("llm_timeout", panel=SUMMARY)]
LlmConcurrencyOpt = Annotated[str | None, setting_option(
    "llm_concurrency", metavar="auto|N", panel=SUMMARY)]
ContextTokensOpt = Annotated[int | None, setting_option("context_tokens", panel=SUMMARY)]
MaxTagsOpt = Annotated[int | None, setting_option("max_tags", panel=SUMMARY)]
LanguageOpt = Annotated[str | None, setting_option("language", panel=SUMMARY)]
MergeTagsOpt = Annotated[bool, setting_option("merge_tags", panel=TAGS)]
LowercaseTagsOpt = Annotated[bool, setting_option(
    "lowercase_tags", "--lowercase-tags/--keep-tag-case", panel=TAGS)]

# ----------------------------------------------------------------- search
SEARCH = "Search"
EmbeddingUrlOpt = Annotated[str | None, setting_option(
    "embedding_url", metavar="<url>", panel=SEARCH)]
EmbeddingModelOpt = Annotated[str | None, setting_option("embedding_model", panel=SEARCH)]

PROMPT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "llm_input_tokens": (Annotated[int | None, setting_option(
        "llm_input_tokens", panel=SUMMARY)], None),
    "llm_full_text": (Annotated[bool, setting_option("llm_full_text", panel=SUMMARY)], False),
    "prompt_file": (Annotated[Path | None, setting_option(
        "prompt_file", metavar="FILE", panel=SUMMARY)], None),
    "summary_sentences": (Annotated[int | None, setting_option(
        "summary_sentences", panel=SUMMARY)], None),
    "summary_style": (Annotated[str | None, setting_option(
        "summary_style", metavar="<style>", panel=SUMMARY)], None),
    "tag_list": (Annotated[Path | None, setting_option(
        "tag_list", metavar="FILE", panel=SUMMARY)], None),
    "tag_style": (Annotated[str | None, setting_option(
        "tag_style", metavar="<style>", panel=SUMMARY)], None),
    "tag_model": (Annotated[str | None, setting_option("tag_model", panel=SUMMARY)], None),
}
"""The flags that shape the LLM's prompt, added to a command by :func:`prompt_options`."""


def prompt_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the :data:`PROMPT_OPTIONS` flags to ``command`` without widening its signature.

    The values reach the run through ``ctx.params`` (:func:`settings_from_ctx`), so
    the command itself never sees them.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for name in PROMPT_OPTIONS:
            kwargs.pop(name, None)
        return command(*args, **kwargs)

    sig = inspect.signature(command, eval_str=True)
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                               annotation=annotation)
             for name, (annotation, default) in PROMPT_OPTIONS.items()]
    params = list(sig.parameters.values())
    wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[*params, *extra])
    wrapper.__annotations__ = {**command.__annotations__,
                               **{name: ann for name, (ann, _) in PROMPT_OPTIONS.items()}}
    return wrapper


# ------------------------------------------------------------------ media
MediaOpt = Annotated[bool, setting_option(
    "enable_media_download", "--media/--no-media", panel=STAGES)]
MediaBackendOpt = Annotated[MediaBackendName | None, setting_option(
    "media_backend", metavar="<backend>", panel=MEDIA)]
AudioOnlyOpt = Annotated[bool, setting_option("audio_only", panel=MEDIA)]
VideoQualityOpt = Annotated[VideoQuality | None, setting_option(
    "video_quality", metavar="<quality>", panel=MEDIA)]
MaxPickerItemsOpt = Annotated[int | None, setting_option("max_picker_items", panel=MEDIA)]
MediaHostsOpt = Annotated[str | None, setting_option(
    "media_hosts", metavar="<hosts>", panel=MEDIA)]
MediaConcurrencyOpt = Annotated[int | None, setting_option("media_concurrency", panel=MEDIA)]
MediaDirOpt = Annotated[Path | None, setting_option("media_dir", metavar="<dir>", panel=MEDIA)]
CreateBucketOpt = Annotated[bool, setting_option("create_bucket", panel=MEDIA)]

# ---------------------------------------------------------------- archive
ArchiveOpt = Annotated[bool, setting_option("archive", "--archive/--no-archive", panel=STAGES)]
ArchiveUrlOpt = Annotated[str | None, setting_option(
    "archive_url", metavar="<url>", panel=ARCHIVE)]

# -------------------------------------------------------------- writeback
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", rich_help_panel=WRITEBACK,
    help="Print what writeback would change per record; write nothing.")]
NoBackupOpt = Annotated[bool, typer.Option(
    "--no-backup", rich_help_panel=WRITEBACK, help="Do not keep FILE.bak when rewriting a file.")]
ColumnsOpt = Annotated[str | None, typer.Option(
    "--columns", metavar="<list>", rich_help_panel=WRITEBACK, show_default=False,
    help="Fields to write, comma-separated (summary, keywords, tags, media, metadata, "
    "enriched_at); field:column writes one to another column.")]
ColumnPrefixOpt = Annotated[str, typer.Option(
    "--column-prefix", rich_help_panel=WRITEBACK, show_default=False,
    help="Prefix for the writeback column names.")]
CreateColumnsOpt = Annotated[bool, typer.Option(
    "--create-columns", rich_help_panel=WRITEBACK, help="Add missing columns to the table.")]

# ------------------------------------------------------------------ queue
QueueOpt = Annotated[str | None, typer.Option(
    "--queue", envvar="BOOKMARK_ENRICH_QUEUE", show_envvar=False, metavar="<url>",
    rich_help_panel=QUEUE, show_default=False, help=option_help(
        "Redis URL of a work queue (redis://host:6379/0): workers do the enriching "
        "(see `worker`).", env="BOOKMARK_ENRICH_QUEUE"))]
QueueNameOpt = Annotated[str, typer.Option(
    "--queue-name", envvar="BOOKMARK_ENRICH_QUEUE_NAME", show_envvar=False,
    rich_help_panel=QUEUE, show_default=False, help=option_help(
        "Key prefix of the queue in Redis (one per fleet).", default=DEFAULT_QUEUE_NAME,
        env="BOOKMARK_ENRICH_QUEUE_NAME"))]

# --------------------------------------------------------------- failures
StageOpt = Annotated[str | None, typer.Option(
    "--stage", metavar="<list>", rich_help_panel=FILTER, show_default=False,
    help="Only failures of these stages (fetch,archive,extract,summarize,media).")]
ReasonOpt = Annotated[str | None, typer.Option(
    "--reason", metavar="<list>", rich_help_panel=FILTER, show_default=False,
    help="Only failures with these reason codes (timeout,server_error,...).")]
SinceOpt = Annotated[str | None, typer.Option(
    "--since", metavar="<age|date>", rich_help_panel=FILTER, show_default=False,
    help="Only failures since an age (24h, 7d) or a date (2026-11-01).")]
