"""Queue scale-out benchmark (issue 9). Prints figures; asserts nothing.

    python bench/bench_queue.py                      # local, then 1, 2 and 4 workers
    python bench/bench_queue.py --workers 1,4 -n 200

A latency-bound load: tiny pages served with fixed latency and summaries from
the fake LLM server with fixed latency, so waiting (not CPU) is the limit. The
local run and every worker use the same concurrency (bookmarks and LLM requests
in flight); each configuration gets a fresh cache. Throughput is the pipeline's
own figure (bookmarks / run wall time, process start-up excluded), printed as a
ratio to the local run. Targets: >= 0.9x with 1 worker, >= 3.5x with 4.
Needs the Redis at 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _env import allow_loopback  # noqa: E402

from tests.servers.llm import LLMServer  # noqa: E402
from tests.servers.pages import serve_in_process  # noqa: E402
from tests.servers.redis import RedisServer  # noqa: E402

allow_loopback()  # the benchmark's servers are on loopback

TINY = ("<html><head><title>Garden {n}</title></head><body><article><h1>Garden</h1>"
        "<p>Urban gardens turn empty lots into shared green space. Volunteers plant "
        "tomatoes, beans and herbs in raised beds built from reclaimed timber.</p>"
        "</article></body></html>")
RATE = re.compile(r"([\d.]+)/s in ([\d.]+)s")


def run_rate(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run the CLI; return (bookmarks per second, seconds) from its summary."""
    proc = subprocess.run([sys.executable, "-m", "bookmark_enrich", *args], env=env,
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    match = RATE.search(proc.stderr)
    if match is None:
        raise SystemExit(f"no summary line in: {proc.stderr[-2000:]}")
    return float(match.group(1)), float(match.group(2))


def wait_for_workers(redis: RedisServer, name: str, count: int, timeout: float = 60) -> None:
    client: Any = redis.client()
    deadline = time.monotonic() + timeout
    with client:
        while time.monotonic() < deadline:
            if len(list(client.scan_iter(match=f"{name}:workers:*"))) >= count:
                return
            time.sleep(0.1)
    raise SystemExit("the workers did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=200, help="bookmarks per run")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="bookmarks (and LLM requests) in flight per process")
    parser.add_argument("--page-latency", type=float, default=0.3)
    parser.add_argument("--llm-latency", type=float, default=0.8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", default="1,2,4")
    opts = parser.parse_args()

    redis = RedisServer()
    if not redis.available():
        print("no Redis at 127.0.0.1:6379: nothing to measure")
        return
    pages = {f"p{i}": TINY.format(n=i).encode() for i in range(opts.n)}
    page_proc = serve_in_process(opts.page_latency, pages)
    llm = LLMServer(latency=opts.llm_latency).start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    source = tmp / "urls.txt"
    source.write_text("".join(f"{page_proc.base}/raw/p{i}\n" for i in range(opts.n)))
    c = str(opts.concurrency)
    env = {**os.environ, "ENABLE_AI_SUMMARIZATION": "true", "ENABLE_MEDIA_DOWNLOAD": "false",
           "LM_STUDIO_API_URL": llm.base_url, "BOOKMARK_ENRICH_LLM_CONCURRENCY": c,
           "BOOKMARK_ENRICH_EXTRACT_PROCESSES": "0", "BOOKMARK_ENRICH_CONCURRENCY": c}
    print(f"{opts.n} bookmarks; pages {opts.page_latency * 1000:.0f} ms, LLM "
          f"{opts.llm_latency * 1000:.0f} ms; concurrency {c} per process; "
          f"batch {opts.batch_size}")
    results: list[tuple[str, float, float]] = []
    try:
        rate, secs = run_rate(["run", str(source), "-c", c],
                              {**env, "BOOKMARK_ENRICH_CACHE": str(tmp / "local.sqlite")})
        results.append(("local", rate, secs))
        print(f"  local      {rate:7.1f} bookmarks/s  ({secs:.1f} s)", flush=True)
        for count in (int(x) for x in opts.workers.split(",")):
            name = redis.fresh_name("bench")
            workers = [subprocess.Popen(
                [sys.executable, "-m", "bookmark_enrich", "worker", "--queue", redis.url,
                 "--queue-name", name, "-c", c], env=env, cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
            try:
                wait_for_workers(redis, name, count)
                time.sleep(1.0)  # long-lived workers: let their start-up CPU settle
                rate, secs = run_rate(
                    ["run", str(source), "--queue", redis.url, "--queue-name", name,
                     "--batch-size", str(opts.batch_size)],
                    {**env, "BOOKMARK_ENRICH_CACHE": str(tmp / f"q{count}.sqlite")})
            finally:
                for proc in workers:
                    proc.terminate()
                for proc in workers:
                    proc.wait(timeout=30)
                redis.cleanup(name)
            results.append((f"{count} worker(s)", rate, secs))
            print(f"  {count} worker(s) {rate:7.1f} bookmarks/s  ({secs:.1f} s)  "
                  f"{rate / results[0][1]:.2f}x local", flush=True)
    finally:
        llm.stop()
        page_proc.terminate()
        page_proc.wait()
    print(json.dumps({label: {"per_s": round(rate, 2), "x_local": round(rate / results[0][1], 2)}
                      for label, rate, _ in results}))


if __name__ == "__main__":
    main()
