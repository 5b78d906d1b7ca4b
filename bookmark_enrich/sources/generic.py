"""Generic record formats: JSON array, JSON Lines, CSV, plain text."""

from __future__ import annotations

import csv
import itertools
import json
import re
import sys
from collections.abc import Iterator
from typing import IO, Any

import ijson

from ..models import InputIssue
from .base import FileFormat, RawRecord, ReadOptions, find_url_field, has_junk, text_stream

__all__ = [
    "read_csv",
    "read_json",
    "read_jsonl",
    "read_text",
    "read_wrapped_json",
    "sniff_csv",
    "sniff_json",
    "sniff_jsonl",
    "sniff_text",
    "sniff_wrapped_json",
]

# Bookmarks exported by some tools carry whole pages in a cell.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _strip(head: bytes) -> bytes:
    return head.lstrip(b"\xef\xbb\xbf").lstrip()


def sniff_json(head: bytes) -> bool:
    return _strip(head).startswith(b"[")


def sniff_jsonl(head: bytes) -> bool:
    body = _strip(head)
    if not body.startswith(b"{"):
        return False
    # Any of the first lines being a whole object will do: a damaged first line is
    # then reported with its number instead of making the whole input unreadable.
    for line in body.split(b"\n", 20)[:20]:
        try:
            if isinstance(json.loads(line.strip()), dict):
                return True
        except ValueError:
            continue
    return False


def sniff_csv(head: bytes) -> bool:
    body = _strip(head)
    first = body.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if not first or first.startswith(("<", "{", "[")):
        return False
    try:
        dialect = csv.Sniffer().sniff(first + "\n", delimiters=",;\t")
        header = next(csv.reader([first], dialect))
    except (csv.Error, StopIteration):
        header = first.split(",")
    return len(header) > 1 and find_url_field(h.strip() for h in header) is not None


def sniff_text(head: bytes) -> bool:
    for raw in _strip(head).splitlines()[:50]:
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        return line.lower().startswith((b"http://", b"https://", b"file:"))
    return False


