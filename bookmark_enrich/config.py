"""`config show` and `config init`: where each setting comes from, and a `.env` template.

Origins follow pydantic-settings' own order: a flag beats the environment, which
beats ``.env``, which beats the default. The template lists every Settings
field, so a setting added later appears in it with no change here.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, SecretStr
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

from .errors import UsageError
from .fileio import atomic_replace
from .settings import Settings, env_name

__all__ = ["Origin", "describe", "env_template", "setting_origins", "settings_table",
           "write_template"]

Origin = Literal["default", ".env", "environment", "flag"]

_HELP = {
    "lm_studio_api_url": "OpenAI-compatible LLM server, e.g. http://127.0.0.1:1234/v1",
    "lm_studio_model": "Model to use (default: the loaded one)",
    "lm_studio_max_tokens": "Longest summary answer, in tokens",
    "lm_studio_temperature": "Sampling temperature of summaries",
    "lm_studio_api_key": "API key of the LLM server (secret)",
    "enable_ai_summarization": "Summarize pages (false: skip the summarize stage)",
    "summarizer": "auto (a local LLM if one answers, else built-in), llm or builtin",
    "max_tags": "Suggested tags per bookmark",
    "merge_tags": "Put the record's own tags first in enrichment.tags",
    "lowercase_tags": "Lower-case suggested tags",
    "cobalt_api_url": "Cobalt instance for media downloads",
    "cobalt_timeout": "Cobalt request timeout, milliseconds",
    "cobalt_api_key": "Cobalt API key (secret)",
    "enable_media_download": "Download media (false: skip the media stage)",
    "max_media_size_mb": "Largest media file to keep, MB",
    "s3_endpoint": "S3-compatible endpoint for media (unset: keep media in MEDIA_DIR)",
    "s3_access_key": "S3 access key (secret)",
    "s3_secret_key": "S3 secret key (secret)",
    "s3_bucket": "Bucket for media",
    "s3_region": "S3 region, when the server wants one",
    "cache": "The SQLite result cache",
    "media_dir": "Where media goes without S3",
    "concurrency": "Bookmarks in flight at once",
    "per_host": "Requests in flight per host",
    "connect_timeout": "Connect timeout per request, seconds",
    "read_timeout": "Read timeout per request, seconds",
    "max_page_mb": "Abort pages larger than this, MB",
    "max_redirects": "Redirects followed per page",
    "retries": "Retries on timeouts, 5xx and 429",
    "backoff": "Base of the exponential backoff, seconds",
    "max_retry_after": "Longest Retry-After honoured, seconds",
    "user_agent": "User-Agent header",
    "extract_processes": "Processes extracting text (0: in a thread)",
    "include_text": "Put the extracted text in the output",
    "force": "Ignore the cache; redo every stage",
    "retry_failed": "Redo stages that failed before",
    "strict": "Stop at the first malformed record",
    "log_interval": "Seconds between progress lines when stderr is not a terminal",
}


def _docstrings() -> dict[str, str]:
    """Attribute docstrings of Settings (the line under a field), read from its source."""
    try:
        tree = ast.parse(inspect.getsource(Settings))
    except (OSError, TypeError, SyntaxError):
        return {}
    found: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for stmt, nxt in itertools.pairwise(body):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and \
                isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and \
                isinstance(nxt.value.value, str):
            found[stmt.target.id] = " ".join(nxt.value.value.split())
    return found


def describe(field: str) -> str:
    """One line of help for a setting."""
    info = Settings.model_fields[field]
    return _HELP.get(field) or info.description or _docstrings().get(field) or \
        field.replace("_", " ")


def _names(field: str) -> set[str]:
    info = Settings.model_fields[field]
    names = {field}
    if isinstance(info.validation_alias, AliasChoices):
        names |= {c for c in info.validation_alias.choices if isinstance(c, str)}
    return names


def setting_origins(flags: set[str] | None = None) -> dict[str, Origin]:
    """Where each setting's value comes from, in pydantic-settings' priority order."""
    env = {k.lower() for k in EnvSettingsSource(Settings)()}
    dotenv = {k.lower() for k in DotEnvSettingsSource(Settings)()}
    flags = flags or set()
    out: dict[str, Origin] = {}
    for field in Settings.model_fields:
        names = {n.lower() for n in _names(field)}
        if field in flags:
            out[field] = "flag"
        elif names & env:
            out[field] = "environment"
        elif names & dotenv:
            out[field] = ".env"
        else:
            out[field] = "default"
    return out


def settings_table(settings: Settings, flags: set[str] | None = None) -> list[dict[str, Any]]:
    """Every setting: name, variable, value (secrets masked), origin."""
    origins = setting_origins(flags)
    values = settings.masked()
    return [{"setting": field, "env": env_name(field), "value": values[field],
             "origin": origins[field]} for field in Settings.model_fields]


def _env_value(value: Any) -> str:
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    text = str(value)
    return f'"{text}"' if any(c in text for c in " #'\"") else text


def env_template() -> str:
    """A commented `.env` with every setting at its default (all lines commented out)."""
    defaults = Settings.model_construct()
    lines = ["# bookmark-enrich settings. Uncomment a line to change it; the environment",
             "# and command-line flags win over this file. `bookmark-enrich config show`",
             "# prints the values in effect and where each one comes from.", ""]
    for field in Settings.model_fields:
        info = Settings.model_fields[field]
        value = getattr(defaults, field, None) if info.default_factory is None else None
        lines.append(f"# {describe(field)}")
        shown = _env_value(value)
        if info.default_factory is not None:
            lines.append(f"# (default: {_env_value(getattr(defaults, field, None))})")
        lines.append(f"#{env_name(field)}={shown}")
        lines.append("")
    return "\n".join(lines)


def write_template(path: Path, *, force: bool = False) -> None:
    """Write :func:`env_template` to ``path``; an existing file needs ``force``."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists; not overwriting it (pass --force to replace it)")
    try:
        # It will hold secrets once filled in: readable by its owner only.
        with atomic_replace(path, mode=0o600) as out:
            out.write(env_template().encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
