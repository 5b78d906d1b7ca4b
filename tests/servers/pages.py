"""A real HTTP server on 127.0.0.1 serving test pages with scripted behaviours.

Plain module (no pytest) so benchmarks can start it too. Paths:

- ``/article/<n>``          a small article page (``?lang=de`` etc. for other languages)
- ``/status/<code>``        that status (``/status/429?retry_after=1``)
- ``/flaky/<name>``         500 the first time, then an article (per name)
- ``/slow?seconds=S``       waits S seconds, then an article
- ``/gate/<name>/<n>``      waits until the test lets it through (:meth:`PageServer.gate`)
- ``/redirect/<n>``         a chain of n redirects ending at an article
- ``/loop``                 a redirect loop
- ``/big?mb=50``            an HTML body of that size (streamed)
- ``/binary``               a PNG-ish binary body
- ``/latin1``               an ISO-8859-1 page without a charset in the header
- ``/corpus/<name>``        a page from the shared article-extraction corpus
- ``/raw/<name>``           a page registered with :meth:`PageServer.add`
Set ``latency`` to delay every answer (benchmarks).
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers import loopback_httpd

__all__ = ["ARTICLES", "CORPUS_DIR", "Gate", "PageServer", "article_html"]

CORPUS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / \
    "article-extraction-benchmark"

ARTICLES = {
    "en": ("Tending a city garden",
           "Urban gardens turn empty lots into shared green space. Volunteers plant tomatoes, "
           "beans and herbs in raised beds built from reclaimed timber. The harvest is shared "
           "among neighbours, and surplus goes to the local food bank. Researchers found that "
           "such gardens lower summer temperatures on the surrounding streets. They also give "
           "children a place to learn where food comes from."),
    "de": ("Ein Garten in der Stadt",
           "Gemeinschaftsgärten verwandeln leere Grundstücke in grüne Orte für alle. "
           "Freiwillige pflanzen Tomaten, Bohnen und Kräuter in Hochbeete aus altem Holz. "
           "Die Ernte wird unter den Nachbarn geteilt, und der Überschuss geht an die Tafel. "
           "Forscher fanden heraus, dass solche Gärten die Temperatur in den Straßen senken. "
           "Kinder lernen dort, woher ihr Essen kommt."),
    "fr": ("Un jardin en ville",
           "Les jardins partagés transforment les terrains vides en espaces verts communs. "
           "Des bénévoles plantent des tomates, des haricots et des herbes dans des bacs en bois "
           "récupéré. La récolte est partagée entre voisins et le surplus va à la banque "
           "alimentaire. Selon des chercheurs, ces jardins rafraîchissent les rues voisines. "
           "Les enfants y apprennent d'où vient leur nourriture."),
}


def article_html(n: int | str = 1, lang: str = "en", extra: str = "") -> str:
    title, body = ARTICLES.get(lang, ARTICLES["en"])
    paras = "".join(f"<p>{body} (Part {i} of article {n}.)</p>" for i in range(1, 4))
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{title} #{n}</title>"
        f'<meta name="description" content="{body[:120]}">'
        f'<meta name="author" content="Ada Gardener">'
        f'<meta property="og:site_name" content="Test Site">'
        f'<meta name="keywords" content="gardening, cities">'
        f"</head><body><nav>Home | About</nav><article><h1>{title} #{n}</h1>{paras}{extra}"
        f"</article><footer>Copyright</footer></body></html>"
    )


class Gate:
    """Requests to ``/gate/<name>/...`` wait here until the test lets them through.

    A test synchronises on requests arriving (:meth:`wait_for`) instead of guessing
    how long a run takes, and decides when a page answers (:meth:`let_through`,
    :meth:`open`) instead of sleeping in the server.
    """

    def __init__(self, base: str, name: str) -> None:
        self.base = base
        self.name = name
        self.arrived = 0
        self.waiting = 0
        self._passes = 0
        self._open = False
        self._cond = threading.Condition()

    def url(self, n: int | str) -> str:
        return f"{self.base}/gate/{self.name}/{n}"

    def wait_for(self, waiting: int = 0, *, arrived: int = 0, timeout: float = 60) -> None:
        """Return once ``waiting`` requests are held at the gate and ``arrived`` came in all."""
        with self._cond:
            if not self._cond.wait_for(
                    lambda: self.waiting >= waiting and self.arrived >= arrived, timeout):
                raise AssertionError(f"gate {self.name}: waited for {waiting} held and "
                                     f"{arrived} arrived; {self.waiting} and {self.arrived} did")

    def let_through(self) -> int:
        """Let the requests held now pass (later ones still wait); returns how many."""
        with self._cond:
            held = self.waiting - self._passes
            self._passes = self.waiting
            self._cond.notify_all()
            return held

    def open(self) -> None:
        """Let every request pass, now and later."""
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def _hold(self) -> None:  # the server's side
        with self._cond:
            self.arrived += 1
            self.waiting += 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._open or self._passes > 0, timeout=600)
            if self._passes > 0:
                self._passes -= 1
            self.waiting -= 1
            self._cond.notify_all()


class PageServer:
    """Start with :meth:`start`; ``url(path)`` builds addresses; ``hits`` counts requests."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.hits: Counter[str] = Counter()
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self._flaky: Counter[str] = Counter()
        self._corpus: dict[str, bytes] = {}
        self._gates: dict[str, Gate] = {}
        self._lock = threading.Lock()
        self._hit = threading.Condition(self._lock)
        self.httpd = loopback_httpd(lambda handler, _method: self._handle(handler),
                                    queue_size=1024)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> PageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, name: str, body: bytes | str, *, status: int = 200,
            content_type: str = "text/html; charset=utf-8", headers: dict[str, str] | None = None,
            ) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.pages[name] = (status, {"Content-Type": content_type, **(headers or {})}, data)
        return self.url(f"/raw/{name}")

    def wait_for_hits(self, *paths: str, timeout: float = 60) -> None:
        """Return once every one of ``paths`` has been requested at least once."""
        with self._lock:
            if not self._hit.wait_for(lambda: all(self.hits[p] for p in paths), timeout):
                raise AssertionError(f"never requested: {[p for p in paths if not self.hits[p]]}")

    def gate(self, name: str) -> Gate:
        """The gate ``/gate/<name>/...`` requests wait at (made on first use)."""
        with self._lock:
            return self._gates.setdefault(name, Gate(self.base, name))

    def _corpus_page(self, name: str) -> bytes | None:
        if name not in self._corpus:
            file = CORPUS_DIR / "html" / f"{name}.html.gz"
            if not file.exists() or "/" in name:
                return None
            self._corpus[name] = gzip.decompress(file.read_bytes())
        return self._corpus[name]

    # ------------------------------------------------------------------ handler
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.hits[path] += 1
            self._hit.notify_all()
        if self.latency:
            time.sleep(self.latency)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._route(req, path, query)

    def _send(self, req: BaseHTTPRequestHandler, status: int, body: bytes,
              content_type: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(body)

    def _route(self, req: BaseHTTPRequestHandler, path: str, q: dict[str, str]) -> None:
        seg = path.strip("/").split("/")
        head = seg[0]
        if head == "article":
            n = seg[1] if len(seg) > 1 else "1"
            self._send(req, 200, article_html(n, q.get("lang", "en")).encode())
        elif head == "status":
            code = int(seg[1])
            headers = {"Retry-After": q["retry_after"]} if "retry_after" in q else {}
            self._send(req, code, f"status {code}".encode(), "text/plain", headers)
        elif head == "flaky":
            with self._lock:
                self._flaky[path] += 1
                first = self._flaky[path] == 1
            if first:
                self._send(req, 500, b"try again", "text/plain")
            else:
                self._send(req, 200, article_html(seg[-1]).encode())
        elif head == "slow":
            time.sleep(float(q.get("seconds", "5")))
            self._send(req, 200, article_html("slow").encode())
        elif head == "gate":
            self.gate(seg[1])._hold()
            self._send(req, 200, article_html(seg[-1]).encode())
        elif head == "redirect":
            n = int(seg[1])
            target = f"/redirect/{n - 1}" if n > 1 else "/article/redirected"
            self._send(req, 302, b"", headers={"Location": target})
        elif head == "loop":
            self._send(req, 302, b"", headers={"Location": "/loop"})
        elif head == "big":
            size = int(float(q.get("mb", "50")) * 1024 * 1024)
            req.send_response(200)
            req.send_header("Content-Type", "text/html")
            if q.get("length", "1") == "1":
                req.send_header("Content-Length", str(size))
            else:
                req.send_header("Connection", "close")
            req.end_headers()
            chunk = b"<p>" + b"x" * 65530 + b"</p>"
            sent = 0
            try:
                while sent < size:
                    piece = chunk[: min(len(chunk), size - sent)]
                    req.wfile.write(piece)
                    sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                return
        elif head == "binary":
            self._send(req, 200, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64, "image/png")
        elif head == "latin1":
            html = ('<html lang="fr"><head><meta http-equiv="Content-Type" '
                    'content="text/html; charset=iso-8859-1"><title>Café crème</title></head>'
                    "<body><article><p>" + ARTICLES["fr"][1] + " Déjà vu à Noël.</p>"
                    "</article></body></html>")
            self._send(req, 200, html.encode("latin-1"), "text/html")
        elif head == "corpus":
            body = self._corpus_page(seg[1])
            if body is None:
                self._send(req, 404, b"no such page", "text/plain")
                return
            self._send(req, 200, body)
        elif head == "raw" and "/".join(seg[1:]) in self.pages:  # names may hold slashes
            status, headers, body = self.pages["/".join(seg[1:])]
            content_type = headers.pop("Content-Type", "text/html")
            self._send(req, status, body, content_type, headers)
            headers["Content-Type"] = content_type
        else:
            self._send(req, 404, b"not found", "text/plain")


def serve_in_process(latency: float = 0.0, pages: dict[str, bytes] | None = None) -> Any:
    """Start a PageServer in a child process (benchmarks: keep its GIL out of ours).

    Returns the Popen; its ``base`` attribute holds the server's base URL.
    """
    import json
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.pages", str(latency)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({k: v.decode("latin-1") for k, v in (pages or {}).items()}))
    proc.stdin.close()
    proc.base = proc.stdout.readline().strip()  # type: ignore[attr-defined]
    return proc


if __name__ == "__main__":
    import json
    import sys

    server = PageServer(latency=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    for name, body in json.loads(sys.stdin.read() or "{}").items():
        server.add(name, body.encode("latin-1"))
    print(server.base, flush=True)
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
