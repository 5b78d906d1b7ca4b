"""URL parsing and normalization (issue 16): URLs per second on one core. Asserts nothing.

    python bench/bench_urls.py [--n 200000]

``parse``: ada (the WHATWG URL Standard) parsing each URL and reading its host, path
and query. ``resolve+normalize``: what the core does per bookmark before any fetch
(validation, the browser's reading, the de-duplication form, the cache key).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def urls(n: int) -> list[str]:
    shapes = ("https://www.Example{i}.com/path/{i}/page.html?id={i}&utm_source=x#frag",
              "http://blog.example.org/{i}/", "https://news.example.com/item?id={i}",
              "https://example.net/a/b/../c/{i}?q=caf%C3%A9&kr{i}")
    return [shapes[i % len(shapes)].format(i=i % 997) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    from ada_url import URL

    from bookmark_enrich.urls import bookmark_key, normalize_url, resolve_url

    data = urls(args.n)

    def parse() -> None:
        for u in data:
            parsed = URL(u)
            parsed.hostname, parsed.pathname, parsed.search  # noqa: B018

    def core() -> None:
        for u in data:
            bookmark_key(normalize_url(resolve_url(u)))

    for name, fn in (("parse (host, path, query)", parse), ("resolve+normalize+key", core)):
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            fn()
            best = max(best, args.n / (time.perf_counter() - t))
        print(f"{name:28} {best:>12,.0f} URLs/s")


if __name__ == "__main__":
    main()
