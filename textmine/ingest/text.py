"""Plain text and Markdown: encoding detection and light Markdown stripping."""

from __future__ import annotations

import re

from textmine.ingest.detect import utf16_without_bom
from textmine.types import IngestError

# Tried in order; cp1252 is the usual encoding of text saved on Windows in the UK.
FALLBACK_ENCODINGS = ("cp1252",)
# Bounded, one-line patterns: unbounded ones backtrack quadratically on long lines
# full of unmatched brackets or asterisks.
MARKDOWN_LINK = re.compile(r"!?\[([^\[\]\n]{0,1000})\]\([^()\n]{0,2000}\)")
MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)
MARKDOWN_EMPHASIS = re.compile(r"(\*\*|__)(\S(?:[^\n]{0,200}?\S)?)\1")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes to str; return (text, encoding).

    UTF-8 with or without BOM and UTF-16 with BOM are exact; UTF-16 without BOM
    is recognised by its zero bytes (Latin-script text); otherwise cp1252
    (strict), then charset-normalizer's best guess. Raises IngestError
    ("unreadable_encoding") when nothing decodes cleanly.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return _checked(data[3:].decode("utf-8", errors="strict"), "utf-8-sig")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _checked(data.decode("utf-16"), "utf-16")
        except UnicodeDecodeError as error:
            raise IngestError("unreadable_encoding", f"invalid UTF-16: {error}") from error
    utf16 = utf16_without_bom(data)
    if utf16:
        try:
            return _checked(data[: len(data) - len(data) % 2].decode(utf16), utf16)
        except UnicodeDecodeError as error:
            raise IngestError(
                "unreadable_encoding", f"looks like {utf16} without a BOM but is not: {error}"
            ) from error
    try:
        return _checked(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    for encoding in FALLBACK_ENCODINGS:
        try:
            return _checked(data.decode(encoding), encoding)
        except (UnicodeDecodeError, IngestError):
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise IngestError(
            "unreadable_encoding", "not UTF-8 or cp1252, and no likely encoding was found"
        )
    return _checked(str(best), best.encoding)


def _checked(text: str, encoding: str) -> tuple[str, str]:
    """Reject decodings that are mostly control characters (binary data)."""
    controls = len(CONTROL_CHARS.findall(text[:20000]))
    if controls > max(10, len(text[:20000]) // 100):
        raise IngestError(
            "unreadable_encoding", f"decoded as {encoding} but holds {controls} control characters"
        )
    return CONTROL_CHARS.sub("", text), encoding


def strip_markdown(text: str) -> str:
    """Remove Markdown markup that is not prose: heading hashes, link targets, emphasis."""
    text = MARKDOWN_HEADING.sub(r"\1", text)
    text = MARKDOWN_LINK.sub(r"\1", text)
    return MARKDOWN_EMPHASIS.sub(r"\2", text)


def looks_like_markdown(text: str) -> bool:
    """True when headings or links in Markdown syntax are common enough to strip."""
    sample = text[:20000]
    return len(MARKDOWN_HEADING.findall(sample)) + len(MARKDOWN_LINK.findall(sample)) >= 2
