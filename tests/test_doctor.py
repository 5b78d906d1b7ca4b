"""`doctor`: every check at once, each with a timeout; a table or one JSON document."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookmark_enrich import doctor
from bookmark_enrich.cli import app
from bookmark_enrich.doctor import run_doctor
from bookmark_enrich.services.health import Check, CheckProvider
from bookmark_enrich.settings import Settings, load_settings
from tests.helpers import CORE_ONLY, cli, invoke_cli
from tests.servers.llm import LLMServer
from tests.servers.pages import PageServer

runner = CliRunner()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No summarizer discovery probes unless a test sets an LLM; core stages only."""
    monkeypatch.setenv("BOOKMARK_ENRICH_LLM_PROBE_URLS", "[]")
    for name, value in CORE_ONLY.items():
        monkeypatch.setenv(name, value)


class FakeChecks(dict[str, Any]):
    """Test providers added after the real ones; ``register`` is their decorator."""

    def __init__(self) -> None:
        super().__init__()
        self.extra: list[tuple[str, CheckProvider]] = []

    def register(self, name: str) -> Callable[[CheckProvider], CheckProvider]:
        def wrap(provider: CheckProvider) -> CheckProvider:
            self.extra.append((name, provider))
            return provider

        return wrap


@pytest.fixture
def fake_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeChecks]:
    """Doctor runs the real providers and these; the real list is restored afterwards."""
    fakes = FakeChecks()
    real = doctor.providers
    monkeypatch.setattr(doctor, "providers", lambda: [*real(), *fakes.extra])
    yield fakes


def doctor_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["doctor", "--json", *args])
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


# ------------------------------------------------------------------ framework
def test_providers_run_concurrently_each_with_its_timeout(fake_checks: FakeChecks) -> None:
    # "slow" and "sleepy" each wait until the other has started: run one after the other,
    # the first would wait out its timeout and fail.
    slow_started, sleepy_started = asyncio.Event(), asyncio.Event()

    @fake_checks.register("fake slow")
    async def slow(settings: Settings, options: dict[str, Any]) -> list[Check]:
        slow_started.set()
        await sleepy_started.wait()
        await asyncio.sleep(30)
        return []

    @fake_checks.register("fake sleepy ok")
    async def sleepy(settings: Settings, options: dict[str, Any]) -> list[Check]:
        sleepy_started.set()
        await slow_started.wait()
        await asyncio.sleep(0.3)
        fake_checks["options"] = options
        return [Check("fake sleepy ok", "ok", "fine")]

    @fake_checks.register("fake crash")
    async def crash(settings: Settings, options: dict[str, Any]) -> list[Check]:
        raise RuntimeError("boom")

    report = asyncio.run(run_doctor(load_settings(), timeout=3, deep=True,
                                    only=["fake slow", "fake sleepy ok", "fake crash"]))
    checks = {c.name: c for c in report.checks}
    assert checks["fake slow"].status == "fail"  # cut at its timeout, not after 30 s
    assert "no answer within 3 s" in checks["fake slow"].detail
    assert checks["fake crash"].detail == "check crashed: RuntimeError: boom"
    assert checks["fake sleepy ok"].status == "ok"
    assert checks["fake sleepy ok"].latency_ms is not None
    assert checks["fake sleepy ok"].latency_ms >= 250
    assert fake_checks["options"]["deep"] is True and fake_checks["options"]["timeout"] == 3
    assert not report.ok


def test_exit_code_follows_required_checks(fake_checks: FakeChecks) -> None:
    @fake_checks.register("fake optional")
    async def optional(settings: Settings, options: dict[str, Any]) -> list[Check]:
        return [Check("fake optional", "fail", "not needed", required=False),
                Check("fake warn", "warn", "hmm")]

    code, doc = doctor_json()
    assert code == 0 and doc["ok"] is True
    assert by_name(doc)["fake optional"]["status"] == "fail"

    @fake_checks.register("fake required")
    async def required(settings: Settings, options: dict[str, Any]) -> list[Check]:
        return [Check("fake required", "fail", "down [really]")]

    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "fake required" in result.stdout and "down [really]" in result.stdout
    assert "fail (optional)" in result.stdout
    code, doc = doctor_json()
    assert code == 1 and doc["ok"] is False


