"""LLM summarize stage benchmark (issue 3). Prints figures; asserts nothing.

    python bench/bench_llm.py [--n 80] [--latency 0.25] [--concurrency 2,4]

Runs fetch → extract → summarize through the pipeline against the fake
OpenAI-compatible server (tests/servers/llm.py) answering every chat request after
a fixed latency. The LLM is the bottleneck by design, so the ideal rate is
llm_concurrency / latency bookmarks per second; the target is >= 0.9 of it.
Also prints the tokens each bookmark costs (as the fake server counts them).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _env import allow_loopback

from bookmark_enrich import enrich, load_settings, open_source
from tests.servers.llm import LLMServer
from tests.servers.pages import PageServer

allow_loopback()  # the benchmark's servers are on loopback


def run(urls: list[str], llm: LLMServer, cache: Path, concurrency: int) -> tuple[float, Any]:
    settings = load_settings(cache=cache, enable_media_download=False,
                             lm_studio_api_url=llm.base_url, llm_concurrency=concurrency)
    src = open_source("-", stdin=io.BytesIO(("\n".join(urls) + "\n").encode()))
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    stats = asyncio.run(enrich(src, settings, sink=records.append))
    elapsed = time.perf_counter() - start
    bad = [r for r in records if r["status"] != "ok"]
    assert len(records) == len(urls) and not bad, bad[:1]
    return elapsed, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=80, help="bookmarks per run")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per LLM answer")
    parser.add_argument("--concurrency", default="2,4", help="llm_concurrency values")
    args = parser.parse_args()
    pages = PageServer().start()
    llm = LLMServer(latency=args.latency).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Warm the extraction pool and the imports so start-up is not charged.
            run([pages.url("/article/warm")], llm, Path(tmp) / "warm.sqlite", 2)
            for conc in (int(c) for c in args.concurrency.split(",")):
                llm.reset()
                urls = [pages.url(f"/article/b{conc}-{i}") for i in range(args.n)]
                elapsed, stats = run(urls, llm, Path(tmp) / f"c{conc}.sqlite", conc)
                rate = args.n / elapsed
                ideal = conc / args.latency
                m = stats.metrics["summarize"]
                tokens = (m["prompt tokens"] + m["completion tokens"]) / args.n
                print(f"llm_concurrency {conc}, {args.latency * 1000:.0f} ms per answer, "
                      f"{args.n} bookmarks: {rate:.2f}/s = {rate / ideal:.2f} of ideal "
                      f"{ideal:.1f}/s (target >= 0.9); {m['llm calls']} calls, "
                      f"{tokens:.0f} tokens per bookmark ({m['prompt tokens'] / args.n:.0f} "
                      f"prompt + {m['completion tokens'] / args.n:.0f} completion)")
    finally:
        llm.stop()
        pages.stop()


if __name__ == "__main__":
    main()
