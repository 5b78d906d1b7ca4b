"""Tests never ask a real resolver: names resolve only to what a test maps on loopback.

conftest.py imports this module (patching this process) and puts its folder on
PYTHONPATH, so every subprocess a test starts (the CLI, workers) is patched too.
``BOOKMARK_ENRICH_TEST_HOSTS`` maps test names (``news.example.test=127.0.0.2,...``);
``localhost`` and numeric addresses resolve as usual; any other name fails as it
would on a machine without DNS, before a packet leaves.
"""

from __future__ import annotations

import os
import socket
from typing import Any

_real_getaddrinfo = socket.getaddrinfo


def _mapped() -> dict[str, str]:
    pairs = os.environ.get("BOOKMARK_ENRICH_TEST_HOSTS", "")
    return dict(p.split("=", 1) for p in pairs.split(",") if "=" in p)


def _offline_getaddrinfo(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or name in ("localhost", "ip6-localhost") or _numeric(name):
        return _real_getaddrinfo(host, port, *args, **kw)
    mapped = _mapped().get(name.lower().rstrip("."))
    if mapped is not None:
        return _real_getaddrinfo(mapped, port, *args, **kw)
    raise socket.gaierror(socket.EAI_NONAME, f"{name}: no such host (tests resolve offline)")


def _numeric(name: str) -> bool:
    try:
        _real_getaddrinfo(name, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return False
    return True


if not getattr(socket.getaddrinfo, "offline_for_tests", False):
    _offline_getaddrinfo.offline_for_tests = True  # type: ignore[attr-defined]
    socket.getaddrinfo = _offline_getaddrinfo
