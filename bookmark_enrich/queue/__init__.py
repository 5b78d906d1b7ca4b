"""Scale out with taskiq: a coordinator sends batches of bookmarks to worker processes.

Needs the ``[queue]`` extra: without taskiq, taskiq-redis and redis, importing
this package raises :class:`ExtraMissing` (an ImportError, and a usage error
that the CLI shows as one line, exit 2).

- :mod:`.wire`: the JSON of batches and replies.
- :mod:`.broker`: taskiq-redis' stream broker and what a worker adds to it
  (read only with room, renew, requeue a dead worker's messages, hand back, trim).
- :mod:`.connection`: one named queue on one Redis; heartbeats; ``doctor``'s check.
- :mod:`.worker`: :func:`run_worker` and its :class:`BatchHandler`.
- :mod:`.coordinator`: :class:`RemoteExecutor`, the pipeline's executor for a
  queued run (:func:`bookmark_enrich.runner.enrich_queued` puts them together).

Delivery: the stream's consumer group holds each message until the worker
acknowledges it after the result is saved; a message whose holder stopped
renewing it (a dead worker) for ``idle_timeout`` goes to another worker; the
coordinator keeps the first result per bookmark. Versions: the stream is named
after the tool version and each message carries it too, so a worker of another
version never runs this work. Exit codes: an unreachable or lost Redis and "no
worker within ``--no-worker-timeout``" are service problems (3); a version
mismatch, a bad ``--queue`` URL and the missing extra are usage problems (2).
"""

from __future__ import annotations

from ..errors import UsageError


class ExtraMissing(UsageError, ImportError):
    """The ``[queue]`` extra is not installed."""


# Checked here, not in the modules below: a module already imported stays in
# sys.modules, so only this file runs again on every import of the package.
try:
    import redis  # noqa: F401
    import taskiq  # noqa: F401
    import taskiq_redis  # noqa: F401
except ImportError:
    raise ExtraMissing(
        "the queue needs taskiq and taskiq-redis: pip install 'bookmark-enrich[queue]'"
    ) from None

from .connection import (  # noqa: E402
    DEFAULT_QUEUE_NAME,
    QueueConnection,
    QueueUnavailable,
    WorkerInfo,
    list_workers,
    queue_checks,
)
from .coordinator import NoWorkers, RemoteExecutor, remote_executor  # noqa: E402
from .wire import (  # noqa: E402
    VersionMismatch,
    bookmark_from_json,
    bookmark_to_json,
    outcome_from_json,
    outcome_to_json,
)
from .worker import BatchHandler, run_worker  # noqa: E402

__all__ = [
    "DEFAULT_QUEUE_NAME",
    "BatchHandler",
    "ExtraMissing",
    "NoWorkers",
    "QueueConnection",
    "QueueUnavailable",
    "RemoteExecutor",
    "VersionMismatch",
    "WorkerInfo",
    "bookmark_from_json",
    "bookmark_to_json",
    "list_workers",
    "outcome_from_json",
    "outcome_to_json",
    "queue_checks",
    "remote_executor",
    "run_worker",
]
