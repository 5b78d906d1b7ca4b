"""Make the real documents the test suite reads (``tests/fixtures/documents/``).

    python bench/documents/make_fixtures.py

Needs Chromium, pdflatex (``texlive-latex-base``), LibreOffice (``libreoffice-writer-
nogui``), and pypdf; run it offline, once, and commit what
it writes (the suite itself never prints or compiles). See the README it writes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bench.documents.print_pdfs import chromium, print_one  # noqa: E402

OUT = HERE.parents[1] / "tests" / "fixtures" / "documents"
CHROMIUM_PAGES = {
    # one page (no repetition to learn the running header from), English
    "chromium-1page.pdf": "5a822960e9a2cb1e664d334b6c936c5cb6e41fb5331877538c2c8339cb59d57e",
    # three pages, Korean
    "chromium-ko.pdf": "0ec95c7261d122f304728e90c983450ef1ce1e0b423546835c397d50aaf0d0f2",
    # four pages, English
    "chromium-4pages.pdf": "359fee228518d55b921194561e9ca88e428df81940246f8fac7a75398377daea",
}
DEBIAN_MANUAL = Path("/usr/share/doc/texlive-doc/support/makeindex/makeindex.pdf")

LATEX = r"""\documentclass[10pt,twocolumn]{article}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\pagestyle{headings}
\title{Soil Moisture Sensing for Community Gardens}
\author{Ada Gardener \and Ben Planter}
\date{March 2024}
\begin{document}
\maketitle
\begin{abstract}
Volunteer gardeners water by habit. We describe inexpensive capacitive probes that
report soil moisture every fifteen minutes and show how the readings changed watering
practice in three community gardens over one growing season.
\end{abstract}
\section{Introduction}
%s
\section{Instrumentation}
%s
\section{Results}
%s
\section{Discussion}
%s
\end{document}
"""
PARAGRAPH = (
    "Community gardens depend on volunteers whose watering schedules follow "
    "convenience rather than the needs of the plants. Overwatering leaches nutrients "
    "and encourages fungal disease, while underwatering during heatwaves destroys "
    "seedlings within days. Capacitive moisture probes are inexpensive, robust and "
    "straightforward to calibrate against gravimetric measurements, which makes them "
    "attractive for neighbourhood projects with limited budgets. Microcontrollers "
    "transmit the readings over low-power radio to a gateway in the tool shed, and a "
    "notification reaches the volunteer rota whenever a raised bed dries out. "
)

LIBREOFFICE_HTML = """<!DOCTYPE html><html lang="de"><head><meta charset="utf-8">
<title>Jahresbericht des Gartenvereins 2023</title></head><body>
<h1>Jahresbericht des Gartenvereins 2023</h1>
<p>Im vergangenen Jahr hat der Verein drei neue Hochbeete gebaut und eine
Regenwasserzisterne angeschlossen. Die Ernte wurde unter den Mitgliedern geteilt,
und der Überschuss ging an die örtliche Tafel.</p>
<p>Für das kommende Jahr plant der Vorstand einen Kurs über Kompostierung und eine
Kooperation mit der benachbarten Grundschule, damit Kinder lernen, woher ihr Essen
kommt.</p></body></html>
"""


def run(*cmd: str, cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, timeout=300)


def latex(tmp: Path) -> None:
    (tmp / "paper.tex").write_text(LATEX % ((PARAGRAPH * 5,) * 4))
    for _ in range(2):
        run("pdflatex", "-interaction=batchmode", "-no-shell-escape", "paper.tex", cwd=tmp)
    shutil.copy(tmp / "paper.pdf", OUT / "latex-paper.pdf")


def libreoffice(tmp: Path) -> None:
    (tmp / "bericht.html").write_text(LIBREOFFICE_HTML)
    run("soffice", "--headless", f"-env:UserInstallation=file://{tmp}/lo",
        "--convert-to", "pdf:writer_web_pdf_Export", "bericht.html", cwd=tmp)
    shutil.copy(tmp / "bericht.pdf", OUT / "libreoffice-de.pdf")


def encrypted() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(OUT / "libreoffice-de.pdf"))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with open(OUT / "encrypted.pdf", "wb") as f:
        writer.write(f)


def scanned() -> None:
    """The LaTeX paper's first page as a grey JPEG in a PDF: no text layer at all."""
    import pypdfium2 as pdfium

    from tests.pdfgen import image_pdf

    pdf = pdfium.PdfDocument(OUT / "latex-paper.pdf")
    pixels = pdf[0].render(scale=80 / 72, grayscale=True).to_numpy()
    height, width = pixels.shape[:2]
    pdf.close()
    (OUT / "scanned.pdf").write_bytes(image_pdf(
        width, height, pixels.reshape(height, width).tobytes(),
        info={"Title": "Soil Moisture Sensing (scan)", "Author": "Ada Gardener"}))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for target, name in CHROMIUM_PAGES.items():
            print(print_one(browser, name, tmp), file=sys.stderr)
            shutil.move(tmp / f"{name}.pdf", OUT / target)
        latex(tmp)
        libreoffice(tmp)
        encrypted()
        scanned()
        shutil.copy(DEBIAN_MANUAL, OUT / "debian-makeindex.pdf")
    for path in sorted(OUT.glob("*.pdf")):
        print(f"{path.name}: {path.stat().st_size // 1024} KB", file=sys.stderr)


if __name__ == "__main__":
    main()
