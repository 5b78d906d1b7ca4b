"""Media stage: Cobalt statuses and errors, the size cap, truncation, dedupe, storage
(SeaweedFS S3 and the local directory), discovery and preflight exits."""

from __future__ import annotations

import asyncio
import hashlib
import io
import socket
from pathlib import Path
from typing import Any

import pytest

from bookmark_enrich import enrich, load_settings, open_source
from bookmark_enrich.errors import ServiceUnavailable
from bookmark_enrich.events import Notice, RunStats
from bookmark_enrich.services import ytdlp
from bookmark_enrich.services.cobalt import CobaltClient, CobaltUnavailable, error_reason
from bookmark_enrich.services.mediabackend import describe_backend, media_checks
from bookmark_enrich.services.storage import s3_checks
from bookmark_enrich.stages import build_stages
from bookmark_enrich.stages.media import media_link, sanitize_filename
from tests.fixtures_s3 import S3Bucket
from tests.helpers import invoke_cli, jsonl
from tests.servers.cobalt import ACCEPTED_KEYS, CobaltServer
from tests.servers.pages import PageServer

YT = "https://www.youtube.com/watch?v="


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def run_media(urls: list[str], *, keep_going: bool = False,
              **settings: Any) -> tuple[list[dict[str, Any]], RunStats, list[str]]:
    """Run only the media stage over ``urls``; returns (records, stats, notice lines)."""
    settings.setdefault("enable_ai_summarization", False)
    settings.setdefault("retries", 1)
    s = load_settings(**settings)
    src = open_source("-", stdin=io.BytesIO(("\n".join(urls) + "\n").encode()))
    records: list[dict[str, Any]] = []
    notices: list[str] = []

    def on_event(event: Any) -> None:
        if isinstance(event, Notice):
            notices.append(event.message)

    stats = asyncio.run(enrich(src, s, sink=records.append, keep_going=keep_going,
                               stages=build_stages(s, only={"media"}),
                               subscribers=[on_event]))
    return records, stats, notices


def media_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    return record["enrichment"]["media"] or []


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def no_ytdlp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ytdlp, "available", lambda: False)


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"  # set by the autouse isolated_env fixture


# ------------------------------------------------------------------ units
def test_which_links_are_media() -> None:
    assert media_link(YT + "abc") == "service"
    assert media_link("https://youtu.be/abc") == "service"
    assert media_link("https://www.youtube.com/shorts/abc") == "service"
    assert media_link("https://m.youtube.com/watch?v=abc") == "service"
    assert media_link("https://www.youtube.com/@channel") is None
    assert media_link("https://vm.tiktok.com/ZM123/") == "service"
    assert media_link("https://x.com/user/status/1") == "service"
    assert media_link("https://clips.twitch.tv/Clip") == "service"
    assert media_link("https://www.twitch.tv/someone") is None
    assert media_link("https://example.org/a/clip.MP4?x=1") == "direct"
    assert media_link("https://example.org/a/song.mp3") == "direct"
    assert media_link("https://example.org/stream", "audio/mpeg") == "direct"
    assert media_link("https://example.org/article") is None
    assert media_link("https://videos.example.org/v/1", None, ["example.org"]) == "service"
    assert media_link("file:///tmp/a.mp4") is None


def test_filenames_are_sanitized() -> None:
    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("a\\b\\c.mp4") == "c.mp4"
    assert sanitize_filename("bad\x00\x1fname\x7f.mp4") == "badname.mp4"
    assert sanitize_filename("...hidden") == "hidden"
    assert sanitize_filename("") == "media"
    long = sanitize_filename("x" * 500 + ".webm")
    assert len(long) <= 150 and long.endswith(".webm")


def test_error_codes_map_to_reasons() -> None:
    assert error_reason("error.api.content.video.private") == ("private", False)
    assert error_reason("error.api.link.unsupported") == ("unsupported", False)
    assert error_reason("error.api.content.video.region") == ("geo_blocked", False)
    assert error_reason("error.api.rate_exceeded") == ("rate_limited", True)
    assert error_reason("error.api.fetch.fail") == ("fetch_failed", True)
    assert error_reason("error.api.content.post.unavailable") == ("unavailable", False)
    assert error_reason("error.api.something.new") == ("cobalt_error", False)


