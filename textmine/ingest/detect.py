"""Detect a file's format from its bytes, never from its name."""

from __future__ import annotations

import io
import re
import zipfile

PDF = "pdf"
HTML = "html"
DOCX = "docx"
TEXT = "text"

# Binary formats we recognise only to name them in the failure message.
BINARY_SIGNATURES = {
    b"\x89PNG": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
    b"GIF8": "GIF image",
    b"II*\x00": "TIFF image",
    b"MM\x00*": "TIFF image",
    b"\xd0\xcf\x11\xe0": "legacy Microsoft Office file (.doc/.xls/.ppt)",
    b"\x1f\x8b": "gzip archive",
    b"7z\xbc\xaf": "7-Zip archive",
    b"Rar!": "RAR archive",
    b"{\\rtf": "RTF document",
    b"SQLite format 3": "SQLite database",
    b"PAR1": "Parquet file",
}
HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S)
HTML_ANYWHERE = re.compile(rb"<(html|body)\b[^>]*>", re.I)
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def detect_format(data: bytes) -> tuple[str, str]:
    """Return (format, description); format is pdf|html|docx|text or "unsupported"."""
    head = data[:2048]
    if b"%PDF-" in data[:1024]:
        return PDF, "PDF"
    for signature, name in BINARY_SIGNATURES.items():
        if head.startswith(signature):
            return "unsupported", name
    if head.startswith(b"PK\x03\x04"):
        return _zip_format(data)
    body = head
    for bom in BOMS:
        if body.startswith(bom):
            body = body[len(bom) :]
            break
    if body[:1] in (b"\x00",) or (b"\x00" in body and not head.startswith(BOMS[1:])):
        return "unsupported", "binary data"
    if HTML_START.match(body) or HTML_ANYWHERE.search(head.lower()):
        return HTML, "HTML"
    return TEXT, "text"


def _zip_format(data: bytes) -> tuple[str, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return "unsupported", "damaged ZIP archive"
    if "word/document.xml" in names:
        return DOCX, "DOCX"
    if "ppt/presentation.xml" in names:
        return "unsupported", "PowerPoint presentation (.pptx)"
    if "xl/workbook.xml" in names:
        return "unsupported", "Excel workbook (.xlsx)"
    if "content.xml" in names:
        return "unsupported", "OpenDocument file"
    return "unsupported", "ZIP archive"
