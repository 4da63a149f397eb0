"""read_document: one file's bytes to a clean Document, or an IngestError."""

from __future__ import annotations

import hashlib
from pathlib import Path

from textmine.ingest import boilerplate, clean, detect
from textmine.ingest.metadata import build_metadata
from textmine.types import Document, IngestError, Paragraph

PARAGRAPH_SEPARATOR = "\n\n"
SUFFIX_FORMATS = {
    ".pdf": detect.PDF,
    ".html": detect.HTML,
    ".htm": detect.HTML,
    ".xhtml": detect.HTML,
    ".docx": detect.DOCX,
    ".txt": detect.TEXT,
    ".md": detect.TEXT,
    ".markdown": detect.TEXT,
    ".text": detect.TEXT,
}


def content_hash(data: bytes) -> str:
    """doc_id: the first 16 hex digits of the SHA-256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:16]


def read_document(
    path: str | Path, *, manifest_row: dict | None = None, password: str | None = None
) -> Document:
    """Read one file into a Document with clean text, paragraphs (page, offsets) and metadata.

    Raises IngestError(reason, message) with a reason from columns.FAILURE_REASONS.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError, OSError) as error:
        raise IngestError("not_found", f"cannot read the file: {error.strerror or error}") from error
    return read_bytes(data, path, manifest_row=manifest_row, password=password)


def read_bytes(
    data: bytes, path: str | Path, *, manifest_row: dict | None = None, password: str | None = None
) -> Document:
    """read_document for bytes already in memory; `path` is recorded as the source."""
    if not data:
        raise IngestError("empty_file", "the file has no bytes (0 B)")
    path = Path(path)
    fmt, description = detect.detect_format(data)
    if fmt == "unsupported":
        raise IngestError("unsupported_format", f"the bytes are a {description}, which textmine does not read")
    notes = []
    expected = SUFFIX_FORMATS.get(path.suffix.lower())
    if expected and expected != fmt:
        notes.append(f"named {path.suffix} but the bytes are {description}; read as {fmt}")
    manifest_row = manifest_row or {}
    title = str(manifest_row.get("title") or "")
    publisher = str(manifest_row.get("publisher") or "")

    pdf_metadata: dict[str, str] | None = None
    embedded_title = embedded_publisher = embedded_date = ""
    if fmt == detect.PDF:
        from textmine.ingest.pdf import extract_pdf_text

        pdf = extract_pdf_text(data, password=password)
        blocks = pdf_blocks(pdf.pages)
        pages = len(pdf.pages)
        raw_text = "\n".join(pdf.pages)
        pdf_metadata = pdf.metadata
        if pdf.repaired:
            notes.append("PDFium could not open the file; read with pdfplumber")
        if pdf.reordered_pages:
            notes.append(f"pages read column by column (text was stored across columns): {pdf.reordered_pages}")
        if pdf.scanned_pages:
            notes.append(f"pages without a text layer (need OCR): {pdf.scanned_pages}")
    elif fmt == detect.HTML:
        from textmine.ingest.html import extract_html_text

        page = extract_html_text(data)
        lines = clean.split_lines(clean.normalize_characters(page.text))
        lines = boilerplate.remove_boilerplate(lines, title=title or page.title, publisher=publisher)
        blocks = [(1, p) for p in clean.lines_to_paragraphs(lines, wrapped=False)]
        pages, raw_text = 1, page.text
        embedded_title, embedded_date = page.title, page.published
        embedded_publisher = page.sitename
    elif fmt == detect.DOCX:
        from textmine.ingest.docx import extract_docx_text

        docx = extract_docx_text(data)
        blocks = [
            (page_number, paragraph)
            for page_number, line in docx.blocks
            for paragraph in clean.lines_to_paragraphs(
                boilerplate.remove_copyright_lines([clean.normalize_characters(line).strip()]), wrapped=False
            )
        ]
        pages, raw_text = docx.pages, "\n".join(t for _, t in docx.blocks)
        embedded_title = docx.title
    else:
        blocks, pages, raw_text = text_blocks(data, title=title, publisher=publisher)

    blocks = boilerplate.remove_back_matter(blocks)
    if not blocks:
        raise IngestError("no_text", f"the {fmt} file holds no text after cleaning")
    text, paragraphs = assemble(blocks)
    meta = build_metadata(
        path,
        raw_text=raw_text,
        paragraphs=[text[p.start : p.end] for p in paragraphs[:5]],
        manifest_row=manifest_row,
        pdf_metadata=pdf_metadata,
        embedded_title=embedded_title,
        embedded_publisher=embedded_publisher,
        embedded_date=embedded_date,
    )
    return Document(
        doc_id=content_hash(data),
        path=path.as_posix(),
        format=fmt,
        pages=pages,
        text=text,
        paragraphs=paragraphs,
        meta=meta,
        notes=notes,
    )


def pdf_blocks(raw_pages: list[str]) -> list[tuple[int, str]]:
    """Clean PDF page texts into (page, paragraph) blocks."""
    pages = [clean.split_lines(clean.normalize_characters(page)) for page in raw_pages]
    pages = clean.remove_running_lines(pages)
    pages = [boilerplate.remove_copyright_lines(lines) for lines in pages]
    words = clean.document_vocabulary("\n".join("\n".join(lines) for lines in pages))
    paragraphs = [
        clean.lines_to_paragraphs(lines, words, wrapped=True) for lines in pages
    ]
    items = [clean.starts_with_list_item(lines) for lines in pages]
    return clean.merge_across_pages(paragraphs, words, items)


def text_blocks(data: bytes, *, title: str = "", publisher: str = "") -> tuple[list[tuple[int, str]], int, str]:
    """Plain text or Markdown into (page, paragraph) blocks; form feeds separate pages."""
    from textmine.ingest.text import decode_text, looks_like_markdown, strip_markdown

    text, _ = decode_text(data)
    if looks_like_markdown(text):
        text = strip_markdown(text)
    raw_pages = text.split("\f")
    pages = [clean.split_lines(clean.normalize_characters(page)) for page in raw_pages]
    if len(pages) > 1:
        pages = clean.remove_running_lines(pages)
    all_lines = [line for lines in pages for line in lines]
    words = clean.document_vocabulary("\n".join(all_lines))
    wrapped = clean.is_wrapped(all_lines)
    paragraphs = []
    for number, lines in enumerate(pages):
        lines = boilerplate.remove_boilerplate(
            lines, title=title, publisher=publisher
        ) if number == 0 or number == len(pages) - 1 else lines
        paragraphs.append(clean.lines_to_paragraphs(lines, words, wrapped=wrapped))
    items = [clean.starts_with_list_item(lines) for lines in pages]
    return clean.merge_across_pages(paragraphs, words, items), len(pages), text


def assemble(blocks: list[tuple[int, str]]) -> tuple[str, list[Paragraph]]:
    """Join paragraphs with blank lines; return the text and each paragraph's offsets."""
    parts: list[str] = []
    paragraphs: list[Paragraph] = []
    offset = 0
    for index, (page, paragraph) in enumerate(blocks):
        paragraph = clean.nfc(paragraph.strip())
        if index:
            offset += len(PARAGRAPH_SEPARATOR)
        paragraphs.append(Paragraph(index=index, page=page, start=offset, end=offset + len(paragraph)))
        parts.append(paragraph)
        offset += len(paragraph)
    return PARAGRAPH_SEPARATOR.join(parts), paragraphs
