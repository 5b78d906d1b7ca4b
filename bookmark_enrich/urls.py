"""URL validation and normalization (the cache and dedupe key)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["InvalidURL", "bookmark_key", "normalize_url", "resolve_url"]

_ALLOWED_SCHEMES = ("http", "https", "file")


class InvalidURL(ValueError):
    """Not an http(s) or file URL."""


def resolve_url(raw: str, base_dir: Path | None = None) -> str:
    """Validate ``raw`` and make ``file:`` URLs absolute.

    Relative ``file:`` URLs resolve against ``base_dir`` (the bookmarks file's
    folder), so an example collection can point at pages beside it.
    """
    url = raw.strip()
    if not url:
        raise InvalidURL("empty URL")
    if any(ord(c) < 32 for c in url):
        raise InvalidURL("URL contains control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL" and the like
        raise InvalidURL(f"malformed URL ({exc}): {url[:80]!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        shown = url if len(url) <= 80 else url[:77] + "..."
        raise InvalidURL(f"not an http(s) or file URL: {shown!r}")
    if scheme == "file":
        path_text = unquote(parts.path or parts.netloc)
        if parts.netloc and parts.netloc != "localhost" and parts.path:
            path_text = unquote(parts.path)
        path = Path(path_text)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return path.resolve().as_uri()
    if not parts.hostname:
        raise InvalidURL(f"URL has no host: {url!r}")
    return url


def normalize_url(url: str) -> str:
    """The dedupe form: lower-case host, no fragment, no tracking parameters."""
    if url.startswith("file:"):
        return url
    import courlan  # with urllib3 it costs 0.1 s: loaded by the first URL, not at start-up

    try:
        normalized = courlan.normalize_url(url, strict=False)
    except Exception:  # courlan raises assorted errors on odd input
        normalized = url
    parts = urlsplit(normalized)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))


def bookmark_key(normalized: str) -> str:
    """A short stable key for a normalized URL."""
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()[:32]
