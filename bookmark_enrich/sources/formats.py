"""Every file format bookmarks come in, listed once, and how `formats` describes them.

Detection tries formats by ``priority``: the specific exports (a Chrome
``Bookmarks`` file, Pocket's CSV) before the generic shapes they also match.
"""

from __future__ import annotations

from typing import Any

from .base import FileFormat
from .exports.chrome import CHROME
from .exports.feeds import ATOM, RSS
from .exports.firefox import FIREFOX_JSON, FIREFOX_JSONLZ4, FIREFOX_PLACES
from .exports.onetab import ONETAB
from .exports.pinboard import PINBOARD
from .exports.pocket import POCKET_CSV, POCKET_HTML
from .exports.readlater import INSTAPAPER, MATTER, RAINDROP, READWISE
from .exports.safari import SAFARI
from .exports.services import KARAKEEP, LINKWARDEN, OMNIVORE, WALLABAG
from .generic import CSV, JSON, JSON_OBJECT, JSONL, TEXT
from .netscape import NETSCAPE

__all__ = ["FORMATS", "WRITABLE_CONTAINERS", "describe_formats", "format_table"]

FORMATS: dict[str, FileFormat] = {fmt.name: fmt for fmt in sorted((
    # The generic shapes.
    NETSCAPE, JSON, JSON_OBJECT, JSONL, CSV, TEXT,
    # Browsers.
    CHROME, FIREFOX_JSON, FIREFOX_JSONLZ4, FIREFOX_PLACES, SAFARI,
    # Read-it-later and bookmarking services.
    POCKET_CSV, POCKET_HTML, INSTAPAPER, RAINDROP, READWISE, MATTER, PINBOARD, OMNIVORE,
    WALLABAG, LINKWARDEN, KARAKEEP, ONETAB,
    # Feeds.
    RSS, ATOM,
), key=lambda f: (f.priority, f.name))}
"""Every known file format by name, in detection order."""

WRITABLE_CONTAINERS = ("json", "jsonl", "csv", "netscape")


def describe_formats() -> list[dict[str, Any]]:
    """Every format, in detection order: name, detection, writeback."""
    rows = []
    for fmt in FORMATS.values():
        writable = fmt.writeback_refusal is None and fmt.container in WRITABLE_CONTAINERS
        rows.append({
            "name": fmt.name,
            "description": fmt.description,
            "detection": fmt.detection,
            "extensions": list(fmt.extensions),
            "writeback": writable,
            "container": fmt.container,
            "writeback_refusal": fmt.writeback_refusal,
        })
    return rows


def format_table() -> str:
    """The formats as an aligned text table (name, writeback, detection, description)."""
    rows = [("NAME", "WRITEBACK", "DETECTED BY", "WHAT")]
    rows += [(r["name"], "yes" if r["writeback"] else "no", r["detection"], r["description"])
             for r in describe_formats()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip()
        for a, b, c, d in rows)
