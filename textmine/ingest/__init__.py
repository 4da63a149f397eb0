"""Reading documents (PDF, HTML, DOCX, text) into clean, provenance-tracked text.

    read_document(path, *, manifest_row=None, password=None) -> Document
    discover_files(paths) -> list[Path]
    ingest_paths(paths, manifest=None, password=None, progress=False, skip_doc_ids=None) -> IngestResult
    write_ingest_outputs(result, sentences, out_dir, *, settings=None, timings=None) -> dict
"""

from textmine.ingest.corpus import (
    Duplicate,
    IngestResult,
    discover_files,
    documents_frame,
    failures_frame,
    ingest_paths,
    summary_lines,
    write_ingest_outputs,
)
from textmine.ingest.reader import content_hash, read_bytes, read_document

__all__ = [
    "Duplicate",
    "IngestResult",
    "content_hash",
    "discover_files",
    "documents_frame",
    "failures_frame",
    "ingest_paths",
    "read_bytes",
    "read_document",
    "summary_lines",
    "write_ingest_outputs",
]
