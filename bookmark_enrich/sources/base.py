"""What every source is: something that yields raw records with their positions."""

from __future__ import annotations

import codecs
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..dbapi import TableTarget
from ..models import FileTarget, InputIssue, RawRecord
from ..textcodec import KEEP_BYTES

__all__ = [
    "URL_FIELD_NAMES",
    "Encoding",
    "FileFormat",
    "RawRecord",
    "ReadOptions",
    "Source",
    "declared_encoding",
    "detect_encoding",
    "find_url_field",
    "has_junk",
    "text_stream",
]

URL_FIELD_NAMES = ("url", "href", "link", "uri")


@dataclass(slots=True)
class ReadOptions:
    url_field: str | None = None
    base_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    """The file being read, when it is one (formats that need to reopen or seek it)."""
    encoding: Encoding | None = None
    """How the text is encoded (None: UTF-8, a BOM tolerated)."""


ReadResult = Iterator[RawRecord | InputIssue]


@dataclass(frozen=True, slots=True)
class FileFormat:
    """A file format that bookmarks come in.

    ``sniff`` looks at the first bytes (BOM stripped, up to 64 KiB) and says
    whether the content is this format; formats are tried in ``priority`` order
    (specific ones before generic ones). ``read`` streams records from a binary
    stream. ``writeback`` (optional) rewrites a file with enriched records.
    """

    name: str
    description: str
    detection: str
    extensions: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    read: Callable[[IO[bytes], ReadOptions], ReadResult]
    priority: int = 100
    writeback: Callable[..., Any] | None = None
    writeback_refusal: str | None = None
    """Why this format cannot be written back (browser-owned files)."""
    container: str | None = None
    """The plain file shape the records sit in (``json``, ``jsonl``, ``csv``,
    ``netscape``), which tells writeback how to rewrite the file; None: not writable."""
    binary: bool = False
    """Sniffs binary magic (SQLite, mozLz40, bplist): tried even when the head looks binary."""


def find_url_field(keys: Any, preferred: str | None = None) -> str | None:
    """The record key holding the URL: ``preferred``, else a known name (any case)."""
    keys = list(keys)
    if preferred is not None:
        for k in keys:
            if k == preferred:
                return str(k)
        lowered = preferred.lower()
        for k in keys:
            if str(k).lower() == lowered:
                return str(k)
        return None
    by_lower = {str(k).strip().lower(): str(k) for k in keys}
    for name in URL_FIELD_NAMES:
        if name in by_lower:
            return by_lower[name]
    for low, original in by_lower.items():
        if low.endswith("url") or low.endswith("_link"):
            return original
    return None


@dataclass(frozen=True, slots=True)
class Encoding:
    """A text file's encoding: its byte order mark (kept apart) and the codec of the rest."""

    codec: str = "utf-8"
    bom: bytes = b""

    @property
    def name(self) -> str:
        return self.codec + (" with BOM" if self.bom else "")


UTF8 = Encoding()
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"),
         (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"),
         (b"\xfe\xff", "utf-16-be"))
# Single-byte code pages of Latin script: charset-normalizer cannot tell them apart on a
# few accented words, so text that cp1252 (Excel on Western Windows) reads is read so.
_LATIN = frozenset({"cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "latin_1", "cp775",
                    "cp437", "cp850", "mac_latin2", "mac_roman", "iso8859_2", "iso8859_3",
                    "iso8859_4", "iso8859_9", "iso8859_10", "iso8859_13", "iso8859_14",
                    "iso8859_15", "iso8859_16"})


