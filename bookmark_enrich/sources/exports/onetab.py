"""OneTab's export: ``URL | Title`` lines, tab groups separated by blank lines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from ...models import InputIssue
from ..base import FileFormat, RawRecord, ReadOptions, text_stream

__all__ = ["ONETAB"]

_LINE = re.compile(r"^(?P<url>[a-zA-Z][\w+.-]*:\S*)(?: \|(?: (?P<title>.*))?)?$")


def sniff_onetab(head: bytes) -> bool:
    lines = [raw.strip() for raw in head[:16384].decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line][:20]
    if not lines:
        return False
    # Most lines (a OneTab export may hold a stray line or two) are URL | Title.
    piped = sum(1 for line in lines if " |" in line and _LINE.match(line))
    return piped > 0 and piped * 5 >= len(lines) * 3


def read_onetab(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """One record per line: ``url``, ``title`` and the tab ``group`` (1, 2, …)."""
    group = 1
    seen_in_group = False
    for lineno, raw in enumerate(text_stream(stream, options.encoding), start=1):
        line = raw.strip()
        if not line:
            if seen_in_group:
                group += 1
                seen_in_group = False
            continue
        match = _LINE.match(line)
        if match is None:
            yield InputIssue(lineno, "not a OneTab line (URL | Title)")
            continue
        seen_in_group = True
        record = {"url": match.group("url"), "title": (match.group("title") or "").strip(),
                  "group": group}
        yield RawRecord(lineno, record, "url")


ONETAB = FileFormat(
    "onetab", "OneTab export (URL | Title, groups split by blank lines)",
    "most lines are URL | Title", (".txt",), sniff_onetab, read_onetab, priority=45,
)
