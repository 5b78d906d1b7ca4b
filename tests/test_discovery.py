"""Which summarizer a run gets: local LLM discovery, the built-in fallback, explicit servers."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bookmark_enrich import load_settings
from bookmark_enrich.doctor import providers
from bookmark_enrich.errors import ServiceUnavailable
from bookmark_enrich.services.discovery import DEFAULT_PROBES, discover_llm
from bookmark_enrich.settings import Settings
from bookmark_enrich.summarizers.base import Summarizer
from bookmark_enrich.summarizers.select import choose_summarizer, describe_choice
from tests.helpers import cli, jsonl
from tests.servers.llm import MODEL, LLMServer
from tests.servers.pages import PageServer

ON = {"ENABLE_AI_SUMMARIZATION": "true"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def servers() -> Iterator[list[LLMServer]]:
    """Fake local LLM servers started by a test; stopped afterwards."""
    started: list[LLMServer] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[LLMServer], **kw: Any) -> LLMServer:
    server = LLMServer(**kw).start()
    servers.append(server)
    return server


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def choose(settings: Settings) -> tuple[Summarizer, list[str], float]:
    notices: list[str] = []

    async def go() -> tuple[Summarizer, float]:
        start_at = time.perf_counter()
        summarizer = await choose_summarizer(settings, notices.append)
        elapsed = time.perf_counter() - start_at
        await summarizer.aclose()
        return summarizer, elapsed

    summarizer, elapsed = asyncio.run(go())
    return summarizer, notices, elapsed


def describe(settings: Settings) -> dict[str, Any]:
    checks = asyncio.run(describe_choice(settings, {}))
    assert len(checks) == 1 and checks[0].name == "summarizer"
    check = checks[0]
    assert check.data is not None
    return {"status": check.status, "detail": check.detail, "required": check.required,
            **check.data}


# ------------------------------------------------------------------ discovery
def test_nothing_listening_falls_back_to_builtin_quickly() -> None:
    ports = [closed_port() for _ in range(4)]
    settings = load_settings(llm_probe_urls=[url(p) for p in ports])
    summarizer, notices, elapsed = choose(settings)
    assert summarizer.name == "builtin"
    assert elapsed < 1.0  # refused connections answer at once
    assert len(notices) == 1
    assert notices[0].startswith("summarizer: built-in")
    assert all(f"127.0.0.1:{p}" in notices[0] for p in ports)
    info = describe(settings)
    assert (info["status"], info["summarizer"], info["why"]) == ("ok", "builtin", "fallback")


def test_first_server_with_a_loaded_model_is_used(servers: list[LLMServer]) -> None:
    empty = start(servers, modes={"no_model"})           # LM Studio, nothing loaded
    ollama = start(servers, flavor="ollama", models=["llama3.2:3b"])
    vllm = start(servers, flavor="openai", models=["other"])
    settings = load_settings(llm_probe_urls=[url(closed_port()), empty.base_url,
                                             ollama.base_url, vllm.base_url])
    summarizer, notices, _ = choose(settings)
    assert summarizer.name == "llm"
    assert getattr(summarizer, "model", None) == "llama3.2:3b"
    assert notices == [f"summarizer: LLM llama3.2:3b found at 127.0.0.1:{ollama.port}",
                       "llm concurrency: 2 (auto: the server does not report its slots; "
                       "adapting to throughput)"]
    info = describe(settings)
    assert (info["status"], info["summarizer"], info["why"], info["model"]) == \
        ("ok", "llm", "discovered", "llama3.2:3b")


def test_a_hung_server_costs_at_most_the_one_second_budget(
        servers: list[LLMServer], silent_port: int) -> None:
    later = start(servers)
    settings = load_settings(llm_probe_urls=[url(silent_port), later.base_url])
    summarizer, notices, elapsed = choose(settings)
    # The hung address comes first, so the found one waits for its deadline, then wins.
    assert summarizer.name == "llm" and getattr(summarizer, "model", None) == MODEL
    assert 0.9 <= elapsed < 1.6
    settings = load_settings(llm_probe_urls=[url(silent_port)])
    summarizer, notices, elapsed = choose(settings)
    assert summarizer.name == "builtin" and elapsed < 1.6
    assert "no answer within 1 s" in notices[0]


def test_an_earlier_address_found_stops_the_wait(servers: list[LLMServer],
                                                 silent_port: int) -> None:
    first = start(servers)
    settings = load_settings(llm_probe_urls=[first.base_url, url(silent_port)])
    summarizer, _, elapsed = choose(settings)
    assert summarizer.name == "llm" and elapsed < 0.8


def test_discovery_off_and_builtin_forced(servers: list[LLMServer]) -> None:
    summarizer, notices, _ = choose(load_settings(llm_probe_urls=[]))
    assert summarizer.name == "builtin" and "BOOKMARK_ENRICH_LLM_PROBE_URLS=[]" in notices[0]
    running = start(servers)
    summarizer, notices, _ = choose(load_settings(summarizer="builtin",
                                                  lm_studio_api_url=running.base_url))
    assert summarizer.name == "builtin"
    assert notices == ["summarizer: built-in (--summarizer builtin)"]
    assert running.hits.total() == 0  # never asked
    info = describe(load_settings(summarizer="builtin"))
    assert (info["summarizer"], info["why"]) == ("builtin", "chosen")
    info = describe(load_settings(enable_ai_summarization=False))
    assert (info["status"], info["required"]) == ("skip", False)


@pytest.mark.parametrize("probe", DEFAULT_PROBES, ids=lambda p: p.label)
def test_the_real_default_ports(probe: Any, servers: list[LLMServer]) -> None:
    port = int(probe.base_url.rsplit(":", 1)[1].split("/")[0])
    try:
        server = start(servers, port=port)
    except OSError:
        pytest.skip(f"port {port} is taken on this machine")

    async def go() -> tuple[Any, str | None]:
        found = await discover_llm(load_settings())
        if found.chosen is None or found.chosen.client is None:
            return found, None
        await found.chosen.client.aclose()
        return found, found.chosen.client.model

    found, model = asyncio.run(go())
    assert [r.probe for r in found.results] == list(DEFAULT_PROBES)
    assert found.chosen is not None
    if found.chosen.probe != probe:
        pytest.skip(f"a real LLM server answers at {found.chosen.probe.base_url}")
    assert model == MODEL
    assert server.hits.total() > 0


# --------------------------------------------------------------------- explicit
def test_explicit_server_down_exits_3_never_builtin(pages: PageServer) -> None:
    down = url(closed_port())
    proc = cli("run", "-", "--quiet", input=pages.url("/article/en") + "\n",
               env={**ON, "LM_STUDIO_API_URL": down})
    assert proc.returncode == 3, proc.stderr.decode()
    assert proc.stdout == b""
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "--no-summary" in lines[0]
    with pytest.raises(ServiceUnavailable):
        choose(load_settings(lm_studio_api_url=down))
    info = describe(load_settings(lm_studio_api_url=down))
    assert (info["status"], info["required"], info["why"]) == ("fail", True, "configured_down")


def test_summarizer_llm_with_nothing_found_exits_3(pages: PageServer) -> None:
    probes = json.dumps([url(closed_port())])
    proc = cli("run", "-", "--quiet", "--summarizer", "llm",
               input=pages.url("/article/en") + "\n",
               env={**ON, "BOOKMARK_ENRICH_LLM_PROBE_URLS": probes})
    assert proc.returncode == 3, proc.stderr.decode()
    assert "no local LLM server found" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()
    info = describe(load_settings(summarizer="llm", llm_probe_urls=[url(closed_port())]))
    assert (info["status"], info["why"]) == ("fail", "not_found")


def test_explicit_server_is_described(servers: list[LLMServer]) -> None:
    running = start(servers)
    info = describe(load_settings(lm_studio_api_url=running.base_url))
    assert (info["status"], info["summarizer"], info["why"], info["model"]) == \
        ("ok", "llm", "configured", MODEL)
    assert "summarizer" in dict(providers())


# ------------------------------------------------------------------- whole runs
def test_run_announces_the_discovered_server_first(pages: PageServer,
                                                   servers: list[LLMServer]) -> None:
    found = start(servers, flavor="ollama")
    probes = json.dumps([url(closed_port()), found.base_url])
    proc = cli("run", "-", input=pages.url("/article/en") + "\n",
               env={**ON, "BOOKMARK_ENRICH_LLM_PROBE_URLS": probes})
    assert proc.returncode == 0, proc.stderr.decode()
    first = proc.stderr.decode().splitlines()[0]
    assert first == f"summarizer: LLM {MODEL} found at 127.0.0.1:{found.port}"
    [record] = jsonl(proc.stdout)
    assert (record["enrichment"]["summarizer"], record["enrichment"]["model"]) == ("llm", MODEL)


def test_run_with_nothing_found_uses_builtin_and_says_so_first(pages: PageServer) -> None:
    probes = json.dumps([url(closed_port())])
    proc = cli("run", "-", input=pages.url("/article/de") + "\n",
               env={**ON, "BOOKMARK_ENRICH_LLM_PROBE_URLS": probes})
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr.decode().splitlines()[0].startswith("summarizer: built-in, offline")
    [record] = jsonl(proc.stdout)
    e = record["enrichment"]
    assert (e["summarizer"], e["model"]) == ("builtin", None)
    assert e["summary"] and e["keywords"] and e["tags"]


def test_switching_summarizer_reruns_only_the_summarize_stage(pages: PageServer,
                                                               servers: list[LLMServer]) -> None:
    line = pages.url("/article/en") + "\n"
    probes = json.dumps([url(closed_port())])
    first = cli("run", "-", "--quiet", input=line,
                env={**ON, "BOOKMARK_ENRICH_LLM_PROBE_URLS": probes})
    assert first.returncode == 0, first.stderr.decode()
    assert jsonl(first.stdout)[0]["enrichment"]["summarizer"] == "builtin"
    running = start(servers)
    second = cli("run", "-", "--quiet", input=line,
                 env={**ON, "LM_STUDIO_API_URL": running.base_url})
    assert second.returncode == 0, second.stderr.decode()
    [record] = jsonl(second.stdout)
    stages = record["stages"]
    assert (stages["fetch"]["cached"], stages["extract"]["cached"]) == (True, True)
    assert stages["summarize"]["cached"] is False
    assert record["enrichment"]["summarizer"] == "llm"
