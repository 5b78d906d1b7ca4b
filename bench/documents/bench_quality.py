"""Text quality of the Chromium-printed corpus PDFs against the benchmark's ground truth.

    python bench/documents/print_pdfs.py           # once: prints into bench/documents/pdfs
    python bench/documents/bench_quality.py [--pdfs DIR] [--pypdf]

For each printed page: word 4-gram shingles of the extracted text against those of
the ground truth's ``articleBody`` (precision, recall, F1, averaged per page), next to
the same page's HTML extraction (the extract stage's trafilatura path). Also counts
PDFs whose text still holds Chromium's running header or footer (print date, the
``file://`` URL, the ``n/m`` counter). ``--pypdf`` scores pypdf's text as well.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bench.documents.print_pdfs import CORPUS  # noqa: E402
from bookmark_enrich.extraction import extract as extract_html  # noqa: E402
from bookmark_enrich.extraction import extract_document  # noqa: E402

_WORD = re.compile(r"\w+")
FURNITURE = re.compile(r"file:///|\d{1,2}/\d{1,2}/\d{2}, \d{1,2}:\d{2} [AP]M")


def shingles(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(max(0, len(words) - n + 1))}


def score(found: str, truth: str) -> tuple[float, float, float]:
    """Precision, recall and F1 of ``found``'s shingles against ``truth``'s."""
    got, want = shingles(found), shingles(truth)
    if not want:
        return 1.0, 1.0, 1.0
    common = len(got & want)
    p = common / len(got) if got else 0.0
    r = common / len(want)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def raw_text(body: bytes) -> str:
    """Every character PDFium finds, no cleanup: what the printout holds at all."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(body)
    try:
        return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    finally:
        pdf.close()


def pypdf_text(path: Path) -> str:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # one warning per odd font

    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=Path, default=HERE / "pdfs")
    parser.add_argument("--pypdf", action="store_true")
    parser.add_argument("--worst", type=int, default=5)
    args = parser.parse_args()
    truth = json.loads((CORPUS / "ground-truth.json").read_text())
    rows = []
    for pdf in sorted(args.pdfs.glob("*.pdf")):
        name = pdf.stem
        body = pdf.read_bytes()
        meta, text = extract_document(body, "pdf", pdf.as_uri())
        html = gzip.decompress((CORPUS / "html" / f"{name}.html.gz").read_bytes())
        found = extract_html(html, None, truth[name]["url"])
        row = {"name": name, "pages": meta["page_count"],
               "pdf": score(text, truth[name]["articleBody"]),
               "html": score(found[1] if found else "", truth[name]["articleBody"]),
               "raw": score(raw_text(body), truth[name]["articleBody"]),
               "furniture": bool(FURNITURE.search(text))}
        if args.pypdf:
            row["pypdf"] = score(pypdf_text(pdf), truth[name]["articleBody"])
        rows.append(row)
    if not rows:
        sys.exit(f"no PDFs in {args.pdfs}: run print_pdfs.py first")
    empty = [r for r in rows if r["raw"][1] < 0.5]
    for row in empty:
        print(f"  printout without the article (raw recall {row['raw'][1]:.2f}): "
              f"{row['name']}")
    rows = [r for r in rows if r["raw"][1] >= 0.5]
    print(f"{len(rows)} PDFs, {sum(r['pages'] for r in rows)} pages (leaving out "
          f"{len(empty)} printouts that hold no article)")
    for key in ("pdf", "raw", "html", *(("pypdf",) if args.pypdf else ())):
        p, r, f = (statistics.mean(row[key][i] for row in rows) for i in range(3))
        low = sum(row[key][1] < 0.95 for row in rows)
        print(f"{key:6} precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}  "
              f"(recall < 0.95 on {low})")
    print(f"running header/footer left in {sum(r['furniture'] for r in rows)} PDFs")
    for row in sorted(rows, key=lambda r: r["pdf"][1])[:args.worst]:
        print(f"  worst recall {row['pdf'][1]:.3f} (raw {row['raw'][1]:.3f}, "
              f"html {row['html'][1]:.3f}) {row['name']}")


if __name__ == "__main__":
    main()
