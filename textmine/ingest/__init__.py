"""Reading documents (PDF, HTML, DOCX, text) into clean, provenance-tracked text.

read_document(path, *, manifest_row=None, password=None, limits=None) -> Document
read_bytes(data, path, *, manifest_row=None, password=None, limits=None) -> Document
read_file_bytes(path, limits=None) -> bytes
discover(paths, *, follow_symlinks=False) -> Discovery (files, skipped with reasons)
discover_files(paths) -> list[Path]
safe_display_path(path) -> str; path_bytes(path) -> bytes; path_from_bytes(raw) -> Path
ReadLimits (size and time limits per document; ReadLimits.from_env())

Reading a whole corpus into the store is `textmine.run` (the one stage loop).
"""

from textmine.ingest.discover import (
    Discovery,
    SkippedFile,
    discover,
    discover_files,
    follow_symlinks_setting,
)
from textmine.ingest.limits import ReadLimits
from textmine.ingest.paths import path_bytes, path_from_bytes, safe_display_path, safe_display_text
from textmine.ingest.reader import content_hash, read_bytes, read_document, read_file_bytes

__all__ = [
    "Discovery",
    "ReadLimits",
    "SkippedFile",
    "content_hash",
    "discover",
    "discover_files",
    "follow_symlinks_setting",
    "path_bytes",
    "path_from_bytes",
    "read_bytes",
    "read_document",
    "read_file_bytes",
    "safe_display_path",
    "safe_display_text",
]
