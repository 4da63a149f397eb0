"""A folder of files to Documents and Failures; the ingest outputs
(documents.csv, sentences.csv, failures.csv, run.json)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from textmine.atomic import write_csv_atomic, write_json_atomic
from textmine.columns import (
    DOCUMENT_COLUMNS,
    FAILURE_COLUMNS,
    FAILURE_REASONS,
    SENTENCE_COLUMNS,
    TEXTMINE_VERSION,
)
from textmine.ingest.reader import content_hash, read_bytes
from textmine.manifest import MANIFEST_NAME, manifest_by_file, normalise_key
from textmine.types import Document, Failure, IngestError

# Files in a walked folder with these suffixes are data or code, not documents.
NOT_DOCUMENT_SUFFIXES = {
    ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".py", ".ipynb",
    ".parquet", ".sqlite", ".db", ".pyc", ".log", ".lock", ".tmp", ".xsd", ".qdpx",
}


@dataclass(frozen=True)
class Duplicate:
    """A file whose bytes equal an earlier file's; it is not read again."""

    path: str
    doc_id: str
    original_path: str


@dataclass
class IngestResult:
    """What ingest_paths read, failed, found twice, skipped or left unchanged."""

    documents: list[Document] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)  # (path, doc_id) in skip_doc_ids
    skipped: list[str] = field(default_factory=list)  # walked files that are not documents
    seconds: float = 0.0

    @property
    def pages(self) -> int:
        return sum(d.pages for d in self.documents)

    def counts(self) -> dict:
        return {
            "files": len(self.documents) + len(self.failures) + len(self.duplicates) + len(self.unchanged),
            "documents": len(self.documents),
            "pages": self.pages,
            "duplicates": len(self.duplicates),
            "unchanged": len(self.unchanged),
            "failures": len(self.failures),
            "failures_by_reason": dict(Counter(f.reason for f in self.failures)),
            "skipped_not_documents": len(self.skipped),
        }


def discover_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files to ingest: given files as they are, folders walked recursively (sorted).

    Hidden files and folders, manifest.csv and data/code files (NOT_DOCUMENT_SUFFIXES)
    inside folders are left out. A path that does not exist is kept so that it is
    reported as a failure.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        candidates = [path] if not path.is_dir() else [
            p for p in sorted(path.rglob("*"))
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
            and p.name != MANIFEST_NAME
            and p.suffix.lower() not in NOT_DOCUMENT_SUFFIXES
        ]
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def skipped_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files inside the given folders that discover_files leaves out as not documents."""
    skipped = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            skipped += [
                p for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and (p.name == MANIFEST_NAME or p.suffix.lower() in NOT_DOCUMENT_SUFFIXES)
            ]
    return skipped


def load_manifests(paths: Iterable[str | Path], manifest: str | Path | dict | None) -> dict[Path, dict]:
    """Manifest rows keyed by absolute path: from `manifest` (a file, or a dict keyed by
    paths relative to the working directory) or else from each folder's manifest.csv."""
    if isinstance(manifest, dict):
        return {Path(normalise_key(str(k))).resolve(): row for k, row in manifest.items()}
    if manifest is not None:
        return manifest_by_file(manifest)
    rows: dict[Path, dict] = {}
    for raw in paths:
        candidate = Path(raw) / MANIFEST_NAME
        if Path(raw).is_dir() and candidate.is_file():
            rows.update(manifest_by_file(candidate))
    return rows


def ingest_paths(
    paths: Iterable[str | Path],
    manifest: str | Path | dict | None = None,
    password: str | None = None,
    progress: bool = False,
    skip_doc_ids: set[str] | None = None,
) -> IngestResult:
    """Read every file under `paths`; failures are recorded, never raised.

    Identical files are read once (later copies go to `duplicates`); files whose
    doc_id is in `skip_doc_ids` are hashed but not parsed (`unchanged`).
    """
    started = time.perf_counter()
    paths = list(paths)
    files = discover_files(paths)
    rows = load_manifests(paths, manifest)
    result = IngestResult(skipped=[p.as_posix() for p in skipped_files(paths)])
    first_path: dict[str, str] = {}
    skip_doc_ids = skip_doc_ids or set()

    def read_one(path: Path) -> None:
        label = path.as_posix()
        try:
            data = path.read_bytes()
        except OSError as error:
            reason = "not_found"
            result.failures.append(Failure(label, reason, f"cannot read the file: {error.strerror or error}"))
            return
        doc_id = content_hash(data) if data else ""
        if doc_id and doc_id in first_path:
            result.duplicates.append(Duplicate(label, doc_id, first_path[doc_id]))
            return
        if doc_id:
            first_path[doc_id] = label
        if doc_id in skip_doc_ids:
            result.unchanged.append((label, doc_id))
            return
        try:
            document = read_bytes(data, path, manifest_row=rows.get(path.resolve()), password=password)
        except IngestError as error:
            result.failures.append(Failure(label, error.reason, error.message))
        except Exception as error:  # a reader bug must not stop the run; report it
            result.failures.append(
                Failure(label, "malformed", f"unexpected {type(error).__name__}: {error}")
            )
        else:
            result.documents.append(document)

    if progress and files:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("reading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[name]}"))
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("read", total=len(files), name="")
            for path in files:
                bar.update(task, name=path.name[:40])
                read_one(path)
                bar.advance(task)
    else:
        for path in files:
            read_one(path)
    result.seconds = time.perf_counter() - started
    return result


