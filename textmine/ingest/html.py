"""HTML: main text only (trafilatura).

Without navigation, cookie banners, share buttons or paywall text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from textmine.ingest.text import decode_text
from textmine.types import IngestError

META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([\w-]+)", re.I)
ERROR_TITLE = re.compile(
    r"\b(404|403|410|500|not found|no longer exists|page not found|access denied|forbidden|server error)\b",
    re.I,
)
# Longer than this, a page titled like an error page is still treated as content.
ERROR_PAGE_MAX_CHARS = 2000


@dataclass
class HtmlText:
    """Main text of a page (paragraphs separated by newlines) and page metadata."""

    text: str
    title: str = ""
    published: str = ""
    sitename: str = ""


def decode_html(data: bytes) -> str:
    """Decode with the declared <meta charset>, else by detection."""
    match = META_CHARSET.search(data[:4096])
    if match:
        try:
            return data.decode(match.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data)[0]


def extract_html_text(data: bytes) -> HtmlText:
    """Main text and metadata of an HTML page; IngestError("no_text") for empty or error pages."""
    import trafilatura

    markup = decode_html(data)
    try:
        result = trafilatura.bare_extraction(
            markup,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            favor_precision=True,
            deduplicate=False,
        )
    except Exception as error:  # lxml/trafilatura raise varied types on broken markup
        raise IngestError("malformed", f"HTML could not be parsed: {error}") from error
    text = (getattr(result, "text", None) or "").strip() if result is not None else ""
    title = (getattr(result, "title", None) or "").strip() if result is not None else ""
    if not text:
        raise IngestError("no_text", "the HTML page has no main text")
    heading = text.splitlines()[0].strip()
    for label in (title, heading):
        if ERROR_TITLE.search(label) and len(text) < ERROR_PAGE_MAX_CHARS:
            raise IngestError(
                "no_text", f"the HTML is a web error page ({label!r}), not a document"
            )
    return HtmlText(
        text=text,
        title=title,
        published=(getattr(result, "date", None) or "").strip(),
        sitename=(getattr(result, "sitename", None) or "").strip(),
    )
