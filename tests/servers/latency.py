"""An asyncio HTTP/1.1 server answering fixed pages after a fixed latency (benchmarks).

The threaded ``PageServer`` spends enough CPU per request to cap a 32-way client
below the ideal rate; this one keeps the server out of the measurement. Run it in
its own process with :func:`serve`; it prints its base URL on the first line.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

__all__ = ["serve"]

_TINY = b"<html><head><title>t</title></head><body><p>Tiny page.</p></body></html>"


def _response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


async def _main(latency: float) -> None:
    answer = _response(_TINY)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on this connection
                await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(latency)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def serve(latency: float) -> Any:
    """Start the server in a child process; its ``base`` attribute is the base URL.

    Every path answers the same tiny page.
    """
    proc = subprocess.Popen([sys.executable, __file__, str(latency)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    proc.base = proc.stdout.readline().strip()  # type: ignore[attr-defined]
    return proc


if __name__ == "__main__":
    asyncio.run(_main(float(sys.argv[1])))