# --------------------------------------------------------- Cobalt statuses
def test_tunnel_goes_to_the_local_directory_by_default(cobalt: CobaltServer,
                                                       media_dir: Path) -> None:
    records, stats, notices = run_media([YT + "tun1"])
    assert stats.failed == 0
    (item,) = media_of(records[0])
    path, _ = cobalt.file_for("tun1")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert item == {"kind": "video", "uri": str(media_dir / "media" / digest[:2] /
                                                f"{digest}.mp4"),
                    "bytes": path.stat().st_size, "sha256": digest,
                    "content_type": "video/mp4", "filename": "tun1.mp4",
                    "source_url": YT + "tun1"}
    assert Path(item["uri"]).read_bytes() == path.read_bytes()
    assert any("Cobalt 11.0.2" in n for n in notices)
    # What Cobalt requires of a request.
    sent = cobalt.headers[-1]
    assert sent["accept"] == "application/json"
    assert sent["content-type"] == "application/json"
    assert "authorization" not in sent
    body = cobalt.requests[-1]
    assert set(body) <= ACCEPTED_KEYS
    assert body["downloadMode"] == "auto" and body["videoQuality"] == "1080"


def test_redirect_to_s3_with_metadata(cobalt: CobaltServer, s3_bucket: S3Bucket) -> None:
    records, stats, _ = run_media([YT + "redirect-red1"], audio_only=True)
    assert stats.failed == 0, records
    (item,) = media_of(records[0])
    path, _ = cobalt.file_for("red1")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    key = f"media/{digest[:2]}/{digest}.mp4"
    assert item["uri"] == f"s3://{s3_bucket.name}/{key}"
    assert s3_bucket.keys() == [key]
    head = s3_bucket.server.client().head_object(Bucket=s3_bucket.name, Key=key)
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"]["source-url"].startswith("https://www.youtube.com/watch")
    assert cobalt.requests[-1]["downloadMode"] == "audio"


def test_picker_keeps_up_to_max_items(cobalt: CobaltServer) -> None:
    records, _, _ = run_media(["https://www.instagram.com/p/picker-6"], max_picker_items=4)
    items = media_of(records[0])
    assert len(items) == 4
    assert {i["kind"] for i in items} == {"image"}
    assert len({i["sha256"] for i in items}) == 4


def test_local_processing_without_ytdlp_fails_with_reason(cobalt: CobaltServer,
                                                          no_ytdlp: None) -> None:
    records, _, _ = run_media([YT + "local-lp1"])
    assert records[0]["stages"]["media"]["status"] == "failed"
    assert records[0]["errors"][0]["reason"] == "needs_local_processing"


@pytest.mark.parametrize(("code", "reason"), [
    ("error.api.content.video.private", "private"),
    ("error.api.link.unsupported", "unsupported"),
    ("error.api.content.video.region", "geo_blocked"),
    ("error.api.content.video.age", "age_restricted"),
    ("error.api.rate_exceeded", "rate_limited"),
    ("error.api.fetch.fail", "fetch_failed"),
    ("error.api.content.too_long", "too_large"),
])
def test_error_shapes_become_reasons(cobalt: CobaltServer, no_ytdlp: None, code: str,
                                     reason: str) -> None:
    records, stats, _ = run_media([YT + "err-" + code], retries=1)
    assert records[0]["errors"] == [{"stage": "media", "reason": reason,
                                     "message": f"Cobalt: {code}"}]
    transient = reason in ("rate_limited", "fetch_failed")
    assert records[0]["stages"]["media"]["attempts"] == (2 if transient else 1)
    assert stats.failed == 1  # one bookmark failed; the run went on


