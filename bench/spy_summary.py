"""Main-process CPU split by activity, from a py-spy raw profile of bench_core part (b).

    py-spy record -r 200 -f raw -o spy.txt -- python bench/bench_core.py --part b
    python bench/spy_summary.py spy.txt [--ms-per-page 4.0]

Only the main process is sampled (no ``--subprocesses``); the samples of the measured
run are kept (the warm-up, imports and the in-process trafilatura timing are dropped,
threads are kept). Each sample goes to the activity of its innermost frame that
matches one; ``--ms-per-page`` (the run's main-process CPU per page) turns the shares
into milliseconds.
"""

from __future__ import annotations

import argparse
import collections
import re

_HTTP = r"\((httpx|httpcore|h11|anyio|sniffio|idna|ssl)[/.]"
_POOL = r"\((concurrent/futures|multiprocessing|pickle|copyreg)[/.]|bookmark_enrich/workers\.py"
_FETCH = r"bookmark_enrich/(stages/fetch|extraction/parked|extraction/documents)\.py"
_PIPELINE = (r"bookmark_enrich/(pipeline|models|events|stages/base|stages/extract|sinks)"
             r"|\(json/|run_urls \(")
ACTIVITIES = tuple((name, re.compile(pattern)) for name, pattern in (
    ("HTTP client (httpx, httpcore, h11, anyio)", _HTTP),
    ("process pool (concurrent.futures, multiprocessing, pickle)", _POOL),
    ("fetch stage (headers, body, parked check)", _FETCH),
    ("cache (SQLite)", r"bookmark_enrich/cache\.py|sqlite"),
    ("pipeline, records, output", _PIPELINE),
    ("source reading", r"bookmark_enrich/(sources|urls)"),
    ("imports", r"importlib"),
    ("event loop (asyncio)", r"\(asyncio/|selectors\.py"),
    ("threads (other)", r"threading\.py"),
))


def classify(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, pattern in ACTIVITIES:
            if pattern.search(frame):
                return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile")
    parser.add_argument("--ms-per-page", type=float)
    args = parser.parse_args()
    counts: collections.Counter[str] = collections.Counter()
    with open(args.profile) as f:
        for line in f:
            stack_text, _, n = line.rstrip("\n").rpartition(" ")
            stack = stack_text.split(";")
            main_thread = stack[0].startswith("<module>")
            if main_thread and "measured_run (" not in stack_text:
                continue  # start-up, the warm-up run, the in-process trafilatura timing
            counts[classify(stack)] += int(n)
    total = sum(counts.values())
    for name, n in counts.most_common():
        ms = f"  {n / total * args.ms_per_page:.2f} ms/page" if args.ms_per_page else ""
        print(f"{n / total:6.1%}{ms}  {name}")
    print(f"{total} samples")


if __name__ == "__main__":
    main()
