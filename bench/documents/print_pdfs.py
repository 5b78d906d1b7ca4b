"""Print the shared corpus pages to PDF with headless Chromium, offline.

    python bench/documents/print_pdfs.py [--out bench/documents/pdfs] [--jobs 2] [NAME ...]

Each page (``article-extraction-benchmark/html/<sha>.html.gz``) is unpacked to a temp
folder and printed from ``file://`` with Chromium's default running header and footer
(date, title, URL, ``n/m``), which the PDF extractor must drop. Every host name
resolves to nothing (``--host-resolver-rules``), so the pages' outside scripts, styles
and images fail to load and nothing leaves the machine. The test suite never prints:
the few PDFs it needs are committed under ``tests/fixtures/documents/``; the bench
re-prints the rest into the git-ignored ``bench/documents/pdfs/``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get(
    "BOOKMARK_ENRICH_CORPUS",
    HERE.parents[2] / "shared" / "corpus" / "article-extraction-benchmark"))
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/corpus/article-extraction-benchmark")

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost',
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no chromium on PATH (apt-get install chromium)")


def unpack(name: str, folder: Path) -> Path:
    """The page as a local file; a UTF-8 page that declares no charset gets one."""
    body = gzip.decompress((CORPUS / "html" / f"{name}.html.gz").read_bytes())
    if not re.search(rb"<meta[^>]+charset", body[:4096], re.IGNORECASE):
        try:
            body.decode("utf-8")
            body = b'<meta charset="utf-8">' + body
        except UnicodeDecodeError:
            pass
    page = folder / f"{name}.html"
    page.write_bytes(body)
    return page


def print_one(browser: str, name: str, out: Path) -> str:
    target = out / f"{name}.pdf"
    if target.exists():
        return f"{name}: kept"
    with tempfile.TemporaryDirectory(prefix="print-", ignore_cleanup_errors=True) as tmp:
        page = unpack(name, Path(tmp))
        cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile",
               f"--print-to-pdf={tmp}/out.pdf", page.as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=180, check=False)
        except subprocess.TimeoutExpired:
            return f"{name}: timed out"
        printed = Path(tmp) / "out.pdf"
        if not printed.exists() or printed.stat().st_size == 0:
            return f"{name}: no PDF"
        shutil.move(printed, target)
    return f"{name}: {target.stat().st_size // 1024} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "pdfs")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("names", nargs="*", help="page names (default: all 181)")
    args = parser.parse_args()
    names = args.names or sorted(p.name.removesuffix(".html.gz")
                                 for p in (CORPUS / "html").glob("*.html.gz"))
    args.out.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda n: print_one(browser, n, args.out), names):
            print(line, file=sys.stderr)


if __name__ == "__main__":
    main()
