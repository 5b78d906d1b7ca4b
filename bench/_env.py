"""What every benchmark shares: its servers are on loopback, which bookmarks may not reach
by default (the network policy), so the benchmarks allow loopback, and nothing else."""

from __future__ import annotations

import os

LOOPBACK = "127.0.0.0/8,::1"


def allow_loopback() -> None:
    """Let bookmarks reach the benchmark's own servers (inherited by worker processes)."""
    os.environ.setdefault("BOOKMARK_ENRICH_ALLOW_HOSTS", LOOPBACK)
    # No benchmark asks a real web archive (the archive stage is on by default).
    os.environ.setdefault("BOOKMARK_ENRICH_ARCHIVE", "false")
