"""URLs as browsers read them (the WHATWG URL Standard), and their de-duplication form.

Parsing is ada's (``ada-url``, a conformant URL Standard parser): tabs and line
breaks inside a URL are removed and surrounding whitespace trimmed, as a browser's
address bar does; hosts are lower-cased, IDNA-encoded and IPv4 forms such as
``0177.0.0.1`` or ``2130706433`` read as the address they name (``127.0.0.1``), so
the network policy sees the host a fetch would reach.

Normalization (the cache and de-duplication key) changes only what cannot change the
resource: scheme and host case, default ports, the fragment, and the tracking
parameters in :data:`TRACKING_PARAMETERS`. Every other parameter stays, in its order,
spelled as it was, including those without a value (``?pg0`` and ``?pg1`` differ).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "TRACKING_PARAMETERS",
    "TRACKING_PREFIXES",
    "InvalidURL",
    "bookmark_key",
    "normalize_url",
    "resolve_url",
]

_ALLOWED_SCHEMES = ("http", "https", "file")

TRACKING_PREFIXES = ("utm_",)
"""Parameter name prefixes removed by normalization (any case)."""

TRACKING_PARAMETERS = frozenset({
    "fbclid",  # Facebook click id
    "gclid", "gclsrc", "dclid", "gbraid", "wbraid",  # Google Ads / DoubleClick
    "msclkid",  # Microsoft Ads
    "mc_eid", "mc_cid",  # Mailchimp
    "igshid",  # Instagram share id
    "yclid",  # Yandex
    "twclid",  # X / Twitter
    "ttclid",  # TikTok
    "li_fat_id",  # LinkedIn
    "_hsenc", "_hsmi",  # HubSpot
    "mkt_tok",  # Marketo
    "oly_anon_id", "oly_enc_id",  # Omeda
    "vero_id", "vero_conv",  # Vero
    "__s",  # Drip
    "_openstat",  # Yandex Openstat
})
"""Parameter names (any case) removed by normalization: click and campaign ids that
identify the visitor or the campaign, never the page."""

# Tab, LF and CR anywhere in a URL are removed by the URL Standard's parser.
_TAB_NEWLINE = re.compile("[\t\n\r]")
_C0_OR_SPACE = "".join(chr(c) for c in range(33))
_TRACKING_HINT = re.compile(
    "|".join([re.escape(p) for p in TRACKING_PREFIXES]
             + [re.escape(p) + "(?:[=&]|$)" for p in sorted(TRACKING_PARAMETERS)]),
    re.IGNORECASE)

_parse: Callable[..., Any] | None = None
_ATTRIBUTES = ("href", "protocol", "hostname")


def _parser() -> Callable[..., Any]:
    # ada's extension loads on first use, not at CLI import time.
    global _parse
    if _parse is None:
        from ada_url import parse_url

        _parse = parse_url
    return _parse


class InvalidURL(ValueError):
    """Not an http(s) or file URL, or not one the URL Standard accepts."""


def _shown(url: str) -> str:
    return repr(url if len(url) <= 200 else url[:197] + "...")


def resolve_url(raw: str, base_dir: Path | None = None) -> str:
    """``raw`` as a browser reads it (http, https or file), or :class:`InvalidURL`.

    Relative ``file:`` URLs resolve against ``base_dir`` (the bookmarks file's
    folder), so an example collection can point at pages beside it.
    """
    url = raw.strip(_C0_OR_SPACE)
    if "\t" in url or "\n" in url or "\r" in url:
        url = _TAB_NEWLINE.sub("", url)
    if not url:
        raise InvalidURL("empty URL")
    if not url.isprintable() and any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidURL(f"URL contains control characters: {_shown(url)}")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in _ALLOWED_SCHEMES:
        raise InvalidURL(f"not an http(s) or file URL: {_shown(url)}")
    if scheme == "file":
        return _file_url(url, base_dir)
    try:
        parts = _parser()(url, _ATTRIBUTES)
    except ValueError:
        raise InvalidURL(f"not a valid URL (the URL Standard rejects it): {_shown(url)}"
                         ) from None
    if not parts["hostname"]:
        raise InvalidURL(f"URL has no host: {_shown(url)}")
    return str(parts["href"])


def _file_url(url: str, base_dir: Path | None) -> str:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidURL(f"malformed URL ({exc}): {_shown(url)}") from None
    path_text = unquote(parts.path or parts.netloc)
    if parts.netloc and parts.netloc != "localhost" and parts.path:
        path_text = unquote(parts.path)
    path = Path(path_text)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path.resolve().as_uri()


def normalize_url(url: str) -> str:
    """The de-duplication form of a URL that :func:`resolve_url` returned.

    The URL Standard's serialization already has the scheme and host lower-cased and
    no default port; this drops the fragment and the tracking parameters.
    """
    if url.startswith("file:"):
        return url
    if not url.startswith(("http://", "https://")):
        url = resolve_url(url)
    url = url.partition("#")[0]
    base, mark, query = url.partition("?")
    if not mark or not _TRACKING_HINT.search(query):
        return url
    kept = [p for p in query.split("&") if not _is_tracking(p)]
    return base + "?" + "&".join(kept) if kept else base


def _is_tracking(pair: str) -> bool:
    name = unquote(pair.partition("=")[0]).lower()
    return name in TRACKING_PARAMETERS or name.startswith(TRACKING_PREFIXES)


def bookmark_key(normalized: str) -> str:
    """A short stable key for a normalized URL."""
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()[:32]
