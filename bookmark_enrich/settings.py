"""Settings from the environment, a ``.env`` file and CLI flags (flags win).

The original design's names (``LM_STUDIO_*``, ``COBALT_*``, ``S3_*``, ``ENABLE_*``,
``MAX_MEDIA_SIZE_MB``) stay valid; every newer setting is ``BOOKMARK_ENRICH_<NAME>``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError

__all__ = ["ENV_PREFIX", "MediaBackendName", "Settings", "SummarizerName", "VideoQuality",
           "env_name", "load_settings"]

ENV_PREFIX = "BOOKMARK_ENRICH_"
APP_NAME = "bookmark-enrich"


def _alias(*names: str) -> Any:
    return AliasChoices(*names)


def _usable_cores() -> int:
    """Cores this process may run on (its affinity mask), else the CPU count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _extraction_share(cores: int) -> int:
    """Extraction workers for ``cores``: measured (bench_core part b), the main process
    spends ~3.5 ms of CPU per page against ~20 ms in a worker, so it needs about a
    sixth of a core per worker; one core in eight, rounded down, is left to it."""
    return max(1, cores - cores // 8)


def _default_text(text: str) -> dict[str, Any]:
    """How docs and --help show a default that is computed or means "unset"."""
    return {"default_text": text}


def default_cache_path() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "cache.sqlite"


def default_media_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "media"


SummarizerName = Literal["auto", "llm", "builtin"]
MediaBackendName = Literal["auto", "cobalt", "ytdlp"]
VideoQuality = Literal["max", "4320", "2160", "1440", "1080", "720", "480", "360", "240", "144"]


class Settings(BaseSettings):
    """Every knob of a run. Build with :func:`load_settings` to get readable errors.

    Each field's ``description`` is its one help text: ``--help``, ``config init`` and
    the docs' settings reference are generated from it (``default_text`` says how to
    show a default that is computed or means "unset").
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        defer_build=True,  # --help reads the fields; the validator is built on first use
    )

    # --- LLM (original names) -------------------------------------------------
    lm_studio_api_url: str | None = Field(
        None, validation_alias=_alias("LM_STUDIO_API_URL", "lm_studio_api_url"),
        description="OpenAI-compatible LLM server, e.g. http://localhost:1234/v1.",
        json_schema_extra=_default_text("a local one, found by --summarizer auto"),
    )
    lm_studio_model: str | None = Field(
        None, validation_alias=_alias("LM_STUDIO_MODEL", "lm_studio_model"),
        description="LLM model to use.",
        json_schema_extra=_default_text("the first loaded one"),
    )
    lm_studio_max_tokens: int = Field(
        1000, gt=0, validation_alias=_alias("LM_STUDIO_MAX_TOKENS", "lm_studio_max_tokens"),
        description="Completion budget of one summary answer, in tokens.",
    )
    lm_studio_temperature: float = Field(
        0.7, ge=0, le=2, validation_alias=_alias("LM_STUDIO_TEMPERATURE", "lm_studio_temperature"),
        description="Sampling temperature of summaries.",
    )
    lm_studio_api_key: SecretStr | None = Field(
        None,
        validation_alias=_alias("LM_STUDIO_API_KEY", "OPENAI_API_KEY", "lm_studio_api_key"),
        description="API key of the LLM server, if it wants one (secret).",
    )
    enable_ai_summarization: bool = Field(
        True, validation_alias=_alias("ENABLE_AI_SUMMARIZATION", "enable_ai_summarization"),
        description="Run the summarize stage (false: skip summaries).",
    )

    # --- Summaries (BOOKMARK_ENRICH_*) ----------------------------------------
    summarizer: SummarizerName = Field(
        "auto",
        description="Who writes summaries: auto (a local LLM when one answers, else the "
        "built-in one), llm (an LLM or exit 3) or builtin (offline, never an LLM).",
    )
    llm_deadline: float = Field(
        900.0, gt=0, description="Total seconds for one bookmark's summary, every request, "
        "retry and wait included (reason `deadline`); a model that stops producing tokens "
        "fails sooner, after `llm_timeout`.")
    llm_timeout: float = Field(
        120.0, gt=0,
        description="Seconds an LLM answer may go without a new token (the first one "
        "included); a model still writing is never cut off, a stalled one is not retried.",
    )
    llm_concurrency: int | Literal["auto"] = Field(
        "auto",
        description="LLM requests in flight: auto (the server's slots, else adapted to its "
        "throughput) or a number.",
    )
    llm_input_tokens: int = Field(
        1024, ge=128, le=1_000_000,
        description="Page text one LLM request reads, in tokens: the title, description and "
        "lead, then the most informative sentences.",
    )
    llm_full_text: bool = Field(
        False, description="Read a page longer than --llm-input-tokens whole, in parts, "
        "and combine the parts' answers (slower, one request per part).")
    prompt_file: Path | None = Field(
        None, description="A prompt template replacing the instructions (placeholders in "
        "the LLM guide); the output schema is still enforced.",
        json_schema_extra=_default_text("the built-in instructions"))
    tag_list: Path | None = Field(
        None, description="A file of allowed tags, one a line: the LLM may only choose "
        "from it.", json_schema_extra=_default_text("any tag"))
    summary_sentences: int = Field(
        3, ge=1, le=10, description="Sentences (or bullets) in an LLM summary, at most.")
    summary_style: Literal["paragraph", "bullets"] = Field(
        "paragraph", description="How an LLM summary reads: paragraph or bullets.")
    tag_style: Literal["lowercase", "kebab-case", "as-written"] = Field(
        "lowercase", description="How LLM tags are spelled (--keep-tag-case means "
        "as-written).")
    tag_model: str | None = Field(
        None, description="A separate LLM model for tags (one more request per bookmark).",
        json_schema_extra=_default_text("the summary model, in the same request"))
    context_tokens: int | None = Field(
        None, ge=512, description="Model context length, overriding what the server reports.",
        json_schema_extra=_default_text("as reported, else 4096"),
    )
    max_tags: int = Field(5, ge=0, le=50, description="Suggested tags per bookmark.")
    language: str | None = Field(
        None, description="Write summaries and tags in this language (en).",
        json_schema_extra=_default_text("the page's"),
    )
    merge_tags: bool = Field(
        False, description="Put the record's own tags first in enrichment.tags.")
    lowercase_tags: bool = Field(True, description="Lower-case suggested tags.")
    llm_probe_urls: list[str] | None = Field(
        None,
        description="Where --summarizer auto looks for a local LLM when LM_STUDIO_API_URL "
        "is unset (a JSON list; []: never look).",
        json_schema_extra=_default_text("LM Studio, Ollama, llama-server, vLLM on localhost"),
    )

    # --- Search (BOOKMARK_ENRICH_*) -------------------------------------------
    embedding_url: str | None = Field(
        None, description="OpenAI-compatible embeddings server (/v1/embeddings: LM Studio, "
        "Ollama, llama.cpp --embeddings, vLLM, OpenAI), e.g. http://localhost:1234/v1; set, "
        "it turns on the embed stage and semantic and hybrid search.",
        json_schema_extra=_default_text("none: text search only"),
    )
    embedding_model: str | None = Field(
        None, description="Embedding model to use.",
        json_schema_extra=_default_text("the server's first listed model"),
    )
    embedding_api_key: SecretStr | None = Field(
        None, description="API key of the embeddings server, if it wants one (secret).",
    )
    embedding_batch: int = Field(
        32, ge=1, le=2048, description="Texts sent in one embeddings request.")
    embedding_timeout: float = Field(
        60.0, gt=0, description="Seconds per embeddings request.")
    tag_neighbours: int = Field(
        5, ge=0, le=50, description="With an embeddings server, offer the summarizer the "
        "tags of this many most similar bookmarks, so it reuses them (0: off).")

    # --- Media (original names) -----------------------------------------------
    cobalt_api_url: str | None = Field(
        None, validation_alias=_alias("COBALT_API_URL", "cobalt_api_url"),
        description="Cobalt API instance for media downloads.",
        json_schema_extra=_default_text("the one at BOOKMARK_ENRICH_COBALT_PROBE_URL, if any"),
    )
    cobalt_timeout: int = Field(
        30000, gt=0, validation_alias=_alias("COBALT_TIMEOUT", "cobalt_timeout"),
        description="Cobalt request timeout, milliseconds.",
    )
    cobalt_api_key: SecretStr | None = Field(
        None, validation_alias=_alias("COBALT_API_KEY", "cobalt_api_key"),
        description="Cobalt API key, sent as Api-Key (secret).",
    )
    enable_media_download: bool = Field(
        True, validation_alias=_alias("ENABLE_MEDIA_DOWNLOAD", "enable_media_download"),
        description="Download media (false: skip the media stage).",
    )
    max_media_size_mb: int = Field(
        500, gt=0, validation_alias=_alias("MAX_MEDIA_SIZE_MB", "max_media_size_mb"),
        description="Largest media file to keep, MB (enforced while streaming).",
    )

    # --- Media (BOOKMARK_ENRICH_*) --------------------------------------------
    media_backend: MediaBackendName = Field(
        "auto",
        description="Who downloads media: auto (Cobalt, then yt-dlp when Cobalt cannot or "
        "is not there), cobalt or ytdlp.",
    )
    audio_only: bool = Field(False, description="Download only the audio track.")
    video_quality: VideoQuality = Field(
        "1080", description="Cobalt's videoQuality: max, or a height in pixels (4320 to 144).")
    max_picker_items: int = Field(
        4, ge=1, le=100, description="Items kept from a post with several (Cobalt's picker).")
    media_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More hosts whose links are media (comma-separated).",
        json_schema_extra=_default_text("none"),
    )
    media_concurrency: int = Field(
        2, ge=1, le=64,
        description="Media downloads at once (their own limit, below the bookmark concurrency).",
    )
    create_bucket: bool = Field(
        False, description="Create a missing S3 bucket instead of refusing to run.")
    cobalt_probe_url: str = Field(
        "http://localhost:9000/",
        description='Where Cobalt is looked for when COBALT_API_URL is unset ("": never).',
    )

    # --- Storage (original names) ---------------------------------------------
    s3_endpoint: str | None = Field(
        None, validation_alias=_alias("S3_ENDPOINT", "s3_endpoint"),
        description="S3-compatible endpoint for media (MinIO, SeaweedFS, AWS).",
        json_schema_extra=_default_text("none: media stays in the media folder"),
    )
    s3_access_key: SecretStr | None = Field(
        None, validation_alias=_alias("S3_ACCESS_KEY", "s3_access_key"),
        description="S3 access key (secret).",
    )
    s3_secret_key: SecretStr | None = Field(
        None, validation_alias=_alias("S3_SECRET_KEY", "s3_secret_key"),
        description="S3 secret key (secret).",
    )
    s3_bucket: str = Field(
        "bookmark-media", validation_alias=_alias("S3_BUCKET", "s3_bucket"),
        description="Bucket for media.",
    )
    s3_region: str | None = Field(
        None, validation_alias=_alias("S3_REGION", "s3_region"),
        description="S3 region, when the server wants one.",
    )

    # --- Run (BOOKMARK_ENRICH_*) ----------------------------------------------
    cache: Path = Field(
        default_factory=default_cache_path, description="The SQLite result cache.",
        json_schema_extra=_default_text("cache.sqlite in the user cache dir"),
    )
    media_dir: Path = Field(
        default_factory=default_media_dir, description="Where media goes without S3.",
        json_schema_extra=_default_text("media/ in the user data dir"),
    )
    concurrency: int = Field(16, ge=1, le=1024, description="Bookmarks in flight at once.")
    per_host: int = Field(4, ge=1, le=256, description="Requests in flight per host.")
    connect_timeout: float = Field(
        10.0, gt=0, description="Connect timeout per request, seconds.")
    read_timeout: float = Field(30.0, gt=0, description="Read timeout per request, seconds.")
    fetch_deadline: float = Field(
        60.0, gt=0, description="Total seconds for one page fetch, every attempt and wait "
        "included; a server that never answers or trickles bytes is cut here (reason "
        "`deadline`).")
    media_deadline: float = Field(
        1800.0, gt=0, description="Total seconds for one bookmark's media (every file, "
        "attempt and wait); a download that stalls with no bytes for `read_timeout` "
        "seconds fails sooner (reason `deadline` or `timeout`).")
    host_failures: int = Field(
        3, ge=0, le=100, description="Connect failures, timeouts or deadline hits in a row "
        "after which a host's other bookmarks fail at once in this run (reason "
        "`host_unreachable`; 0: never).")
    max_page_mb: float = Field(
        10.0, gt=0, description="Abort pages larger than this while downloading, MB.")
    max_document_mb: float = Field(
        50.0, gt=0, description="Abort documents (PDF, plain text, Markdown, reST) larger "
        "than this, MB; HTML pages have their own cap (max_page_mb).")
    document_timeout: float = Field(
        60.0, gt=0, description="Seconds one document's extraction may take; a PDF that "
        "takes longer gets the reason `timeout` and the run goes on.")
    max_document_pages: int = Field(
        2000, ge=1, description="Pages read from one PDF; the rest are left out of the "
        "text (page_count still counts them all).")
    max_redirects: int = Field(10, ge=0, le=50, description="Redirects followed per page.")
    retries: int = Field(3, ge=0, le=10, description="Retries on timeouts, 5xx and 429.")
    backoff: float = Field(
        0.5, ge=0, description="Base of the exponential backoff between retries, seconds.")
    max_retry_after: float = Field(
        60.0, ge=0, description="Longest Retry-After honoured, seconds.")
    user_agent: str = Field(
        "Mozilla/5.0 (compatible; bookmark-enrich; +https://pypi.org/project/bookmark-enrich/)",
        description="User-Agent header.",
        json_schema_extra=_default_text("Mozilla/5.0 (compatible; bookmark-enrich; ...)"),
    )
    extract_processes: int = Field(
        default_factory=lambda: _extraction_share(_usable_cores()), ge=0, le=64,
        description="Processes extracting text (0: in a thread). The default leaves the "
        "main process its share: fetching and the rest take about 1/6 of a core per core "
        "extracting, so one core in eight is left to it (2 cores: 2, 8: 7, 16: 14).",
        json_schema_extra=_default_text("the usable cores less one in eight"),
    )
    extract_fallbacks: bool = Field(
        False,
        description="Let trafilatura consult jusText/readability too (slower; no better on "
        "our benchmark).",
    )
    include_text: bool = Field(False, description="Put the extracted text in the output.")
    force: bool = Field(False, description="Ignore the cache; redo every stage.")
    retry_failed: bool = Field(False, description="Redo stages that failed before.")
    strict: bool = Field(False, description="Stop at the first malformed record (exit 2).")
    log_interval: float = Field(
        10.0, gt=0, description="Seconds between progress lines when stderr is not a "
        "terminal (printed even when nothing finishes).")
    log_format: Literal["text", "json"] = Field(
        "text", description="Progress lines without a terminal: text, or one JSON object "
        "per line for log collectors.")
    grace: float = Field(
        10.0, ge=0, description="Seconds in-flight bookmarks get to finish after the first "
        "Ctrl-C or SIGTERM; then they are cancelled and left for the next run.")

    # --- Web archive (BOOKMARK_ENRICH_*) --------------------------------------
    archive: bool = Field(
        True, description="Rescue dead links (404, 410, unknown names, refusals, parked "
        "domains) from a web archive's snapshot.")
    archive_url: str = Field(
        "https://archive.org",
        description="Web archive speaking the Wayback availability API (/wayback/available) "
        "and serving raw captures (/web/<timestamp>id_/<url>): the Internet Archive, or a "
        "self-hosted pywb or other Memento-compatible archive.")
    archive_concurrency: int = Field(
        2, ge=1, le=32, description="Requests in flight to the web archive (its own limit).")
    archive_rate: float = Field(
        1.0, ge=0, description="Requests per second to the web archive (0: no limit); a 429 "
        "pauses every request for its Retry-After.")
    archive_timeout: float = Field(
        60.0, gt=0, description="Seconds one dead link's rescue may take (lookup, waits "
        "and snapshot); then `archive_unavailable` and the run goes on.")
    archive_miss_ttl: float = Field(
        30.0, ge=0, description="Days before a link the archive had no snapshot of is "
        "asked about again.")

    # --- Security (BOOKMARK_ENRICH_*) -----------------------------------------
    allow_private_network: bool = Field(
        False, description="Let bookmarks reach loopback, private, CGNAT and reserved "
        "addresses (never link-local: cloud metadata needs --allow-host).")
    allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Hosts or networks bookmarks may reach whatever "
        "their address (names, IPs or CIDRs; comma-separated in the environment).",
        json_schema_extra=_default_text("none"))
    allow_file_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="Folders whose files file: bookmarks may read, "
        "besides the bookmarks file's own folder (comma-separated in the environment).",
        json_schema_extra=_default_text("none"))

    @field_validator("lm_studio_api_url", "cobalt_api_url", "s3_endpoint", "lm_studio_model",
                     "language", "embedding_url", "embedding_model", "tag_model",
                     "prompt_file", "tag_list", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # ``FOO=`` in a .env file means "not configured", not "the empty URL".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("llm_concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not 1 <= value <= 64:
            raise ValueError("must be auto or a number from 1 to 64")
        return value

    @field_validator("allow_hosts", "allow_file_roots", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("["):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(v).strip() for v in value if str(v).strip()]
        return value

    @field_validator("media_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("["):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(h).strip().lower() for h in value if str(h).strip()]
        return value

    @property
    def effective_tag_style(self) -> str:
        """``tag_style``, with --keep-tag-case (``lowercase_tags`` off) meaning as-written."""
        if self.tag_style == "lowercase" and not self.lowercase_tags:
            return "as-written"
        return self.tag_style

    @property
    def max_page_bytes(self) -> int:
        return int(self.max_page_mb * 1024 * 1024)

    @property
    def max_document_bytes(self) -> int:
        return int(self.max_document_mb * 1024 * 1024)

    @property
    def max_media_bytes(self) -> int:
        return self.max_media_size_mb * 1024 * 1024

    def network_policy(self) -> dict[str, Any]:
        """The settings that say what bookmarks may reach (queue workers apply the
        coordinator's)."""
        return {"allow_private_network": self.allow_private_network,
                "allow_hosts": list(self.allow_hosts),
                "allow_file_roots": [str(p) for p in self.allow_file_roots]}

    def masked(self) -> dict[str, Any]:
        """Every setting as JSON-able values, secrets replaced by ``********``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********"
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, list):
                value = [str(v) if isinstance(v, Path) else v for v in value]
            out[name] = value
        return out


def env_name(field: str) -> str:
    """The environment variable a user sets for ``field``."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    return ENV_PREFIX + field.upper()


def load_settings(**overrides: Any) -> Settings:
    """Build settings; ``None`` overrides are ignored so unset flags fall through."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc") or ("?",)
        field = str(loc[0])
        name = env_name(field) if field in Settings.model_fields else field
        value = err.get("input")
        if field in given:
            name = "--" + field.replace("_", "-")
        raise ConfigError(f"invalid setting {name}={value!r}: {err.get('msg')}") from None

