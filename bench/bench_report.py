"""How long `report` takes, how much memory it needs and how big the page gets.

Fills a cache with N synthetic bookmarks (four stages each, 15% failing, tags,
keywords, languages, media, LLM usage) spread over a few hundred hosts, then
times building the report of the whole cache (``--all``) and of the last run,
and the metrics file, in a child process each so peak memory (ru_maxrss) is the
report's own.

    python -m bench.bench_report --bookmarks 100000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bookmark_enrich.cache import ResultCache
from bookmark_enrich.models import Bookmark, StageOutcome

TAGS = [f"topic {i}" for i in range(300)]
WORDS = [f"keyword{i}" for i in range(2000)]
LANGS = ["en", "en", "en", "de", "fr", "es", "ja", "pt"]
REASONS = ["timeout", "not_found", "connection_error", "server_error"]


def _outcomes(rng: random.Random, i: int) -> dict[str, StageOutcome]:
    now = time.time()
    if rng.random() < 0.12:
        return {"fetch": StageOutcome(status="failed", reason=rng.choice(REASONS),
                                      message="HTTP 404" * rng.randint(1, 3),
                                      duration=rng.random(), finished_at=now, attempts=2)}
    out = {
        "fetch": StageOutcome.ok({"final_url": f"https://h{i % 700}.example/p/{i}",
                                  "content_type": "text/html; charset=utf-8",
                                  "http_status": 200}),
        "extract": StageOutcome.ok({"title": f"Page <{i}> & co", "language": rng.choice(LANGS),
                                    "word_count": int(rng.lognormvariate(6.5, 1))}),
    }
    if rng.random() < 0.03:
        out["summarize"] = StageOutcome(status="failed", reason="bad_json", message="bad",
                                        finished_at=now)
    else:
        out["summarize"] = StageOutcome.ok({
            "summary": "A summary. " * 5, "tags": rng.sample(TAGS, 4),
            "keywords": rng.sample(WORDS, 6), "summarizer": "llm", "model": "bench-7b",
            "llm": {"calls": 1, "prompt_tokens": 1200, "completion_tokens": 150,
                    "latency_ms": [rng.randint(300, 4000)], "parts": 1, "repairs": 0,
                    "prompt_json": 0}})
    if i % 50 == 0:
        out["media"] = StageOutcome.ok({"media": [{"uri": f"s3://b/media/{i}.mp4",
                                                   "bytes": 5_000_000, "kind": "video"}]})
    for o in out.values():
        o.duration = rng.random()
        o.finished_at = now
    return out


def fill(path: Path, n: int, runs: int = 5) -> None:
    rng = random.Random(18)
    with ResultCache(path) as cache:
        per_run = n // runs
        for r in range(runs):
            run_id = cache.start_run("bench.jsonl", "jsonl", {"concurrency": 32,
                                                              "lm_studio_api_key": "********"})
            counts = {"total": 0, "ok": 0, "partial": 0, "failed": 0}
            for i in range(r * per_run, (r + 1) * per_run):
                url = f"https://h{i % 700}.example/p/{i}"
                b = Bookmark(url=url, normalized=url, key=f"k{i}", record={"url": url},
                             position=i)
                outcomes = _outcomes(rng, i)
                cache.put(b, outcomes, run_id, "bench.jsonl")
                counts["total"] += 1
                statuses = {o.status for o in outcomes.values()}
                counts["failed" if statuses == {"failed"} else
                       "partial" if "failed" in statuses else "ok"] += 1
            cache.finish_run(run_id, "finished", {**counts, "wall_seconds": 60.0})


def child(cache: str, target: str, mode: str) -> None:
    from bookmark_enrich.report import write_report, write_run_metrics

    start = time.perf_counter()
    with ResultCache(Path(cache), readonly=True) as c:
        if mode == "metrics":
            size = write_run_metrics(c, None, Path(target))
        else:
            size = write_report(c, Path(target), whole=mode == "all", cache_path=cache)["bytes"]
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "seconds": round(seconds, 2), "bytes": size,
                      "peak_rss_mb": round(rss, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bookmarks", type=int, default=100_000)
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache.sqlite"
        t = time.perf_counter()
        fill(cache, args.bookmarks)
        print(f"filled {args.bookmarks:,} bookmarks in {time.perf_counter() - t:.1f} s "
              f"({cache.stat().st_size / 1e6:.0f} MB)")
        for mode, name in (("all", "all.html"), ("last", "last.html"),
                           ("metrics", "run.prom")):
            subprocess.run([sys.executable, "-m", "bench.bench_report", "--child", str(cache),
                            str(Path(tmp) / name), mode], check=True)


if __name__ == "__main__":
    main()
