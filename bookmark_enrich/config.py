"""`config show` and `config init`: where each setting comes from, and a `.env` template.

Origins follow pydantic-settings' own order: a flag beats the environment, which
beats ``.env``, which beats the default. The template lists every Settings
field, so a setting added later appears in it with no change here.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, SecretStr
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

from .errors import UsageError
from .fileio import atomic_replace
from .settings import Settings, env_name

__all__ = ["Origin", "default_text", "describe", "env_names", "env_template",
           "setting_origins", "settings_table", "write_template"]

Origin = Literal["default", ".env", "environment", "flag"]

def describe(field: str) -> str:
    """A setting's one help text: its ``Field(description=...)`` in :class:`Settings`."""
    return Settings.model_fields[field].description or ""


def default_text(field: str) -> str | None:
    """How a setting's default reads in ``--help`` and the docs; None when unset.

    A default computed on this machine (the cache path, the CPU count) is shown by
    its ``default_text``, so generated docs are the same on every machine.
    """
    info = Settings.model_fields[field]
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("default_text"), str):
        return str(extra["default_text"])
    if info.default_factory is not None or info.default is None:
        return None
    if isinstance(info.default, bool):
        return "true" if info.default else "false"
    return str(info.default)


def env_names(field: str) -> list[str]:
    """Every environment variable that sets ``field``, the usual one first."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str) and c.isupper()]
        if names:
            return names
    return [env_name(field)]


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
        lines.extend(textwrap.wrap(describe(field), 76, initial_indent="# ",
                                   subsequent_indent="# ", break_on_hyphens=False))
        if info.default_factory is not None:  # what it is on this machine
            lines.append(f"# (default: {_env_value(getattr(defaults, field, None))})")
        elif value is None and default_text(field):
            lines.append(f"# (default: {default_text(field)})")
        lines.append(f"#{env_name(field)}={_env_value(value)}")
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
