"""Built-in summarizer vs extraction (issue 4). Prints figures; asserts nothing.

    python bench/bench_builtin.py [--repeat 2] [--pool]

On the shared corpus pages (``article-extraction-benchmark/html/*.html.gz``):

1. extraction alone (the extract stage's worker function) on one core, pages/s;
2. the built-in summarizer alone (``summarize_page``) on the extracted text and
   metadata, on one core, pages/s; and without its YAKE keywords (TextRank and tags);
3. with ``--pool``: both through the shared process pool (``workers.run_cpu``) the
   way a run does, all pages in flight at once, pages/s.

The summarizer is not the bottleneck when (2) is well above (1): a run spends most
of its CPU on extraction either way.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with warnings.catch_warnings():  # urllib3 warns about SOCKS when trafilatura imports it
    warnings.simplefilter("ignore")
    import trafilatura  # noqa: F401

from bookmark_enrich.extraction import extract
from bookmark_enrich.summarizers import builtin
from bookmark_enrich.summarizers.builtin import summarize_page
from bookmark_enrich.workers import run_cpu, shutdown_pool

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / \
    "article-extraction-benchmark" / "html"


def load_pages() -> list[bytes]:
    corpus = Path(os.environ.get("BOOKMARK_ENRICH_CORPUS", CORPUS))
    if not corpus.is_dir():
        corpus = Path("/work/shared/corpus/article-extraction-benchmark/html")
    files = sorted(corpus.glob("*.html.gz"))
    if not files:
        sys.exit(f"no corpus pages in {corpus}")
    return [gzip.decompress(f.read_bytes()) for f in files]


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:7.1f} pages/s ({1000 * seconds / count:5.1f} ms/page)"


def sequential(bodies: list[bytes], repeat: int) -> list[tuple[dict[str, Any], str]]:
    """Each page extracted then summarized in turn, so a change of load on the shared
    machine hits both figures alike."""
    docs: list[tuple[dict[str, Any], str]] = []
    t_extract = t_builtin = cpu_builtin = 0.0
    summaries = 0
    for _ in range(repeat):
        docs = []
        for i, body in enumerate(bodies):
            start = time.perf_counter()
            found = extract(body, None, f"https://example.org/{i}")
            t_extract += time.perf_counter() - start
            if found is None:
                continue
            docs.append(found)
            start, cpu = time.perf_counter(), time.process_time()
            summaries += summarize_page(found[1], found[0], 5, True) is not None
            t_builtin += time.perf_counter() - start
            cpu_builtin += time.process_time() - cpu
    print(f"extraction, 1 core:          {rate(len(bodies) * repeat, t_extract)}")
    print(f"built-in summarizer, 1 core: {rate(len(docs) * repeat, t_builtin)} "
          f"({summaries // repeat}/{len(docs)} pages summarized)")
    # CPU time is what the summarizer costs; wall time also counts other agents' load.
    print(f"  CPU time per page:         {1000 * cpu_builtin / (len(docs) * repeat):5.1f} ms")

    # Where the summarizer's time goes: everything but YAKE.
    keywords = builtin._keywords
    builtin._keywords = lambda text, language: []
    start = time.perf_counter()
    for meta, text in docs:
        summarize_page(text, meta, 5, True)
    t_rest = time.perf_counter() - start
    builtin._keywords = keywords
    print(f"  without YAKE keywords:     {rate(len(docs), t_rest)}")
    words = sum(len(text.split()) for _, text in docs) / max(1, len(docs))
    print(f"  mean extracted words/page: {words:.0f}")
    ratio = (len(docs) * repeat / t_builtin) / (len(bodies) * repeat / t_extract)
    print(f"summarizer / extraction throughput: {ratio:.2f}x")
    return docs


def _warm_up() -> None:
    summarize_page("Warm up the summarizer. It reads stop words first.", {}, 5, True)
    time.sleep(0.2)  # keep this worker busy so the next warm-up goes to another


async def pooled(bodies: list[bytes], docs: list[tuple[dict[str, Any], str]],
                 processes: int) -> None:
    # Every worker imports YAKE and numpy on its first summary: one slow call each first.
    await asyncio.gather(*(run_cpu(processes, _warm_up) for _ in range(2 * processes)))
    start = time.perf_counter()
    await asyncio.gather(*(run_cpu(processes, extract, b, None, f"https://example.org/{i}")
                           for i, b in enumerate(bodies)))
    t_extract = time.perf_counter() - start
    start = time.perf_counter()
    await asyncio.gather(*(run_cpu(processes, summarize_page, text, meta, 5, True)
                           for meta, text in docs))
    t_builtin = time.perf_counter() - start
    print(f"pool of {processes}: extraction {rate(len(bodies), t_extract)}; "
          f"built-in summarizer {rate(len(docs), t_builtin)}")
    shutdown_pool()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pool", action="store_true", help="also measure through the pool")
    args = parser.parse_args()
    bodies = load_pages()
    print(f"{len(bodies)} corpus pages, {args.repeat} passes; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    # First call imports numpy/yake and reads stop words; keep it out of the figures.
    summarize_page("Warm up the summarizer. It reads stop words first.", {}, 5, True)
    extract(b"<html><body><p>warm up</p></body></html>", "utf-8", "http://localhost/")
    docs = sequential(bodies, args.repeat)
    if args.pool:
        asyncio.run(pooled(bodies, docs, os.cpu_count() or 1))


if __name__ == "__main__":
    main()
