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
    if not head.startswith(BOMS[1:]) and (encoding := utf16_without_bom(data)):
        body = data[:4096].decode(encoding, errors="replace").encode("utf-8")
        return (
            (HTML, "HTML (UTF-16)")
            if HTML_START.match(body) or HTML_ANYWHERE.search(body.lower())
            else (TEXT, "text (UTF-16)")
        )
    if body[:1] in (b"\x00",) or (b"\x00" in body and not head.startswith(BOMS[1:])):
        return "unsupported", "binary data"
    if HTML_START.match(body) or HTML_ANYWHERE.search(head.lower()):
        return HTML, "HTML"
    return TEXT, "text"


# UTF-16 text without a byte-order mark: in Latin-script text every other byte is 0.
UTF16_SAMPLE_BYTES = 4096
UTF16_ZERO_SHARE = 0.6  # share of zero bytes in the high-byte positions, at least
UTF16_PRINTABLE_SHARE = 0.95  # share of printable characters (or whitespace) once decoded


def utf16_without_bom(data: bytes) -> str | None:
    """Return "utf-16-le" or "utf-16-be" when `data` looks like UTF-16 without a BOM, else None."""
    sample = data[: UTF16_SAMPLE_BYTES - UTF16_SAMPLE_BYTES % 2]
    sample = sample[: len(sample) - len(sample) % 2]
    if len(sample) < 4 or sample.startswith(BOMS[1:]):
        return None
    pairs = len(sample) // 2
    even_zeros, odd_zeros = sample[0::2].count(0), sample[1::2].count(0)
    for encoding, high, low in (
        ("utf-16-le", odd_zeros, even_zeros),
        ("utf-16-be", even_zeros, odd_zeros),
    ):
        if high >= UTF16_ZERO_SHARE * pairs and low <= 0.02 * pairs:
            text = sample.decode(encoding, errors="replace")
            printable = sum(c.isprintable() or c in "\n\r\t\f" for c in text)
            if printable >= UTF16_PRINTABLE_SHARE * len(text):
                return encoding
    return None


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
