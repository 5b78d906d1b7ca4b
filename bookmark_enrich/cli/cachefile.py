"""Opening the cache for the report and upkeep commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CacheError

if TYPE_CHECKING:
    from ..cache import ResultCache

__all__ = ["existing", "reader"]


def existing(cache: Path) -> Path:
    """Commands that change a cache never create one by accident."""
    if str(cache) != ":memory:" and not cache.exists():
        raise CacheError(f"{cache}: no cache here yet (run something first)")
    return cache


@contextmanager
def reader(path: Path) -> Iterator[ResultCache]:
    """The cache opened for reading (it must exist and be a cache)."""
    from ..maintenance import open_reader

    cache = open_reader(path)
    try:
        yield cache
    finally:
        cache.close()
