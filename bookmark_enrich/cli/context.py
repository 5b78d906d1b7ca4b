"""From the parsed command line to library objects: settings, the source, writeback options."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from ..errors import UsageError
from ..settings import Settings, load_settings
from .options import NEGATING_FLAGS

if TYPE_CHECKING:
    from ..sources import Source
    from ..writeback import WritebackOptions

__all__ = ["SourceSpec", "given", "settings_from_ctx", "writeback_options"]


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option ``name`` (rather than leaving it at its default)."""
    origin = ctx.get_parameter_source(name)
    return origin is not None and origin.name not in ("DEFAULT", "DEFAULT_MAP")


def settings_from_ctx(ctx: typer.Context, **extra: Any) -> Settings:
    """Settings where every option the user gave, named like a Settings field, wins.

    A command adds a setting flag by naming its parameter after the field (or
    listing it in ``NEGATING_FLAGS``); flags left at their default fall through to
    the environment, .env and defaults. ``extra`` values that are not None win too.
    """
    overrides = {name: value for name, value in ctx.params.items()
                 if name in Settings.model_fields and given(ctx, name)}
    overrides.update({field: False for flag, field in NEGATING_FLAGS.items()
                      if ctx.params.get(flag)})
    overrides.update({k: v for k, v in extra.items() if v is not None})
    return load_settings(**overrides)


@dataclass(frozen=True)
class SourceSpec:
    """The SOURCE argument and the options that say how to read it."""

    spec: str | None
    input_format: str | None = None
    url_field: str | None = None
    table: str | None = None
    id_column: str | None = None
    url_column: str | None = None
    where: str | None = None
    input_encoding: str | None = None

    @property
    def location(self) -> str:
        """SOURCE, or ``-`` when it is left out and stdin is a pipe."""
        if self.spec is not None:
            return self.spec
        if not sys.stdin.isatty():
            return "-"
        raise UsageError("no SOURCE given and stdin is a terminal; "
                         "try `bookmark-enrich run bookmarks.html`")

    def open(self) -> Source:
        from ..sources import open_source

        db: dict[str, Any] = {
            k: v for k, v in (("table", self.table), ("id_column", self.id_column),
                              ("url_column", self.url_column), ("where", self.where))
            if v is not None}
        return open_source(self.location, input_format=self.input_format,
                           url_field=self.url_field, input_encoding=self.input_encoding, **db)


def writeback_options(*, dry_run: bool = False, no_backup: bool, columns: str | None,
                      column_prefix: str, create_columns: bool,
                      archive_field: str | None = None) -> WritebackOptions:
    """The writeback flags as the library's options."""
    from ..writeback import WritebackOptions

    if archive_field is not None and not archive_field.strip():
        raise UsageError("--archive-field needs a field name (e.g. archive_url)")
    return WritebackOptions(
        dry_run=dry_run, backup=not no_backup, column_prefix=column_prefix,
        columns=[c for c in columns.split(",") if c.strip()] if columns else None,
        create_columns=create_columns,
        archive_field=archive_field.strip() if archive_field is not None else None)
