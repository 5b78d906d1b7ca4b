"""Replacing files atomically: a reader sees the old file or the whole new one, never half.

The new content goes to a temporary file beside the target, is fsynced, renamed
over the target, and the directory is fsynced so the rename survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_replace", "fsync_dir", "replace_file", "temp_beside"]


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_beside(target: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new hidden temporary file in ``target``'s folder (same file system: rename works)."""
    folder = target.parent if str(target.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=folder)
    return fd, Path(name)


def replace_file(temp: Path, target: Path) -> None:
    """Rename ``temp`` over ``target`` and make the rename durable."""
    os.replace(temp, target)
    fsync_dir(target.parent if str(target.parent) else Path("."))


@contextlib.contextmanager
def atomic_replace(target: Path, *, suffix: str = ".tmp", mode: int | None = None,
                   before_replace: Callable[[], None] | None = None) -> Iterator[IO[bytes]]:
    """Write the new ``target`` through the yielded binary stream; replaced on success.

    ``mode`` sets the new file's permissions (default: the old file's, or the
    umask's for a new file); ``before_replace`` runs last, once the new content is
    safely on disk (it may raise to keep the old file). On any error the temporary
    file is removed and ``target`` is left as it was.
    """
    fd, temp = temp_beside(target, suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if mode is None:
            try:
                mode = os.stat(target).st_mode & 0o7777
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
        os.chmod(temp, mode)
        if before_replace is not None:
            before_replace()
        replace_file(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
