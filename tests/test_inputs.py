"""Real-world inputs (issue 16): cache keys migrated, damage kept local, exit statuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich.cache import SCHEMA_VERSION, ResultCache
from bookmark_enrich.cli import app
from bookmark_enrich.models import Bookmark, StageOutcome
from bookmark_enrich.settings import load_settings
from bookmark_enrich.urls import bookmark_key, normalize_url, resolve_url
from tests.helpers import CORE_ONLY
from tests.servers.pages import PageServer


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=CORE_ONLY, input=input,
                              catch_exceptions=False)


def _old_cache(path: Path, rows: list[tuple[str, str]]) -> None:
    """A version-1 cache whose keys came from the old normalization."""
    with ResultCache(path) as cache:
        run = cache.start_run("x", "text", {})
        for old_key, url in rows:
            bm = Bookmark(url=url, normalized=url, key=old_key, record={"url": url}, position=1)
            cache.put(bm, {"fetch": StageOutcome.ok({"http_status": 200})}, run)
        cache.flush()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()


def test_an_old_cache_is_rekeyed_once_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    urls = ["https://Example.com/a?utm_source=x#f", "https://example.com/page?kr1"]
    _old_cache(path, [("old-a", urls[0]), ("old-b", urls[1])])
    with ResultCache(path) as cache:
        new_keys = [bookmark_key(normalize_url(resolve_url(u))) for u in urls]
        found = cache.lookup(new_keys)
        assert set(found) == set(new_keys)  # nothing already enriched is fetched again
        assert cache.lookup(["old-a", "old-b"]) == {}
        assert cache.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        normalized = {r["normalized"] for r in cache.iter_rows("SELECT normalized FROM bookmarks")}
        assert normalized == {"https://example.com/a", "https://example.com/page?kr1"}


# ----------------------------------------------------------------- readers
def _records(path: Path, **kw: object) -> list[dict[str, object]]:
    from bookmark_enrich.sources import iter_bookmarks, open_source

    src = open_source(str(path), **kw)  # type: ignore[arg-type]
    try:
        return [b.record for b in iter_bookmarks(src) if isinstance(b, Bookmark)]
    finally:
        src.close()


def test_netscape_tags_are_a_list(tmp_path: Path) -> None:
    path = tmp_path / "bookmarks.html"
    path.write_text('<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n'
                    '<DT><A HREF="https://www.imdb.com/title/tt0111161/" '
                    'TAGS="imdb,movie, towatch">The Shawshank Redemption</A>\n</DL><p>\n')
    [record] = _records(path)
    assert record["tags"] == ["imdb", "movie", "towatch"]


def test_firefox_tags_in_every_layout_are_a_list(tmp_path: Path) -> None:
    # Firefox's HTML export: TAGS beside SHORTCUTURL and ICON; one line the fast path
    # takes, one (single-quoted) the tokenizer takes, one with an empty TAGS.
    html = tmp_path / "firefox.html"
    html.write_text(
        '<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n<DT><H3 ADD_DATE="1">Menu</H3>\n'
        '<DL><p>\n<DT><A HREF="https://a.example/" ADD_DATE="1300000000" '
        'ICON_URI="https://a.example/i.ico" SHORTCUTURL="a" TAGS="news,daily">A</A>\n'
        "<DT><A HREF='https://b.example/' TAGS='x, y ,,z'>B</A>\n"
        '<DT><A HREF="https://c.example/" TAGS="">C</A>\n</DL><p>\n</DL><p>\n')
    assert [r["tags"] for r in _records(html)] == [["news", "daily"], ["x", "y", "z"], []]
    # A backup JSON: tags as Firefox writes them (a string), as some tools rewrite them
    # (a list), and only in the tags folder (Firefox 3.0).
    backup = tmp_path / "bookmarks.json"
    place = '"type":"text/x-moz-place"'
    backup.write_text(
        '{"title":"","root":"placesRoot","type":"text/x-moz-place-container","children":['
        '{"title":"Menu","root":"bookmarksMenuFolder","type":"text/x-moz-place-container",'
        f'"children":[{{"uri":"https://a.example/","tags":"news, daily",{place}}},'
        f'{{"uri":"https://b.example/","tags":["x","y"],{place}}},'
        f'{{"uri":"https://c.example/",{place}}}]}},'
        '{"title":"Tags","root":"tagsFolder","type":"text/x-moz-place-container","children":['
        '{"title":"old","type":"text/x-moz-place-container","children":['
        f'{{"uri":"https://c.example/",{place}}},{{"uri":"https://a.example/",{place}}}]}}]}}]}}')
    # ``tags`` is the list; the export's own string is kept as ``original_tags``.
    records = _records(backup)
    assert [r["tags"] for r in records] == [["news", "daily", "old"], ["x", "y"], ["old"]]
    assert records[0]["original_tags"] == "news, daily"


def test_a_url_broken_over_lines_is_read_as_a_browser_reads_it(tmp_path: Path) -> None:
    from bookmark_enrich.sources import iter_bookmarks, open_source

    path = tmp_path / "pocket.csv"
    path.write_bytes(b'title,url,time_added,tags,status\r\n'
                     b'Long,"https://example.com/a/very/long/\r\npath?x=1",1700000000,,unread\r\n')
    src = open_source(str(path))
    try:
        [bookmark] = list(iter_bookmarks(src))
    finally:
        src.close()
    assert isinstance(bookmark, Bookmark)
    assert bookmark.url == "https://example.com/a/very/long/path?x=1"


def test_records_wrapped_in_an_object_are_read_never_lost_silently(tmp_path: Path) -> None:
    # Readability's export (read by wallabag's importer): {"bookmarks": [...]}.
    wrapped = tmp_path / "readability.json"
    wrapped.write_text('{\n  "bookmarks": [\n    {"article__url": "https://a.example/", '
                       '"article__title": "A"}\n  ],\n  "recommendations": []\n}\n')
    assert [r["article__url"] for r in _records(wrapped)] == ["https://a.example/"]
    refused = invoke("run", str(wrapped), "--writeback")
    assert refused.exit_code == 2 and "-o FILE" in refused.stderr
    # An object the sniffer does not take is reported, not read as zero records.
    odd = tmp_path / "odd.json"
    odd.write_text('{\n  "version": 2,\n  "links": [{"url": "https://a.example/"}]\n}\n')
    result = invoke("run", str(odd), "-q")
    assert result.exit_code == 2 and "--input-format json-object" in result.stderr
    assert [r["url"] for r in _records(odd, input_format="json-object")] == [
        "https://a.example/"]


# ----------------------------------------------------------------- writeback
ENCODINGS = [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1252", b""), ("latin-1", b""),
             ("utf-16-le", b"\xff\xfe")]


def _user_csv(urls: list[str], codec: str) -> str:
    # Mixed quoting styles, CRLF, a cell quoted though it need not be, an empty cell.
    café = "café" if codec != "latin-1" else "café ü"
    rows = ['Title;URL;"note";n']
    rows.append(f'"{café} – “quoted”";{urls[0]};"a; b ""x""";1')
    rows.append(f'plain {café};"{urls[1]}";;2')
    rows.append(f'{café};{urls[2]};  spaced  ;"3"')
    return "\r\n".join(rows) + "\r\n"


