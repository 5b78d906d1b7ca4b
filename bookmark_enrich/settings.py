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

__all__ = ["ENV_PREFIX", "Settings", "env_name", "load_settings"]

ENV_PREFIX = "BOOKMARK_ENRICH_"
APP_NAME = "bookmark-enrich"


def _alias(*names: str) -> Any:
    return AliasChoices(*names)


def default_cache_path() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "cache.sqlite"


def default_media_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "media"


class Settings(BaseSettings):
    """Every knob of a run. Build with :func:`load_settings` to get readable errors."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # --- LLM (original names) -------------------------------------------------
    lm_studio_api_url: str | None = Field(
        None, validation_alias=_alias("LM_STUDIO_API_URL", "lm_studio_api_url")
    )
    lm_studio_model: str | None = Field(
        None, validation_alias=_alias("LM_STUDIO_MODEL", "lm_studio_model")
    )
    lm_studio_max_tokens: int = Field(
        1000, gt=0, validation_alias=_alias("LM_STUDIO_MAX_TOKENS", "lm_studio_max_tokens")
    )
    lm_studio_temperature: float = Field(
        0.7, ge=0, le=2, validation_alias=_alias("LM_STUDIO_TEMPERATURE", "lm_studio_temperature")
    )
    lm_studio_api_key: SecretStr | None = Field(
        None,
        validation_alias=_alias("LM_STUDIO_API_KEY", "OPENAI_API_KEY", "lm_studio_api_key"),
    )
    enable_ai_summarization: bool = Field(
        True, validation_alias=_alias("ENABLE_AI_SUMMARIZATION", "enable_ai_summarization")
    )

    # --- Summaries (BOOKMARK_ENRICH_*) ----------------------------------------
    summarizer: Literal["auto", "llm", "builtin"] = "auto"
    llm_timeout: float = Field(120.0, gt=0)
    """Seconds per LLM request; local models on a CPU are slow."""
    llm_concurrency: int = Field(2, ge=1, le=64)
    """LLM requests in flight; local servers have few parallel slots."""
    context_tokens: int | None = Field(None, ge=512)
    """Override the context length the server reports."""
    max_tags: int = Field(5, ge=0, le=50)
    language: str | None = None
    """Force the language of summaries and tags (``en``); default: the page's."""
    merge_tags: bool = False
    lowercase_tags: bool = True
    llm_probe_urls: list[str] | None = None
    """Where ``--summarizer auto`` looks for a local LLM when LM_STUDIO_API_URL is unset
    (a JSON list; default LM Studio, Ollama, llama-server, vLLM; ``[]``: never look)."""

    # --- Media (original names) -----------------------------------------------
    cobalt_api_url: str | None = Field(
        None, validation_alias=_alias("COBALT_API_URL", "cobalt_api_url")
    )
    cobalt_timeout: int = Field(
        30000, gt=0, validation_alias=_alias("COBALT_TIMEOUT", "cobalt_timeout")
    )
    cobalt_api_key: SecretStr | None = Field(
        None, validation_alias=_alias("COBALT_API_KEY", "cobalt_api_key")
    )
    enable_media_download: bool = Field(
        True, validation_alias=_alias("ENABLE_MEDIA_DOWNLOAD", "enable_media_download")
    )
    max_media_size_mb: int = Field(
        500, gt=0, validation_alias=_alias("MAX_MEDIA_SIZE_MB", "max_media_size_mb")
    )

    # --- Media (BOOKMARK_ENRICH_*) --------------------------------------------
    media_backend: Literal["auto", "cobalt", "ytdlp"] = "auto"
    """auto: Cobalt, then yt-dlp when Cobalt cannot (or is not there)."""
    audio_only: bool = False
    """Download only the audio track."""
    video_quality: Literal["max", "4320", "2160", "1440", "1080", "720", "480", "360", "240",
                           "144"] = "1080"
    """Cobalt's videoQuality."""
    max_picker_items: int = Field(4, ge=1, le=100)
    """Items kept from a post with several (Cobalt's picker)."""
    media_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Extra hosts whose links are media (comma-separated)."""
    media_concurrency: int = Field(2, ge=1, le=64)
    """Media downloads at once (their own limit, below the bookmark concurrency)."""
    create_bucket: bool = False
    """Create a missing S3 bucket instead of refusing to run."""
    cobalt_probe_url: str = "http://localhost:9000/"
    """Where the media stage looks for Cobalt when COBALT_API_URL is unset (``""``: never)."""

    # --- Storage (original names) ---------------------------------------------
    s3_endpoint: str | None = Field(None, validation_alias=_alias("S3_ENDPOINT", "s3_endpoint"))
    s3_access_key: SecretStr | None = Field(
        None, validation_alias=_alias("S3_ACCESS_KEY", "s3_access_key")
    )
    s3_secret_key: SecretStr | None = Field(
        None, validation_alias=_alias("S3_SECRET_KEY", "s3_secret_key")
    )
    s3_bucket: str = Field(
        "bookmark-media", validation_alias=_alias("S3_BUCKET", "s3_bucket")
    )
    s3_region: str | None = Field(None, validation_alias=_alias("S3_REGION", "s3_region"))

    # --- Run (BOOKMARK_ENRICH_*) ----------------------------------------------
    cache: Path = Field(default_factory=default_cache_path)
    media_dir: Path = Field(default_factory=default_media_dir)
    concurrency: int = Field(16, ge=1, le=1024)
    per_host: int = Field(4, ge=1, le=256)
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    max_page_mb: float = Field(10.0, gt=0)
    max_document_mb: float = Field(
        50.0, gt=0, description="Abort documents (PDF, plain text, Markdown, reST) larger "
        "than this, MB; HTML pages have their own cap (max_page_mb).")
    document_timeout: float = Field(
        60.0, gt=0, description="Seconds one document's extraction may take; a PDF that "
        "takes longer gets the reason `timeout` and the run goes on.")
    max_document_pages: int = Field(
        2000, ge=1, description="Pages read from one PDF; the rest are left out of the "
        "text (page_count still counts them all).")
    max_redirects: int = Field(10, ge=0, le=50)
    retries: int = Field(3, ge=0, le=10)
    backoff: float = Field(0.5, ge=0)
    max_retry_after: float = Field(60.0, ge=0)
    user_agent: str = Field(
        "Mozilla/5.0 (compatible; bookmark-enrich; +https://pypi.org/project/bookmark-enrich/)"
    )
    extract_processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=0, le=64
    )
    extract_fallbacks: bool = False
    """Let trafilatura consult jusText/readability too (slower, rarely better)."""
    include_text: bool = False
    force: bool = False
    retry_failed: bool = False
    strict: bool = False
    log_interval: float = Field(10.0, gt=0)

    @field_validator("lm_studio_api_url", "cobalt_api_url", "s3_endpoint", "lm_studio_model",
                     "language", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # ``FOO=`` in a .env file means "not configured", not "the empty URL".
        if isinstance(value, str) and not value.strip():
            return None
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
    def max_page_bytes(self) -> int:
        return int(self.max_page_mb * 1024 * 1024)

    @property
    def max_document_bytes(self) -> int:
        return int(self.max_document_mb * 1024 * 1024)

    @property
    def max_media_bytes(self) -> int:
        return self.max_media_size_mb * 1024 * 1024

    def masked(self) -> dict[str, Any]:
        """Every setting as JSON-able values, secrets replaced by ``********``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********"
            elif isinstance(value, Path):
                value = str(value)
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

