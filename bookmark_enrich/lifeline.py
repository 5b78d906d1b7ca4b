"""Pool processes die with the run that started them, however it dies.

Imported (preloaded) by the extraction pool's forkserver: there, on Linux, it asks
the kernel to kill the forkserver when the run's process dies; the pool workers,
forked from it, ask the same of the forkserver (:func:`die_with_parent`). Without
this a ``kill -9`` of a run leaves them all behind: each worker holds the pipe the
forkserver watches for the run's death, so none of them ever notices.
"""

from __future__ import annotations

import contextlib
import signal
import sys

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Linux: SIGKILL this process when its parent dies. Whether that is in place."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    return False


def _in_forkserver() -> bool:
    return sys.argv[:1] == ["-c"] and "multiprocessing.forkserver" in sys.modules


if _in_forkserver():
    die_with_parent()