def _user_cells(data: bytes, codec: str, bom: bytes) -> list[bytes]:
    """Every line's first four cells' bytes (the user's columns)."""
    body = data[len(bom):].decode(codec).split("\r\n")
    return [";".join(line.split(";")[:4]).encode(codec) for line in body]


@pytest.mark.parametrize(("codec", "bom"), ENCODINGS,
                         ids=["utf-8", "utf-8-bom", "cp1252", "latin-1", "utf-16"])
def test_csv_writeback_keeps_the_users_bytes(tmp_path: Path, pages: PageServer,
                                             codec: str, bom: bytes) -> None:
    urls = [pages.url(f"/article/enc-{codec}-{len(bom)}-{i}") for i in range(3)]
    text = _user_csv(urls, codec)
    if codec == "latin-1":
        text = text.replace("–", "-").replace("“", '"').replace("”", '"').replace(
            '"quoted"', "quoted")
    path = tmp_path / "bookmarks.csv"
    path.write_bytes(bom + text.encode(codec))
    original = path.read_bytes()
    result = invoke("run", str(path), "--writeback", "--no-backup", "-q")
    assert result.exit_code == 0, result.stderr
    new = path.read_bytes()
    assert new.startswith(bom) and new != original
    assert _user_cells(new, codec, bom)[:4] == _user_cells(original, codec, bom)[:4]
    lines = new[len(bom):].decode(codec).split("\r\n")
    assert lines[0].startswith('Title;URL;"note";n;enrich_status;enrich_errors')
    assert all(line.count(";") > 4 for line in lines[1:4]) and lines[4] == ""
    assert "Tending a city garden" in lines[1]


def test_writeback_refused_when_the_encoding_cannot_hold_the_value(
        tmp_path: Path, pages: PageServer) -> None:
    url = pages.url("/article/unicode-title")
    path = tmp_path / "bookmarks.csv"
    path.write_bytes(f"url,title\r\n{url},caf\xe9\r\n".encode("cp1252"))
    original = path.read_bytes()
    assert invoke("run", str(path), "-q").exit_code == 0
    # The page's title now holds characters cp1252 has no byte for.
    with ResultCache(load_settings().cache) as cache:
        cache.conn.execute("UPDATE results SET output = json_set(output, '$.title', "
                           "'東京の庭') WHERE stage = 'extract'")
    result = invoke("writeback", str(path), "--no-backup")
    assert result.exit_code != 0
    assert path.read_bytes() == original
    assert "line 2" in result.stderr and "-o FILE" in result.stderr


