"""Sources that are files or stdin."""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import InputError
from ..models import FileTarget, InputIssue
from .base import (
    Encoding,
    FileFormat,
    RawRecord,
    ReadOptions,
    Source,
    declared_encoding,
    detect_encoding,
)
from .formats import FORMATS

__all__ = ["FileSource", "detect_format"]

_TEXT_RECORD = re.compile(rb"^[ \t\r\f\v]*[^\s#]", re.M)
"""The start of a line that holds a record in a text list (not blank, not a comment)."""
_LINE_RECORD = re.compile(rb"^[ \t\r\f\v]*\S", re.M)
_HEAD = 1 << 16


class _PrefixedStream(io.RawIOBase):
    """Replays bytes already read for sniffing, then the rest of the stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


_CONTROL = bytes([*range(9), *range(14, 32), 127])


def _looks_binary(head: bytes, encoding: Encoding) -> bool:
    """Mostly binary: more than 1 byte in 20 is a control byte. A stray NUL in a text
    file is not: the line holding it is reported and skipped by the reader."""
    if not head or encoding.codec.startswith(("utf-16", "utf-32")):
        return False
    sample = head[:4096]
    bad = len(sample) - len(sample.translate(None, _CONTROL))
    return bad > len(sample) // 20


def _declared(head: bytes, name: str) -> Encoding:
    try:
        return declared_encoding(head, name)
    except LookupError:
        raise InputError(f"unknown encoding {name!r} (--input-encoding): give a Python "
                         "codec name such as utf-8, cp1251, latin-1 or utf-16") from None


def detect_format(head: bytes, suffix: str = "", *, binary: bool = False) -> FileFormat | None:
    """Pick a format by content first, then by file extension (``binary``: binary ones only)."""
    body = head.lstrip(b"\xef\xbb\xbf")
    for fmt in FORMATS.values():  # in detection order
        if binary and not fmt.binary:
            continue
        try:
            if fmt.sniff(body):
                return fmt
        except Exception:  # a sniffer must never break detection of the others
            continue
    suffix = suffix.lower()
    # The extension alone says only the shape: the generic format of that shape (the
    # last tried, say `csv` for .csv), never a service export whose header did not match.
    for fmt in reversed(FORMATS.values()):
        if suffix and suffix in fmt.extensions and fmt.binary == binary:
            return fmt
    return None


class FileSource(Source):
    """A bookmarks file, or stdin when ``path`` is ``-``."""

    def __init__(
        self,
        path: str,
        *,
        input_format: str | None = None,
        url_field: str | None = None,
        stdin: IO[bytes] | None = None,
        input_encoding: str | None = None,
    ) -> None:
        self.is_stdin = path == "-"
        self.path = None if self.is_stdin else Path(path)
        self.display = "stdin" if self.is_stdin else str(path)
        self.options = ReadOptions(url_field=url_field, path=self.path)
        self.url_field = url_field
        raw: IO[bytes]
        if self.is_stdin:
            raw = stdin if stdin is not None else sys.stdin.buffer
            self.base_dir = Path.cwd()
        else:
            assert self.path is not None
            if self.path.is_dir():
                raise InputError(f"{path}: is a directory, not a bookmarks file")
            try:
                raw = open(self.path, "rb")  # noqa: SIM115 - closed in close()
            except FileNotFoundError:
                raise InputError(f"{path}: no such file") from None
            except PermissionError:
                raise InputError(f"{path}: permission denied") from None
            except OSError as exc:
                raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
            self.base_dir = self.path.resolve().parent
            self.file_root = self.base_dir
            stat = os.fstat(raw.fileno())
            self.stat = (stat.st_size, stat.st_mtime_ns)
        self.options.base_dir = self.base_dir
        self._raw = raw
        try:
            head = raw.read(_HEAD)
        except OSError as exc:
            raise InputError(f"{self.display}: cannot read: {exc.strerror or exc}") from None
        empty = not head.strip()  # no records at all: nothing to do, not an error
        # Binary heads go only to formats that read binary files (SQLite, mozLz40, bplist).
        encoding = detect_encoding(head) if input_encoding is None else \
            _declared(head, input_encoding)
        binary = _looks_binary(head, encoding)
        self.encoding = self.options.encoding = encoding
        if not binary and encoding.codec != "utf-8":  # sniffers read UTF-8
            head_text = head[len(encoding.bom):].decode(encoding.codec, "replace")
            sniff_head = head_text.encode("utf-8", "replace")
        else:
            sniff_head = head
        if input_format:
            fmt = FORMATS.get(input_format)
            if fmt is None:
                raise InputError(f"unknown input format {input_format!r}; "
                                 f"known: {', '.join(sorted(FORMATS))}")
            if binary and not fmt.binary:
                raise InputError(f"{self.display}: looks like binary data, not a bookmarks file")
        elif empty:
            fmt = FORMATS["text"]
        else:
            suffix = "" if self.path is None else self.path.suffix
            fmt = detect_format(sniff_head, suffix, binary=binary)
            if fmt is None and binary:
                tried = ", ".join(sorted(f.name for f in FORMATS.values() if f.binary))
                raise InputError(f"{self.display}: looks like binary data, not a bookmarks "
                                 f"file (binary formats tried: {tried or 'none'})")
            if fmt is None:
                raise InputError(
                    f"{self.display}: unknown format (tried {', '.join(sorted(FORMATS))}); "
                    "name one with --input-format"
                )
        self.format = fmt
        self.format_name = fmt.name
        self._stream = io.BufferedReader(_PrefixedStream(head, raw), buffer_size=_HEAD)

    @property
    def location(self) -> str:
        return "-" if self.path is None else str(self.path.resolve())

    def estimate_total(self) -> int | None:
        """Counts records of a file up to 256 MiB (lines without blanks and, for text,
        comments; or anchors); stdin is unknown."""
        if self.path is None or self.stat[0] > 256 * 1024 * 1024:
            return None
        # Exports shaped like CSV (Pocket, Instapaper, ...) count as their container does.
        kind = self.format_name if self.format_name == "text" else self.format.container or ""
        if kind == "netscape":
            count = 0
            with open(self.path, "rb") as f:
                while block := f.read(1 << 20):
                    count += block.count(b"<A ") + block.count(b"<a ")
            return count
        if kind not in ("jsonl", "text", "csv"):
            return None
        record = _TEXT_RECORD if kind == "text" else _LINE_RECORD
        count = 0
        rest = b""
        with open(self.path, "rb") as f:
            while block := f.read(1 << 20):
                block = rest + block
                cut = block.rfind(b"\n") + 1
                rest = block[cut:]
                count += len(record.findall(block, 0, cut))
        count += len(record.findall(rest))
        return max(0, count - (1 if kind == "csv" else 0))

    def read(self) -> Iterator[RawRecord | InputIssue]:
        yield from self.format.read(self._stream, self.options)

    def writeback_target(self) -> FileTarget | None:
        if self.path is None:
            return None
        return FileTarget(self.path, self.display, self.format.container, self.format.name,
                          self.format.writeback_refusal, self.stat,
                          self.encoding.codec, self.encoding.bom)

    def replay(self) -> Iterator[RawRecord | InputIssue]:
        """The file read again, as the run read it (the keys writeback looks up)."""
        if self.path is None:
            raise InputError("stdin cannot be read a second time")
        with open(self.path, "rb") as stream:
            yield from self.format.read(stream, self.options)

    def close(self) -> None:
        if not self.is_stdin:
            self._raw.close()