def test_disabled_stages_are_skipped_not_failed() -> None:
    code, doc = doctor_json()
    checks = by_name(doc)
    assert checks["stage fetch"]["status"] == "ok"
    assert checks["stage summarize"]["status"] == "skip"
    assert checks["llm"]["status"] == "skip" and checks["summarizer"]["status"] == "skip"
    assert code == 0


# ---------------------------------------------------------------------- cache
def test_cache_check(cache_path: Path, pages: PageServer) -> None:
    code, doc = doctor_json()
    assert "no cache yet" in by_name(doc)["cache"]["detail"] and code == 0
    proc = invoke_cli("run", "-", "-q", input=pages.url("/article/doc1") + "\n")
    assert proc.returncode == 0
    code, doc = doctor_json()
    cache = by_name(doc)["cache"]
    assert cache["status"] == "ok" and "integrity ok" in cache["detail"]
    assert cache["data"]["rows"] == {"bookmarks": 1, "results": 2, "runs": 1}
    assert cache["data"]["bytes"] > 0
    cache_path.unlink()
    for suffix in ("-wal", "-shm"):
        cache_path.with_name(cache_path.name + suffix).unlink(missing_ok=True)
    cache_path.write_text("not sqlite at all\n" * 10)
    code, doc = doctor_json()
    assert code == 1 and by_name(doc)["cache"]["status"] == "fail"
    assert "not a usable cache" in by_name(doc)["cache"]["detail"]


# --------------------------------------------------------------------- source
def test_source_file_checks(isolated_env: Path) -> None:
    (isolated_env / "b.html").write_text(
        "<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><DT><A HREF='https://a.example/'>A</A></DL>\n")
    code, doc = doctor_json("b.html")
    source = by_name(doc)["source"]
    assert code == 0 and source["status"] == "ok"
    assert source["data"]["format"] == "netscape"
    code, doc = doctor_json("missing.json")
    assert code == 1
    assert by_name(doc)["source"]["detail"] == "missing.json: no such file"
    (isolated_env / "odd.dat").write_text("just some words\nand more\n")
    code, doc = doctor_json("odd.dat", "--input-format", "nope")
    assert code == 1 and "unknown input format 'nope'" in by_name(doc)["source"]["detail"]


def test_source_database_checks(isolated_env: Path) -> None:
    db = sqlite3.connect(isolated_env / "links.db")
    db.execute("CREATE TABLE links (id INTEGER PRIMARY KEY, href TEXT, note TEXT)")
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.execute("INSERT INTO links (href) VALUES ('https://a.example/')")
    db.commit()
    db.close()
    code, doc = doctor_json("sqlite:///links.db", "--table", "links")
    source = by_name(doc)["source"]
    assert code == 0, source
    assert "URL column href" in source["detail"] and source["data"]["records"] == 1
    code, doc = doctor_json("sqlite:///links.db", "--table", "nothing")
    assert code == 1 and "no table 'nothing'" in by_name(doc)["source"]["detail"]
    code, doc = doctor_json("sqlite:///links.db", "--table", "notes")
    assert code == 1 and "no URL column found" in by_name(doc)["source"]["detail"]
    code, doc = doctor_json("sqlite:///links.db", "--table", "links", "--url-column", "nope")
    assert code == 1 and "no URL column 'nope'" in by_name(doc)["source"]["detail"]


# ------------------------------------------------------------------- settings
def test_risky_settings_warn_but_do_not_fail(monkeypatch: pytest.MonkeyPatch,
                                             fake_checks: FakeChecks) -> None:
    monkeypatch.setenv("S3_ENDPOINT", "http://storage.example:8333")
    monkeypatch.setenv("S3_ACCESS_KEY", "minioadmin")
    monkeypatch.setenv("S3_SECRET_KEY", "minioadmin")
    monkeypatch.setenv("COBALT_API_URL", "http://cobalt.example:9000")
    monkeypatch.setenv("COBALT_API_KEY", "sekrit-key")
    monkeypatch.setenv("LM_STUDIO_API_URL", "http://127.0.0.1:1/v1")  # loopback: fine
    report = asyncio.run(run_doctor(load_settings(), only=["settings"]))
    details = {c.detail for c in report.checks}
    assert all(c.status == "warn" and not c.required for c in report.checks)
    assert "default credentials (minioadmin); create a key for bookmark-enrich" in details
    assert "COBALT_API_KEY is sent over plain HTTP to cobalt.example; use https://" in details
    assert any("plain HTTP to storage.example" in d for d in details)
    assert not any("127.0.0.1" in d for d in details)
    assert "sekrit-key" not in json.dumps([c.as_dict() for c in report.checks])
    assert report.ok