def detect_encoding(head: bytes) -> Encoding:
    """A BOM, else UTF-8 when the head decodes as UTF-8, else charset-normalizer's guess."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return Encoding(codec, bom)
    if (utf16 := _utf16_without_bom(head[:4096])) is not None:
        return Encoding(utf16)
    try:
        head.decode("utf-8")
        return UTF8
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4 and exc.reason == "unexpected end of data":
            return UTF8  # a character cut at the sample's end
    sample = head[:16384]
    # UTF-8 with a few damaged bytes stays UTF-8: its damaged lines are reported.
    text = sample.decode("utf-8", "surrogateescape")
    damaged = len(_DAMAGE.findall(text))
    valid = sum(1 for c in text if c > "\x7f") - damaged
    if valid and valid >= damaged:
        return UTF8
    import charset_normalizer  # only for files that are not UTF-8

    best = charset_normalizer.from_bytes(sample).best()
    codec = best.encoding if best is not None else "utf-8"
    if codec in _LATIN:
        try:
            sample.decode("cp1252")
            codec = "cp1252"
        except UnicodeDecodeError:
            pass
    return Encoding(codec)


def declared_encoding(head: bytes, name: str) -> Encoding:
    """The encoding the user named (``--input-encoding``), its own BOM still kept apart.

    Raises LookupError for a name Python has no codec for."""
    codec = codecs.lookup(name).name
    family = codec.removesuffix("-sig")
    for bom, bom_codec in _BOMS:
        if head.startswith(bom) and bom_codec.startswith(family):
            return Encoding(bom_codec, bom)
    return Encoding(family)


_DAMAGE = re.compile("[\udc80-\udcff]")


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 of mostly ASCII text: nearly every odd (LE) or even (BE) byte is 0."""
    half = len(sample) // 2
    if half < 4:
        return None
    if sample[1::2].count(0) > half * 0.9 and sample[0::2].count(0) < half * 0.1:
        return "utf-16-le"
    if sample[0::2].count(0) > half * 0.9 and sample[1::2].count(0) < half * 0.1:
        return "utf-16-be"
    return None


def text_stream(stream: IO[bytes], encoding: Encoding | None = None, *,
                keep_bytes: bool = False) -> io.TextIOWrapper:
    """Decode the text, a BOM dropped. Undecodable bytes become U+FFFD, or with
    ``keep_bytes`` lone surrogates, so that a reader that checks each line with
    :func:`has_junk` reports the line instead of changing it silently."""
    errors = KEEP_BYTES if keep_bytes else "replace"
    if encoding is None or encoding.codec == "utf-8":
        return io.TextIOWrapper(stream, encoding="utf-8-sig", errors=errors, newline="")
    if encoding.bom:
        stream.read(len(encoding.bom))
    return io.TextIOWrapper(stream, encoding=encoding.codec, errors=errors, newline="")


_JUNK = re.compile("[\x00-\x08\x0e-\x1f\x7f\udc00-\udcff]")


def has_junk(text: str) -> str | None:
    """What makes a line of a text format unreadable: a NUL or other binary byte, or a
    byte its encoding cannot decode; None when the line is clean."""
    match = _JUNK.search(text)
    if match is None:
        return None
    char = match.group()
    if "\udc00" <= char <= "\udcff":
        return f"byte 0x{ord(char) - 0xdc00:02X} that is not valid text in this encoding"
    return f"binary data (byte 0x{ord(char):02X})"


class Source(ABC):
    """A place bookmarks come from (and, for some, go back to)."""

    display: str
    """How to show this source in logs: secrets masked."""
    format_name: str
    base_dir: Path | None = None
    url_field: str | None = None
    """The field or column holding the URL, when known (writeback keys records by it)."""
    file_root: Path | None = None
    """The folder whose files this source's ``file:`` bookmarks may read (a local
    bookmarks file's own folder; None for stdin and databases)."""

    @abstractmethod
    def read(self) -> ReadResult:
        """Stream the records. Call once."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files or connections."""

    def estimate_total(self) -> int | None:
        """How many records to expect, when that is cheap to know (for ETAs)."""
        return None

    @property
    def location(self) -> str:
        """A string that reopens this source later (for the cache's records)."""
        return self.display

    def writeback_target(self) -> FileTarget | TableTarget | None:
        """Where results can be written back to (None: nowhere, like stdin)."""
        return None

    def replay(self) -> ReadResult:
        """The records once more, from the start, as :meth:`read` gave them (writeback)."""
        raise NotImplementedError(f"{self.display}: cannot be read a second time")
