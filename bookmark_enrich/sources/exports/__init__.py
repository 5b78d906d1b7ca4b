"""Readers for the bookmark exports people have: browsers and read-it-later services.

Importing this package registers every format (``sources/registry.py`` does).
Each reader maps its entries onto the common record fields (see ``_common``)
and keeps every original field.
"""

from __future__ import annotations

from typing import Any

from ..registry import FORMATS
from . import (  # noqa: F401 - imported to register their formats
    chrome,
    feeds,
    firefox,
    onetab,
    pinboard,
    pocket,
    readlater,
    safari,
    services,
)

__all__ = ["describe_formats", "format_table"]

WRITABLE_CONTAINERS = ("json", "jsonl", "csv", "netscape")


def describe_formats() -> list[dict[str, Any]]:
    """Every registered format, in detection order: name, detection, writeback."""
    rows = []
    for fmt in sorted(FORMATS.values(), key=lambda f: (f.priority, f.name)):
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
