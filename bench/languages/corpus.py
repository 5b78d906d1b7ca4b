"""The hand-checked multilingual pages, for the language benchmarks.

``pages.tsv`` lists each page (where it came from and its hand-checked language);
``fetch_pages.py`` brings the pages themselves into ``bench/languages/pages/``.
"""

from __future__ import annotations

import gzip
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

with warnings.catch_warnings():  # urllib3 warns about SOCKS when trafilatura imports it
    warnings.simplefilter("ignore")
    import trafilatura  # noqa: F401

from bench.languages.fetch_pages import read_manifest  # noqa: E402


@dataclass(slots=True)
class Page:
    id: str
    language: str
    """Hand-checked."""
    html: bytes
    note: str


def pages_dir() -> Path:
    return Path(os.environ.get("BOOKMARK_ENRICH_LANG_PAGES", HERE / "pages"))


def load_pages(limit: int | None = None) -> list[Page]:
    """Every page of the manifest; exits with a hint when they were not fetched."""
    folder = pages_dir()
    rows = read_manifest()[:limit]
    missing = [r["id"] for r in rows if not (folder / f"{r['id']}.html.gz").exists()]
    if missing:
        sys.exit(f"{len(missing)} pages missing in {folder}: run bench/languages/fetch_pages.py")
    return [Page(r["id"], r["language"], gzip.decompress((folder / f"{r['id']}.html.gz")
                                                         .read_bytes()), r["note"])
            for r in rows]


def extract_all(pages: list[Page]) -> list[tuple[Page, dict[str, Any], str]]:
    """Each page through the extract stage's worker function: (page, meta, text)."""
    from bookmark_enrich.extraction import extract

    out = []
    for page in pages:
        found = extract(page.html, None, f"https://example.org/{page.id}")
        meta, text = found if found is not None else ({}, "")
        out.append((page, meta, text))
    return out
