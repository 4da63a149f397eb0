"""read_document: one file's bytes to a clean Document, or an IngestError."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Callable
from pathlib import Path

import textmine.ingest.boilerplate as boilerplate
import textmine.ingest.clean as clean
import textmine.ingest.detect as detect
from textmine.ingest.limits import Deadline, ReadLimits, check_size, time_budget
from textmine.ingest.metadata import build_metadata
from textmine.ingest.paths import safe_display_path, safe_display_text
from textmine.types import Document, IngestError, Paragraph

PARAGRAPH_SEPARATOR = "\n\n"
# A read that fails with an unexpected exception (not an IngestError) is tried this often.
READ_ATTEMPTS = 2
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
    path: str | Path,
    *,
    manifest_row: dict | None = None,
    password: str | None = None,
    limits: ReadLimits | None = None,
) -> Document:
    """Read one file into a Document with clean text, paragraphs (page, offsets) and metadata.

    Raises IngestError(reason, message) with a reason from columns.FAILURE_REASONS.
    `limits` default to ReadLimits.from_env().
    """
    path = Path(path)
    limits = limits or ReadLimits.from_env()
    data = read_file_bytes(path, limits)
    return read_bytes(data, path, manifest_row=manifest_row, password=password, limits=limits)


def read_file_bytes(path: str | Path, limits: ReadLimits | None = None) -> bytes:
    """The bytes of a regular file, checked against `limits.max_file_bytes` before reading.

    Raises IngestError "not_found" (missing, unreadable, or not a regular file:
    a named pipe would block for ever) or "too_large".
    """
    limits = limits or ReadLimits.from_env()
    try:
        info = Path(path).stat()
        if not stat.S_ISREG(info.st_mode):
            raise IngestError("not_found", "not a regular file (a folder, pipe, socket or device)")
        check_size(info.st_size, limits.max_file_bytes, "the file", "TEXTMINE_MAX_FILE_MB")
        return Path(path).read_bytes()
    except OSError as error:
        raise IngestError(
            "not_found", f"cannot read the file: {error.strerror or error}"
        ) from error


def read_bytes(
    data: bytes,
    path: str | Path,
    *,
    manifest_row: dict | None = None,
    password: str | None = None,
    limits: ReadLimits | None = None,
) -> Document:
    """read_document for bytes already in memory; `path` is recorded as the source.

    The document is read within `limits` (default ReadLimits.from_env()): past a
    size limit it fails with "too_large", past the time budget with "timeout".
    """
    limits = limits or ReadLimits.from_env()
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            with time_budget(limits.seconds) as deadline:
                return _read_bytes(
                    data,
                    Path(path),
                    manifest_row=manifest_row,
                    password=password,
                    limits=limits,
                    deadline=deadline,
                )
        except IngestError:
            raise
        except MemoryError as error:
            raise IngestError("too_large", "reading it ran out of memory") from error
        except (
            Exception
        ) as error:  # a library's bug or a transient fault: never a verdict on the bytes
            if attempt == READ_ATTEMPTS:
                raise IngestError(
                    "read_error",
                    f"unexpected {type(error).__name__} in {attempt} attempts: {safe_display_text(str(error))[:300]}"
                    " (not stored as a permanent failure; tried again on the next run)",
                ) from error
    raise AssertionError("unreachable")


def checked_format(data: bytes, path: Path, limits: ReadLimits) -> tuple[str, list[str]]:
    """The format of `data` and notes about its name; IngestError for empty, unsupported or too large."""
    if not data:
        raise IngestError("empty_file", "the file has no bytes (0 B)")
    check_size(len(data), limits.max_file_bytes, "the file", "TEXTMINE_MAX_FILE_MB")
    fmt, description = detect.detect_format(data)
    if fmt == "unsupported":
        raise IngestError(
            "unsupported_format", f"the bytes are a {description}, which textmine does not read"
        )
    if fmt in (detect.HTML, detect.TEXT):
        check_size(len(data), limits.max_markup_bytes, f"the {fmt} file", "TEXTMINE_MAX_MARKUP_MB")
    suffix = safe_display_text(path.suffix)
    expected = SUFFIX_FORMATS.get(suffix.lower())
    if expected and expected != fmt:
        return fmt, [f"named {suffix} but the bytes are {description}; read as {fmt}"]
    return fmt, []


def _read_bytes(
    data: bytes,
    path: Path,
    *,
    manifest_row: dict | None,
    password: str | None,
    limits: ReadLimits,
    deadline: Deadline,
) -> Document:
    fmt, notes = checked_format(data, path, limits)
    manifest_row = manifest_row or {}
    title = str(manifest_row.get("title") or "")
    publisher = str(manifest_row.get("publisher") or "")

    def check_text(characters: int) -> None:
        deadline.check("extracting text")
        if limits.max_text_chars and characters > limits.max_text_chars:
            raise IngestError(
                "too_large",
                f"the {fmt} file holds {characters:,} characters of text, over the limit of "
                f"{limits.max_text_chars:,} (raise it with TEXTMINE_MAX_TEXT_CHARS)",
            )

    pdf_metadata: dict[str, str] | None = None
    embedded_title = embedded_publisher = embedded_date = ""
    ocr_pages: list[int] = []
    if fmt == detect.PDF:
        from textmine.ingest.pdf import extract_pdf_text

        pdf = extract_pdf_text(data, password=password, deadline=deadline)
        check_text(sum(len(page) for page in pdf.pages))
        blocks = pdf_blocks(pdf.pages)
        pages = len(pdf.pages)
        raw_text = "\n".join(pdf.pages)
        pdf_metadata = pdf.metadata
        if pdf.repaired:
            notes.append("PDFium could not open the file; read with pdfplumber")
        if pdf.reordered_pages:
            notes.append(
                f"pages read column by column (text was stored across columns): {pdf.reordered_pages}"
            )
        if pdf.scanned_pages:
            notes.append(f"pages without a text layer (need OCR): {pdf.scanned_pages}")
        if pdf.ocr_pages:
            ocr_pages = list(pdf.ocr_pages)
            notes.append(f"pages without a text layer read by OCR (tesseract): {ocr_pages}")
    elif fmt == detect.HTML:
        from textmine.ingest.html import extract_html_text

        page = extract_html_text(data)
        check_text(len(page.text))
        lines = clean.split_lines(clean.normalize_characters(page.text))
        lines = boilerplate.remove_boilerplate(
            lines, title=title or page.title, publisher=publisher
        )
        blocks = [(1, p) for p in clean.lines_to_paragraphs(lines, wrapped=False)]
        pages, raw_text = 1, page.text
        embedded_title, embedded_date = page.title, page.published
        embedded_publisher = page.sitename
    elif fmt == detect.DOCX:
        from textmine.ingest.docx import extract_docx_text

        docx = extract_docx_text(data, max_inflated_bytes=limits.max_inflated_bytes)
        check_text(sum(len(t) for _, t in docx.blocks))
        contents = clean.contents_lines(
            [[clean.normalize_characters(line).strip() for _, line in docx.blocks]]
        )[0]
        blocks = [
            (page_number, paragraph)
            for index, (page_number, line) in enumerate(docx.blocks)
            if index not in contents
            for paragraph in clean.lines_to_paragraphs(
                boilerplate.remove_copyright_lines([clean.normalize_characters(line).strip()]),
                wrapped=False,
            )
        ]
        pages, raw_text = docx.pages, "\n".join(t for _, t in docx.blocks)
        embedded_title = docx.title
    else:
        blocks, pages, raw_text = text_blocks(
            data, title=title, publisher=publisher, check_text=check_text
        )

    deadline.check("cleaning text")
    blocks = boilerplate.remove_back_matter(blocks)
    if not blocks:
        raise IngestError("no_text", f"the {fmt} file holds no text after cleaning")
    text, paragraphs = assemble(blocks)
    deadline.check("cleaning text")
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
    for name, value in vars(meta).items():  # names of files that are not UTF-8 reach titles
        if isinstance(value, str):
            setattr(meta, name, safe_display_text(value))
    return Document(
        doc_id=content_hash(data),
        path=safe_display_path(path),
        format=fmt,
        pages=pages,
        text=text,
        paragraphs=paragraphs,
        meta=meta,
        notes=notes,
        ocr_pages=ocr_pages,
    )


def pdf_blocks(raw_pages: list[str]) -> list[tuple[int, str]]:
    """Clean PDF page texts into (page, paragraph) blocks."""
    pages = [clean.split_lines(clean.normalize_characters(page)) for page in raw_pages]
    pages = clean.remove_contents(clean.remove_running_lines(pages))
    pages = [boilerplate.remove_copyright_lines(lines) for lines in pages]
    words = clean.document_vocabulary("\n".join("\n".join(lines) for lines in pages))
    paragraphs = [clean.lines_to_paragraphs(lines, words, wrapped=True) for lines in pages]
    items = [clean.starts_with_list_item(lines) for lines in pages]
    return clean.merge_across_pages(paragraphs, words, items)


def text_blocks(
    data: bytes,
    *,
    title: str = "",
    publisher: str = "",
    check_text: Callable[[int], None] | None = None,
) -> tuple[list[tuple[int, str]], int, str]:
    """Plain text or Markdown into (page, paragraph) blocks; form feeds separate pages.

    `check_text(characters)` is called once the text is decoded (size and time checks).
    """
    from textmine.ingest.text import decode_text, looks_like_markdown, strip_markdown

    text, _ = decode_text(data)
    if check_text is not None:
        check_text(len(text))
    if looks_like_markdown(text):
        text = strip_markdown(text)
    raw_pages = text.split("\f")
    pages = [clean.split_lines(clean.normalize_characters(page)) for page in raw_pages]
    if len(pages) > 1:
        pages = clean.remove_running_lines(pages)
    pages = clean.remove_contents(pages)
    all_lines = [line for lines in pages for line in lines]
    words = clean.document_vocabulary("\n".join(all_lines))
    wrapped = clean.is_wrapped(all_lines)
    paragraphs = []
    for number, lines in enumerate(pages):
        lines = (
            boilerplate.remove_boilerplate(lines, title=title, publisher=publisher)
            if number == 0 or number == len(pages) - 1
            else lines
        )
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
        paragraphs.append(
            Paragraph(index=index, page=page, start=offset, end=offset + len(paragraph))
        )
        parts.append(paragraph)
        offset += len(paragraph)
    return PARAGRAPH_SEPARATOR.join(parts), paragraphs
