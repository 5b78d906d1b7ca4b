"""Small helpers shared by tests: run the library or the CLI and collect records."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookmark_enrich import enrich, load_settings, open_source
from bookmark_enrich.cache import _FLUSH_SECONDS
from bookmark_enrich.events import RunStats
from tests.servers.pages import Gate

# Core tests look at fetch + extract; the later stages have their own tests.
CORE_ONLY = {"ENABLE_AI_SUMMARIZATION": "false", "ENABLE_MEDIA_DOWNLOAD": "false"}


def run_library(lines: list[str] | str, *, fmt: str | None = None,
                **settings: Any) -> tuple[list[dict[str, Any]], RunStats]:
    """Enrich ``lines`` (fed as stdin) through the library; returns (records, stats)."""
    data = lines if isinstance(lines, str) else "\n".join(lines) + "\n"
    settings.setdefault("enable_ai_summarization", False)
    settings.setdefault("enable_media_download", False)
    s = load_settings(**settings)
    src = open_source("-", input_format=fmt, stdin=io.BytesIO(data.encode()))
    records: list[dict[str, Any]] = []
    stats = asyncio.run(enrich(src, s, sink=records.append))
    return records, stats


def by_url(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["url"]: r for r in records}


def cli(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None,
        cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m bookmark_enrich`` in a subprocess (real exit codes and streams)."""
    full_env = {**os.environ, **CORE_ONLY, **(env or {})}
    data = input.encode() if isinstance(input, str) else input
    return subprocess.run([sys.executable, "-m", "bookmark_enrich", *args], input=data,
                          capture_output=True, env=full_env, cwd=cwd, timeout=timeout,
                          check=False)


@dataclass
class Ran:
    """What :func:`invoke_cli` returns: the fields of ``subprocess.CompletedProcess`` tests read."""

    returncode: int
    stdout: bytes
    stderr: bytes


def invoke_cli(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> Ran:
    """Run the CLI in this process (typer's CliRunner), as :func:`cli` does in a subprocess.

    Same arguments, environment (``CORE_ONLY`` under ``env``), exit code and separate
    streams, without starting an interpreter. Keep :func:`cli` for what needs a real
    process: signals, the exit status the OS sees, a pty.
    """
    from typer.testing import CliRunner

    from bookmark_enrich.cli import app

    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = CliRunner().invoke(app, list(args), input=input,
                                    env={**CORE_ONLY, **(env or {})}, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout_bytes, result.stderr_bytes)


def wait_until_taken(pid: int, sig: int, timeout: float = 60) -> None:
    """Return once ``sig``, sent to ``pid``, is no longer pending (Linux ``/proc``).

    The process has taken it, so a second signal sent now is a delivery of its own; two
    sent back to back may merge into one while the first is still pending.
    """
    bit = 1 << (sig - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if not (int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)) & bit:
            return
        time.sleep(0.005)
    raise AssertionError(f"signal {sig} still pending for pid {pid}")


def stop_releasing(proc: subprocess.Popen[bytes], gate: Gate,
                   sig: int = signal.SIGINT) -> tuple[bytes, bytes]:
    """Send ``sig`` (a first Ctrl-C or SIGTERM: finish what is in flight) to a run whose
    pages wait at ``gate``, then let the held pages answer until it exits.

    Pages the run took before the signal landed are let through too, a round at a time,
    so the run ends however late the signal is handled; returns (stdout, stderr).
    """
    proc.send_signal(sig)
    for _ in range(120):
        gate.let_through()
        try:
            out, err = proc.communicate(timeout=1)
            return out or b"", err or b""
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    raise AssertionError("the run did not stop")


def release_until_committed(gate: Gate, committed: Callable[[], int], rows: int) -> None:
    """Let the pages held at ``gate`` answer a round at a time until ``committed()`` (rows
    in the run's cache) reaches ``rows``.

    The cache commits with the first result that comes at least ``_FLUSH_SECONDS`` after
    its last commit, so each round first lets that interval pass (a lower bound, not a
    race), then waits until the run asked for as many new pages as it was let through:
    their results have been handed to the cache by then.
    """
    while committed() < rows:
        time.sleep(_FLUSH_SECONDS)
        arrived = gate.arrived
        gate.wait_for(arrived=arrived + gate.let_through())


def jsonl(stdout: bytes) -> list[dict[str, Any]]:
    """Parse stdout strictly: every line must be a JSON object."""
    return [json.loads(line) for line in stdout.decode().splitlines()]