def test_input_encoding_names_what_a_short_file_cannot_tell(tmp_path: Path,
                                                            pages: PageServer) -> None:
    # Two Cyrillic words in cp1251 are too few for detection (read as cp1252: "Ïðèâåò").
    url = pages.url("/article/cp1251")
    path = tmp_path / "ru.csv"
    path.write_bytes(f"url,title\r\n{url},Привет мир\r\n".encode("cp1251"))
    original = path.read_bytes()
    guessed = invoke("run", str(path), "-q")
    assert "Привет" not in guessed.stdout
    result = invoke("run", str(path), "--input-encoding", "cp1251", "--writeback",
                    "--no-backup", "-q")
    assert result.exit_code == 0, result.stderr
    assert '"title": "Привет мир"' in result.stdout or "Привет мир" in result.stdout
    new = path.read_bytes()
    assert new.startswith(b"url,title,enrich_status") and "Привет мир".encode("cp1251") in new
    assert new.split(b"\r\n")[1].startswith(original.split(b"\r\n")[1])
    bad = invoke("run", str(path), "--input-encoding", "klingon")
    assert bad.exit_code == 2 and "unknown encoding 'klingon'" in bad.stderr


def test_a_declared_encoding_keeps_its_own_bom_apart() -> None:
    from bookmark_enrich.sources.base import Encoding, declared_encoding

    assert declared_encoding(b"\xff\xfeu\x00", "utf-16") == Encoding("utf-16-le", b"\xff\xfe")
    assert declared_encoding(b"\xef\xbb\xbfurl", "UTF8") == Encoding("utf-8", b"\xef\xbb\xbf")
    assert declared_encoding(b"\xef\xbb\xbfurl", "utf-8-sig") == Encoding("utf-8", b"\xef\xbb\xbf")
    assert declared_encoding(b"url", "windows-1251") == Encoding("cp1251")
    with pytest.raises(LookupError):
        declared_encoding(b"url", "klingon")


# ----------------------------------------------------------------- exit status
def test_skipped_records_exit_1_and_the_summary_says_so(tmp_path: Path,
                                                        pages: PageServer) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(f"{pages.url('/article/x1')}\njavascript:void(0)\n"
                     f"{pages.url('/article/x2')} ok\x00junk\n".encode())
    result = invoke("run", str(path), "-q")
    assert result.exit_code == 1
    assert "line 2" in result.stderr and "line 3" in result.stderr
    assert "bad input" in result.stderr  # the summary, although --quiet


def test_strict_turns_a_skipped_record_into_exit_2_before_any_writeback(
        tmp_path: Path, pages: PageServer) -> None:
    path = tmp_path / "b.csv"
    good = f"url,title\r\n{pages.url('/article/st1')},one\r\n"
    path.write_bytes(f"{good}{pages.url('/article/st2')},a\x00b\r\n".encode())
    original = path.read_bytes()
    assert invoke("run", str(path), "-q").exit_code == 1  # without --strict: skipped
    result = invoke("run", str(path), "--strict", "--writeback", "--no-backup", "-q")
    assert result.exit_code == 2
    assert "error: line 3: " in result.stderr and "(byte 0x00)" in result.stderr
    assert "(--strict)" in result.stderr and "skipped line 3" not in result.stderr
    assert path.read_bytes() == original
    clean = tmp_path / "clean.csv"
    clean.write_bytes(good.encode())
    assert invoke("run", str(clean), "--strict", "-q").exit_code == 0


def test_all_rejected_exits_2_and_no_records_is_nothing_to_do(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("javascript:alert(1)\nhttps://bad\x01host/\n")
    result = invoke("run", str(path), "-q")
    assert result.exit_code == 2
    assert f"no bookmark found in {path} (2 lines skipped: " in result.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = invoke("run", str(empty))
    assert result.exit_code == 0 and "nothing to do" in result.stderr
    assert result.stdout == ""


def test_a_nul_in_a_csv_spoils_its_row_only(tmp_path: Path, pages: PageServer) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes(f"url,title\n{pages.url('/article/n1')},a\x00b\n"
                     f"{pages.url('/article/n2')},fine\n".encode())
    for extra in ([], ["-f", "csv"]):
        result = invoke("run", str(path), "-q", *extra)
        assert result.exit_code == 1, result.stderr
        assert "line 2" in result.stderr and "0x00" in result.stderr
        assert result.stdout.count("\n") == 1


def test_a_file_that_cannot_come_back_byte_identical_is_refused(
        tmp_path: Path, pages: PageServer) -> None:
    # A UTF-16 CSV with a lone surrogate (an emoji cut in half by a spreadsheet): the
    # row is reported and skipped, and writeback refuses before anything is written.
    urls = [pages.url(f"/article/cut-{i}") for i in range(2)]
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xff\xfe" + f"url,title\r\n{urls[0]},ok\r\n{urls[1]},cut ".encode(
        "utf-16-le") + b"\x3d\xd8" + "\r\n".encode("utf-16-le"))
    original = path.read_bytes()
    result = invoke("run", str(path), "--writeback", "--no-backup", "-q")
    assert result.exit_code == 1, result.stderr  # the run finished; the file is untouched
    assert "line 3" in result.stderr and "0x3D" in result.stderr  # the reader's report
    assert "line 3 cannot be read and written back unchanged" in result.stderr
    assert "-o FILE" in result.stderr
    assert path.read_bytes() == original
    assert not list(tmp_path.glob("*.bak")) and not list(tmp_path.glob(".*writeback*"))
