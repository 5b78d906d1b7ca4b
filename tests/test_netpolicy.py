"""The network policy: bookmarks reach public addresses only, unless the user allows more.

Every test here runs against servers on 127.0.0.0/8 and ::1. Ranges other than
loopback are tested without connecting: the classifier on written forms, and a
stub resolver mapping test names to private answers, with the connect call
patched to fail the test if it is ever reached.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from bookmark_enrich.services.netpolicy import (
    AddressBlocked,
    NetworkPolicy,
    classify,
    parse_ip,
    policy_transport,
)
from tests.helpers import invoke_cli, jsonl, run_library
from tests.servers.pages import PageServer

# (written form, what it is); None: public.
FORMS = [
    ("127.0.0.1", "loopback"), ("127.1", "loopback"), ("2130706433", "loopback"),
    ("0x7f000001", "loopback"), ("0177.0.0.1", "loopback"), ("017700000001", "loopback"),
    ("0x7f.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"),
    ("[::1]", "loopback"), ("0.0.0.0", "unspecified"), ("0", "unspecified"),
    ("::", "unspecified"), ("10.0.0.1", "private"), ("172.16.5.4", "private"),
    ("172.31.255.255", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("fd12:3456::1", "private"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"), ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"), ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("192.0.2.1", "private"), ("::ffff:127.0.0.1", "loopback (as IPv6)"),
    ("::ffff:7f00:1", "loopback (as IPv6)"), ("::ffff:169.254.169.254", "link-local (as IPv6)"),
    ("::ffff:10.0.0.1", "private (as IPv6)"), ("::127.0.0.1", "loopback (as IPv6)"),
    ("64:ff9b::a00:1", "private (as IPv6)"), ("2002:7f00:1::", "loopback (as IPv6)"),
    ("2002:a9fe:a9fe::", "link-local (as IPv6)"),
    ("8.8.8.8", None), ("93.184.216.34", None), ("2606:4700:4700::1111", None),
    ("100.128.0.1", None), ("172.32.0.1", None), ("::ffff:8.8.8.8", None),
]


@pytest.mark.parametrize(("written", "kind"), FORMS)
def test_every_written_form_is_classified(written: str, kind: str | None) -> None:
    ip = parse_ip(written)
    assert ip is not None, written
    assert classify(ip) == kind


@pytest.mark.parametrize("name", ["example.com", "cafe.example", "1.2.3.4.5", "256.1.1.1",
                                  "localhost", "bad.cafe", "127.0.0.1.nip.io"])
def test_names_are_not_addresses(name: str) -> None:
    assert parse_ip(name) is None


def _policy(**kw: Any) -> NetworkPolicy:
    return NetworkPolicy.from_settings(kw.get("private", False), kw.get("hosts", []))


def test_defaults_refuse_and_settings_allow() -> None:
    loop = parse_ip("127.0.0.1")
    meta = parse_ip("169.254.169.254")
    assert loop is not None and meta is not None
    refusal = _policy().refusal("127.0.0.1", loop)
    assert refusal is not None and "--allow-private-network" in refusal
    assert _policy(private=True).refusal("127.0.0.1", loop) is None
    # Link-local (cloud metadata) needs an explicit host, even with private allowed.
    refusal = _policy(private=True).refusal("169.254.169.254", meta)
    assert refusal is not None and "--allow-host 169.254.169.254" in refusal
    assert "--allow-private-network" not in refusal
    assert _policy(hosts=["169.254.169.254"]).refusal("169.254.169.254", meta) is None
    assert _policy(hosts=["169.254.0.0/16"]).refusal("x", meta) is None
    assert _policy(hosts=["intranet.test"]).refusal("Intranet.Test.", loop) is None


# -------------------------------------------------------------- resolver stubs
class NoConnect:
    """Stands in for the socket layer: any connection attempt fails the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0

        async def connect_tcp(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            raise AssertionError("a connection was attempted to a refused address")

        monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)


@pytest.mark.parametrize("answer", ["10.0.0.1", "169.254.169.254", "::ffff:10.0.0.1",
                                    "fd00::5"])
