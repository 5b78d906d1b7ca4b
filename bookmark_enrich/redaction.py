"""Keeping credentials out of messages, logs, output and the cache.

Service and database URLs may carry a password (``redis://:pw@host``,
``postgresql://user:pw@host/db``). Whatever is shown or stored goes through
these two functions.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "redact_url", "scrub", "url_host"]

MASK = "********"


def redact_url(url: str) -> str:
    """The URL with its password replaced by :data:`MASK` (the user name stays)."""
    try:
        parts = urlsplit(url)
        password = parts.password
        port = parts.port
    except ValueError:  # not a URL we can take apart: show nothing of its authority
        return url.split("://", 1)[0] + "://" + MASK if "://" in url else MASK
    if password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_host(url: str) -> str:
    """``http://user:pw@host:1234/v1`` → ``host:1234``: where a service is, no credentials."""
    return url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]


def scrub(message: str, *secrets: str | None) -> str:
    """``message`` on one line, with every given secret replaced by :data:`MASK`."""
    message = " ".join(str(message).split())
    for secret in secrets:
        if secret:
            message = message.replace(secret, MASK)
    return message
