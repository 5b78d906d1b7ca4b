"""Browser and read-it-later exports: records, detection, damage, writeback, `formats`.

Expected records live in ``fixtures/exports/expected/<fixture>.json``; after a
deliberate change, regenerate them with ``REGEN_EXPORT_FIXTURES=1`` and review the diff.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import lz4.block
import pytest
from hypothesis import HealthCheck, given, settings

from bookmark_enrich import enrich, load_settings, open_source
from bookmark_enrich.models import InputIssue
from bookmark_enrich.sources import FORMATS, RawRecord
from tests.exports_support import FIXTURES, as_expected, mutated, read_items, read_mutated
from tests.helpers import invoke_cli, jsonl
from tests.servers.pages import PageServer

FIXTURE_FORMATS = {
    "chrome-Bookmarks": "chrome",
    "firefox-backup.json": "firefox-json",
    "firefox3-backup.json": "firefox-json",
    "firefox-backup.jsonlz4": "firefox-jsonlz4",
    "places.sqlite": "firefox-places",
    "places-firefox3.sqlite": "firefox-places",
    "places-firefox4.sqlite": "firefox-places",
    "safari-Bookmarks.plist": "safari",
    "safari-xml.plist": "safari",
    "pocket.csv": "pocket-csv",
    "pocket.html": "pocket-html",
    "instapaper.csv": "instapaper",
    "instapaper-old.csv": "instapaper",
    "raindrop.csv": "raindrop",
    "raindrop-old.csv": "raindrop",
    "raindrop-import.csv": "raindrop",
    "readwise.csv": "readwise",
    "matter.csv": "matter",
    "pinboard.json": "pinboard",
    "omnivore.json": "omnivore",
    "wallabag.json": "wallabag",
    "linkwarden.json": "linkwarden",
    "karakeep.json": "karakeep",
    "karakeep-lists.json": "karakeep",
    "onetab.txt": "onetab",
    "feed.rss": "rss",
    "feed.atom": "atom",
    # Real exports, from wallabag's importer tests (MIT; see PROVENANCE.md).
    "wallabag-chrome-Bookmarks": "chrome",
    "wallabag-firefox.json": "firefox-json",
    "wallabag-instapaper.csv": "instapaper",
    "wallabag-pocket.csv": "pocket-csv",
    "wallabag-pinboard.json": "pinboard",
    "wallabag-ril_export.html": "pocket-html",
    "wallabag-shaarli.html": "netscape",
    "wallabag-omnivore.json": "omnivore",
    "wallabag-v2.json": "wallabag",
    "wallabag-readability.json": "json-object",
    "wallabag-delicious.json": "json",
}
EXPORT_FORMATS = sorted(set(FIXTURE_FORMATS.values()))
REGEN = os.environ.get("REGEN_EXPORT_FIXTURES") == "1"


def test_every_export_format_has_a_fixture() -> None:
    core = {"netscape", "json", "jsonl", "csv", "text"}
    assert set(FORMATS) - core == set(EXPORT_FORMATS) - core


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMATS))
def test_fixture_gives_the_expected_records(name: str) -> None:
    items = as_expected(read_items(FIXTURES / name))
    expected_file = FIXTURES / "expected" / f"{name}.json"
    if REGEN:
        expected_file.write_text(json.dumps(items, indent=1, ensure_ascii=False) + "\n")
    assert items == json.loads(expected_file.read_text())
    if FIXTURE_FORMATS[name] in ("json", "json-object"):
        return  # the generic shapes keep the user's fields as they are (Delicious' epochs)
    # The common fields, where present, have their common shapes.
    for item in items:
        record = item.get("record")
        if record is None:
            continue
        assert isinstance(record["url"], str)
        tags = record.get("tags", [])  # always the list (issue 16)
        assert isinstance(tags, list) and all(isinstance(t, str) for t in tags)
        created = record.get("common_created", record.get("created"))
        if not name.startswith("raindrop"):  # Raindrop's own column is named created
            assert created is None or (len(created) == 20 and created.endswith("Z"))


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMATS))
def test_detected_by_content_without_extension(name: str, tmp_path: Path) -> None:
    bare = tmp_path / "export"
    shutil.copy(FIXTURES / name, bare)
    src = open_source(str(bare))
    try:
        assert src.format_name == FIXTURE_FORMATS[name]
    finally:
        src.close()


@pytest.mark.parametrize("name", ["chrome-Bookmarks", "places.sqlite", "firefox-backup.json",
                                  "safari-Bookmarks.plist", "firefox-backup.jsonlz4"])
def test_stdin_reads_like_the_file(name: str) -> None:
    from_file = as_expected(read_items(FIXTURES / name))
    from_stdin = as_expected(read_items(data=(FIXTURES / name).read_bytes()))
    assert from_stdin == from_file


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMATS))
def test_each_format_is_nameable(name: str) -> None:
    items = read_items(FIXTURES / name, fmt=FIXTURE_FORMATS[name])
    assert any(isinstance(i, RawRecord) for i in items)


def test_places_is_opened_read_only(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    profile.mkdir()
    places = profile / "places.sqlite"
    shutil.copy(FIXTURES / "places.sqlite", places)
    places.chmod(0o444)
    before = places.read_bytes()
    items = read_items(places)
    assert len([i for i in items if isinstance(i, RawRecord)]) == 4
    assert places.read_bytes() == before
    assert [p.name for p in profile.iterdir()] == ["places.sqlite"]  # no -wal/-shm/-journal


# ---------------------------------------------------------------- fuzzing
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "15")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMATS))
def test_mutated_fixture_never_crashes(name: str) -> None:
    original = (FIXTURES / name).read_bytes()
    fmt = FIXTURE_FORMATS[name]

    @FUZZ
    @given(data=mutated(original))
    def check(data: bytes) -> None:
        read_mutated(data, fmt)

    check()


@pytest.mark.parametrize(("fmt", "data", "bad", "after"), [
    ("onetab", b"https://a.example/1 | One\njunk line\nhttps://a.example/2 | Two\n", 2, 3),
    ("pinboard", b'[{"href":"https://a.example/1","description":"x","hash":"1"},'
                 b'7,{"href":"https://a.example/2","description":"y","hash":"2"}]', 2, 3),
    ("chrome", b'{"roots":{"bookmark_bar":{"children":[{"type":"url","url":"https://a.example/1"'
               b'},{"type":"weird","name":"?"},{"type":"url","url":"https://a.example/2"}],'
               b'"type":"folder","name":"Bar"}}}', 2, 3),
    ("karakeep", b'{"bookmarks":[{"content":{"type":"link","url":"https://a.example/1"}},'
                 b'{"content":null},{"content":{"type":"link","url":"https://a.example/2"}}]}',
     2, 3),
    ("rss", b'<rss version="2.0"><channel><item><link>https://a.example/1</link></item>'
            b'<item><title>no link</title></item><item><link>https://a.example/2</link></item>'
            b'</channel></rss>', 2, 3),
])
def test_bad_entry_is_reported_and_the_rest_read(fmt: str, data: bytes, bad: int,
                                                  after: int) -> None:
    items = read_items(data=data, fmt=fmt)
    issues = [i for i in items if isinstance(i, InputIssue)]
    assert [(i.position, i.fatal) for i in issues] == [(bad, False)]
    assert [i.position for i in items if isinstance(i, RawRecord)][-1] == after


# ------------------------------------------------------------ damaged files
def _chrome(urls: list[str]) -> bytes:
    children = [{"date_added": "13340000000000000", "id": str(i), "name": f"Page {i}",
                 "type": "url", "url": u} for i, u in enumerate(urls)]
    return json.dumps({"checksum": "x", "roots": {"bookmark_bar": {
        "children": children, "name": "Bookmarks bar", "type": "folder"}}, "version": 1},
        indent=3).encode()


def _jsonlz4(urls: list[str]) -> bytes:
    places = [{"title": f"Page {i}", "typeCode": 1, "type": "text/x-moz-place", "uri": u}
              for i, u in enumerate(urls)]
    data = json.dumps({"guid": "root________", "typeCode": 2, "root": "placesRoot",
                       "children": [{"title": "menu", "root": "bookmarksMenuFolder",
                                     "typeCode": 2, "children": places}]}).encode()
    return b"mozLz40\0" + struct.pack("<I", len(data)) + lz4.block.compress(
        data, store_size=False)


def _pocket_html(urls: list[str]) -> bytes:
    items = "".join(f'<li><a href="{u}" time_added="1700000000" tags="">Page {i}</a></li>\n'
                    for i, u in enumerate(urls))
    return (f"<!DOCTYPE html>\n<html><head><title>Pocket Export</title></head><body>\n"
            f"<h1>Unread</h1>\n<ul>\n{items}</ul>\n</body></html>\n").encode()


def _rss(urls: list[str]) -> bytes:
    items = "".join(f"<item><title>Page {i}</title><link>{u}</link></item>\n"
                    for i, u in enumerate(urls))
    return f'<rss version="2.0"><channel><title>T</title>\n{items}</channel></rss>\n'.encode()


def _safari_xml(urls: list[str]) -> bytes:
    import plistlib

    leaves = [{"URIDictionary": {"title": f"Page {i}"}, "URLString": u,
               "WebBookmarkType": "WebBookmarkTypeLeaf"} for i, u in enumerate(urls)]
    return plistlib.dumps({"Children": [{"Children": leaves, "Title": "BookmarksBar",
                                         "WebBookmarkType": "WebBookmarkTypeList"}],
                           "WebBookmarkType": "WebBookmarkTypeList"})


def _karakeep(urls: list[str]) -> bytes:
    return json.dumps({"bookmarks": [{"title": f"Page {i}", "content": {
        "type": "link", "url": u}} for i, u in enumerate(urls)]}, indent=1).encode()


def _pinboard(urls: list[str]) -> bytes:
    return json.dumps([{"href": u, "description": f"Page {i}", "hash": str(i), "tags": ""}
                       for i, u in enumerate(urls)], indent=1).encode()


BUILDERS = {"chrome": _chrome, "firefox-jsonlz4": _jsonlz4, "pocket-html": _pocket_html,
            "rss": _rss, "safari": _safari_xml, "karakeep": _karakeep, "pinboard": _pinboard}


def _cut_inside_entry(data: bytes, fmt: str, urls: list[str]) -> bytes:
    """The export cut in the middle of the entry holding the fourth URL."""
    if fmt == "firefox-jsonlz4":
        header, block = data[:12], data[12:]
        return header + block[: len(block) - 12]
    return data[: data.index(urls[3].encode()) + 5]


@pytest.mark.parametrize("fmt", sorted(BUILDERS))
def test_truncated_export_keeps_what_came_before(fmt: str, pages: PageServer,
                                                 tmp_path: Path) -> None:
    urls = [pages.url(f"/article/cut-{fmt}-{i}") for i in range(6)]
    path = tmp_path / "export"
    path.write_bytes(_cut_inside_entry(BUILDERS[fmt](urls), fmt, urls))
    records: list[dict[str, Any]] = []
    src = open_source(str(path))
    assert src.format_name == fmt
    stats = asyncio.run(enrich(src, load_settings(enable_ai_summarization=False,
                                                  enable_media_download=False),
                               sink=records.append))
    src.close()
    assert stats.fatal_issues == 1
    done = sorted(r["url"] for r in records)
    assert done == urls[: len(done)] and len(done) >= (1 if fmt == "firefox-jsonlz4" else 3)
    assert all(r["status"] == "ok" for r in records)


def test_truncated_chrome_exits_1_naming_the_position(pages: PageServer, tmp_path: Path) -> None:
    urls = [pages.url(f"/article/chrome-cut-{i}") for i in range(5)]
    data = _chrome(urls)
    path = tmp_path / "Bookmarks"
    path.write_bytes(_cut_inside_entry(data, "chrome", urls))
    proc = invoke_cli("run", str(path), "-q")
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert sorted(r["url"] for r in jsonl(proc.stdout)) == urls[:3]
    assert "input damaged at line 4: Chrome Bookmarks JSON broken after entry 3 near byte" in err
    assert "Traceback" not in err


def test_unknown_file_exits_2_naming_the_formats(tmp_path: Path) -> None:
    path = tmp_path / "notes"
    path.write_text("just some words\nnothing here\n")
    proc = invoke_cli("run", str(path))
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert "unknown format (tried " in err
    for name in FORMATS:
        assert name in err
    blob = tmp_path / "blob"
    blob.write_bytes(b"\x00\x01\x02garbage" * 100)
    proc = invoke_cli("run", str(blob))
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert "binary data" in err and "firefox-places" in err and "safari" in err


# ----------------------------------------------------------------- writeback
@pytest.mark.parametrize("name", ["chrome-Bookmarks", "places.sqlite", "safari-Bookmarks.plist",
                                  "firefox-backup.jsonlz4"])
def test_writeback_refused_for_browser_files(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    shutil.copy(FIXTURES / name, path)
    before = path.read_bytes()
    proc = invoke_cli("run", str(path), "--writeback")
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "owned by the browser" in err and "-o FILE" in err
    assert path.read_bytes() == before


def test_writeback_of_a_pinboard_json(pages: PageServer, tmp_path: Path) -> None:
    urls = [pages.url(f"/article/pin-{i}") for i in range(3)]
    path = tmp_path / "pinboard.json"
    path.write_bytes(_pinboard(urls))
    proc = invoke_cli("run", str(path), "--writeback", "--no-backup", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(path.read_text())
    assert [d["href"] for d in data] == urls
    assert all(d["enrichment"]["title"] for d in data)
    assert "url" not in data[0]  # the file keeps its own fields only


def test_writeback_of_a_raindrop_csv(pages: PageServer, tmp_path: Path) -> None:
    urls = [pages.url(f"/article/rain-{i}") for i in range(2)]
    path = tmp_path / "raindrop.csv"
    rows = "".join(f"{i},T{i},,,{u},Unsorted,\"a, b\",2023-04-05T06:07:08.000Z,,,false\n"
                   for i, u in enumerate(urls))
    path.write_text("id,title,note,excerpt,url,folder,tags,created,cover,highlights,favorite\n"
                    + rows)
    proc = invoke_cli("run", str(path), "--writeback", "--no-backup", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    table = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["url"] for r in table] == urls
    assert all(r["enrich_status"] == "ok" and r["tags"] == "a, b" for r in table)


# ------------------------------------------------------------------ formats
def test_formats_command_lists_every_format() -> None:
    proc = invoke_cli("formats")
    assert proc.returncode == 0
    out = proc.stdout.decode()
    for name in FORMATS:
        assert f"\n{name} " in out
    listed = json.loads(invoke_cli("formats", "--json").stdout)
    by_name = {f["name"]: f for f in listed}
    assert set(by_name) == set(FORMATS)
    assert by_name["chrome"]["writeback"] is False
    assert "owned by the browser" in by_name["firefox-places"]["writeback_refusal"]
    assert by_name["pocket-csv"]["writeback"] is True
    assert by_name["pinboard"]["container"] == "json"
    assert all(f["detection"] for f in listed)
