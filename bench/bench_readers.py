"""Export readers (issue 8): entries per second and peak RSS. Prints figures; asserts nothing.

    python bench/bench_readers.py [--n 1000000] [--formats netscape,chrome,...]

Writes an N-entry file per format into a temp folder, then reads each in a fresh
child process (so every peak RSS is that reader's own): once with the reader
alone (``read/s``), once through URL validation and keys (``iter_bookmarks``,
``validated/s``), as a run does before any fetching. The baseline is the same
child importing everything and reading nothing. Rates are per second of the child's
CPU time (``time.process_time``), not wall time: on a shared machine the wall clock
counts the other processes' turns too, CPU time much less so.
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
from collections.abc import Callable
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ("garden", "python", "käse", "日本", "bike", "sourdough", "notes", "linux", "jazz")


def _title(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(4))


def write_netscape(out: IO[str], n: int, rng: random.Random) -> None:
    out.write("<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<TITLE>Bookmarks</TITLE>\n<DL><p>\n")
    for i in range(n):
        if i % 1000 == 0:
            if i:
                out.write("    </DL><p>\n")
            out.write(f"    <DT><H3>Folder {i // 1000}</H3>\n    <DL><p>\n")
        out.write(f'        <DT><A HREF="https://example.org/page/{i}" ADD_DATE="1700000000" '
                  f'TAGS="a,b">{_title(rng)}</A>\n')
    out.write("    </DL><p>\n</DL><p>\n")


def write_chrome(out: IO[str], n: int, rng: random.Random) -> None:
    """Chrome's own layout: sorted keys, 3-space indent, folders of 1,000 in the bar."""
    out.write('{\n   "checksum": "0",\n   "roots": {\n      "bookmark_bar": {\n'
              '         "children": [ ')
    for i in range(n):
        if i % 1000 == 0:
            out.write((' ], "name": "Folder", "type": "folder" }, ' if i else "")
                      + '{ "children": [ ')
        elif i:
            out.write(", ")
        out.write(json.dumps({"date_added": str(13340000000000000 + i), "date_last_used": "0",
                              "guid": f"00000000-0000-0000-0000-{i:012d}", "id": str(i + 10),
                              "meta_info": {"last_visited_desktop": "13340000000000000"},
                              "name": _title(rng), "type": "url",
                              "url": f"https://example.org/page/{i}"}, ensure_ascii=False))
    if n:
        out.write(' ], "name": "Folder", "type": "folder" }')
    out.write(' ],\n         "name": "Bookmarks bar",\n         "type": "folder"\n      }\n'
              '   },\n   "version": 1\n}\n')


def write_text(out: IO[str], n: int, rng: random.Random) -> None:
    for i in range(n):
        out.write(f"https://example.org/page/{i} {_title(rng)}\n")


def write_csv(out: IO[str], n: int, rng: random.Random) -> None:
    out.write("title,url,time_added,tags,status\n")
    for i in range(n):
        out.write(f"{_title(rng)},https://example.org/page/{i},1700000000,a|b,unread\n")


def write_onetab(out: IO[str], n: int, rng: random.Random) -> None:
    for i in range(n):
        out.write(f"https://example.org/page/{i} | {_title(rng)}\n")
        if i % 500 == 499:
            out.write("\n")


WRITERS: dict[str, tuple[str, Callable[[IO[str], int, random.Random], None]]] = {
    "netscape": ("bookmarks.html", write_netscape),
    "chrome": ("Bookmarks", write_chrome),
    "text": ("urls.txt", write_text),
    "pocket-csv": ("pocket.csv", write_csv),
    "onetab": ("onetab.txt", write_onetab),
}


def child(path: str | None) -> None:
    """Read ``path`` through the sources (nothing when None); print JSON figures."""
    from bookmark_enrich.models import Bookmark
    from bookmark_enrich.sources import iter_bookmarks, open_source

    count = issues = 0
    fmt = ""
    raw_seconds = seconds = 0.0
    if path is not None:
        # The reader alone (what this issue is about), then with URL validation and keys.
        src = open_source(path)
        fmt = src.format_name
        start = time.process_time()
        for _ in src.read():
            pass
        raw_seconds = time.process_time() - start
        src.close()
        src = open_source(path)
        start = time.process_time()
        for item in iter_bookmarks(src):
            if isinstance(item, Bookmark):
                count += 1
            else:
                issues += 1
        seconds = time.process_time() - start
        src.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"format": fmt, "entries": count, "issues": issues, "seconds": seconds,
                      "raw_seconds": raw_seconds, "peak_rss_mb": rss_mb}))


def run_child(path: Path | None) -> dict[str, float]:
    args = [sys.executable, __file__, "--child", str(path) if path else "-"]
    out = subprocess.run(args, capture_output=True, check=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--formats", default=",".join(WRITERS))
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child is not None:
        child(None if args.child == "-" else args.child)
        return
    rng = random.Random(8)
    base = run_child(None)
    print(f"baseline (imports only): peak RSS {base['peak_rss_mb']:.0f} MB")
    print(f"{'format':<12} {'entries':>9} {'file MB':>8} {'read/s':>10} {'validated/s':>12} "
          f"{'peak RSS MB':>11} {'over baseline':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.formats.split(","):
            filename, write = WRITERS[name]
            path = Path(tmp) / filename
            with open(path, "w", encoding="utf-8", buffering=1 << 20) as out:
                write(out, args.n, rng)
            r = run_child(path)
            size = path.stat().st_size / 1e6
            path.unlink()
            assert r["format"] == name, r
            total = r["entries"] + r["issues"]
            print(f"{name:<12} {r['entries']:>9,.0f} {size:>8.0f} "
                  f"{total / r['raw_seconds']:>10,.0f} {total / r['seconds']:>12,.0f} "
                  f"{r['peak_rss_mb']:>11.0f} {r['peak_rss_mb'] - base['peak_rss_mb']:>13.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