def documents_frame(result: IngestResult, sentence_counts: dict[str, int] | None = None) -> pd.DataFrame:
    """documents.csv rows (DOCUMENT_COLUMNS): one per read document and one per duplicate file.

    A duplicate's row repeats its original's metadata with its own path,
    duplicate_of = the shared doc_id and n_sentences 0.
    """
    counts = sentence_counts or {}
    rows = []
    by_id = {}
    for document in result.documents:
        row = document.to_row()
        row["n_sentences"] = counts.get(document.doc_id, 0)
        row["duplicate_of"] = ""
        rows.append(row)
        by_id[document.doc_id] = row
    for duplicate in result.duplicates:
        original = by_id.get(duplicate.doc_id, {"doc_id": duplicate.doc_id})
        rows.append({**original, "path": duplicate.path, "n_sentences": 0, "duplicate_of": duplicate.doc_id})
    frame = pd.DataFrame(rows, columns=DOCUMENT_COLUMNS)
    frame["pages"] = frame["pages"].astype("Int64")
    frame["n_sentences"] = frame["n_sentences"].astype("Int64")
    return frame


def failures_frame(result: IngestResult) -> pd.DataFrame:
    return pd.DataFrame([[f.path, f.reason, f.message] for f in result.failures], columns=FAILURE_COLUMNS)


def run_report(result: IngestResult, sentences: pd.DataFrame, *, settings: dict, timings: dict) -> dict:
    """The run.json content: version, settings, counts, timings, notes per document."""
    from textmine import __version__

    counts = result.counts()
    counts["sentences"] = int(len(sentences))
    return {
        TEXTMINE_VERSION: __version__,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "counts": counts,
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        "failure_reasons": {r: FAILURE_REASONS[r] for r in counts["failures_by_reason"] if r in FAILURE_REASONS},
        "notes": {d.path: d.notes for d in result.documents if d.notes},
        "duplicates": [vars(d) for d in result.duplicates],
    }


def write_ingest_outputs(
    result: IngestResult,
    sentences: pd.DataFrame,
    out_dir: str | Path,
    *,
    settings: dict | None = None,
    timings: dict | None = None,
) -> dict:
    """Write documents.csv, sentences.csv, failures.csv and run.json atomically; return the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    counts = sentences.groupby("doc_id").size().to_dict() if len(sentences) else {}
    write_csv_atomic(out / "documents.csv", documents_frame(result, counts))
    write_csv_atomic(out / "sentences.csv", sentences.reindex(columns=SENTENCE_COLUMNS))
    write_csv_atomic(out / "failures.csv", failures_frame(result))
    timings = dict(timings or {})
    timings.setdefault("read", result.seconds)
    timings["write"] = time.perf_counter() - started
    report = run_report(result, sentences, settings=settings or {}, timings=timings)
    write_json_atomic(out / "run.json", report)
    return report


def summary_lines(report: dict) -> list[tuple[str, str]]:
    """(label, value) pairs for the end-of-run summary."""
    counts = report["counts"]
    reasons = ", ".join(f"{n} {r}" for r, n in sorted(counts["failures_by_reason"].items()))
    total = sum(report["timings_seconds"].values())
    return [
        ("documents read", str(counts["documents"])),
        ("pages", str(counts["pages"])),
        ("sentences", str(counts["sentences"])),
        ("duplicates", str(counts["duplicates"])),
        ("failures", f"{counts['failures']}" + (f" ({reasons})" if reasons else "")),
        ("time", f"{total:.1f} s"),
    ]
