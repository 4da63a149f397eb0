"""The corpus manifest: one CSV row of bibliographic metadata per document."""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

from textmine.columns import DOC_TYPES

MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = ["path", "title", "publisher", "doc_type", "published", "licence", "source"]


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the file and row."""


def read_manifest(path: str | Path) -> dict[str, dict]:
    """Rows keyed by `path` relative to the manifest's folder (POSIX form).

    Columns: path, title, publisher, doc_type, published, licence, source (extra
    columns are kept). Raises ManifestError for a missing `path` column, a
    duplicate path, or a doc_type outside columns.DOC_TYPES.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise ManifestError(f"{path}: the manifest has no 'path' column")
            rows: dict[str, dict] = {}
            for line, row in enumerate(reader, start=2):
                key = normalise_key(row.get("path") or "")
                if not key:
                    continue
                if key in rows:
                    raise ManifestError(f"{path}, line {line}: {key!r} is listed twice")
                clean = {k: (v or "").strip() for k, v in row.items() if k}
                doc_type = clean.get("doc_type", "")
                if doc_type and doc_type not in DOC_TYPES:
                    raise ManifestError(
                        f"{path}, line {line}: doc_type {doc_type!r} is not one of {', '.join(DOC_TYPES)}"
                    )
                clean["path"] = key
                rows[key] = clean
    except OSError as error:
        raise ManifestError(f"{path}: cannot read the manifest: {error}") from error
    return rows


def normalise_key(value: str) -> str:
    r"""A manifest file key as a POSIX path: './seeds\a.txt' -> 'seeds/a.txt'."""
    value = value.strip().replace("\\", "/")
    return str(PurePosixPath(value)) if value else ""


def manifest_by_file(path: str | Path) -> dict[Path, dict]:
    """read_manifest with keys resolved to absolute file paths."""
    root = Path(path).resolve().parent
    return {(root / key).resolve(): row for key, row in read_manifest(path).items()}
