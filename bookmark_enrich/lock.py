"""One run per cache at a time: an advisory ``fcntl`` lock on a file beside the cache.

The kernel drops the lock when the process dies however it dies, so a killed
cron job never leaves a stale lock behind; the file only carries who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import CacheError, CacheLocked

__all__ = ["cache_lock", "lock_path", "process_alive"]


def lock_path(cache: Path) -> Path:
    """The lock file of ``cache`` (``cache.sqlite.lock``)."""
    return cache.with_name(cache.name + ".lock")


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        if text:
            return text
    return "another process"


@contextlib.contextmanager
def cache_lock(cache: Path, *, wait: bool = False,
               notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the cache's lock for the block; raise CacheLocked (exit 75) when taken.

    With ``wait`` the call blocks until the other run finishes (saying so once).
    """
    if str(cache) == ":memory:":
        yield
        return
    path = lock_path(cache)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # the cache's folder
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CacheError(f"{path}: cannot create the lock file: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise CacheLocked(
                    f"{cache}: another run holds the cache lock ({holder}); not starting "
                    "(pass --wait-lock to wait for it)") from None
            if notify is not None:
                notify(f"waiting for the cache lock held by {holder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        note = f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), where the system tells (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith(b"btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def process_alive(pid: int, started_at: float) -> bool:
    """Whether the process ``pid`` that began a run at ``started_at`` still runs here.

    The start time tells a reused pid from the run's own process.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    began = _process_start(pid)
    return began is None or began <= started_at + 2
