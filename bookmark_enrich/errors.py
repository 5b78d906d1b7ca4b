"""One exception hierarchy for the library; the CLI maps it onto exit codes."""

from __future__ import annotations

__all__ = [
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_SERVICE",
    "EXIT_USAGE",
    "BookmarkEnrichError",
    "CacheError",
    "CacheLocked",
    "ConfigError",
    "InputError",
    "ServiceUnavailable",
    "StageError",
    "UsageError",
]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_SERVICE = 3
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130


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

    ``reason`` is a stable machine-readable code stored in the cache and the
    output; ``retryable`` tells the stage's retry loop whether to try again.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
