"""PDF extraction speed: pypdfium2 (ours) against pypdf, one core; then the pool.

    python bench/documents/bench_speed.py [--pdfs DIR ...] [--pool 1,2] [--limit N]

Default files: the Chromium-printed corpus (``bench/documents/pdfs``, see
print_pdfs.py) and the PDF manuals under ``/usr/share/doc`` (Debian -doc packages).
One core: each file read in turn in this process, ``extract_document`` (text in
reading order, furniture removed, metadata) against pypdf's ``extract_text`` and
metadata on the same bytes. Pool: every file through ``run_cpu_limited`` at once,
with 1 and then 2 worker processes. Prints pages/s and MB/s; notes the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bookmark_enrich import workers  # noqa: E402
from bookmark_enrich.extraction import extract_document  # noqa: E402
from bookmark_enrich.extraction.documents import DocumentError  # noqa: E402


def load(folders: list[Path], limit: int) -> list[tuple[str, bytes]]:
    files: list[tuple[str, bytes]] = []
    for folder in folders:
        for path in sorted(folder.rglob("*.pdf*")):
            if path.suffix == ".gz":
                files.append((path.name, gzip.decompress(path.read_bytes())))
            elif path.suffix == ".pdf":
                files.append((path.name, path.read_bytes()))
    return files[:limit] if limit else files


def ours(body: bytes) -> int:
    try:
        meta, _ = extract_document(body, "pdf", "https://x.test/a.pdf")
    except DocumentError:
        return 0
    return int(meta["page_count"])


def theirs(body: bytes) -> int:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # one warning per odd font

    try:
        reader = PdfReader(io.BytesIO(body))
        _ = reader.metadata
        for page in reader.pages:
            page.extract_text()
        return len(reader.pages)
    except Exception:
        return 0


def one_core(files: list[tuple[str, bytes]], func: object, name: str) -> None:
    pages = 0
    size = 0
    start = time.process_time()
    for _, body in files:
        pages += func(body)  # type: ignore[operator]
        size += len(body)
    spent = time.process_time() - start
    print(f"{name:9} one core: {pages} pages, {size / 1e6:.1f} MB in {spent:.1f} s CPU = "
          f"{pages / spent:.1f} pages/s, {size / 1e6 / spent:.2f} MB/s")


async def pool(files: list[tuple[str, bytes]], processes: int) -> None:
    await workers.run_cpu(processes, len, b"warm")  # start the workers first
    await asyncio.gather(*(workers.run_cpu(processes, ours, b) for _, b in files[:processes]))
    start = time.perf_counter()
    counts = await asyncio.gather(*(workers.run_cpu_limited(processes, 300, ours, body)
                                    for _, body in files))
    spent = time.perf_counter() - start
    size = sum(len(b) for _, b in files)
    print(f"pool of {processes}: {sum(counts)} pages in {spent:.1f} s wall = "
          f"{sum(counts) / spent:.1f} pages/s, {size / 1e6 / spent:.2f} MB/s")
    workers.shutdown_pool()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=Path, nargs="*",
                        default=[HERE / "pdfs", Path("/usr/share/doc")])
    parser.add_argument("--pool", default="1,2")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--skip-pypdf", action="store_true")
    args = parser.parse_args()
    files = load(args.pdfs, args.limit)
    print(f"{len(files)} PDFs; load average before: {os.getloadavg()}")
    one_core(files, ours, "pypdfium2")
    if not args.skip_pypdf:
        one_core(files, theirs, "pypdf")
    for processes in (int(p) for p in args.pool.split(",") if p):
        asyncio.run(pool(files, processes))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
