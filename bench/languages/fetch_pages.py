"""Bring the hand-checked multilingual pages (``pages.tsv``) onto this machine.

    python bench/languages/fetch_pages.py --from adbar/trafilatura=/path/to/trafilatura \\
        --from mozilla/readability=/path/to/readability ... [--out DIR]
    python bench/languages/fetch_pages.py --clone-into ~/src/fixtures   # downloads

The pages are other projects' public test fixtures (trafilatura, Mozilla Readability,
Postlight Parser, newspaper4k, goose3): 355 pages, about 40 MB, so the repository keeps
only this list and a few of them under ``tests/fixtures/pages/``. Each page is read from
a clone of its repository at the pinned commit (``git cat-file``), checked against its
SHA-256 and written gzipped to ``DIR/<id>.html.gz`` (default
``bench/languages/pages/``, which git ignores). ``--clone-into`` clones the five
repositories first: the only step here that uses the network, and only when asked.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "pages.tsv"
DEFAULT_OUT = HERE / "pages"


def read_manifest(path: Path = MANIFEST) -> list[dict[str, str]]:
    """The rows of ``pages.tsv``: id, language, repo, commit, path, sha256, note."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def clone(repo: str, into: Path) -> Path:
    target = into / repo.replace("/", "+")
    if not target.exists():
        # Blobs arrive on demand: only the pages we read are downloaded in full.
        subprocess.run(["git", "clone", "--quiet", "--filter=blob:none", "--no-checkout",
                        f"https://github.com/{repo}.git", str(target)], check=True)
    return target


def blob(git_dir: Path, commit: str, path: str) -> bytes:
    return subprocess.run(["git", "-C", str(git_dir), "cat-file", "blob", f"{commit}:{path}"],
                          check=True, capture_output=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="sources", action="append", default=[],
                        metavar="OWNER/NAME=GIT_DIR", help="a local clone of one repository")
    parser.add_argument("--clone-into", type=Path, help="clone the repositories here first")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rows = read_manifest()
    sources = dict(s.split("=", 1) for s in args.sources)
    if args.clone_into:
        for repo in sorted({r["repo"] for r in rows} - set(sources)):
            sources[repo] = str(clone(repo, args.clone_into))
    missing = sorted({r["repo"] for r in rows} - set(sources))
    if missing:
        sys.exit("no clone given for: " + ", ".join(missing) + " (use --from or --clone-into)")
    args.out.mkdir(parents=True, exist_ok=True)
    bad = 0
    for row in rows:
        target = args.out / f"{row['id']}.html.gz"
        if target.exists():
            continue
        body = blob(Path(sources[row["repo"]]), row["commit"], row["path"])
        if hashlib.sha256(body).hexdigest() != row["sha256"]:
            print(f"{row['id']}: checksum differs, skipped", file=sys.stderr)
            bad += 1
            continue
        target.write_bytes(gzip.compress(body, mtime=0))
    print(f"{len(rows) - bad} pages in {args.out}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