def read_jsonl(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    for lineno, line in enumerate(text_stream(stream, options.encoding, keep_bytes=True),
                                  start=1):
        if not line.strip():
            continue
        if (junk := has_junk(line)) is not None:
            yield InputIssue(lineno, f"line skipped: {junk}")
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield InputIssue(lineno, f"invalid JSON: {exc.args[0] if exc.args else exc}")
            continue
        if isinstance(value, str):
            value = {"url": value}
        if not isinstance(value, dict):
            yield InputIssue(lineno, f"expected a JSON object, got {type(value).__name__}")
            continue
        yield RawRecord(lineno, value)


# An object whose first key holds an array, that array starting on the next line: a
# single-line object (a JSON Lines record with a list in it) never matches.
_WRAPPED = re.compile(rb'\{\s*"[^"\n]{1,64}"\s*:\s*\[[ \t\r]*\n\s*[{"]')


def sniff_wrapped_json(head: bytes) -> bool:
    return _WRAPPED.match(_strip(head)) is not None


def read_json(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """Stream a JSON array of objects (or of URL strings) without loading it whole."""
    peek = stream.peek(64) if hasattr(stream, "peek") else b""
    if _strip(peek).startswith(b"{"):  # never read as zero records, silently
        yield InputIssue(1, "the JSON is an object, not an array of records; if it holds "
                         "one (Readability's {\"bookmarks\": [...]}), read it with "
                         "--input-format json-object", fatal=True)
        return
    yield from _json_items(ijson.items(stream, "item", use_float=True))


def read_wrapped_json(stream: IO[bytes],
                      options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    """The records of the first array in a top-level object, streamed."""
    events = ijson.parse(stream, use_float=True)
    try:
        for prefix, event, value in events:
            if event == "start_array" and prefix and "." not in prefix:
                items = ijson.items(itertools.chain([(prefix, event, value)], events),
                                    f"{prefix}.item")
                yield from _json_items(items)
                return
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
        yield InputIssue(1, f"JSON broken before its records: {_one_line(exc)}", fatal=True)
        return
    yield InputIssue(1, "the JSON object holds no array of records", fatal=True)


def _one_line(exc: Exception) -> str:
    # yajl points at the damage over three lines; the report is one line.
    return " ".join(str(exc).replace("(right here) ------^", "").split())


def _json_items(items: Iterator[Any]) -> Iterator[RawRecord | InputIssue]:
    index = 0
    try:
        for value in items:
            index += 1
            if isinstance(value, str):
                value = {"url": value}
            if not isinstance(value, dict):
                yield InputIssue(index, f"record {index}: expected an object, got "
                                 f"{type(value).__name__}")
                continue
            yield RawRecord(index, value)
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
        yield InputIssue(index + 1, f"JSON broken after record {index}: {_one_line(exc)}",
                         fatal=True)


def read_csv(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    text = text_stream(stream, options.encoding, keep_bytes=True)
    sample = text.read(8192)
    rest: Iterator[str] = iter(text)
    try:
        dialect: Any = csv.Sniffer().sniff(sample.split("\n", 1)[0] + "\n", delimiters=",;\t")
        # A header line cannot show how cells escape quotes; "" is the standard way.
        dialect.doublequote = True
    except csv.Error:
        dialect = csv.excel

    def lines() -> Iterator[str]:
        yield from sample.splitlines(keepends=True) if sample else ()
        yield from rest

    # A sample cut mid-line is rejoined with the rest of that line.
    def joined() -> Iterator[str]:
        carry = ""
        for piece in lines():
            piece = carry + piece
            carry = ""
            if piece.endswith(("\n", "\r")):
                yield piece
            else:
                carry = piece
        if carry:
            yield carry

    reader = csv.reader(joined(), dialect)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield InputIssue(1, f"bad CSV header: {exc}", fatal=True)
        return
    header = [h.strip() for h in header]
    url_field = find_url_field(header, options.url_field)
    if url_field is None:
        from ..errors import InputError

        wanted = options.url_field or "/".join(("url", "href", "link", "uri"))
        shown = " ".join(", ".join(header).split())  # a quoted header cell may span lines
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        raise InputError(f"CSV has no URL column (looked for {wanted}; columns: "
                         f"{shown or 'none'}); name it with --url-field")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield InputIssue(reader.line_num, f"bad CSV row: {exc}")
            continue
        if not row or all(not c.strip() for c in row):
            continue
        if (junk := has_junk("".join(row))) is not None:
            yield InputIssue(reader.line_num, f"row skipped: {junk}")
            continue
        record: dict[str, Any] = dict(zip(header, row, strict=False))
        if len(row) > len(header):
            record["_extra"] = row[len(header):]
        yield RawRecord(reader.line_num, record, url_field)


def read_text(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
    for lineno, line in enumerate(text_stream(stream, options.encoding, keep_bytes=True),
                                  start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if (junk := has_junk(line)) is not None:
            yield InputIssue(lineno, f"line skipped: {junk}")
            continue
        # `URL title`: a space or tab ends the URL (browsers strip tabs inside a URL).
        url, _, title = line.replace("\t", " ", 1).partition(" ")
        if "://" not in url and not url.lower().startswith("file:"):
            url, title = line, ""  # report the whole line, not its first word
        record: dict[str, Any] = {"url": url}
        if title.strip():
            record["title"] = title.strip()
        yield RawRecord(lineno, record, "url")


JSON = FileFormat(
    "json", "JSON array of objects (or of URL strings)", "starts with [",
    (".json",), sniff_json, read_json, priority=200, container="json",
)
JSON_OBJECT = FileFormat(
    "json-object", 'JSON object holding one array of records (Readability\'s {"bookmarks": [...]})',
    'starts with {"key": [ and a new line', (), sniff_wrapped_json, read_wrapped_json,
    priority=205, writeback_refusal="only a JSON array or JSON Lines is rewritten in place; "
    "write the results with -o FILE instead",
)
JSONL = FileFormat(
    "jsonl", "JSON Lines, one object per line", "first line is a JSON object",
    (".jsonl", ".ndjson"), sniff_jsonl, read_jsonl, priority=210, container="jsonl",
)
CSV = FileFormat(
    "csv", "CSV with a url/href/link/uri column (any case)",
    "header row naming a URL column", (".csv", ".tsv"), sniff_csv, read_csv, priority=220,
    container="csv",
)
TEXT = FileFormat(
    "text", "Plain text, one URL per line, # comments", "lines start with http(s):// or file:",
    (".txt", ".urls", ".list"), sniff_text, read_text, priority=300,
)
