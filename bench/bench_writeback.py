"""Writeback benchmarks (issue 6). Prints figures; asserts nothing.

    python bench/bench_writeback.py                  # SQLite and PostgreSQL
    python bench/bench_writeback.py --rows 100000 --only sqlite

100,000 rows are read from a table in keyset pages (the real source) and every
one is updated with a typical output record through the real DbWriter (batched
transactions), as `run --writeback` does once results arrive. Read and update
are timed apart; targets: >= 20,000 rows/s SQLite, >= 5,000 rows/s PostgreSQL.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bookmark_enrich.dbapi import TableTarget
from bookmark_enrich.sources import RawRecord, open_source
from bookmark_enrich.writeback import DbWriter, WritebackOptions
from tests.servers.postgres import PostgresSchema, postgres_available


def output_record(row: dict[str, Any]) -> dict[str, Any]:
    n = row["id"]
    return {
        "status": "ok", "errors": [], "record": row,
        "enrichment": {
            "final_url": row["url"], "http_status": 200, "content_type": "text/html",
            "title": f"Tending a city garden #{n}", "author": "Ada Gardener",
            "language": "en", "word_count": 320, "site_name": "Test Site",
            "summary": "Urban gardens turn empty lots into shared green space; volunteers "
                       "grow vegetables and share the harvest with neighbours.",
            "keywords": ["gardening", "cities", "volunteers"],
            "tags": ["gardening", "urban", "community"],
            "summarizer": "builtin",
        },
    }


def measure(url: str, rows: int) -> tuple[float, float]:
    src = open_source(url)
    target = src.writeback_target()
    assert isinstance(target, TableTarget)
    writer = DbWriter(target, WritebackOptions(), lambda m: None)
    start = time.perf_counter()
    records = [output_record(item.record) for item in src.read() if isinstance(item, RawRecord)]
    read = time.perf_counter() - start
    assert len(records) == rows, len(records)
    start = time.perf_counter()
    for record in records:
        writer.add(record)
    writer.close()
    write = time.perf_counter() - start
    src.close()
    return rows / read, rows / write


def bench_sqlite(rows: int) -> None:
    import sqlite3

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE bookmarks (id INTEGER PRIMARY KEY, url TEXT, title TEXT, "
                     "summary TEXT, keywords TEXT, tags TEXT, media TEXT, metadata TEXT, "
                     "enriched_at TEXT)")
        conn.executemany("INSERT INTO bookmarks (url, title) VALUES (?, ?)",
                         ((f"https://example.org/{i}", f"t{i}") for i in range(rows)))
        conn.commit()
        conn.close()
        read, write = measure(f"sqlite:///{path}?table=bookmarks", rows)
    print(f"SQLite:     read {read:,.0f} rows/s, writeback {write:,.0f} rows/s "
          f"({rows:,} rows; target >= 20,000/s)")


def bench_postgres(rows: int) -> None:
    problem = postgres_available()
    if problem is not None:
        print(f"PostgreSQL: skipped ({problem})")
        return
    schema = PostgresSchema()
    try:
        table = schema.table("bookmarks")
        schema.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, url text, title text, "
                       "summary text, keywords text[], tags text[], media jsonb, "
                       "metadata jsonb, enriched_at timestamptz)")
        schema.execute(f"INSERT INTO {table} (id, url, title) SELECT g, "
                       "'https://example.org/' || g, 't' || g FROM generate_series(1, %s) g",
                       (rows,))
        read, write = measure(f"{schema.url}?table={table}", rows)
    finally:
        schema.drop()
    print(f"PostgreSQL: read {read:,.0f} rows/s, writeback {write:,.0f} rows/s "
          f"({rows:,} rows; target >= 5,000/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    if args.only in (None, "sqlite"):
        bench_sqlite(args.rows)
    if args.only in (None, "postgres"):
        bench_postgres(args.rows)


if __name__ == "__main__":
    main()
