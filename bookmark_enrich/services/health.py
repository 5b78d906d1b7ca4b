"""Health checks: the shape of one `doctor` line, shared by every service client."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..settings import Settings

__all__ = ["Check", "CheckProvider", "CheckStatus", "timed"]

CheckStatus = Literal["ok", "warn", "fail", "skip"]


@dataclass(slots=True)
class Check:
    """One line of `doctor`: what was checked, how it went, and how long it took."""

    name: str
    status: CheckStatus
    detail: str
    latency_ms: float | None = None
    required: bool = True
    """A failed required check makes `doctor` exit 1; optional ones only warn."""
    data: dict[str, Any] | None = None
    """Machine-readable extras for `doctor --json` (models, services, version)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CheckProvider = Callable[[Settings, dict[str, Any]], Awaitable[list[Check]]]
"""Given settings and doctor's options (``deep``, ``timeout``, ``source``...), return checks."""

async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    """Await ``call`` and return (result, milliseconds)."""
    start = time.perf_counter()
    result = await call
    return result, (time.perf_counter() - start) * 1000
