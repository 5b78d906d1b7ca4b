"""Search at scale (issue 22): index build, text and semantic query latency, index size.

    python bench/bench_search.py [--count 100000] [--words 200] [--dims 768] [--queries 200]

Fills a fresh cache with ``--count`` synthetic enriched bookmarks (Zipf-distributed
words, a title, tags, a summary and ``--words`` words of text each), then measures:

- the first-use index build (what the first ``search`` on an old cache does);
- text query latency (bm25 over FTS5 with the filters' join), library call and the whole
  result (records and snippets), p50/p95 over ``--queries`` queries of 1-3 words;
- semantic query latency at ``--dims`` dimensions: the vectors' load (once a process) and
  the numpy top-k (the query's own embedding is the server's time, not counted);
- the index's size against the cache's, and (on a 10,000 subset) a content-storing FTS5
  table with FTS5's own snippet() against the contentless one with Python snippets.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bookmark_enrich import load_settings
from bookmark_enrich.cache import ResultCache
from bookmark_enrich.finder import Finder
from bookmark_enrich.search.query import parse_query
from bookmark_enrich.search.ranking import snippet, text_search
from bookmark_enrich.search.vectors import VectorSet

SYLLABLES = ["ka", "lo", "mi", "ne", "tu", "ra", "si", "po", "de", "fa", "gu", "ve", "zo", "bi"]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def fill(path: Path, count: int, words: int, rng: random.Random) -> list[str]:
    vocab = vocabulary(30_000, rng)
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf
    tags = vocab[200:400]
    ResultCache(path).close()
    conn = sqlite3.connect(path)
    now = time.time()
    for start in range(0, count, 5000):
        rows_b, rows_r = [], []
        for i in range(start, min(count, start + 5000)):
            key = f"k{i:08d}"
            url = f"https://site{i % 500}.example/post/{i}"
            text = " ".join(rng.choices(vocab, weights, k=words))
            title = " ".join(rng.choices(vocab[100:], k=6))
            rows_b.append((key, url, url, json.dumps({"url": url}), "bench", i, now, now))
            rows_r.append((key, "fetch", "ok", json.dumps({"final_url": url}), None))
            rows_r.append((key, "extract", "ok", json.dumps(
                {"title": title, "language": "en", "site_name": f"Site {i % 500}"}), text))
            rows_r.append((key, "summarize", "ok", json.dumps(
                {"summary": " ".join(rng.choices(vocab, weights, k=40)),
                 "keywords": rng.sample(vocab[50:2000], 5), "tags": rng.sample(tags, 3)}),
                None))
        with conn:
            conn.executemany("INSERT INTO bookmarks (key, url, normalized, record, source, "
                             "position, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?)", rows_b)
            conn.executemany("INSERT INTO results (key, stage, status, output, text, "
                             "attempts, run_id, finished_at) VALUES (?,?,?,?,?,1,1,0)", rows_r)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return vocab


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def size_of(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def index_bytes(conn: sqlite3.Connection, like: str) -> int | None:
    try:
        row = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE ?", (like,)).fetchone()
        return int(row[0] or 0)
    except sqlite3.OperationalError:
        return None


def bench_text(path: Path, vocab: list[str], queries: int, rng: random.Random) -> None:
    settings = load_settings(cache=path)
    mid = vocab[300:3000]
    texts = [" ".join(rng.sample(mid, rng.randint(1, 3))) for _ in range(queries)]
    with Finder(settings) as finder:
        raw, full = [], []
        for q in texts:
            t0 = time.perf_counter()
            text_search(finder.conn, parse_query(q), 20)
            raw.append((time.perf_counter() - t0) * 1000)
        for q in texts:
            t0 = time.perf_counter()
            finder.search(q, mode="text", limit=20)
            full.append((time.perf_counter() - t0) * 1000)
        filtered = []
        for q in texts[:50]:
            t0 = time.perf_counter()
            finder.search(q + " site:site7.example lang:en", mode="text", limit=20)
            filtered.append((time.perf_counter() - t0) * 1000)
    print(f"text query, ranking only: p50 {pct(raw, .5):.1f} ms, p95 {pct(raw, .95):.1f} ms")
    print(f"text query, 20 records with snippets: p50 {pct(full, .5):.1f} ms, "
          f"p95 {pct(full, .95):.1f} ms")
    print(f"text query with site: and lang: filters: p95 {pct(filtered, .95):.1f} ms")


def bench_vectors(path: Path, count: int, dims: int, queries: int) -> None:
    import numpy as np

    rng = np.random.default_rng(22)
    conn = sqlite3.connect(path)
    with conn:
        for start in range(0, count, 5000):
            block = rng.standard_normal((min(count, start + 5000) - start, dims)).astype("<f4")
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            conn.executemany(
                "INSERT OR REPLACE INTO search_vectors (key, model, dim, vector) "
                "VALUES (?, 'bench', ?, ?)",
                [(f"k{start + i:08d}", dims, row.tobytes()) for i, row in enumerate(block)])
    t0 = time.perf_counter()
    vectors = VectorSet.load(conn, "bench")
    load = time.perf_counter() - t0
    times = []
    for _ in range(queries):
        q = rng.standard_normal(dims).astype("<f4")
        t0 = time.perf_counter()
        vectors.nearest(q, 100)
        times.append((time.perf_counter() - t0) * 1000)
    mb = vectors.matrix.nbytes / 1e6
    print(f"semantic, {len(vectors)} vectors × {dims} dims ({mb:.0f} MB): load {load:.2f} s "
          f"once a process; top-100 p50 {pct(times, .5):.1f} ms, p95 {pct(times, .95):.1f} ms")
    conn.close()


def bench_content_choice(path: Path, vocab: list[str], rng: random.Random) -> None:
    """A content-storing FTS5 table with snippet() vs the contentless one, on 10,000 rows."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE VIRTUAL TABLE cmp_fts USING fts5(title, text, "
                 "tokenize='unicode61 remove_diacritics 2', prefix='2 3')")
    conn.execute("CREATE VIRTUAL TABLE cmp_bare USING fts5(title, text, content='', "
                 "tokenize='unicode61 remove_diacritics 2', prefix='2 3')")
    rows = conn.execute("SELECT rowid, json_extract(output, '$.title'), text FROM results "
                        "WHERE stage = 'extract' LIMIT 10000").fetchall()
    with conn:
        conn.executemany("INSERT INTO cmp_fts (rowid, title, text) VALUES (?,?,?)", rows)
        conn.executemany("INSERT INTO cmp_bare (rowid, title, text) VALUES (?,?,?)", rows)
    with_content = index_bytes(conn, "cmp_fts%")
    bare = index_bytes(conn, "cmp_bare%")
    text_bytes = sum(len((r[2] or "").encode()) for r in rows)
    qs = [rng.choice(vocab[300:3000]) for _ in range(100)]
    t_fts, t_py = [], []
    for q in qs:
        t0 = time.perf_counter()
        conn.execute("SELECT snippet(cmp_fts, 1, '[', ']', '…', 30) FROM cmp_fts WHERE "
                     "cmp_fts MATCH ? ORDER BY rank LIMIT 20", (f'"{q}"',)).fetchall()
        t_fts.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        ids = [r for (r,) in conn.execute("SELECT rowid FROM cmp_bare WHERE cmp_bare MATCH ? "
                                          "ORDER BY rank LIMIT 20", (f'"{q}"',))]
        marks = ",".join("?" * len(ids))
        terms = parse_query(q).terms
        for (text,) in conn.execute(f"SELECT text FROM results WHERE rowid IN ({marks})", ids):
            snippet([text], terms)
        t_py.append((time.perf_counter() - t0) * 1000)
    print(f"10,000 texts ({text_bytes / 1e6:.1f} MB): FTS5 storing its content "
          f"{(with_content or 0) / 1e6:.1f} MB, contentless {(bare or 0) / 1e6:.1f} MB; "
          f"20 snippets: FTS5 snippet() p95 {pct(t_fts, .95):.1f} ms, Python from the cache "
          f"p95 {pct(t_py, .95):.1f} ms")
    with conn:
        conn.execute("DROP TABLE cmp_fts")
        conn.execute("DROP TABLE cmp_bare")
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--dims", type=int, default=768)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    rng = random.Random(22)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.sqlite"
        t0 = time.perf_counter()
        vocab = fill(path, args.count, args.words, rng)
        before = size_of(path)
        print(f"filled {args.count} bookmarks × {args.words} words in "
              f"{time.perf_counter() - t0:.1f} s; cache {before / 1e6:.0f} MB")
        t0 = time.perf_counter()
        with Finder(load_settings(cache=path)) as finder:
            finder.prepare()
        build = time.perf_counter() - t0
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        fts = index_bytes(conn, "search%")
        conn.close()
        after = size_of(path)
        print(f"index build (first use): {build:.1f} s; cache {before / 1e6:.0f} → "
              f"{after / 1e6:.0f} MB (index {(fts or after - before) / 1e6:.0f} MB, "
              f"{(fts or after - before) / before:.0%} of the cache before)")
        bench_text(path, vocab, args.queries, rng)
        bench_vectors(path, args.count, args.dims, args.queries)
        bench_content_choice(path, vocab, rng)


if __name__ == "__main__":
    main()
