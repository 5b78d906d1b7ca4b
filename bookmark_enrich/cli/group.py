"""The typer app class every command group is built from, and the lazy root group.

One place decides how help looks: rich markup, ``-h``/``--help``, and on/off flags
without the ``<bool>`` placeholder typer shows in the type column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

__all__ = ["CommandGroup", "LazyRoot"]


def _flags_without_type(params: list[Any]) -> list[Any]:
    # A flag takes no value, so its type column stays empty (typer would print <bool>).
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(list(super().get_params(ctx)))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(list(super().get_params(ctx)))


class LazyRoot(_Group):
    """The root group: a command's module is imported when the command is looked up.

    ``index`` maps each command to (module, help panel, short help); ``loader`` turns a
    module's name into its click commands. The root's own help lists the index without
    importing anything; ``commands`` (the docs, typo suggestions) loads them all.
    """

    index: ClassVar[dict[str, tuple[str, str, str]]] = {}

    @staticmethod
    def loader(module: str) -> dict[str, Any]:
        raise NotImplementedError  # bound by :meth:`of`

    @classmethod
    def of(cls, index: dict[str, tuple[str, str, str]],
           loader: Callable[[str], dict[str, Any]]) -> type[LazyRoot]:
        """This class bound to ``index`` and ``loader`` (typer instantiates the class)."""
        return type("Root", (cls,), {"index": index, "loader": staticmethod(loader)})

    def __init__(self, **kwargs: Any) -> None:
        self._loaded: dict[str, Any] = {}
        self._listing = False
        super().__init__(**kwargs)

    @property  # type: ignore[override]
    def commands(self) -> dict[str, Any]:
        return {name: self._load(name) for name in self.index}

    @commands.setter
    def commands(self, value: Any) -> None:
        self._loaded.update(value)  # typer hands over the (empty) registered ones

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.index)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.index:
            return None
        if self._listing and cmd_name not in self._loaded:
            _, panel, short = self.index[cmd_name]
            return _Command(name=cmd_name, help=short, rich_help_panel=panel)
        return self._load(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # the list needs each command's name, panel and short help only
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def _load(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded.update(self.loader(self.index[name][0]))
        return self._loaded[name]


class CommandGroup(typer.Typer):
    """A ``typer.Typer`` with this CLI's help conventions for itself and its commands."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", _Group)
        kwargs.setdefault("rich_markup_mode", "rich")
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        kwargs.setdefault("pretty_exceptions_enable", False)
        kwargs.setdefault("add_completion", False)
        super().__init__(**kwargs)

    def command(self, *args: Any,
                **kwargs: Any) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)
