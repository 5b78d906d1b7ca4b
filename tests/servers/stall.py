"""Servers that never finish an answer: one accepts and stays silent, one trickles.

Each runs an asyncio loop in a thread (or, with :func:`serve`, in a child process
for benchmarks) on 127.0.0.1; ``requests`` counts the requests that arrived.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from typing import Any

__all__ = ["StallServer", "serve"]


class StallServer:
    """``mode`` "silent": read the request, never answer. "trickle": send headers
    promising a large page, then one byte every ``interval`` seconds."""

    def __init__(self, mode: str, interval: float = 1.0, host: str = "127.0.0.1") -> None:
        self.mode = mode
        self.host = host
        self.interval = interval
        self.requests = 0
        self.base = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> StallServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            if self.mode == "trickle":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                             b"Content-Length: 100000\r\n\r\n")
                while True:
                    await writer.drain()
                    await asyncio.sleep(self.interval)
                    writer.write(b"x")
            await reader.read()  # silent: until the client hangs up
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
                asyncio.CancelledError):
            pass  # the client left, or the server stops
        finally:
            writer.close()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, 0, backlog=1024))
        self.base = f"http://{self.host}:{self._server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()


def serve(mode: str, interval: float = 1.0, host: str = "127.0.0.1") -> Any:
    """Start a server in a child process; its ``base`` attribute is the base URL.

    ``host``: another loopback address (127.0.0.2) makes it a host of its own."""
    proc = subprocess.Popen([sys.executable, __file__, mode, str(interval), host],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.base = proc.stdout.readline().strip()  # type: ignore[attr-defined]
    return proc


if __name__ == "__main__":
    srv = StallServer(sys.argv[1], float(sys.argv[2]), sys.argv[3]).start()
    print(srv.base, flush=True)
    threading.Event().wait()
