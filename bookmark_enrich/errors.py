"""One exception hierarchy for the library; the CLI maps it onto exit codes."""

from __future__ import annotations

from .reasons import Reason

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CODES",
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_IOERR",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_SERVICE",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "BookmarkEnrichError",
    "CacheError",
    "CacheLocked",
    "ConfigError",
    "DiskFull",
    "InputError",
    "ServiceUnavailable",
    "StageError",
    "UsageError",
    "exit_for_signal",
]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_SERVICE = 3
EXIT_IOERR = 74
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_BROKEN_PIPE = 141

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "Every bookmark was enriched (or there was nothing to do).",
    EXIT_FAILURES: "The run finished, but some bookmarks failed a stage, or some input "
    "records were skipped as malformed; or a check failed (`doctor`).",
    EXIT_USAGE: "Bad usage: an unknown option value, an unreadable source or cache, a "
    "source that matches no format, a source whose every record was rejected.",
    EXIT_SERVICE: "A service you configured (LLM, Cobalt, S3, the queue) failed its check "
    "before the run started; nothing was done.",
    EXIT_IOERR: "A disk filled up (EX_IOERR): the cache or an output or writeback target; "
    "what was written before is intact. Free some space and run again.",
    EXIT_LOCKED: "Another run holds the cache (EX_TEMPFAIL); try again later or pass "
    "`--wait-lock`.",
    EXIT_INTERRUPTED: "Stopped by Ctrl-C (SIGINT); the next run resumes.",
    EXIT_TERMINATED: "Stopped by SIGTERM (a service manager, `kill`); the next run resumes.",
    EXIT_BROKEN_PIPE: "The reader of stdout went away (`| head`).",
}
"""Every exit code the CLI uses and what it means; the docs are generated from this."""

_SIGTERM = 15


def disk_full_message(what: str, path: object, detail: str) -> str:
    """``<what> disk full: <path> (N MB free); <detail>`` for a full file system."""
    import os
    import shutil

    folder = os.path.dirname(os.path.abspath(str(path))) or "."
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:.0f} MB free"
    except OSError:
        free = "free space unknown"
    return f"{what} disk full: {path} ({free}); {detail}"


def exit_for_signal(signum: int | None) -> int:
    """The exit code of a run stopped by ``signum``: 143 for SIGTERM, else 130."""
    return EXIT_TERMINATED if signum == _SIGTERM else EXIT_INTERRUPTED


class BookmarkEnrichError(Exception):
    """Base of every error this package raises on purpose.

    ``exit_code`` is what the CLI exits with; the message is one line for stderr.
    """

    exit_code: int = EXIT_FAILURES


class UsageError(BookmarkEnrichError):
    """Options that cannot work together or have bad values."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A setting (environment, .env or flag) with an invalid value."""


class InputError(BookmarkEnrichError):
    """The source cannot be read at all: missing, unreadable, unknown format."""

    exit_code = EXIT_USAGE


class CacheError(BookmarkEnrichError):
    """The cache file is not usable (not SQLite, corrupted, not writable)."""

    exit_code = EXIT_USAGE


class CacheLocked(BookmarkEnrichError):
    """Another run holds the cache lock."""

    exit_code = EXIT_LOCKED


class ServiceUnavailable(BookmarkEnrichError):
    """A configured external service failed its preflight check."""

    exit_code = EXIT_SERVICE


class StageError(Exception):
    """A stage failed for one bookmark.

    ``reason`` is a stable machine-readable code (a :class:`~.reasons.Reason`; a
    third-party stage may use its own) stored in the cache and the output;
    ``retryable`` tells the retry loop whether to try again, and ``attempts`` is
    how many tries it took before giving up.
    """

    def __init__(
        self,
        reason: Reason | str,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.reason: str = reason
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = attempts


class DiskFull(BookmarkEnrichError):
    """A file system filled up under the cache or an output; nothing written is lost."""

    exit_code = EXIT_IOERR
