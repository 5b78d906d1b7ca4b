"""Titles of 20 real PDFs (Debian documentation packages) against hand-checked titles.

    python bench/documents/bench_titles.py

Each title below was read by hand off the rendered first page (the words set as the
title, as printed) and the info dictionary was looked at; see bench/README.md for the
packages and how each was checked. A title counts as right when it equals the hand-read
title, or the hand-read title followed by the version line set in the same type on the
title page (``also``). Case, spaces and typographic quotes are compared loosely.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bookmark_enrich.extraction import extract_document  # noqa: E402

DOC = Path("/usr/share/doc")
TEX = DOC / "texlive-doc"
# (file, Debian package, hand-read title, also right, how the title was found)
TITLES: list[tuple[Path, str, str, str | None, str]] = [
    (DOC / "4ti2/4ti2_manual.pdf", "4ti2-doc", "User's Guide for 4ti2 version 1.6.9", None,
     "title page; info Title empty"),
    (DOC / "backup-manager-doc/user-guide.pdf.gz", "backup-manager-doc",
     "Backup Manager 0.7.7 User Guide", None, "title page; info empty"),
    (DOC / "bzip2/manual.pdf.gz", "bzip2-doc", "bzip2 and libbzip2, version 1.0.8", None,
     "title page; info empty"),
    (DOC / "camlidl/camlidl-1.04.doc.pdf", "camlidl-doc", "Camlidl user's manual",
     "Camlidl user's manual Version 1.04", "title page: title, then 'Version 1.04'"),
    (DOC / "coinor-csdp/csdpuser.pdf", "coinor-csdp-doc", "CSDP 6.2.0 User's Guide", None,
     "title page; info empty"),
    (DOC / "fai-doc/fai-guide.pdf", "fai-doc", "FAI Guide (Fully Automatic Installation)",
     None, "title page and info Title agree"),
    (DOC / "fontconfig/fontconfig-user.pdf.gz", "fontconfig", "fonts-conf", None,
     "first page heading (a DocBook refentry); info empty"),
    (DOC / "ftp-proxy-doc/ftp-proxy.pdf.gz", "ftp-proxy-doc", "The FTP-Proxy White Paper",
     None, "title page; info empty"),
    (DOC / "gputils-doc/gputils.pdf.gz", "gputils-doc", "gputils 1.4.0", None,
     "title page; info Title is the junk 'gputils.dvi'"),
    (DOC / "latex2rtf-doc/latex2rtf.pdf.gz", "latex2rtf-doc", "LaTEX2RTF", None,
     "title page (the TeX logo reads LaTEX as text); info empty"),
    (DOC / "libidn2-doc/libidn2.pdf", "libidn2-doc", "Libidn2", None,
     "title page (Texinfo); info empty"),
    (DOC / "libtasn1-doc/libtasn1.pdf", "libtasn1-doc", "Libtasn1", None,
     "title page (Texinfo); info empty"),
    (DOC / "music-doc/music-manual.pdf.gz", "music-doc",
     "MUSIC — Multi-Simulation Coordinator Users Manual", None,
     "title page: two lines in the same type"),
    (DOC / "nauty/nug28.pdf", "nauty-doc", "nauty and Traces User's Guide (Version 2.8.6)",
     None, "title page; info empty"),
    (DOC / "nettle-dev/nettle.pdf.gz", "nettle-dev", "Nettle Manual", None,
     "title page (Texinfo); info empty"),
    (DOC / "shared-mime-info/shared-mime-info-spec.pdf", "shared-mime-info",
     "Shared MIME-info Database", None, "title page; also the running head of every page"),
    (TEX / "dvipdfmx/dvipdfmx-special.pdf", "texlive-base",
     "DVI specials for PDF generation", None, "TUGboat article title; info empty"),
    (TEX / "dvipdfmx/tug2005.pdf", "texlive-base",
     "Practical use of special commands in DVIPDFMx", None,
     "slide 1: four lines in two sizes; info empty"),
    (TEX / "support/makeindex/makeindex.pdf", "texlive-base",
     "MakeIndex : An Index Processor For LaTEX", None,
     "title page; info Title is the junk 'makeindex.dvi'"),
    (TEX / "dvips/dvips.pdf", "texlive-base", "Dvips: A DVI-to-PostScript Translator", None,
     "title page (Texinfo); info Title is the junk 'dvips.dvi'"),
]


def loose(text: str | None) -> str:
    return " ".join((text or "").replace("’", "'").lower().split())


def main() -> None:
    right = 0
    for path, package, want, also, _how in TITLES:
        if not path.exists():
            print(f"MISSING {path} (apt-get install {package})")
            continue
        body = path.read_bytes()
        if path.suffix == ".gz":
            body = gzip.decompress(body)
        meta, _ = extract_document(body, "pdf", path.as_uri())
        got = meta["title"]
        ok = loose(got) in (loose(want), loose(also))
        right += ok
        wrong = "" if ok else f" (want {want!r})"
        print(f"{'ok ' if ok else 'BAD'} {path.name}: {got!r}{wrong}")
    print(f"{right} of {len(TITLES)} titles right = {right / len(TITLES):.0%}")


if __name__ == "__main__":
    main()
