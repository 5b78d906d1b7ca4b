"""Local test servers; :func:`loopback_httpd` is the HTTP plumbing the threaded ones share."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Dispatch = Callable[[BaseHTTPRequestHandler, str], None]


def loopback_httpd(dispatch: Dispatch, *, methods: tuple[str, ...] = ("GET",), port: int = 0,
                   queue_size: int | None = None) -> ThreadingHTTPServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose every request of ``methods`` goes to
    ``dispatch(handler, method)``; quiet, with daemon threads, not yet serving."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; without this, Nagle's
        # algorithm and delayed ACKs add ~40 ms to every answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    for method in methods:
        setattr(Handler, f"do_{method}",
                lambda self, _method=method: dispatch(self, _method))
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler, bind_and_activate=False)
    httpd.daemon_threads = True
    if queue_size is not None:  # listen()'s backlog: must be set before activating
        httpd.request_queue_size = queue_size
    try:
        httpd.server_bind()
        httpd.server_activate()
    except BaseException:
        httpd.server_close()
        raise
    return httpd
