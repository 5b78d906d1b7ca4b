"""A real OpenAI-compatible embeddings server on 127.0.0.1 with deterministic vectors.

Plain module (no pytest) so benchmarks can start it too. ``POST /v1/embeddings`` turns
each input into a hashed bag of words (``dimensions`` floats): texts sharing words get
close vectors, so semantic search has something to find. ``GET /v1/models`` lists
``model``. ``fail`` makes every embeddings request a 500. ``batches`` records the size
of every request.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["EmbeddingServer", "fake_vector"]

_WORD = re.compile(r"[^\W_]+")


def fake_vector(text: str, dimensions: int) -> list[float]:
    """The server's vector for ``text``: signed word hashes summed (not normalized)."""
    vec = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dimensions
        vec[slot] += 1.0 if digest[4] & 1 else -1.0
    if not any(vec):
        vec[0] = 1.0
    return vec


class EmbeddingServer:
    def __init__(self, *, dimensions: int = 64, model: str = "test-embed") -> None:
        self.dimensions = dimensions
        self.model = model
        self.fail = False
        self.batches: list[int] = []
        self._httpd: ThreadingHTTPServer | None = None

    def reset(self) -> None:
        self.fail = False
        self.batches = []

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> EmbeddingServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, doc: Any) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.model}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                doc = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/embeddings":
                    self._send(404, {"error": "not found"})
                    return
                if server.fail:
                    self._send(500, {"error": "model crashed"})
                    return
                inputs = doc.get("input")
                texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
                server.batches.append(len(texts))
                data = [{"object": "embedding", "index": i,
                         "embedding": fake_vector(t, server.dimensions)}
                        for i, t in enumerate(texts)]
                self._send(200, {"object": "list", "data": data, "model": server.model})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
