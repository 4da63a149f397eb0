"""DOCX with python-docx: body paragraphs and table rows in document order.

Section headers and footers are left out (they are running lines). Page numbers
follow the page breaks Word stored when it last laid out the file.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from textmine.ingest.limits import check_size
from textmine.types import IngestError


@dataclass
class DocxText:
    """Paragraph texts with their 1-based page, and the title from the core properties."""

    blocks: list[tuple[int, str]]
    pages: int
    title: str = ""


def check_inflated_size(data: bytes, max_inflated_bytes: int) -> None:
    """Raise IngestError("too_large") when the XML parts of the DOCX inflate past the limit.

    The sizes are those the archive declares; zipfile never inflates a part past
    its declared size (a lying archive fails as malformed), so a small file that
    inflates to gigabytes (a "zip bomb") is stopped before it is parsed.
    """
    if not max_inflated_bytes:
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(
                i.file_size
                for i in archive.infolist()
                if i.filename.lower().endswith((".xml", ".rels"))
            )
    except zipfile.BadZipFile as error:
        raise IngestError("malformed", f"DOCX could not be opened: {error}") from error
    check_size(
        inflated,
        max_inflated_bytes,
        "the text (XML) of the DOCX, inflated,",
        "TEXTMINE_MAX_INFLATED_MB",
    )


def extract_docx_text(data: bytes, *, max_inflated_bytes: int = 0) -> DocxText:
    """Paragraphs and table rows of a DOCX; the XML parts may inflate to `max_inflated_bytes` (0: no limit)."""
    import docx

    check_inflated_size(data, max_inflated_bytes)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:  # python-docx raises KeyError, BadZipFile, XML errors...
        raise IngestError("malformed", f"DOCX could not be opened: {error}") from error
    tags = _WordTags.build()
    page = 1
    blocks: list[tuple[int, str]] = []
    for child in document.element.body.iterchildren():
        if child.tag == tags.paragraph:
            text, before, after = _paragraph_text(child, tags)
            page += before
            for line in text.split("\n"):
                if line.strip():
                    blocks.append((page, line.strip()))
            page += after
        elif child.tag == tags.table:
            for row in child.iter(tags.row):
                cells, starts_later, total = _table_row(row, tags)
                page += starts_later
                if cells:
                    blocks.append((page, _row_text(cells)))
                page += total - starts_later
    if not blocks:
        raise IngestError("no_text", "the DOCX has no text in its body")
    return DocxText(
        blocks=blocks,
        pages=max(p for p, _ in blocks),
        title=(document.core_properties.title or "").strip(),
    )


@dataclass(frozen=True)
class _WordTags:
    """Qualified WordprocessingML names of the elements and attribute the reader looks at."""

    text: str
    tab: str
    br: str
    rendered_break: str
    type_attr: str
    paragraph: str
    table: str
    row: str
    cell: str

    @classmethod
    def build(cls) -> _WordTags:
        from docx.oxml.ns import qn

        return cls(
            text=qn("w:t"),
            tab=qn("w:tab"),
            br=qn("w:br"),
            rendered_break=qn("w:lastRenderedPageBreak"),
            type_attr=qn("w:type"),
            paragraph=qn("w:p"),
            table=qn("w:tbl"),
            row=qn("w:tr"),
            cell=qn("w:tc"),
        )


def _paragraph_text(element, tags: _WordTags) -> tuple[str, int, int]:
    """(text, page breaks before any text, page breaks after text started)."""
    text_tag, tab_tag, br_tag = tags.text, tags.tab, tags.br
    rendered_break, type_attr = tags.rendered_break, tags.type_attr
    parts: list[str] = []
    before = after = 0
    for node in element.iter(text_tag, tab_tag, br_tag, rendered_break):
        is_break = node.tag == rendered_break or (
            node.tag == br_tag and node.get(type_attr) == "page"
        )
        if is_break:
            if "".join(parts).strip():
                after += 1
            else:
                before += 1
        elif node.tag == text_tag:
            parts.append(node.text or "")
        elif node.tag == tab_tag:
            parts.append(" ")
        else:
            parts.append("\n")  # a line break inside the paragraph
    return "".join(parts).strip(), before, after


def _table_row(row, tags: _WordTags) -> tuple[list[str], int, int]:
    """(cell texts, page breaks before the row's text, page breaks in all) of a table row."""
    cells: list[str] = []
    starts_later = total = 0
    for cell in row.iterchildren(tags.cell):
        parts = [_paragraph_text(p, tags) for p in cell.iter(tags.paragraph)]
        if parts:
            starts_later = max(starts_later, parts[0][1])
            total = max(total, sum(b + a for _, b, a in parts))
        cell_text = " ".join(" ".join(text.split()) for text, _, _ in parts if text)
        if cell_text and (not cells or cells[-1] != cell_text):
            cells.append(cell_text)
    return cells, starts_later, total


def _row_text(cells: list[str]) -> str:
    """A table row as one line: "Label: value" for two cells, else cells joined by " | "."""
    if len(cells) == 2 and not cells[0].endswith((":", "?", ".")):
        return f"{cells[0]}: {cells[1]}"
    if len(cells) == 2:
        return f"{cells[0]} {cells[1]}"
    return " | ".join(cells)