# ------------------------------------------------------------ real services
def test_llm_up_and_down(llm: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_AI_SUMMARIZATION", "true")
    result = runner.invoke(app, ["doctor", "--deep"])
    assert result.exit_code == 0, result.stdout
    assert "test-model-7b" in result.stdout and "structured answer" in result.stdout
    code, doc = doctor_json("--deep")
    checks = by_name(doc)
    assert code == 0
    assert checks["llm model"]["data"]["model"] == "test-model-7b"
    assert checks["llm answer"]["latency_ms"] is not None
    assert checks["summarizer"]["data"]["summarizer"] == "llm"
    monkeypatch.setenv("LM_STUDIO_API_URL", f"http://127.0.0.1:{closed_port()}/v1")
    code, doc = doctor_json()
    assert code == 1
    failed = [c for c in doc["checks"] if c["status"] == "fail"]
    assert failed and all(c["name"].startswith(("llm", "summarizer")) for c in failed)
    result = runner.invoke(app, ["doctor", "--no-summary"])
    assert result.exit_code == 0  # the same settings without summaries need no LLM


def test_doctor_through_a_subprocess_keeps_streams_apart(isolated_env: Path) -> None:
    proc = cli("doctor", "--json", "missing.txt")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and by_name(doc)["source"]["status"] == "fail"
    assert b"Traceback" not in proc.stderr


def media_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_MEDIA_DOWNLOAD", "true")


def test_cobalt_up_old_and_down(cobalt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.servers.cobalt import CobaltServer

    media_on(monkeypatch)
    code, doc = doctor_json()
    check = by_name(doc)["cobalt"]
    assert check["status"] == "ok" and check["data"]["backend"] == "cobalt", check
    assert check["data"]["version"] and check["data"]["services"]
    result = runner.invoke(app, ["doctor"])
    assert "cobalt" in result.stdout and "COBALT_API_URL" in result.stdout
    old = CobaltServer(v7=True).start()
    try:
        monkeypatch.setenv("COBALT_API_URL", old.url)
        code, doc = doctor_json()
        check = by_name(doc)["cobalt"]
        assert code == 1 and check["status"] == "fail"
        assert "v7" in check["detail"] or "unsupported" in check["detail"], check
    finally:
        old.stop()
    monkeypatch.setenv("COBALT_API_URL", f"http://127.0.0.1:{closed_port()}")
    code, doc = doctor_json()
    assert code == 1 and by_name(doc)["cobalt"]["status"] == "fail"
    assert by_name(doc)["cobalt"]["required"] is True


@pytest.mark.s3
def test_s3_up_wrong_credentials_and_down(s3_bucket: Any, stopped_s3_endpoint: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    media_on(monkeypatch)
    monkeypatch.setenv("BOOKMARK_ENRICH_MEDIA_BACKEND", "ytdlp")  # no Cobalt to look for
    code, doc = doctor_json("--timeout", "10")
    check = by_name(doc)["s3"]
    assert check["status"] == "ok", check
    assert "bucket exists" in check["detail"]
    assert s3_bucket.keys() == []  # the probe object was deleted again
    monkeypatch.setenv("S3_SECRET_KEY", "not-the-secret")
    code, doc = doctor_json("--timeout", "10")
    check = by_name(doc)["s3"]
    assert code == 1 and check["status"] == "fail", check
    assert "not-the-secret" not in json.dumps(doc)
    monkeypatch.setenv("S3_ENDPOINT", stopped_s3_endpoint)
    code, doc = doctor_json("--timeout", "3")
    assert code == 1 and by_name(doc)["s3"]["status"] == "fail"
    table = runner.invoke(app, ["doctor", "--timeout", "3"]).stdout
    assert "s3" in table and "fail" in table
