"""The registry of file formats and of URL-scheme sources (databases)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import FileFormat, Source
from .generic import (
    read_csv,
    read_json,
    read_jsonl,
    read_text,
    sniff_csv,
    sniff_json,
    sniff_jsonl,
    sniff_text,
)
from .netscape import read_netscape, sniff_netscape

__all__ = ["FORMATS", "SCHEMES", "register_format", "register_scheme"]

FORMATS: dict[str, FileFormat] = {}
"""Every known file format by name."""

SCHEMES: dict[str, Callable[..., Source]] = {}
"""Source openers by URL scheme (``sqlite``, ``postgresql``)."""


def register_format(fmt: FileFormat) -> FileFormat:
    FORMATS[fmt.name] = fmt
    return fmt


def register_scheme(scheme: str, opener: Callable[..., Any]) -> None:
    SCHEMES[scheme] = opener


for _fmt in (
    FileFormat(
        "netscape", "Netscape bookmark HTML (every browser's export)",
        "<!DOCTYPE NETSCAPE-Bookmark-file-1> or <DL>/<DT>/<A HREF>",
        (".html", ".htm"), sniff_netscape, read_netscape, priority=50, container="netscape",
    ),
    FileFormat(
        "json", "JSON array of objects (or of URL strings)", "starts with [",
        (".json",), sniff_json, read_json, priority=200, container="json",
    ),
    FileFormat(
        "jsonl", "JSON Lines, one object per line", "first line is a JSON object",
        (".jsonl", ".ndjson"), sniff_jsonl, read_jsonl, priority=210, container="jsonl",
    ),
    FileFormat(
        "csv", "CSV with a url/href/link/uri column (any case)",
        "header row naming a URL column", (".csv", ".tsv"), sniff_csv, read_csv, priority=220,
        container="csv",
    ),
    FileFormat(
        "text", "Plain text, one URL per line, # comments", "lines start with http(s):// or file:",
        (".txt", ".urls", ".list"), sniff_text, read_text, priority=300,
    ),
):
    register_format(_fmt)

# Browser and read-it-later exports register themselves (after the generic formats above).
from . import exports as _exports  # noqa: E402, F401
