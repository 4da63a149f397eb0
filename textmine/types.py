"""Plain records passed between stages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of a document's clean text; offsets are end-exclusive."""

    index: int
    page: int  # 1-based; 1 for formats without pages
    start: int
    end: int


@dataclass
class DocumentMeta:
    """Bibliographic metadata; `date_source` says where `published` came from."""

    title: str = ""
    publisher: str = ""
    doc_type: str = "unknown"
    published: str = ""
    date_source: str = "none"
    licence: str = ""
    source: str = ""


@dataclass
class Document:
    """One read document: clean text, its paragraphs and metadata."""

    doc_id: str
    path: str
    format: str  # pdf | html | docx | text
    pages: int
    text: str
    paragraphs: list[Paragraph] = field(default_factory=list)
    meta: DocumentMeta = field(default_factory=DocumentMeta)
    notes: list[str] = field(default_factory=list)  # non-fatal remarks for the run report
    ocr_pages: list[int] = field(default_factory=list)  # 1-based pages whose text came from OCR

    def to_row(self) -> dict:
        """Flat dict of the documents.csv columns known at read time."""
        row = {"doc_id": self.doc_id, "path": self.path, "format": self.format, "pages": self.pages}
        row.update(asdict(self.meta))
        return row


@dataclass(frozen=True)
class Failure:
    """A file that could not be read, with a reason code from columns.FAILURE_REASONS."""

    path: str
    reason: str
    message: str
    duplicate_of: str = ""  # doc_id of the bytes when an identical file failed first


class IngestError(Exception):
    """Raised by readers; carries a reason code and a human message."""

    def __init__(self, reason: str, message: str):
        """`reason` is a key of columns.FAILURE_REASONS; `message` names the problem."""
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