def test_429_honours_retry_after_then_succeeds(cobalt: CobaltServer) -> None:
    records, stats, _ = run_media([YT + "busy-2-bz1"], retries=3)
    assert stats.failed == 0
    assert records[0]["stages"]["media"]["attempts"] == 3
    assert len(media_of(records[0])) == 1


def test_scripted_unknown_status_and_bad_json_fail_cleanly(cobalt: CobaltServer) -> None:
    cobalt.script("odd1", {"status": "teleport"})
    cobalt.script("odd2", {"nothing": True}, status=400)
    records, _, _ = run_media([YT + "odd1", YT + "odd2"])
    reasons = sorted(r["errors"][0]["reason"] for r in records)
    assert reasons == ["cobalt_protocol", "cobalt_protocol"]


# --------------------------------------------------- cap and truncation
def test_over_the_cap_without_content_length_is_too_large(cobalt: CobaltServer,
                                                          media_dir: Path) -> None:
    records, _, _ = run_media([YT + "huge-6"], max_media_size_mb=2)
    assert records[0]["errors"][0]["reason"] == "too_large"
    assert stored_files(media_dir) == []


def test_over_the_cap_to_s3_stores_nothing(cobalt: CobaltServer, s3_bucket: S3Bucket) -> None:
    records, _, _ = run_media([YT + "huge-4"], max_media_size_mb=1)
    assert records[0]["errors"][0]["reason"] == "too_large"
    assert s3_bucket.keys() == []


def test_a_tunnel_that_stops_early_is_truncated(cobalt: CobaltServer, media_dir: Path) -> None:
    cobalt.add_file("cutme", 600_000)
    records, _, _ = run_media([YT + "cut-cutme"])
    assert records[0]["errors"][0]["reason"] == "truncated"
    assert stored_files(media_dir) == []


def test_direct_links_by_extension_and_content_type(cobalt: CobaltServer, pages: PageServer,
                                                    media_dir: Path) -> None:
    cobalt.add_file("song.mp3", 30_000, "audio/mpeg")
    direct = cobalt.url + "files/song.mp3"
    typed = pages.add("stream-no-ext", b"\x00" * 5000, content_type="video/webm")
    s = load_settings(enable_ai_summarization=False)
    src = open_source("-", stdin=io.BytesIO(f"{direct}\n{typed}\n".encode()))
    records: list[dict[str, Any]] = []
    stages = [st for st in build_stages(s) if st.name in ("fetch", "media")]
    asyncio.run(enrich(src, s, sink=records.append, stages=stages))
    by = {r["url"]: r for r in records}
    assert media_of(by[direct])[0]["kind"] == "audio"
    assert media_of(by[direct])[0]["filename"] == "song.mp3"
    assert media_of(by[typed])[0]["content_type"] == "video/webm"
    assert cobalt.requests == []  # direct links never go through Cobalt


# ------------------------------------------------------------------ dedupe
def test_two_bookmarks_of_one_video_store_one_object(cobalt: CobaltServer,
                                                     s3_bucket: S3Bucket) -> None:
    records, stats, _ = run_media([YT + "same1", "https://youtu.be/same1",
                                   "https://www.youtube.com/shorts/same1"])
    assert stats.failed == 0
    uris = {media_of(r)[0]["uri"] for r in records}
    assert len(uris) == 1
    assert len(s3_bucket.keys()) == 1


# ----------------------------------------------------------------- storage
def test_wrong_s3_credentials_are_reported(cobalt: CobaltServer, s3_bucket: S3Bucket,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_SECRET_KEY", "wrong-secret")
    with pytest.raises(ServiceUnavailable, match="refused the credentials"):
        run_media([YT + "cred1"])
    records, _, notices = run_media([YT + "cred1"], keep_going=True)
    assert records[0]["errors"][0]["reason"] == "storage_error"
    assert any("--keep-going" in n for n in notices)
    assert "wrong-secret" not in str(records) + str(notices)


def test_stopped_s3_exits_3_with_one_line(cobalt: CobaltServer, pages: PageServer,
                                          stopped_s3_endpoint: str) -> None:
    env = {"ENABLE_MEDIA_DOWNLOAD": "true", "COBALT_API_URL": cobalt.url,
           "S3_ENDPOINT": stopped_s3_endpoint, "S3_ACCESS_KEY": "k", "S3_SECRET_KEY": "s"}
    proc = invoke_cli("run", "-", "--quiet", input=pages.url("/article/1") + "\n", env=env)
    assert proc.returncode == 3, proc.stderr.decode()
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0] and "S3_ENDPOINT" in lines[0]
    assert proc.stdout == b""