def test_a_public_looking_name_with_a_private_answer_is_refused_before_connecting(
        answer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    guard = NoConnect(monkeypatch)
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return [answer]

    async def fetch() -> None:
        transport = policy_transport(_policy(), limits=httpx.Limits(), resolver=resolver)
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("http://news.example.test/story")

    with pytest.raises(AddressBlocked, match=r"news\.example\.test"):
        asyncio.run(fetch())
    assert asked == ["news.example.test"] and guard.calls == 0


def test_one_private_answer_among_public_ones_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = NoConnect(monkeypatch)

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]

    async def check() -> list[str]:
        return await _policy().check("mixed.example.test", 80, resolver)

    with pytest.raises(AddressBlocked):
        asyncio.run(check())
    assert guard.calls == 0


# --------------------------------------------------------- end to end, loopback
@pytest.fixture
def policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy's own tests start from the defaults (conftest allows loopback)."""
    monkeypatch.delenv("BOOKMARK_ENRICH_ALLOW_HOSTS", raising=False)


@pytest.mark.parametrize("form", ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1",
                                  "0.0.0.0", "localhost"])
def test_loopback_forms_are_refused_by_default_and_allowed_on_request(
        form: str, pages: PageServer, policy_env: None) -> None:
    path = f"/article/secret-{form}"
    url = f"http://{form}:{pages.port}{path}"
    records, _ = run_library([url])
    (record,) = records
    assert record["status"] == "failed"
    assert record["errors"][0]["reason"] == "blocked_address"
    assert "--allow-private-network" in record["errors"][0]["message"]
    assert pages.hits[path] == 0
    records, _ = run_library([url], allow_private_network=True)
    assert records[0]["status"] == "ok"


def _v6_server() -> tuple[http.server.ThreadingHTTPServer, int] | None:
    class V6(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><head><title>v6</title></head><body><p>" + b"six " * 60 + b"</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    try:
        server = V6(("::1", 0), Handler)
    except OSError:
        return None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def test_ipv6_loopback_is_refused_and_allowed_by_host(policy_env: None) -> None:
    made = _v6_server()
    if made is None:
        pytest.skip("no IPv6 loopback here")
    server, port = made
    try:
        url = f"http://[::1]:{port}/"
        records, _ = run_library([url])
        assert records[0]["errors"][0]["reason"] == "blocked_address"
        records, _ = run_library([url], allow_hosts=["::1"])
        assert records[0]["status"] == "ok"
    finally:
        server.shutdown()


@pytest.fixture
def second_loopback() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.2 that redirects wherever the query says."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            target = self.path.split("to=", 1)[1]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    except OSError:
        pytest.skip("127.0.0.2 is not routable here")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}", hits
    server.shutdown()


def test_a_redirect_to_a_refused_address_is_refused_at_the_hop(
        second_loopback: tuple[str, list[str]], pages: PageServer, policy_env: None) -> None:
    base, hits = second_loopback
    secret = pages.url("/article/behind-redirect")
    records, _ = run_library([f"{base}/go?to={secret}"], allow_hosts=["127.0.0.2"])
    (record,) = records
    assert hits == [f"/go?to={secret}"]  # the allowed host was asked
    assert record["errors"][0]["reason"] == "blocked_address"
    assert "127.0.0.1" in record["errors"][0]["message"]
    assert pages.hits["/article/behind-redirect"] == 0


