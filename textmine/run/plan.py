"""Scan the run's paths and decide what to read, given what the store knows.

The SQL lives in the store (`Store.record_unchanged`, `record_duplicates`,
`mark_missing`); this module only decides.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from textmine import __version__
from textmine.lock import LOCK_FILENAME
from textmine.run.settings import MANIFEST_NAME
from textmine.store import STORE_FILENAME, Store

IGNORED_NAMES = {
    MANIFEST_NAME,
    ".textmine-feeds.json",
    STORE_FILENAME,
    LOCK_FILENAME,
    f"{STORE_FILENAME}-wal",
    f"{STORE_FILENAME}-shm",
    f"{STORE_FILENAME}-journal",
}
RETRIED_REASONS = frozenset({"read_error"})  # the machinery failed, not the file


@dataclass
class SourceFile:
    """A file found under the run's paths, with its content hash and manifest row.

    `path` and `display_path` are valid UTF-8 text (a name with undecodable bytes
    is shown escaped, see `textmine.ingest.safe_display_path`); `raw_path` holds
    the exact bytes of the absolute path, so any name is read and stored losslessly.
    """

    path: str  # absolute, safe text form: the key in the store
    display_path: str  # as given / discovered; shown in outputs
    doc_id: str
    size: int
    manifest_row: dict | None = None
    manifest_hash: str | None = None
    raw_path: bytes = b""  # os.fsencode of the absolute path

    @property
    def location(self) -> Path:
        """The path to open (from the exact bytes when known)."""
        return Path(os.fsdecode(self.raw_path)) if self.raw_path else Path(self.path)

    def record(self) -> tuple[str, str, str, int, str | None]:
        """(path, display_path, doc_id, size, manifest_hash) for the store."""
        return (self.path, self.display_path, self.doc_id, self.size, self.manifest_hash)


@dataclass
class WorkPlan:
    """What a run has to read, given what the store knows."""

    files: list[SourceFile] = field(default_factory=list)
    to_read: list[SourceFile] = field(default_factory=list)
    unchanged: list[SourceFile] = field(default_factory=list)
    changed: list[SourceFile] = field(default_factory=list)  # known path, new bytes
    duplicates: list[tuple[SourceFile, str]] = field(default_factory=list)  # (file, its twin)
    known_failures: list[SourceFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list = field(default_factory=list)  # textmine.ingest.SkippedFile, left out on purpose
    problems: list = field(default_factory=list)  # SkippedFile: links, special files (failures)


@dataclass
class Scan:
    """The files found under the run's paths and the entries left out, with reasons."""

    files: list[SourceFile]
    skipped: list  # textmine.ingest.SkippedFile


def scan_files(
    paths: Iterable[Path],
    manifest_path: Path | None = None,
    follow_symlinks: bool | None = None,
    exclude: Path | None = None,
) -> Scan:
    """Find the documents under `paths`, hash their bytes, attach their manifest rows.

    Symbolic links are not followed unless `follow_symlinks` (default: the
    TEXTMINE_FOLLOW_SYMLINKS environment variable); every entry left out is
    listed in `Scan.skipped` with its reason. Files under `exclude` (the run's
    own output folder, when it lies inside a corpus folder) are left out.
    """
    from textmine.ingest import discover, follow_symlinks_setting, safe_display_path

    manifest: dict[str, dict] = {}
    manifest_dir = None
    if manifest_path is not None:
        from textmine.manifest import read_manifest

        manifest = read_manifest(manifest_path)
        manifest_dir = Path(manifest_path).resolve().parent
    files = []
    seen: set[str] = set()
    excluded = Path(exclude).resolve() if exclude is not None else None
    discovery = discover(
        [Path(p) for p in paths], follow_symlinks=follow_symlinks_setting(follow_symlinks)
    )
    for found in discovery.files:
        found = Path(found)
        if found.name in IGNORED_NAMES or found.name.endswith(".part"):
            continue
        resolved = found.resolve()
        if excluded is not None and resolved.is_relative_to(excluded):
            continue
        absolute = safe_display_path(resolved)
        if absolute in seen:
            continue
        seen.add(absolute)
        try:
            data_hash, size = hash_file(found)
        except OSError:
            data_hash, size = "", -1  # the reader reports it as not_found
        row = None
        if manifest_dir is not None:
            try:
                key = resolved.relative_to(manifest_dir).as_posix()
            except ValueError:
                key = None
            row = manifest.get(key) if key else None
        files.append(
            SourceFile(
                path=absolute,
                display_path=safe_display_path(found),
                doc_id=data_hash,
                size=size,
                manifest_row=row,
                manifest_hash=manifest_row_hash(row),
                raw_path=os.fsencode(resolved),
            )
        )
    return Scan(files, list(discovery.skipped))