def test_stopped_s3_with_keep_going_records_failures(cobalt: CobaltServer,
                                                     stopped_s3_endpoint: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ENDPOINT", stopped_s3_endpoint)
    monkeypatch.setenv("S3_ACCESS_KEY", "k")
    monkeypatch.setenv("S3_SECRET_KEY", "s")
    records, _, _ = run_media([YT + "down1", YT + "down2"], keep_going=True)
    assert [r["errors"][0]["reason"] for r in records] == ["storage_error"] * 2


def test_missing_bucket_is_a_preflight_error_unless_created(
        cobalt: CobaltServer, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    name = s3_bucket.name + "-new"
    monkeypatch.setenv("S3_BUCKET", name)
    with pytest.raises(ServiceUnavailable, match="--create-bucket"):
        run_media([YT + "nb1"])
    try:
        records, stats, _ = run_media([YT + "nb1"], create_bucket=True)
        assert stats.failed == 0
        assert media_of(records[0])[0]["uri"].startswith(f"s3://{name}/media/")
    finally:
        s3_bucket.server.empty_bucket(name, delete=True)


# --------------------------------------------------------------- discovery
def test_nothing_configured_no_ytdlp_warns_once_and_skips(no_ytdlp: None) -> None:
    urls = [YT + f"none{i}" for i in range(5)]
    records, stats, notices = run_media(urls, cobalt_probe_url=closed_url())
    assert stats.failed == 0
    warnings = [n for n in notices if "media" in n]
    assert len(warnings) == 1 and warnings[0].startswith("warning: media downloads off")
    assert {r["stages"]["media"]["reason"] for r in records} == {"no_media_backend"}


def test_nothing_configured_uses_ytdlp_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ytdlp, "available", lambda: True)
    _, _, notices = run_media(["https://example.org/page"], cobalt_probe_url=closed_url())
    assert any(n.startswith("media: yt-dlp (no Cobalt at") for n in notices)


def test_cobalt_at_the_default_address_is_found(cobalt_session: CobaltServer) -> None:
    records, _, notices = run_media([YT + "found1"], cobalt_probe_url=cobalt_session.url)
    assert any("found at 127.0.0.1" in n for n in notices)
    assert len(media_of(records[0])) == 1


def test_explicit_cobalt_down_exits_3(pages: PageServer) -> None:
    env = {"ENABLE_MEDIA_DOWNLOAD": "true", "COBALT_API_URL": closed_url()}
    proc = invoke_cli("run", "-", "--quiet", input=pages.url("/article/1") + "\n", env=env)
    assert proc.returncode == 3, proc.stderr.decode()
    (line,) = proc.stderr.decode().strip().splitlines()
    assert "no Cobalt answers" in line and "COBALT_API_URL" in line
    proc = invoke_cli("run", "-", "--quiet", "--keep-going", input=pages.url("/article/1") + "\n",
               env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert jsonl(proc.stdout)[0]["stages"]["media"]["reason"] == "not_media"


def test_explicit_cobalt_down_with_keep_going_fails_media_links(no_ytdlp: None) -> None:
    records, _, _ = run_media([YT + "kg1"], keep_going=True, cobalt_api_url=closed_url())
    assert records[0]["errors"][0]["reason"] == "cobalt_unreachable"


def test_no_media_flag_turns_the_stage_off(pages: PageServer) -> None:
    proc = invoke_cli("run", "-", "--quiet", "--no-media", input=pages.url("/article/1") + "\n",
               env={"ENABLE_MEDIA_DOWNLOAD": "true", "COBALT_API_URL": closed_url()})
    assert proc.returncode == 0, proc.stderr.decode()
    assert "media" not in jsonl(proc.stdout)[0]["stages"]


# -------------------------------------------------------------- health
def test_v7_instance_is_recognised_as_unsupported() -> None:
    old = CobaltServer(v7=True).start()
    try:
        with pytest.raises(CobaltUnavailable, match="v7"):
            run_media([YT + "v7"], cobalt_api_url=old.url)
    finally:
        old.stop()


def test_api_key_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    keyed = CobaltServer(api_key="sekrit").start()
    try:
        records, stats, notices = run_media([YT + "key1"], cobalt_api_url=keyed.url,
                                            cobalt_api_key="sekrit")
        assert stats.failed == 0
        assert keyed.headers[-1]["authorization"] == "Api-Key sekrit"
        assert "sekrit" not in str(records) + str(notices)
        records, _, _ = run_media([YT + "key2"], cobalt_api_url=keyed.url,
                                  cobalt_api_key="wrong")
        assert records[0]["errors"][0]["reason"] == "cobalt_auth"
    finally:
        keyed.stop()


def test_doctor_checks_describe_cobalt_and_s3(cobalt: CobaltServer, s3_bucket: S3Bucket) -> None:
    s = load_settings()
    (check,) = asyncio.run(media_checks(s, {}))
    assert check.status == "ok" and check.data is not None
    assert check.data["version"] == "11.0.2" and "youtube" in check.data["services"]
    (s3,) = asyncio.run(s3_checks(s, {}))
    assert s3.status == "ok" and "probe object written, read and deleted" in s3.detail
    assert s3_bucket.keys() == []


def test_doctor_describes_the_fallbacks(no_ytdlp: None) -> None:
    check = asyncio.run(describe_backend(load_settings(cobalt_probe_url=closed_url())))
    assert (check.status, check.required) == ("warn", False)
    down = asyncio.run(describe_backend(load_settings(cobalt_api_url=closed_url())))
    assert (down.status, down.data and down.data["why"]) == ("fail", "configured_down")
    (local,) = asyncio.run(s3_checks(load_settings(), {}))
    assert local.status == "ok" and "no S3 configured" in local.detail


def test_client_body_has_only_accepted_keys() -> None:
    client = CobaltClient(load_settings(video_quality="720"), "http://127.0.0.1:1/")
    try:
        assert set(client.body("https://youtu.be/x")) == {
            "url", "videoQuality", "audioFormat", "downloadMode", "filenameStyle"}
        assert client.body("https://youtu.be/x")["videoQuality"] == "720"
    finally:
        asyncio.run(client.aclose())


# ------------------------------------------------------------------ yt-dlp
def test_local_processing_falls_back_to_ytdlp(cobalt: CobaltServer, media_dir: Path) -> None:
    # A host of our own marked as media: Cobalt says local-processing, yt-dlp fetches it.
    cobalt.add_file("local-lp2.mp4", 120_000)
    link = cobalt.url + "files/local-lp2.mp4"
    records, stats, _ = run_media([link], media_hosts="127.0.0.1")
    assert stats.failed == 0, records
    (item,) = media_of(records[0])
    assert item["bytes"] == 120_000 and item["filename"] == "local-lp2.mp4"
    assert Path(item["uri"]).is_file()
    assert [p.name for p in stored_files(media_dir)] == [Path(item["uri"]).name]


def test_ytdlp_over_the_cap_stores_nothing(cobalt: CobaltServer, media_dir: Path) -> None:
    cobalt.add_file("big.mp4", 1_500_000)
    records, _, notices = run_media([cobalt.url + "files/big.mp4"], media_backend="ytdlp",
                                    media_hosts="127.0.0.1", max_media_size_mb=1)
    assert notices[0].startswith("media: yt-dlp (--media-backend ytdlp)")
    assert records[0]["errors"][0]["reason"] == "too_large"
    assert stored_files(media_dir) == []
