"""The one place errors become exits: a line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from ..errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_IOERR,
    EXIT_USAGE,
    BookmarkEnrichError,
    disk_full_message,
)
from .console import err

__all__ = ["exits", "fail"]

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    # emoji=False: "run:abc:" in a message is text, not an emoji code.
    err.print(f"error: {message}", markup=False, highlight=False, emoji=False, soft_wrap=True)
    return typer.Exit(code)


def exits(command: Callable[P, R]) -> Callable[P, R]:
    """Run a command so that whatever it raises ends as one line and an exit code.

    A domain error (:class:`BookmarkEnrichError`) exits with its ``exit_code``,
    Ctrl-C with 130, a closed stdout (``| head``) quietly with 141; anything else is
    a bug: one ``internal error:`` line, or the traceback with BOOKMARK_ENRICH_DEBUG set.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except BookmarkEnrichError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):
            raise  # exits already, or a usage error typer prints itself
        except BrokenPipeError:
            # The reader went away: stop quietly, as Unix tools do.
            try:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the final flush
            finally:
                raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise _internal(exc) from None
            raise fail(disk_full_message("output", exc.filename or "a file being written",
                                         "the source and the cache are intact; free some "
                                         "space and run again"), EXIT_IOERR) from None
        except Exception as exc:
            raise _internal(exc) from None

    return run


def _internal(exc: Exception) -> typer.Exit:
    """A bug: one line, or the traceback with BOOKMARK_ENRICH_DEBUG set."""
    if os.environ.get("BOOKMARK_ENRICH_DEBUG"):
        raise exc
    return fail(f"internal error: {type(exc).__name__}: {exc} "
                "(set BOOKMARK_ENRICH_DEBUG=1 for the traceback)", EXIT_FAILURES)
