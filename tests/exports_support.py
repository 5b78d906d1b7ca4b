"""Shared by the export tests and the readers fuzz tests: read a file, mutate bytes."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from bookmark_enrich.errors import InputError
from bookmark_enrich.models import Bookmark, InputIssue
from bookmark_enrich.sources import RawRecord, open_source, to_bookmark

FIXTURES = Path(__file__).parent / "fixtures" / "exports"


def read_items(path: Path | str | None = None, *, data: bytes | None = None,
               fmt: str | None = None) -> list[RawRecord | InputIssue]:
    """Every item a source yields (a path, or ``data`` fed as stdin)."""
    if data is not None:
        src = open_source("-", input_format=fmt, stdin=io.BytesIO(data))
    else:
        src = open_source(str(path), input_format=fmt)
    try:
        return list(src.read())
    finally:
        src.close()


def as_expected(items: list[RawRecord | InputIssue]) -> list[dict[str, Any]]:
    """Items in the shape the expected-records files hold."""
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, InputIssue):
            out.append({"position": item.position, "issue": item.message, "fatal": item.fatal})
        else:
            out.append({"position": item.position, "record": item.record})
    return out


@st.composite
def mutated(draw: Any, original: bytes) -> bytes:
    """``original`` cut short, with bytes flipped, inserted or a slice deleted."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "cut":
            del data[max(at, 1):]
        elif kind == "flip":
            data[at] = draw(st.sampled_from([*b'\x00{}[]<>"\',|\n\\&;:\xff\xc3',
                                             draw(st.integers(0, 255))]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at: at + draw(st.integers(1, 40))]
    return bytes(data)


def read_mutated(data: bytes, fmt: str, suffix: str = "") -> list[RawRecord | InputIssue]:
    """Read ``data`` as ``fmt`` from a temp file; a clean InputError is an answer too.

    Asserts what a user is promised: no other exception, issues with positions,
    and every record turns into a bookmark or an issue.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("export" + suffix)
        path.write_bytes(data)
        try:
            items = read_items(path, fmt=fmt)
        except InputError as exc:
            assert "\n" not in str(exc)
            return []
    for item in items:
        if isinstance(item, InputIssue):
            assert isinstance(item.position, int) and item.position >= 0
            assert item.message and "\n" not in item.message
        else:
            assert isinstance(item, RawRecord) and isinstance(item.record, dict)
            assert isinstance(to_bookmark(item, None), Bookmark | InputIssue)
    fatal = [i for i in items if isinstance(i, InputIssue) and i.fatal]
    assert len(fatal) <= 1 and (not fatal or items[-1] is fatal[0])  # damage ends reading
    return items
