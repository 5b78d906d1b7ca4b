"""A real HTTP server on 127.0.0.1 speaking Cobalt's API (v10/v11), serving local files.

Plain module (no pytest) so benchmarks can start it too. ``POST /`` looks at the
requested link's id (``v=`` of a YouTube link, else the last path segment) and
answers by a script (:meth:`CobaltServer.script`) or by the id's shape:

- ``err-<code>``     ``{"status": "error", "error": {"code": <code>}}`` (HTTP 400)
- ``redirect-<id>``  ``redirect`` to ``/files/<id>`` (with Content-Length)
- ``picker-<n>``     ``picker`` with n photo items
- ``local-<id>``     ``local-processing``
- ``busy-<n>-<id>``  HTTP 429 with Retry-After/RateLimit-Reset n times, then a tunnel
- ``cut-<id>``       a tunnel that stops half-way (no final chunk)
- ``huge-<mb>``      a tunnel streaming that many MB without Content-Length
- anything else      ``tunnel`` to ``/tunnel/<id>``: the file for that id (chunked, no
                     Content-Length, like Cobalt's tunnels)

Files are generated in a temp dir (``add_file``) or registered (``add_path``);
the same id always serves the same bytes. ``GET /`` returns server info; with
``v7=True`` only ``/api/serverInfo`` answers, like an old instance. Requests must
carry ``Accept`` and ``Content-Type: application/json`` and only the accepted keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["ACCEPTED_KEYS", "SERVICES", "CobaltServer"]

ACCEPTED_KEYS = {"url", "videoQuality", "audioFormat", "downloadMode", "filenameStyle",
                 "youtubeVideoCodec", "youtubeDubLang", "alwaysProxy", "disableMetadata",
                 "tiktokFullAudio", "youtubeHLS", "subtitleLang", "allowH265", "convertGif",
                 "localProcessing", "youtubeBetterAudio"}
SERVICES = ["bilibili", "bluesky", "dailymotion", "facebook", "instagram", "loom", "ok",
            "pinterest", "reddit", "rutube", "snapchat", "soundcloud", "streamable", "tiktok",
            "tumblr", "twitch", "twitter", "vimeo", "vk", "xiaohongshu", "youtube"]
_CHUNK = 1 << 20


def _link_id(url: str) -> str:
    parts = urlsplit(url)
    v = parse_qs(parts.query).get("v")
    if v:
        return v[0]
    return parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.hostname or "x"


class CobaltServer:
    """Start with :meth:`start`; ``requests`` records every POST body."""

    def __init__(self, *, v7: bool = False, api_key: str | None = None,
                 default_size: int = 200_000) -> None:
        self.v7 = v7
        self.api_key = api_key
        self.default_size = default_size
        self.dir = Path(tempfile.mkdtemp(prefix="cobalt-files-"))
        self.files: dict[str, tuple[Path, str]] = {}
        self.scripts: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    # ---------------------------------------------------------------- files
    def add_file(self, name: str, size: int, content_type: str = "video/mp4") -> Path:
        """Generate ``size`` deterministic bytes for ``name``."""
        path = self.dir / name
        seed = hashlib.sha256(name.encode()).digest()
        block = (seed * (_CHUNK // len(seed) + 1))[:_CHUNK]
        with path.open("wb") as out:
            left = size
            counter = 0
            while left > 0:
                # Vary each block so content is not one repeated pattern.
                piece = counter.to_bytes(8, "big") + block[8:]
                out.write(piece[:left])
                left -= min(left, len(piece))
                counter += 1
        self.files[name] = (path, content_type)
        return path

    def add_path(self, name: str, path: Path, content_type: str = "video/mp4") -> None:
        self.files[name] = (path, content_type)

    def file_for(self, name: str) -> tuple[Path, str]:
        with self._lock:
            if name not in self.files:
                self.add_file(name, self.default_size)
            return self.files[name]

    def script(self, link_id: str, answer: dict[str, Any], status: int = 200) -> None:
        """Answer POSTs for ``link_id`` with this JSON body."""
        self.scripts[link_id] = {"body": answer, "status": status}

    # -------------------------------------------------------------- server
    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def start(self) -> CobaltServer:
        server = self

        class Handler(_Handler):
            owner = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        shutil.rmtree(self.dir, ignore_errors=True)


class _Handler(BaseHTTPRequestHandler):
    owner: CobaltServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ------------------------------------------------------------- helpers
    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: str, status: int = 400, **context: Any) -> None:
        err: dict[str, Any] = {"code": code}
        if context:
            err["context"] = context
        self._json(status, {"status": "error", "error": err})

    # ----------------------------------------------------------------- GET
    def do_GET(self) -> None:
        owner = self.owner
        path = urlsplit(self.path).path
        owner.hits[path] += 1
        if owner.v7:
            if path == "/api/serverInfo":
                self._json(200, {"version": "7.15", "commit": "abc", "branch": "current",
                                 "name": "test", "url": owner.url, "cors": 1,
                                 "startTime": "0"})
            else:
                self._json(404, {"status": "error", "text": "not found"})
            return
        if path == "/":
            self._json(200, {"cobalt": {"version": "11.0.2", "url": owner.url,
                                        "startTime": "1700000000000",
                                        "durationLimit": 10800, "services": SERVICES},
                             "git": {"commit": "0" * 40, "branch": "main",
                                     "remote": "imputnet/cobalt"}})
        elif path.startswith("/tunnel/"):
            self._tunnel(path.removeprefix("/tunnel/"))
        elif path.startswith("/files/"):
            self._file(path.removeprefix("/files/"))
        else:
            self._json(404, {"status": "error", "error": {"code": "error.api.not_found"}})

    def _file(self, name: str) -> None:
        path, ctype = self.owner.file_for(name)
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with path.open("rb") as fh:
            shutil.copyfileobj(fh, self.wfile, _CHUNK)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _tunnel(self, name: str) -> None:
        self.send_response(200)
        if name.startswith("huge-"):
            mb = int(name.removeprefix("huge-"))
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Estimated-Content-Length", "1000")  # a guess, not a size
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"\x01" * _CHUNK
            with contextlib.suppress(OSError):
                for _ in range(mb):
                    self._chunk(block)
                self.wfile.write(b"0\r\n\r\n")
            return
        cut = name.startswith("cut-")
        path, ctype = self.owner.file_for(name.removeprefix("cut-"))
        stem = name.removeprefix("cut-")
        ext = path.suffix or (".mp4" if ctype == "video/mp4" else ".bin")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Disposition",
                         f'attachment; filename="{stem}{"" if path.suffix else ext}"')
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        size = path.stat().st_size
        sent = 0
        with path.open("rb") as fh, contextlib.suppress(OSError):
            while chunk := fh.read(_CHUNK if not cut else 16_384):
                self._chunk(chunk)
                sent += len(chunk)
                if cut and sent >= size // 2:
                    self.wfile.flush()
                    self.close_connection = True
                    return  # no final chunk: the connection just ends
            self.wfile.write(b"0\r\n\r\n")

    # ---------------------------------------------------------------- POST
    def do_POST(self) -> None:
        owner = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with owner._lock:
            owner.headers.append({k.lower(): v for k, v in self.headers.items()})
        if owner.v7 or urlsplit(self.path).path != "/":
            self._json(404, {"status": "error", "error": {"code": "error.api.not_found"}})
            return
        if "application/json" not in (self.headers.get("Accept") or ""):
            self._error("error.api.header.accept")
            return
        if "application/json" not in (self.headers.get("Content-Type") or ""):
            self._error("error.api.header.content_type")
            return
        if owner.api_key is not None:
            auth = self.headers.get("Authorization") or ""
            if not auth.startswith("Api-Key "):
                self._error("error.api.auth.key.missing", 401)
                return
            if auth.removeprefix("Api-Key ") != owner.api_key:
                self._error("error.api.auth.key.not_found", 401)
                return
        try:
            body = json.loads(raw)
        except ValueError:
            self._error("error.api.invalid_body")
            return
        if not isinstance(body, dict) or "url" not in body or set(body) - ACCEPTED_KEYS:
            self._error("error.api.invalid_body")
            return
        with owner._lock:
            owner.requests.append(body)
        self._answer(_link_id(str(body["url"])), body)

    def _answer(self, link: str, body: dict[str, Any]) -> None:
        owner = self.owner
        base = owner.url.rstrip("/")
        if link in owner.scripts:
            scripted = owner.scripts[link]
            self._json(scripted["status"], scripted["body"])
            return
        if link.startswith("err-"):
            code = link.removeprefix("err-")
            if code == "error.api.rate_exceeded":
                self._error(code, 429, limit=0)
            else:
                self._error(code)
            return
        if link.startswith("busy-"):
            _, times, rest = link.split("-", 2)
            with owner._lock:
                owner.hits["busy:" + link] += 1
                seen = owner.hits["busy:" + link]
            if seen <= int(times):
                headers = ({"Retry-After": "0"} if seen % 2 else {"RateLimit-Reset": "0"})
                self._json(429, {"status": "error", "error": {
                    "code": "error.api.rate_exceeded", "context": {"limit": 0}}}, headers)
                return
            link = rest
        if link.startswith("redirect-"):
            name = link.removeprefix("redirect-")
            self._json(200, {"status": "redirect", "url": f"{base}/files/{name}",
                             "filename": f"{name}.mp4"})
        elif link.startswith("picker-"):
            n = int(link.removeprefix("picker-"))
            items = []
            for i in range(n):
                name = f"photo-{i}.jpg"
                if name not in owner.files:
                    owner.add_file(name, 5_000 + i, "image/jpeg")
                items.append({"type": "photo", "url": f"{base}/files/{name}",
                              "thumb": f"{base}/files/{name}"})
            self._json(200, {"status": "picker", "picker": items})
        elif link.startswith("local-"):
            self._json(200, {"status": "local-processing", "type": "merge",
                             "service": "youtube",
                             "tunnel": [f"{base}/tunnel/v-{link}", f"{base}/tunnel/a-{link}"],
                             "output": {"type": "video/mp4", "filename": f"{link}.mp4"}})
        else:
            self._json(200, {"status": "tunnel", "url": f"{base}/tunnel/{link}",
                             "filename": f"{link}.mp4"})