def hash_file(path: Path) -> tuple[str, int]:
    """(first 16 hex digits of the SHA-256 of the bytes, size in bytes)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(functools.partial(handle.read, 1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest()[:16], size


def manifest_row_hash(row: dict | None) -> str | None:
    """A hash of a manifest row, so a changed row re-reads its document."""
    if not row:
        return None
    text = json.dumps({k: str(v) for k, v in row.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ocr_available() -> bool:
    """True when an OCR engine is installed (scans that needed OCR can be read now)."""
    from textmine.ingest.pdf import ocr_command

    return bool(ocr_command())


def plan_work(
    store: Store,
    scan: Scan,
    roots: Iterable[Path],
    *,
    password: str | None = None,
    run_id: int | None = None,
) -> WorkPlan:
    """Decide what to read; record unchanged files, duplicates and missing files.

    A failure of the reading machinery (`read_error`) is read again; other
    failures only when the bytes, the password or the textmine version change.
    """
    files = scan.files
    plan = WorkPlan(
        files=files,
        skipped=[s for s in scan.skipped if not s.is_problem],
        problems=[s for s in scan.skipped if s.is_problem],
    )
    known = store.known_files()
    stored_docs = store.document_manifest_hashes()
    present = {f.path for f in files}
    ordered = sorted(files, key=lambda f: f.display_path)
    # One file per content reads it: the file that already provides it, else the first.
    canonical: dict[str, SourceFile] = {}
    for file in ordered:
        stored = known.get(file.path)
        if stored is not None and stored.status == "document" and stored.doc_id == file.doc_id:
            canonical[file.doc_id] = file
    for file in ordered:
        canonical.setdefault(file.doc_id, file)
    for file in ordered:
        before = known.get(file.path)
        if file.size < 0 or not file.doc_id:
            plan.to_read.append(file)  # unreadable: let the reader name the problem
            continue
        if file.size > 0:  # empty files are failures each, never duplicates of each other
            first = canonical[file.doc_id]
            if first is not file:
                plan.duplicates.append((file, first.display_path))
                continue
            if file.doc_id in stored_docs and stored_docs[file.doc_id] == file.manifest_hash:
                plan.unchanged.append(file)
                continue
        failure = store.failure_record(file.path)
        if (
            failure is not None
            and failure["doc_id"] == file.doc_id
            and failure["textmine_version"] == __version__
            and failure["reason"] not in RETRIED_REASONS
            and not (
                failure["reason"] == "encrypted" and password and not failure["password_given"]
            )
            and not (failure["reason"] == "needs_ocr" and ocr_available())
        ):
            plan.known_failures.append(file)
            continue
        if before is not None and before.doc_id != file.doc_id and before.status != "missing":
            plan.changed.append(file)
        plan.to_read.append(file)
    store.record_unchanged((f.record() for f in plan.unchanged), run_id)
    store.record_duplicates((f.record() for f, _twin in plan.duplicates), run_id)
    root_prefixes = [str(Path(r).resolve()) for r in roots]
    for path, stored in known.items():
        if stored.status == "missing" or path in present:
            continue
        under_roots = any(
            path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in root_prefixes
        )
        if under_roots or not os.path.exists(path):  # deleted, or moved elsewhere
            plan.missing.append(path)
    store.mark_missing(plan.missing, run_id)
    return plan