def test_media_links_on_loopback_are_refused(pages: PageServer, policy_env: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKMARK_ENRICH_COBALT_PROBE_URL", "")
    url = pages.url("/media/clip.mp4")
    records, _ = run_library([url], enable_media_download=True, media_backend="auto")
    media = records[0]["stages"]["media"]
    assert media["status"] == "failed" and media["reason"] == "blocked_address"
    assert pages.hits["/media/clip.mp4"] == 0


# ------------------------------------------------------------------- file:
def test_file_bookmarks_stay_inside_the_source_folder(tmp_path: Path, policy_env: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOOKMARK_ENRICH_ALLOW_FILE_ROOTS", raising=False)
    site = tmp_path / "site"
    site.mkdir()
    page = site / "page.html"
    page.write_text("<html><head><title>Mine</title></head><body><p>" + "word " * 80
                    + "</p></body></html>")
    secret = tmp_path / "secret.html"
    secret.write_text(page.read_text().replace("Mine", "Secret"))
    (site / "escape.html").symlink_to(secret)
    listing = site / "bookmarks.txt"
    listing.write_text(f"{page.as_uri()}\n{secret.as_uri()}\nfile:escape.html\n")
    proc = invoke_cli("run", str(listing))
    records = {r["position"]: r for r in jsonl(proc.stdout)}
    assert records[1]["status"] == "ok"
    for position in (2, 3):  # outside the folder; a symlink escaping it
        assert records[position]["errors"][0]["reason"] == "blocked_file"
        assert "--allow-file-root" in records[position]["errors"][0]["message"]
    # From stdin no folder is trusted, unless a root is given.
    other = site / "other.html"
    other.write_text(page.read_text().replace("Mine", "Other"))
    piped = invoke_cli("run", "-", input=other.as_uri() + "\n")
    assert b"blocked_file" in piped.stdout
    allowed = invoke_cli("run", "-", input=other.as_uri() + "\n",
                  env={"BOOKMARK_ENRICH_ALLOW_FILE_ROOTS": str(site)})
    assert b'"status":"ok"' in allowed.stdout


# -------------------------------------------------------------------- queue
def test_queue_workers_apply_the_coordinators_policy(pages: PageServer) -> None:
    queue = pytest.importorskip("bookmark_enrich.queue")
    from bookmark_enrich._version import __version__
    from bookmark_enrich.models import RawRecord
    from bookmark_enrich.queue.wire import batch_payload
    from bookmark_enrich.settings import load_settings
    from bookmark_enrich.sources import to_bookmark

    # The worker's own settings allow loopback (the conftest environment) ...
    settings = load_settings(enable_ai_summarization=False, enable_media_download=False,
                             extract_processes=0)
    assert settings.allow_hosts
    info = queue.WorkerInfo(id="t", host="test", pid=1, version=__version__, concurrency=2)
    handler = queue.BatchHandler(settings, worker=info)
    bookmark = to_bookmark(RawRecord(1, {"url": pages.url("/article/queued-secret")}), None)
    strict = {"allow_private_network": False, "allow_hosts": [], "allow_file_roots": []}

    async def send(policy: dict[str, Any] | None) -> dict[str, Any]:
        reply = await handler(batch_payload("run", [(bookmark, {}, ["fetch"])], policy))
        return dict(json.loads(reply)["items"][0]["outcomes"]["fetch"])

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            return await send(strict), await send(None)
        finally:
            await handler.aclose()

    # ... but a coordinator's strict policy holds for its bookmarks.
    refused, own = asyncio.run(go())
    assert refused["status"] == "failed" and refused["reason"] == "blocked_address"
    assert own["status"] == "ok"


# -------------------------------------------------------------- HTTPS
def test_https_through_the_policy_reuses_and_then_drops_a_closed_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS goes through the policy's stream wrapper (start_tls), keep-alive reuse asks it
    whether an idle socket is readable, and a connection the server closed is replaced."""
    import select
    import ssl

    import trustme

    from bookmark_enrich.services import netpolicy

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    monkeypatch.setattr(netpolicy, "_verifying_context", lambda: client_ctx)
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = not connections
        connections.append(len(connections))
        try:
            for _ in range(2 if first else 1):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
            if first:  # hang up unannounced once the client holds the connection idle
                await idle.wait()
            else:
                await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.transport.abort()  # no TLS goodbye to wait for

    async def scenario() -> list[tuple[int, str, bool]]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        transport = policy_transport(_policy(private=True), limits=httpx.Limits())
        seen: list[tuple[int, str, bool]] = []
        stream: Any = None
        async with server, httpx.AsyncClient(transport=transport) as client:
            for i in range(3):
                if i == 2:  # the server hangs up; wait until that reaches the socket
                    idle.set()
                    sock = stream.get_extra_info("socket")
                    await asyncio.to_thread(select.select, [sock], [], [], 30)
                response = await client.get(f"https://127.0.0.1:{port}/")
                stream = response.extensions["network_stream"]
                assert isinstance(stream, netpolicy._Stream)
                seen.append((len(connections), response.text,
                             stream.get_extra_info("ssl_object") is not None))
        return seen

    idle = asyncio.Event()
    seen = asyncio.run(scenario())
    # Two requests share the first connection; the server closed it, so a new one.
    assert seen == [(1, "ok", True), (1, "ok", True), (2, "ok", True)]
