"""Dead links rescued from a web archive (issue 19), against the stand-in archive.

The archive here is tests/servers/archive.py on loopback, speaking the Wayback
availability API and serving raw captures; names that must not resolve fail in
the offline resolver (tests/offline). No test asks a real archive or resolver.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich.cli import app
from bookmark_enrich.doctor import run_doctor
from bookmark_enrich.extraction.parked import parking_marker
from bookmark_enrich.services.archive import Snapshot, parse_availability, wayback_timestamp
from bookmark_enrich.settings import load_settings
from tests.helpers import by_url, cli, jsonl, run_library
from tests.servers.archive import TOOLBAR, ArchiveServer
from tests.servers.pages import CORPUS_DIR, PageServer, article_html

PARKED = Path(__file__).parent / "fixtures" / "parked"
CORPUS_PAGE = "042bb7b5fedab6eac7db576522b89b93904c237d344bcbe14a6a5ab7f7335856"


runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def capture_body() -> tuple[bytes, str]:
    """A shared-corpus page as the archived capture (an article page without it)."""
    file = CORPUS_DIR / "html" / f"{CORPUS_PAGE}.html.gz"
    if file.exists():
        return gzip.decompress(file.read_bytes()), "Google Stadia"
    return article_html("archived").encode(), "Tending a city garden"


def rescue(**settings: Any) -> dict[str, Any]:
    return {"enable_ai_summarization": True, "summarizer": "builtin", **settings}


# ----------------------------------------------------------------- the mix
def test_dead_links_are_rescued_and_live_ones_never_ask(pages: PageServer,
                                                        archive: ArchiveServer) -> None:
    body, title = capture_body()
    live = pages.url("/article/alive")
    missing = pages.url("/status/404")
    gone = pages.url("/status/410")
    unresolvable = "http://lapsed-domain.example.test/post"
    parked = pages.add("parked-sedo", (PARKED / "sedo.html").read_bytes())
    refused = f"http://127.0.0.1:{closed_port()}/nothing"
    for url in (missing, gone, unresolvable, parked):
        archive.add(url, body)
    records, _ = run_library([live, missing, gone, unresolvable, parked, refused],
                             retries=0, include_text=True, **rescue())
    got = by_url(records)

    expected = {missing: "not_found", gone: "gone", unresolvable: "dns_error",
                parked: "parked"}
    for url, reason in expected.items():
        r = got[url]
        e = r["enrichment"]
        assert e["title"].startswith(title), url
        assert e["summary"] and e["tags"], url
        assert TOOLBAR not in e["text"]  # the raw capture, not the replay
        assert e["archived"]["snapshot_url"] == f"{archive.base}/web/20150321120000/{url}"
        assert e["archived"]["timestamp"] == "2015-03-21T12:00:00Z"
        assert e["archived"]["archive"] == archive.base
        assert e["archived"]["reason"] == reason
        assert r["errors"][0] == {"stage": "fetch", "reason": reason,
                                  "message": r["errors"][0]["message"]}
        assert r["stages"]["fetch"]["status"] == "failed"
        assert r["stages"]["archive"]["status"] == "ok"
        assert r["status"] == "partial"

    dead_without = got[refused]
    assert dead_without["errors"][0]["reason"] == "connection_refused"
    assert dead_without["stages"]["archive"]["reason"] == "no_snapshot"
    assert "archived" not in dead_without["enrichment"]
    assert dead_without["status"] == "failed"

    assert got[live]["stages"]["archive"] == {**got[live]["stages"]["archive"],
                                              "status": "skipped", "reason": "not_dead"}
    assert live not in archive.lookups
    assert sorted(archive.lookups) == sorted([missing, gone, unresolvable, parked, refused])


def test_the_snapshot_asked_for_is_near_the_bookmark_date(pages: PageServer,
                                                          archive: ArchiveServer) -> None:
    url = pages.url("/status/404/dated")
    archive.add(url, article_html("old"), timestamp="20190102030405")
    line = json.dumps({"url": url, "created": "2019-01-02T03:04:05Z"})
    records, _ = run_library([line], fmt="jsonl", retries=0)
    assert archive.timestamps == ["20190102030405"]
    assert records[0]["enrichment"]["archived"]["timestamp"] == "2019-01-02T03:04:05Z"


def test_a_rerun_asks_the_archive_nothing(pages: PageServer, archive: ArchiveServer) -> None:
    found, none = pages.url("/status/404/found"), pages.url("/status/410/none")
    archive.add(found, article_html("kept"))
    first, _ = run_library([found, none], retries=0)
    assert len(archive.lookups) == 2
    archive.lookups.clear()
    archive.captures.clear()
    again, _ = run_library([found, none], retries=0)
    assert archive.lookups == [] and archive.captures == []
    assert by_url(again)[found]["enrichment"]["archived"] == \
        by_url(first)[found]["enrichment"]["archived"]
    # "None found" expires: with a TTL of 0 days the archive is asked again.
    run_library([found, none], retries=0, archive_miss_ttl=0)
    assert archive.lookups == [none]


def test_a_cache_from_before_the_archive_stage_fetches_nothing_again(
        pages: PageServer, archive: ArchiveServer) -> None:
    """Turning the archive on over a cache made without it asks it only about dead pages,
    and fetches no live page again (its extract results stay valid)."""
    live, dead = pages.url("/article/before-archive"), pages.url("/status/404/before")
    first, _ = run_library([live, dead], retries=0, archive=False)
    assert "archive" not in by_url(first)[live]["stages"]
    assert pages.hits["/article/before-archive"] == 1
    again, _ = run_library([live, dead], retries=0)
    assert by_url(again)[live]["stages"]["fetch"]["cached"]
    assert by_url(again)[live]["stages"]["extract"]["cached"]
    assert by_url(again)[live]["stages"]["archive"]["reason"] == "not_dead"
    assert archive.lookups == [dead]
    assert pages.hits["/article/before-archive"] == 1  # the live page is not fetched again


# ------------------------------------------------------------- politeness
def test_429_and_retry_after_are_honoured(pages: PageServer, archive: ArchiveServer) -> None:
    url = pages.url("/status/404/busy")
    archive.add(url, article_html("busy"))
    archive.script(url, "429", times=1, retry_after="1")
    records, _ = run_library([url], retries=0, archive_timeout=30)
    assert records[0]["enrichment"]["archived"]
    assert archive.lookups == [url, url]
    # The second lookup waited for the Retry-After (a lower bound: load only adds to it).
    assert archive.times[1] - archive.times[0] >= 1.0


def test_never_more_than_the_archive_concurrency_in_flight(pages: PageServer,
                                                           archive: ArchiveServer) -> None:
    archive.hold = 0.1
    urls = [pages.url(f"/status/404/n{i}") for i in range(8)]
    for url in urls:
        archive.add(url, article_html(url[-1]))
    records, _ = run_library(urls, retries=0, concurrency=8, archive_concurrency=2)
    assert all(r["enrichment"].get("archived") for r in records)
    assert 1 <= archive.max_in_flight <= 2


def test_429_for_too_long_is_a_reason_and_the_run_goes_on(pages: PageServer,
                                                           archive: ArchiveServer) -> None:
    busy, fine = pages.url("/status/404/always-busy"), pages.url("/status/404/fine")
    archive.script(busy, "429", retry_after="0")
    archive.add(fine, article_html("fine"))
    records, _ = run_library([busy, fine], retries=1)
    got = by_url(records)
    assert got[busy]["stages"]["archive"]["reason"] == "archive_unavailable"
    assert {"stage": "archive", "reason": "archive_unavailable"}.items() <= \
        got[busy]["errors"][1].items()
    assert got[fine]["enrichment"]["archived"]


def test_a_malformed_answer_is_archive_error(pages: PageServer, archive: ArchiveServer) -> None:
    url = pages.url("/status/404/malformed")
    archive.script(url, "malformed")
    records, _ = run_library([url], retries=0)
    assert records[0]["stages"]["archive"]["reason"] == "archive_error"


def test_an_archive_that_is_down_costs_a_reason(pages: PageServer, archive: ArchiveServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKMARK_ENRICH_ARCHIVE_URL", f"http://127.0.0.1:{closed_port()}")
    live, dead = pages.url("/article/still-here"), pages.url("/status/404/archive-down")
    records, _ = run_library([live, dead], retries=0)
    got = by_url(records)
    assert got[dead]["stages"]["archive"]["reason"] == "archive_unavailable"
    assert got[live]["status"] == "ok"


def test_the_archive_deadline_is_a_reason(pages: PageServer, archive: ArchiveServer) -> None:
    archive.hold = 1.0
    url = pages.url("/status/404/slow-archive")
    archive.add(url, article_html("slow"))
    records, _ = run_library([url], retries=0, archive_timeout=0.2)
    assert records[0]["stages"]["archive"]["reason"] == "archive_unavailable"
    assert "archive_timeout" in records[0]["errors"][1]["message"]


# ------------------------------------------------------------------- CLI
def test_no_archive_turns_the_stage_off(pages: PageServer, archive: ArchiveServer) -> None:
    url = pages.url("/status/404/cli")
    archive.add(url, article_html("cli"))
    off = cli("run", "--no-archive", "--retries", "0", input=url + "\n")
    assert "archive" not in jsonl(off.stdout)[0]["stages"]
    on = cli("run", "--retries", "0", "--archive-url", archive.base, input=url + "\n")
    assert jsonl(on.stdout)[0]["enrichment"]["archived"]["archive"] == archive.base


def test_doctor_checks_the_archive(archive: ArchiveServer, monkeypatch: pytest.MonkeyPatch,
                                   ) -> None:
    report = asyncio.run(run_doctor(load_settings(), only=["archive"]))
    assert [(c.name, c.status) for c in report.checks] == [("archive", "ok")]
    monkeypatch.setenv("BOOKMARK_ENRICH_ARCHIVE_URL", f"http://127.0.0.1:{closed_port()}")
    report = asyncio.run(run_doctor(load_settings(), only=["archive"]))
    assert report.checks[0].status == "warn" and report.ok  # optional: runs go on without
    off = asyncio.run(run_doctor(load_settings(archive=False), only=["archive"]))
    assert off.checks[0].status == "skip"


# ------------------------------------------------------------ the pieces
@pytest.mark.parametrize("name", ["sedo.html", "parkingcrew.html", "for-sale.html"])
def test_parking_pages_are_recognised(name: str) -> None:
    assert parking_marker((PARKED / name).read_bytes()) is not None


def test_an_article_quoting_a_parking_phrase_is_not_parked() -> None:
    assert parking_marker((PARKED / "not-parked.html").read_bytes()) is None
    assert parking_marker(article_html(1).encode()) is None


def test_availability_answers() -> None:
    found = parse_availability(json.dumps({"archived_snapshots": {"closest": {
        "available": True, "status": "200", "timestamp": "20130919044612",
        "url": "http://web.archive.org/web/20130919044612/http://example.com/"}}}).encode())
    assert found == Snapshot("http://web.archive.org/web/20130919044612/http://example.com/",
                             "20130919044612")
    assert found.raw_url == "http://web.archive.org/web/20130919044612id_/http://example.com/"
    assert found.captured_at == "2013-09-19T04:46:12Z"
    assert parse_availability(b'{"archived_snapshots":{}}') is None
    error_page = {"archived_snapshots": {"closest": {"available": True, "status": "404",
                                                     "timestamp": "2013", "url": "http://a/"}}}
    assert parse_availability(json.dumps(error_page).encode()) is None


def test_bookmark_dates_become_wayback_timestamps() -> None:
    assert wayback_timestamp("2019-01-02T03:04:05Z") == "20190102030405"
    assert wayback_timestamp("2019-01-02") == "20190102000000"
    assert wayback_timestamp(1546398245) == "20190102030405"
    assert wayback_timestamp("1546398245000") == "20190102030405"
    assert wayback_timestamp("yesterday") is None
    assert wayback_timestamp(None) is None


# ------------------------------------------------------------------- dead
def test_dead_lists_exactly_the_dead_bookmarks(pages: PageServer, archive: ArchiveServer,
                                               tmp_path: Path) -> None:
    live = pages.url("/article/listed-alive")
    rescued = pages.url("/status/410/listed")
    lost = "http://no-such-host.example.test/"
    flaky = pages.url("/status/503/listed")  # not dead: it may come back
    archive.add(rescued, article_html("listed"))
    source = tmp_path / "urls.txt"
    source.write_text("\n".join([live, rescued, lost, flaky]) + "\n")
    assert invoke("run", str(source), "--quiet", "--retries", "0").exit_code in (0, 1)
    rows = [json.loads(line) for line in invoke("dead", "--json").stdout.splitlines()]
    assert {r["url"]: (r["reason"], r["rescued"]) for r in rows} == {
        rescued: ("gone", True), lost: ("dns_error", False)}
    found = next(r for r in rows if r["rescued"])
    assert found["snapshot_url"] == f"{archive.base}/web/20150321120000/{rescued}"
    assert found["first_seen_dead"] <= found["last_seen_dead"]
    table = list(csv.DictReader(io.StringIO(invoke("dead", "--format", "csv").stdout)))
    assert {r["url"] for r in table} == {rescued, lost}
    assert "no-such-host" in invoke("dead").stdout
    status = json.loads(invoke("status", "--json").stdout)
    assert status["dead"] == {"dead": 2, "rescued": 1, "not_rescued": 1}
    assert "dead links: 2 (1 rescued" in invoke("status").stdout


def test_a_parking_phrase_parted_by_markup_is_found() -> None:
    page = (b"<html><head><script>var domain = 'x';</script></head><body><h1>EXAMPLE.COM</h1>"
            b"<p>This <b>domain</b> <span class='offer'>is for</span> sale.</p></body></html>")
    assert parking_marker(page) == "this domain is for sale"
