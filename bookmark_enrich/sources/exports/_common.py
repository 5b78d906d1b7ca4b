"""What every export reader shares: the common record, dates, tags, JSON damage reports.

The record rule (documented in the README): a record holds every field of the
export's entry under its own name, plus the common fields ``url``, ``title``,
``tags`` (a list), ``folder`` (``A/B`` path), ``created`` (ISO 8601, UTC),
``notes`` and ``excerpt`` where the format has them. When the export already
uses a common name for the same value, nothing changes; when it uses it for a
different value, the export's value keeps its name and the common value is added as
``common_NAME``. ``tags`` is the exception: it is always the list (Pocket's ``"a|b"``,
Pinboard's space-separated string), so every format's records can be filtered the same
way, and the export's own text moves to ``original_tags``. Nothing is ever dropped, and
writeback copies the user's own fields from the file, so the file keeps its spelling.
"""

from __future__ import annotations

import csv
import email.utils
import io
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any

from ...models import InputIssue
from ..base import RawRecord, ReadOptions
from ..generic import read_csv, read_json

__all__ = [
    "COMMON_FIELDS",
    "CountingStream",
    "common_record",
    "csv_header",
    "json_damage",
    "map_records",
    "seekable_copy",
    "split_tags",
    "to_iso",
]

COMMON_FIELDS = ("url", "title", "tags", "folder", "created", "notes", "excerpt")
COLLISION_PREFIX = "common_"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN = datetime(1971, 1, 1, tzinfo=UTC)
_MAX = datetime(9000, 1, 1, tzinfo=UTC)
_MIN_SECONDS = (_MIN - _EPOCH).total_seconds()
_MAX_SECONDS = (_MAX - _EPOCH).total_seconds()
_WINDOWS_OFFSET = (_EPOCH - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()


def common_record(original: dict[str, Any], **common: Any) -> dict[str, Any]:
    """The original fields plus the common ones (None values left out), by the rule above."""
    record = dict(original)
    for name, value in common.items():
        if value is None or (value == "" and name != "url"):
            continue
        if name not in record:
            record[name] = value
        elif name == "tags" and record[name] != value:
            record.setdefault("original_tags", record[name])
            record[name] = value
        elif record[name] != value and COLLISION_PREFIX + name not in record:
            record[COLLISION_PREFIX + name] = value
    return record


@lru_cache(maxsize=4096)
def folder_path(names: tuple[str, ...]) -> str | None:
    """``A/B`` from folder names; a ``/`` inside a name becomes ``∕`` (as the HTML reader does)."""
    parts = [n.strip().replace("/", "∕") for n in names if isinstance(n, str) and n.strip()]
    return "/".join(parts) or None


def split_tags(value: Any, separators: str = ",") -> list[str]:
    """Tags from a list, a JSON or Python list literal, or a string split on ``separators``."""
    if value is None:
        return []
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("name", item.get("label", item.get("title")))
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                text = str(item).strip()
                if text:
                    out.append(text)
        return out
    if not isinstance(value, str):
        return []
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except ValueError:
            # Readwise writes Python reprs: ['a', 'b'].
            parsed = [t.strip().strip("'\"") for t in text[1:-1].split(",")]
        if isinstance(parsed, list):
            return split_tags(parsed)
    if separators == " ":
        return text.split()
    if len(separators) == 1:
        return [t.strip() for t in text.split(separators) if t.strip()]
    return [t.strip() for t in re.split("[" + re.escape(separators) + "]", text) if t.strip()]


def _iso(moment: datetime) -> str | None:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if not _MIN <= moment < _MAX:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_iso(value: Any, unit: str = "auto", *, windows: bool = False) -> str | None:
    """ISO 8601 from a number (or numeric string) of seconds/ms/µs since 1970 (or 1601)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if number != number or number <= 0 or number > 1e19:
        return None
    if unit == "auto":
        unit = "us" if number > 1e14 else "ms" if number > 1e11 else "s"
    seconds = number / {"s": 1, "ms": 1e3, "us": 1e6}[unit] - (_WINDOWS_OFFSET if windows else 0)
    if not _MIN_SECONDS <= seconds < _MAX_SECONDS:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def to_iso(value: Any) -> str | None:
    """ISO 8601 UTC (``2024-01-02T03:04:05Z``) from whatever date an export holds, else None.

    Accepts datetimes, epoch numbers (seconds, ms or µs by size), ISO 8601 and
    RFC 2822 strings. Dates before 1971 or after 8999 count as unknown.
    """
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return epoch_iso(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit() or re.fullmatch(r"\d+\.\d+", text):
        return epoch_iso(text)
    iso = text.replace(" ", "T", 1) if re.match(r"\d{4}-\d\d-\d\d \d", text) else text
    iso = re.sub(r"[Zz]$", "+00:00", iso)
    iso = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", iso)  # +0100 → +01:00
    try:
        return _iso(datetime.fromisoformat(iso))
    except ValueError:
        pass
    try:
        return _iso(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def one_line(message: Any) -> str:
    """An error message on one line (yajl's point at the damage spans three)."""
    text = " ".join(str(message).split())
    return text.replace(" (right here) ------^", "").strip()


def json_damage(entries: int, stream: CountingStream | None, exc: BaseException,
                what: str = "JSON") -> InputIssue:
    """The fatal issue for a JSON export broken after ``entries`` entries."""
    where = f" near byte {stream.count}" if stream is not None else ""
    return InputIssue(entries + 1, f"{what} broken after entry {entries}{where}: "
                      f"{one_line(exc)}", fatal=True)


class CountingStream(io.RawIOBase):
    """A binary stream that counts the bytes read (to say where damage was found)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def seekable_copy(stream: IO[bytes], options: ReadOptions) -> Iterator[str]:
    """A path to read again: the source file itself, or stdin spooled to a temp file."""
    if options.path is not None:
        yield str(options.path)
        return
    with tempfile.NamedTemporaryFile(prefix="bookmark-enrich-", suffix=".export") as tmp:
        shutil.copyfileobj(stream, tmp, 1 << 20)
        tmp.flush()
        yield tmp.name


def csv_header(head: bytes) -> list[str]:
    """The first CSV row of ``head`` (BOM and surrounding spaces stripped)."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip().split(b"\n", 1)[0].decode("utf-8", "replace")
    try:
        row = next(csv.reader([text.strip()]))
    except (csv.Error, StopIteration):
        return []
    return [c.strip() for c in row]


Mapper = Callable[[dict[str, Any]], dict[str, Any]]


def map_records(reader: Callable[[IO[bytes], ReadOptions], Iterator[RawRecord | InputIssue]],
                mapper: Mapper) -> Callable[[IO[bytes], ReadOptions],
                                            Iterator[RawRecord | InputIssue]]:
    """A reader over a generic one (CSV or JSON array) that maps each record.

    Positions stay those of the generic reader, so writeback by container finds
    every record again.
    """

    def read(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
        for item in reader(stream, options):
            if isinstance(item, InputIssue):
                yield item
                continue
            try:
                record = mapper(item.record)
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                yield InputIssue(item.position, f"entry {item.position}: cannot read it "
                                 f"({type(exc).__name__})")
                continue
            yield RawRecord(item.position, record, "url" if "url" in record else None)

    return read


def csv_reader(mapper: Mapper) -> Callable[[IO[bytes], ReadOptions],
                                           Iterator[RawRecord | InputIssue]]:
    """A CSV export reader: the generic CSV reader (URL column forced) plus ``mapper``."""

    def read(stream: IO[bytes], options: ReadOptions) -> Iterator[RawRecord | InputIssue]:
        return map_records(read_csv, mapper)(stream, options)

    return read


def json_array_reader(mapper: Mapper) -> Callable[[IO[bytes], ReadOptions],
                                                  Iterator[RawRecord | InputIssue]]:
    """A JSON-array export reader: the generic streaming JSON reader plus ``mapper``."""
    return map_records(read_json, mapper)


def str_or_none(value: Any) -> str | None:
    """A string field's stripped value; anything else is None."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def head_text(head: bytes, limit: int = 8192) -> str:
    """The start of ``head`` as text, for sniffing."""
    return head[:limit].lstrip(b"\xef\xbb\xbf").decode("utf-8", "replace")


def first_json_object_keys(head: bytes) -> set[str]:
    """Keys at depth 1 of the first object of a JSON array in ``head`` (a cheap scan)."""
    text = head_text(head, 16384).lstrip()
    if not text.startswith("["):
        return set()
    depth = 0
    keys: set[str] = set()
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*(:)?|[{}\[\]]', text):
        token = match.group(0)
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
            if depth <= 1:
                break
        elif match.group(2) and depth == 2:
            keys.add(match.group(1))
    return keys
