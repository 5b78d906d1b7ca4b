"""CSV writeback that leaves the user's bytes as they were.

Each row is re-emitted from its own text, not re-serialized: the cells the tool
does not own keep their quoting, the line endings, the BOM, the column order and
the file's encoding stay. Only ``enrich_*`` cells are written (appended, or replaced
where a previous run added them). A file whose bytes would not survive being read
and written again, or an enrichment value its encoding cannot hold, is refused
before anything is written.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ..models import RawRecord
from ..records import COLUMN_PREFIX, ENRICHMENT_FIELDS, RECORD_FIELDS, enrichment_cells
from ..textcodec import KEEP_BYTES
from .base import WritebackConflict, archive_url, describe_changes

__all__ = ["CSV_FIELDS", "check_round_trip", "rewrite_csv"]

CSV_FIELDS = (*RECORD_FIELDS, *(f for f in ENRICHMENT_FIELDS if f != "text"))
"""CSV columns added (each prefixed ``enrich_``); the page text stays out of the user's file."""

Take = Callable[[int], list[tuple[RawRecord, dict[str, Any] | None]]]
Note = Callable[[str, list[str], list[str]], None]

_SUGGEST = "nothing was changed; write the results elsewhere with -o FILE"


def check_round_trip(path: Path, display: str, codec: str, bom: bytes) -> None:
    """Refuse a file whose bytes do not come back the same once decoded and re-encoded,
    naming the first line that would change (a lone surrogate in UTF-16, say)."""
    with open(path, "rb") as f:
        if bom and f.read(len(bom)) != bom:
            raise WritebackConflict(f"{display}: its byte order mark changed; {_SUGGEST}")
        if _round_trips(f, codec):
            return
        f.seek(len(bom))
        line = _first_changed_line(f, codec)
    raise WritebackConflict(
        f"{display}: line {line} cannot be read and written back unchanged as {codec} "
        f"(its bytes are not valid {codec}); {_SUGGEST}")


def _round_trips(f: IO[bytes], codec: str) -> bool:
    """Whether the rest of ``f`` decodes and encodes back to the same bytes (block by block)."""
    decoder = codecs.getincrementaldecoder(codec)(errors=KEEP_BYTES)
    encoder = codecs.getincrementalencoder(codec)(errors="surrogateescape")
    pending = b""
    while True:
        block = f.read(1 << 16)
        final = not block
        try:
            back = encoder.encode(decoder.decode(block, final), final)
        except UnicodeError:
            return False
        pending += block
        if not pending.startswith(back):
            return False
        pending = pending[len(back):]
        if final:
            return not pending


def _first_changed_line(f: IO[bytes], codec: str) -> int:
    """The number of the first line whose bytes do not come back (the slow, exact pass)."""
    decoder = codecs.getincrementaldecoder(codec)(errors=KEEP_BYTES)
    encoder = codecs.getincrementalencoder(codec)(errors="surrogateescape")
    line = 1
    pending = b""  # bytes read and not yet matched by a re-encoded line
    carry = ""  # the decoded text of a line not yet complete
    final = False
    while not final:
        block = f.read(1 << 16)
        final = not block
        pending += block
        parts = (carry + decoder.decode(block, final)).split("\n")
        carry = "" if final else parts.pop()
        at = 0
        for number, part in enumerate(parts, start=line):
            text = part if final and number == line + len(parts) - 1 else part + "\n"
            try:
                back = encoder.encode(text, final)
            except UnicodeError:
                return number
            if pending[at: at + len(back)] != back:
                return number
            at += len(back)
        line += len(parts)
        pending = pending[at:]
    return line


def _ending(text: str) -> tuple[str, str]:
    for end in ("\r\n", "\n", "\r"):
        if text.endswith(end):
            return text[: -len(end)], end
    return text, ""


