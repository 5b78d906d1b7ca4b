"""Unattended runs (issue 14): bounded time, clean stops, no orphans. Prints figures;
asserts nothing.

    python bench/bench_unattended.py                 # every part, defaults (~3 min)
    python bench/bench_unattended.py --only deadline --deadline 20

a. deadline: 100 bookmarks, 20 on a host that accepts and never answers, 10 on a
   server that trickles 1 byte/s, 70 good pages; the run's wall time against the
   fetch deadline, and the reasons.
b. sigterm: the same run stopped with SIGTERM at a random moment: seconds from the
   signal to the exit, the cache's integrity_check, then a second run: bookmarks
   fetched twice among those the first run cached.
c. orphans: kill -9 of a run during extraction: our processes still alive 2 s later.
d. files: file:///dev/zero, a FIFO and a 2 GB sparse file as bookmarks: reasons,
   wall time and the run's peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._env import allow_loopback
from tests.servers.pages import PageServer
from tests.servers.stall import serve
from tests.test_unattended import alive, descendants

ENV = {"ENABLE_AI_SUMMARIZATION": "false", "ENABLE_MEDIA_DOWNLOAD": "false"}


def run(args: list[str], cache: Path,
        extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, **ENV, "BOOKMARK_ENRICH_CACHE": str(cache), **(extra or {})}
    return subprocess.Popen([sys.executable, "-m", "bookmark_enrich", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def mixed_source(folder: Path, pages: PageServer, silent: str, trickle: str) -> Path:
    urls = ([f"{silent}/never/{i}" for i in range(20)] +
            [f"{trickle}/drip/{i}" for i in range(10)] +
            [pages.url(f"/article/u{i}") for i in range(70)])
    random.Random(14).shuffle(urls)
    source = folder / "mixed.txt"
    source.write_text("\n".join(urls) + "\n")
    return source


def part_deadline(folder: Path, pages: PageServer, silent: str, trickle: str,
                  deadline: float) -> None:
    source = mixed_source(folder, pages, silent, trickle)
    started = time.monotonic()
    proc = run([str(source), "-q", "--fetch-deadline", str(deadline)], folder / "a.sqlite")
    out, _ = proc.communicate()
    wall = time.monotonic() - started
    records = [json.loads(line) for line in out.splitlines()]
    reasons = Counter(r["stages"]["fetch"]["reason"] or "ok" for r in records)
    print(f"a. deadline {deadline:g} s: {len(records)}/100 records in {wall:.1f} s "
          f"({wall / deadline:.2f} x the deadline), exit {proc.returncode}; "
          f"{dict(reasons)}")


def part_sigterm(folder: Path, pages: PageServer, silent: str, trickle: str,
                 deadline: float) -> None:
    source = mixed_source(folder, pages, silent, trickle)
    cache = folder / "b.sqlite"
    proc = run([str(source), "-q", "--fetch-deadline", str(deadline)], cache)
    time.sleep(random.Random().uniform(2, deadline * 0.8))
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate()
    took = time.monotonic() - sent
    code = proc.returncode
    with sqlite3.connect(cache) as db:
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        done = {row[0] for row in db.execute(
            "SELECT b.url FROM bookmarks b JOIN results r ON r.key = b.key "
            "WHERE r.stage = 'fetch' AND r.status = 'ok'")}
    hits = pages.hits.copy()
    proc = run([str(source), "-q", "--fetch-deadline", str(deadline)], cache)
    second, _ = proc.communicate()
    again = sum(pages.hits[u.removeprefix(pages.base)] > hits[u.removeprefix(pages.base)]
                for u in done if u.startswith(pages.base))
    total = len({json.loads(line)["url"] for line in second.splitlines()})
    print(f"b. sigterm: exit {code} after {took:.2f} s "
          f"(grace 10 s), {len(out.splitlines())} records before it; integrity_check "
          f"{check}; second run {total}/100 records, {again} of {len(done)} cached "
          "pages fetched again")


def part_orphans(folder: Path) -> None:
    slow = PageServer(latency=0.2).start()
    try:
        source = folder / "o.txt"
        source.write_text("".join(slow.url(f"/article/o{i}") + "\n" for i in range(300)))
        cache = folder / "c.sqlite"
        proc = run([str(source), "-q"], cache, {"BOOKMARK_ENRICH_EXTRACT_PROCESSES": "2"})
        while True:
            time.sleep(0.2)
            with sqlite3.connect(cache) as db:
                try:
                    if db.execute("SELECT count(*) FROM results WHERE stage='extract'"
                                  ).fetchone()[0] >= 3:
                        break
                except sqlite3.OperationalError:
                    continue
        ours = descendants(proc.pid)
        proc.kill()
        proc.communicate()
        time.sleep(2)
        left = alive(ours)
        print(f"c. kill -9 of run during extraction: {len(ours)} processes of ours "
              f"before, {len(left)} alive 2 s after")
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    finally:
        slow.stop()


def part_files(folder: Path) -> None:
    fifo = folder / "pipe.html"
    os.mkfifo(fifo)
    sparse = folder / "huge.html"
    with open(sparse, "wb") as f:
        f.truncate(2 * 1024**3)
    page = folder / "ok.html"
    page.write_text("<html><head><title>t</title></head><body><p>Words.</p></body></html>")
    source = folder / "files.txt"
    source.write_text(f"file:///dev/zero\n{fifo.as_uri()}\n{sparse.as_uri()}\n"
                      f"{page.as_uri()}\n")
    started = time.monotonic()
    proc = run([str(source), "-q", "--allow-file-root", "/dev"], folder / "d.sqlite")
    out, _ = proc.communicate()
    wall = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    got = {r["url"].rsplit("/", 1)[-1]: r["stages"]["fetch"]["reason"] or "ok"
           for r in map(json.loads, out.splitlines())}
    print(f"d. files: {got} in {wall:.1f} s; peak RSS of the largest child so far "
          f"{peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["deadline", "sigterm", "orphans", "files"])
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()
    allow_loopback()
    # Hosts of their own (as on the web): the per-host limit and the breaker count apart.
    silent = serve("silent", host="127.0.0.2")
    trickle = serve("trickle", 1.0, host="127.0.0.3")
    pages = PageServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if args.only in (None, "files"):
                part_files(folder)
            if args.only in (None, "orphans"):
                part_orphans(folder)
            if args.only in (None, "deadline"):
                part_deadline(folder, pages, silent.base, trickle.base, args.deadline)
            if args.only in (None, "sigterm"):
                part_sigterm(folder, pages, silent.base, trickle.base, args.deadline)
    finally:
        pages.stop()
        for proc in (silent, trickle):
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
