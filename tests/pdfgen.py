"""A tiny PDF writer for tests: text pages in Helvetica, an image page, metadata.

Real PDFs (Chromium, LaTeX, LibreOffice, Debian manuals) are the fixtures; this writes
what no real file gives cheaply: 300 pages, a decompression bomb, an exact layout.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

__all__ = ["image_pdf", "text_page", "write_pdf"]


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def text_page(lines: Iterable[str], *, size: float = 11, top: float = 700,
              header: str | None = None, footer: str | None = None) -> bytes:
    """A content stream: ``lines`` from ``top`` down, a header and a footer in the margins."""
    ops = [b"BT", f"/F1 {size:g} Tf {size * 1.3:g} TL 72 {top:g} Td".encode()]
    ops += [b"(" + _escape(line) + b") '" for line in lines]
    ops.append(b"ET")
    for text, y in ((header, 770), (footer, 24)):
        if text is not None:
            ops.append(b"BT /F1 8 Tf 72 %d Td (" % y + _escape(text) + b") Tj ET")
    return b"\n".join(ops)


def write_pdf(contents: list[bytes], *, info: dict[str, str] | None = None,
              image: tuple[int, int, bytes] | None = None) -> bytes:
    """A complete PDF: one page per content stream (Flate-compressed), A4-ish letter size."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")
    pages = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
               b"/Encoding /WinAnsiEncoding >>")
    xobject = b""
    if image is not None:
        width, height, pixels = image
        data = zlib.compress(pixels)
        img = add(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace "
                  b"/DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\n"
                  b"stream\n" % (width, height, len(data)) + data + b"\nendstream")
        xobject = b" /XObject << /Im0 %d 0 R >>" % img
    kids = []
    for content in contents:
        data = zlib.compress(content)
        stream = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data +
                     b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                        b"/Resources << /Font << /F1 %d 0 R >>%s >> /Contents %d 0 R >>"
                        % (pages, font, xobject, stream)))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages
    objects[pages - 1] = (b"<< /Type /Pages /Count %d /Kids [" % len(kids) +
                          b" ".join(b"%d 0 R" % k for k in kids) + b"] >>")
    info_ref = None
    if info:
        entries = b" ".join(b"/" + k.encode() + b" (" + _escape(v) + b")"
                            for k, v in info.items())
        info_ref = add(b"<< " + entries + b" >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info_ref:
        trailer += b" /Info %d 0 R" % info_ref
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def image_pdf(width: int, height: int, pixels: bytes, info: dict[str, str] | None = None,
              ) -> bytes:
    """One page showing a grey image over the whole page and no text: a scan."""
    return write_pdf([b"q 612 0 0 792 0 0 cm /Im0 Do Q"], info=info,
                     image=(width, height, pixels))
