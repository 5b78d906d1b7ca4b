"""A stand-in web archive on 127.0.0.1 speaking the Wayback Machine's real API shapes.

Plain module (no pytest) so benchmarks can start it too. Paths:

- ``/wayback/available?url=U&timestamp=T``  the availability API: for a URL given
  a snapshot with :meth:`ArchiveServer.add`,
  ``{"url": U, "archived_snapshots": {"closest": {"status": "200", "available": true,
  "url": "<base>/web/<ts>/<U>", "timestamp": "<ts>"}}, "timestamp": T}``; for any
  other URL ``{"url": U, "archived_snapshots": {}}`` (the API's "none found").
  :meth:`script` makes a URL's answer ``malformed`` (not JSON), ``429`` (with
  ``Retry-After``, for the first ``times`` requests) or ``500``.
- ``/web/<ts>id_/<url>``  the raw capture (the page as crawled).
- ``/web/<ts>/<url>``     the replay, with the archive's toolbar added (as the
  real one does); a client that reads this form gets the toolbar in its text.

``lookups`` lists the URLs asked about, ``max_in_flight`` the most requests it
answered at once, ``times`` when each request arrived (monotonic seconds).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers import loopback_httpd

__all__ = ["TOOLBAR", "ArchiveServer"]

TOOLBAR = "Wayback Machine toolbar: 123 captures between 1996 and 2026"


class ArchiveServer:
    """Start with :meth:`start`; ``base`` is what BOOKMARK_ENRICH_ARCHIVE_URL points at."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        """Seconds each request is held before its answer (to see concurrency)."""
        self.snapshots: dict[str, tuple[str, bytes, str]] = {}
        self.scripts: dict[str, tuple[str, int, str]] = {}
        self.lookups: list[str] = []
        self.timestamps: list[str | None] = []
        self.times: list[float] = []
        self.captures: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.httpd = loopback_httpd(lambda handler, _method: self._handle(handler))
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> ArchiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.snapshots.clear()
            self.scripts.clear()
            self.lookups.clear()
            self.timestamps.clear()
            self.times.clear()
            self.captures.clear()
            self.max_in_flight = 0

    def add(self, url: str, body: bytes | str, *, timestamp: str = "20150321120000",
            content_type: str = "text/html; charset=utf-8") -> str:
        """Archive ``body`` as ``url`` captured at ``timestamp``; returns the snapshot URL."""
        data = body.encode() if isinstance(body, str) else body
        self.snapshots[url] = (timestamp, data, content_type)
        return f"{self.base}/web/{timestamp}/{url}"

    def script(self, url: str, answer: str, *, times: int = 1_000_000,
               retry_after: str = "1") -> None:
        """Answer lookups of ``url`` with ``malformed``, ``429`` or ``500`` ``times`` times."""
        self.scripts[url] = (answer, times, retry_after)

    # ------------------------------------------------------------------ handler
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.times.append(time.monotonic())
        try:
            if self.hold:
                time.sleep(self.hold)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._route(req)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _send(self, req: BaseHTTPRequestHandler, status: int, body: bytes,
              content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(body)

    def _route(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        if parts.path == "/wayback/available":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            self._available(req, query.get("url", ""), query.get("timestamp"))
        elif parts.path.startswith("/web/"):
            # The archived URL keeps its own query string: take it from the raw path.
            stamp, _, original = req.path[len("/web/"):].partition("/")
            self._capture(req, stamp, original)
        else:
            self._send(req, 404, b"not found", "text/plain")

    def _available(self, req: BaseHTTPRequestHandler, url: str, stamp: str | None) -> None:
        with self._lock:
            self.lookups.append(url)
            self.timestamps.append(stamp)
            answer, left, retry_after = self.scripts.get(url, ("", 0, ""))
            if left > 0:
                self.scripts[url] = (answer, left - 1, retry_after)
        if left > 0 and answer == "429":
            self._send(req, 429, b'{"error": "Too Many Requests"}',
                       headers={"Retry-After": retry_after})
            return
        if left > 0 and answer == "500":
            self._send(req, 500, b"<html>Internal Server Error</html>", "text/html")
            return
        if left > 0 and answer == "malformed":
            self._send(req, 200, b"<html><body>Wayback is down for maintenance</body></html>",
                       "text/html")
            return
        doc: dict[str, Any] = {"url": url, "archived_snapshots": {}}
        if stamp is not None:
            doc["timestamp"] = stamp
        if url in self.snapshots:
            ts = self.snapshots[url][0]
            doc["archived_snapshots"] = {"closest": {
                "status": "200", "available": True,
                "url": f"{self.base}/web/{ts}/{url}", "timestamp": ts}}
        self._send(req, 200, json.dumps(doc).encode())

    def _capture(self, req: BaseHTTPRequestHandler, stamp: str, original: str) -> None:
        raw = stamp.endswith("id_")
        stamp = stamp.removesuffix("id_")
        found = self.snapshots.get(original)
        with self._lock:
            self.captures.append(req.path)
        if found is None or found[0] != stamp:
            self._send(req, 404, b"<html>Wayback Machine has not archived that URL.</html>",
                       "text/html")
            return
        _, body, content_type = found
        if not raw:
            bar = f'<div id="wm-ipp">{TOOLBAR}</div>'.encode()
            body = body.replace(b"<body>", b"<body>" + bar, 1)
        self._send(req, 200, body, content_type)
