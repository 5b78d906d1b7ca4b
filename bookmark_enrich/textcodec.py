"""A decode error handler that keeps every undecodable byte, for readers and writeback.

``surrogateescape`` carries only bytes from 0x80 up: a lone surrogate in UTF-16 (a cut
emoji) holds a byte below 0x80 and raises in the middle of a read. ``KEEP_BYTES`` maps
each undecodable byte to the lone surrogate U+DC00 + byte, so that a reader reports
the line, and writeback, which cannot encode it back, refuses the file.
"""

from __future__ import annotations

import codecs

__all__ = ["KEEP_BYTES"]

KEEP_BYTES = "bookmark-enrich-keep-bytes"


def _keep_bytes(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(chr(0xDC00 + b) for b in bad), exc.end


codecs.register_error(KEEP_BYTES, _keep_bytes)
