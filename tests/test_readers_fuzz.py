"""The core's generic readers (JSON, JSON Lines, CSV, text, Netscape HTML) under damage.

Each reader gets mutated real-looking files (cut, flipped, inserted, deleted
bytes): never an exception but a one-line InputError; issues carry positions;
a bad entry in the middle is reported and the entries after it are still read.
"""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings

from bookmark_enrich.models import Bookmark, InputIssue
from bookmark_enrich.sources import iter_bookmarks, open_source
from tests.exports_support import mutated, read_mutated

SEEDS = {
    "json": (b'[\n {"url": "https://example.org/a", "title": "A \xc3\xa9", "tags": ["x"]},\n'
             b' "https://example.org/b",\n {"href": "https://example.org/a?dup=1"},\n'
             b' {"link": "http://example.com/c", "n": 1.5, "nested": {"k": [1, 2]}}\n]\n'),
    "jsonl": (b'{"url": "https://example.org/a", "title": "A"}\n'
              b'{"url": "https://example.org/\xe6\x97\xa5", "tags": "a,b"}\n\n'
              b'"https://example.org/c"\n{"uri": "https://example.org/a"}\n'),
    "csv": (b'\xef\xbb\xbfTitle,URL,Tags\r\n"Quoted, title",https://example.org/a,"x,y"\r\n'
            b'\xc3\x9cnicode,https://example.org/b,\r\n'
            b'"Multi\nline",https://example.org/c,z\r\nDup,https://example.org/a,\r\n'),
    "text": (b"# my links\nhttps://example.org/a Title A\n\nhttp://example.com/b\n"
             b"https://example.org/\xe6\x97\xa5 \xe6\x97\xa5\xe6\x9c\xac\nfile:page.html\n"),
    "netscape": (b'<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<META HTTP-EQUIV="Content-Type" '
                 b'CONTENT="text/html; charset=UTF-8">\n<TITLE>Bookmarks</TITLE>\n'
                 b'<H1>Bookmarks</H1>\n<DL><p>\n    <DT><H3 ADD_DATE="1700000000">Bar</H3>\n'
                 b'    <DL><p>\n        <DT><A HREF="https://example.org/a" ADD_DATE="1" '
                 b'TAGS="x,y">A &amp; B</A>\n        <DD>A note\n        <HR>\n'
                 b'        <DT><H3>Empty</H3>\n        <DL><p>\n        </DL><p>\n'
                 b'        <DT><A HREF="https://example.org/\xc3\xbc">\xc3\x9c</A>\n'
                 b'    </DL><p>\n    <DT><A HREF="https://example.org/a">Dup</A>\n</DL><p>\n'),
}

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_seed_reads_cleanly(fmt: str) -> None:
    items = read_mutated(SEEDS[fmt], fmt)
    assert len(items) >= 3
    assert not [i for i in items if isinstance(i, InputIssue)]


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_input_never_crashes(fmt: str) -> None:
    @FUZZ
    @given(data=mutated(SEEDS[fmt]))
    def check(data: bytes) -> None:
        read_mutated(data, fmt)

    check()


@pytest.mark.parametrize(("fmt", "data", "bad"), [
    ("json", b'[{"url": "https://a.example/1"}, 5, {"url": "https://a.example/2"}]', 2),
    ("jsonl", b'{"url": "https://a.example/1"}\n{"url": \n{"url": "https://a.example/2"}\n', 2),
    ("csv", b"url,title\nhttps://a.example/1,a\nnot a url,b\nhttps://a.example/2,c\n", 3),
    ("text", b"https://a.example/1\nhttps://[broken/ x\nhttps://a.example/2\n", 2),
    ("netscape", b'<DL><DT><A HREF="https://a.example/1">1</A>\n<DT><A HREF="javascript:x()">j'
                 b'</A>\n<DT><A HREF="https://a.example/2">2</A></DL>\n', 2),
])
def test_bad_entry_is_reported_with_its_position(fmt: str, data: bytes, bad: int) -> None:
    src = open_source("-", input_format=fmt, stdin=io.BytesIO(data))
    items = list(iter_bookmarks(src))
    src.close()
    assert [(i.position, i.fatal) for i in items if isinstance(i, InputIssue)] == [(bad, False)]
    assert [b.url for b in items if isinstance(b, Bookmark)] == [
        "https://a.example/1", "https://a.example/2"]


@pytest.mark.parametrize(("fmt", "data", "read", "where"), [
    ("json", b'[{"url": "https://a.example/1"}, {"url": "https://a.example/2"}, {"url": "ht', 2, 3),
    ("netscape", b'<DL><DT><A HREF="https://a.example/1">1</A>\n<DT><A HREF="https://a.ex', 1, 2),
])
def test_truncated_file_reports_where(fmt: str, data: bytes, read: int, where: int) -> None:
    src = open_source("-", input_format=fmt, stdin=io.BytesIO(data))
    items = list(src.read())
    src.close()
    issues = [i for i in items if isinstance(i, InputIssue)]
    assert len(items) - len(issues) == read
    assert [i.position for i in issues] == [where]


@pytest.mark.parametrize("seed", [
    SEEDS["netscape"],
    b'<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<!-- This is an automatically generated file.\n'
    b'     DO NOT EDIT! -->\n<meta http-equiv="Content-Security-Policy"\n'
    b'      content="default-src \'self\'"></meta>\n<TITLE>Bookmarks</TITLE>\n'
    b'<H1>Bookmarks Menu</H1>\n\n<DL><p>\n    <DT><H3 ADD_DATE="1" PERSONAL_TOOLBAR_FOLDER="true">'
    b'Toolbar &amp; more</H3>\n    <DL><p>\n        <DT><A HREF="https://a.example/?q=1&amp;r=2" '
    b'ADD_DATE="1" ICON_URI="x" SHORTCUTURL=\'kw\' TAGS=a,b>T &lt;1&gt;</A>\n'
    b'        <DD>line one\n  line two &amp; three\n        <HR>\n'
    b'        <DT><A HREF="https://a.example/2" FEED>Two <b>bold</b></A>\n'
    b'    </DL><p>\n    <DT><A HREF=https://a.example/3 LAST_CHARSET="UTF-8">3</A>\r\n</DL>\n',
])
def test_fast_netscape_path_matches_the_html_parser(seed: bytes) -> None:
    from bookmark_enrich.sources.netscape import read_netscape_lines

    def both(data: bytes) -> None:
        fast = list(read_netscape_lines(io.BytesIO(data), fast=True))
        slow = list(read_netscape_lines(io.BytesIO(data), fast=False))
        assert fast == slow

    both(seed)

    @FUZZ
    @given(data=mutated(seed))
    def check(data: bytes) -> None:
        both(data)

    check()