def _split_cells(body: str, delimiter: str) -> list[str]:
    """A row's text cut into its cells' own text (quotes kept)."""
    if '"' not in body:
        return body.split(delimiter)
    cells: list[str] = []
    start = 0
    quoted = False
    for i, char in enumerate(body):
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            cells.append(body[start:i])
            start = i + 1
    cells.append(body[start:])
    return cells


def _cell(value: str, delimiter: str) -> str:
    if any(c in value for c in (delimiter, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _encodable(value: str, codec: str, where: str, column: str) -> None:
    try:
        value.encode(codec)
    except UnicodeEncodeError as exc:
        raise WritebackConflict(
            f"{where}: {column} holds {value[exc.start:exc.end]!r}, which the file's "
            f"encoding ({codec}) cannot hold; {_SUGGEST}") from None


def rewrite_csv(raw: IO[bytes], take: Take, note: Note, *, display: str,
                codec: str, bom: bytes, archive_field: str | None = None) -> Iterator[bytes]:
    """The file's bytes with ``enrich_*`` cells added to the rows that have results,
    and a rescued page's snapshot URL in the ``archive_field`` column, if named."""
    if bom:
        raw.read(len(bom))
    text = io.TextIOWrapper(raw, encoding=codec, errors="surrogateescape", newline="")
    first = text.readline()
    if not first:
        return
    try:
        delimiter = csv.Sniffer().sniff(_ending(first)[0] + "\n", delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        consumed.append(first)
        yield first
        for line in text:
            consumed.append(line)
            yield line

    reader = csv.reader(lines(), csv.excel, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return
    names = [h.strip() for h in header]
    owned = [COLUMN_PREFIX + f for f in CSV_FIELDS]
    if archive_field is not None and archive_field not in owned:
        owned.append(archive_field)
    index = {c: names.index(c) if c in names else None for c in owned}
    added = [c for c, i in index.items() if i is None]
    for offset, column in enumerate(added):
        index[column] = len(header) + offset
    body, end = _ending("".join(consumed))
    consumed.clear()
    yield bom + (body + "".join(delimiter + _cell(c, delimiter) for c in added) + end
                 ).encode(codec, "surrogateescape")
    width = len(header) + len(added)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise WritebackConflict(f"{display}: line {reader.line_num}: bad CSV row ({exc}); "
                                    f"{_SUGGEST}") from None
        row_text = "".join(consumed)
        consumed.clear()
        hits = take(reader.line_num)
        record = hits[0][1] if hits else None
        if record is None or not row or len(row) > len(header):
            yield row_text.encode(codec, "surrogateescape")  # not ours to touch
            continue
        yield _row(row, row_text, record, index, width, note,
                   where=f"{display}: line {reader.line_num}", delimiter=delimiter,
                   codec=codec, archive_field=archive_field)


def _row(row: list[str], row_text: str, record: dict[str, Any], index: dict[str, int | None],
         width: int, note: Note, *, where: str, delimiter: str, codec: str,
         archive_field: str | None = None) -> bytes:
    body, end = _ending(row_text)
    cells = _split_cells(body, delimiter)
    if len(cells) != len(row):
        raise WritebackConflict(f"{where}: the row's cells cannot be told apart as CSV "
                                f"reads them; {_SUGGEST}")
    cells += [""] * (width - len(cells))
    new = enrichment_cells(record, CSV_FIELDS[len(RECORD_FIELDS):])
    snapshot = archive_url(record)
    if archive_field is not None and snapshot is not None:
        new[archive_field] = snapshot  # the user's column: left alone when not rescued
    old = {c: row[i] if i is not None and i < len(row) else "" for c, i in index.items()}
    added, changed = describe_changes(old, {c: v or None for c, v in new.items()})
    note(where.rsplit(": ", 1)[-1], added, changed)
    for column, value in new.items():
        i = index[column]
        assert i is not None
        if old[column] != value:  # an owned cell that did not change keeps its bytes
            _encodable(value, codec, where, column)
            cells[i] = _cell(value, delimiter)
    return (delimiter.join(cells) + end).encode(codec, "surrogateescape")
