"""The whole job, incrementally: files -> store -> codes -> topics -> trends -> outputs.

Each stage is a plain function (kedro style) over the store and plain data, so
`textmine run` (`run_pipeline`) and the Prefect flows in `flows/` call the same
functions; the flows only wrap them as tasks on batches.

Incremental rules (the store remembers everything by content hash):
- a file whose bytes and manifest row are unchanged is skipped; a known path
  with new bytes is read anew and the old content retired from the outputs;
  identical files are read once and reported as duplicates;
- a file that failed is not retried until its bytes, the password or the
  textmine version change;
- only sentences not yet coded with the current codebook version are coded
  (a changed codebook re-codes stored sentences without re-extracting);
- topics are refitted only when asked; new sentences are assigned to the saved
  model; nothing new means no topic work at all;
- outputs are regenerated from the store, and skipped when the store's state
  fingerprint and the output settings are those of the outputs on disk.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from textmine import __version__
from textmine.atomic import write_csv_atomic, write_json_atomic
from textmine.columns import DOCUMENT_COLUMNS, SENTENCE_COLUMNS
from textmine.store import LOCK_FILENAME, STORE_FILENAME, RunLock, Store

STAGES = ("ingest", "code", "topics", "trends", "figures", "export")
MANIFEST_NAME = "manifest.csv"
IGNORED_NAMES = {MANIFEST_NAME, ".textmine-feeds.json", STORE_FILENAME, LOCK_FILENAME}
OUTPUTS_KEY = "outputs_fingerprint"

ProgressCallback = Callable[[str, int, int], None]
"""progress(stage, done, total): called as a stage advances (total 0 when unknown)."""


@dataclass
class RunSettings:
    """Everything a run needs; the CLI and the flows build one."""

    paths: list[Path] = field(default_factory=lambda: [Path("corpus")])
    out_dir: Path = Path("outputs")
    manifest: Path | None = None  # default: manifest.csv in the first folder given, if any
    codebook: Path | None = None  # default: the packaged codebook
    password: str | None = None
    refit_topics: bool = False
    n_topics: str | int = "auto"
    by: str = "year"  # trends by year | quarter
    formats: tuple[str, ...] = ("csv",)
    stages: tuple[str, ...] = STAGES
    code_batch_size: int = 5000
    spacy_model: str | None = None
    lock_wait_seconds: float = 0.0

    def __post_init__(self):
        self.paths = [Path(p) for p in self.paths]
        self.out_dir = Path(self.out_dir)
        self.manifest = Path(self.manifest) if self.manifest else None
        self.codebook = Path(self.codebook) if self.codebook else None
        self.formats = tuple(self.formats)
        self.stages = tuple(self.stages)
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}; known: {', '.join(STAGES)}")
        if set(self.formats) - {"csv"}:
            from textmine.export import EXPORT_FORMATS

            unknown_formats = sorted(set(self.formats) - set(EXPORT_FORMATS))
            if unknown_formats:
                raise ValueError(
                    f"unknown export format(s) {', '.join(unknown_formats)}; "
                    f"known: {', '.join(EXPORT_FORMATS)}"
                )
        if self.by not in ("year", "quarter"):
            raise ValueError(f"--by must be year or quarter, not {self.by!r}")
        if isinstance(self.n_topics, str) and self.n_topics != "auto":
            if not self.n_topics.isdigit():
                raise ValueError(f"--n-topics must be auto or a number, not {self.n_topics!r}")
            self.n_topics = int(self.n_topics)

    def resolved_manifest(self) -> Path | None:
        if self.manifest is not None:
            return self.manifest
        for path in self.paths:
            if path.is_dir() and (path / MANIFEST_NAME).is_file():
                return path / MANIFEST_NAME
        return None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["password"] = "***" if self.password else None  # never written to disk
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}

    def output_settings(self) -> dict:
        """The settings outputs depend on (besides the store's content)."""
        return {
            "n_topics": self.n_topics,
            "by": self.by,
            "formats": sorted(self.formats),
            "stages": sorted(self.stages),
        }


@dataclass
class RunReport:
    """What a run did: counts, timings per stage, notes, failures, outputs."""

    run_id: int | None = None
    status: str = "running"
    textmine_version: str = __version__
    codebook_version: str | None = None
    out_dir: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    topics_refit: bool = False
    outputs_regenerated: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def did_work(self) -> bool:
        c = self.counts
        return bool(c.get("documents_read") or c.get("sentences_coded") or self.topics_refit)


@dataclass
class SourceFile:
    """A file found under the run's paths, with its content hash and manifest row."""

    path: str  # absolute
    display_path: str  # as given / discovered; shown in outputs
    doc_id: str
    size: int
    manifest_row: dict | None = None
    manifest_hash: str | None = None


@dataclass
class WorkPlan:
    """What a run has to read, given what the store knows."""

    to_read: list[SourceFile] = field(default_factory=list)
    unchanged: list[SourceFile] = field(default_factory=list)
    changed: list[SourceFile] = field(default_factory=list)  # known path, new bytes
    duplicates: list[tuple[SourceFile, str]] = field(default_factory=list)  # (file, its twin)
    known_failures: list[SourceFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class Extraction:
    """The outcome of reading one file: a document with sentences, or a failure."""

    file: SourceFile
    document: object | None = None  # textmine.types.Document
    sentences: pd.DataFrame | None = None
    reason: str | None = None
    message: str | None = None
    seconds: float = 0.0


# -- stage: scan ------------------------------------------------------------------


def scan_files(paths: Iterable[Path], manifest_path: Path | None = None) -> list[SourceFile]:
    """Find the documents under `paths`, hash their bytes, attach their manifest rows."""
    from textmine.ingest import discover_files

    manifest: dict[str, dict] = {}
    manifest_dir = None
    if manifest_path is not None:
        from textmine.manifest import read_manifest

        manifest = read_manifest(manifest_path)
        manifest_dir = Path(manifest_path).resolve().parent
    files = []
    seen: set[str] = set()
    for found in discover_files([Path(p) for p in paths]):
        found = Path(found)
        if found.name in IGNORED_NAMES or found.name.endswith(".part"):
            continue
        absolute = str(found.resolve())
        if absolute in seen:
            continue
        seen.add(absolute)
        try:
            data_hash, size = _hash_file(found)
        except OSError:
            data_hash, size = "", -1  # the reader reports it as not_found
        row = None
        if manifest_dir is not None:
            try:
                key = Path(absolute).relative_to(manifest_dir).as_posix()
            except ValueError:
                key = None
            row = manifest.get(key) if key else None
        files.append(
            SourceFile(
                path=absolute,
                display_path=str(found),
                doc_id=data_hash,
                size=size,
                manifest_row=row,
                manifest_hash=_row_hash(row),
            )
        )
    return files


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(functools.partial(handle.read, 1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest()[:16], size


def _row_hash(row: dict | None) -> str | None:
    if not row:
        return None
    text = json.dumps({k: str(v) for k, v in row.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- stage: plan ------------------------------------------------------------------


def plan_work(
    store: Store,
    files: list[SourceFile],
    roots: Iterable[Path],
    *,
    password: str | None = None,
    run_id: int | None = None,
) -> WorkPlan:
    """Decide what to read; record unchanged files, duplicates and missing files."""
    plan = WorkPlan()
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
            and not (failure["reason"] == "encrypted" and password and not failure["password_given"])
        ):
            plan.known_failures.append(file)
            continue
        if before is not None and before.doc_id != file.doc_id and before.status != "missing":
            plan.changed.append(file)
        plan.to_read.append(file)

    with store.transaction() as conn:
        for file in plan.unchanged:
            store.set_file(
                file.path, file.display_path, file.doc_id, file.size, file.manifest_hash,
                "document", run_id, conn=conn,
            )
            # a moved or renamed file: its document now shows the new path
            for table in ("documents", "sentences"):
                conn.execute(
                    f"UPDATE {table} SET path = ? WHERE doc_id = ? AND path != ?",
                    (file.display_path, file.doc_id, file.display_path),
                )
        for file, _twin in plan.duplicates:
            store.set_file(
                file.path, file.display_path, file.doc_id, file.size, file.manifest_hash,
                "duplicate", run_id, conn=conn,
            )
            conn.execute("DELETE FROM failures WHERE path = ?", (file.path,))
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


# -- stage: extract -----------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _nlp(model: str | None):
    from textmine.segment import build_nlp

    return build_nlp(model) if model else build_nlp()


def extract_files(
    files: list[SourceFile], password: str | None = None, spacy_model: str | None = None
) -> list[Extraction]:
    """Read and segment files. Pure: never raises for a bad file, never touches the store."""
    from textmine.ingest import read_bytes
    from textmine.segment import segment_document
    from textmine.types import IngestError

    results = []
    for file in files:
        started = time.perf_counter()
        try:
            try:  # by absolute path (a worker's folder may differ), shown as the user gave it
                data = Path(file.path).read_bytes()
            except OSError as exc:
                raise IngestError("not_found", f"cannot read the file: {exc.strerror or exc}") from exc
            document = read_bytes(
                data, Path(file.display_path), manifest_row=file.manifest_row, password=password
            )
            sentences = segment_document(document, _nlp(spacy_model))
            results.append(Extraction(file, document=document, sentences=sentences))
        except IngestError as exc:
            results.append(Extraction(file, reason=exc.reason, message=exc.message))
        except Exception as exc:  # a reader bug must not stop the run
            results.append(
                Extraction(
                    file,
                    reason="malformed",
                    message=f"textmine could not read it ({type(exc).__name__}: {exc})",
                )
            )
        results[-1].seconds = time.perf_counter() - started
    return results


def save_extraction(
    store: Store, extraction: Extraction, run_id: int | None, password_given: bool = False
) -> None:
    """Commit one extraction (document + sentences together, or the failure)."""
    file = extraction.file
    if extraction.document is not None:
        document = extraction.document
        if document.doc_id != file.doc_id:  # the file changed after the scan: keep what was read
            file.doc_id = document.doc_id
        store.save_document(
            document,
            extraction.sentences
            if extraction.sentences is not None
            else pd.DataFrame(columns=SENTENCE_COLUMNS),
            file_path=file.path,
            size=file.size,
            manifest_hash=file.manifest_hash,
            run_id=run_id,
            textmine_version=__version__,
        )
    else:
        store.save_failure(
            file_path=file.path,
            display_path=file.display_path,
            doc_id=file.doc_id,
            size=file.size,
            reason=extraction.reason or "malformed",
            message=extraction.message or "",
            password_given=password_given,
            run_id=run_id,
            textmine_version=__version__,
        )


# -- stage: code --------------------------------------------------------------------


def load_codebook(path: Path | None):
    from textmine.codebook import load_codebook as _load

    return _load(path) if path else _load()


def code_batch(sentences: pd.DataFrame, codebook) -> pd.DataFrame:
    """Code one batch of sentences (pure)."""
    from textmine.coding import code_sentences

    return code_sentences(sentences, codebook)


def code_pending(
    store: Store,
    codebook,
    run_id: int | None,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
) -> int:
    """Code every stored sentence not yet coded with this codebook; commit per batch."""
    total = store.count_pending(codebook.version)
    done = 0
    if progress:
        progress("code", 0, total)
    while True:
        batch = store.pending_sentences(codebook.version, limit=batch_size)
        if batch.empty:
            break
        coded = code_batch(batch, codebook)
        done += store.save_codes(coded, run_id)
        if progress:
            progress("code", done, total)
    store.set_codebook_version(codebook.version)
    return done


# -- stages: topics, trends, figures, exports ------------------------------------------


class CorpusTables:
    """The store's current documents and coded sentences, read once per run."""

    def __init__(self, store: Store):
        self._store = store

    @functools.cached_property
    def documents(self) -> pd.DataFrame:
        return self._store.documents()

    @functools.cached_property
    def coded_sentences(self) -> pd.DataFrame:
        return self._store.coded_sentences()



def topic_settings(settings: RunSettings):
    from textmine.topics import TopicSettings

    n_topics = settings.n_topics if settings.n_topics == "auto" else int(settings.n_topics)
    return TopicSettings(by=settings.by, n_topics=n_topics)


def model_topics(store: Store, settings: RunSettings, codebook=None, tables=None):
    """Fit (first time, or when asked) or extend the topic model; keep its tables in the store."""
    from textmine.topics import run_topics

    tables = tables or CorpusTables(store)
    coded, documents = tables.coded_sentences, tables.documents
    outputs = run_topics(
        coded,
        documents,
        topic_settings(settings),
        settings.out_dir / "topic_model",
        refit=settings.refit_topics,
        codebook=codebook,
    )
    for name in ("topics", "doc_topics", "topics_over_time"):
        frame = getattr(outputs, name, None)
        if isinstance(frame, pd.DataFrame):
            store.write_table(name, frame)
    return outputs


def compute_trend_tables(
    store: Store, by: str = "year", tables=None
) -> dict[str, pd.DataFrame]:
    from textmine.trends import compute_trends

    tables = tables or CorpusTables(store)
    trends = compute_trends(tables.coded_sentences, tables.documents, by=by)
    for name, frame in trends.items():
        store.write_table(f"trend_{name}", frame)
    return trends


def write_outputs(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    *,
    trends: dict[str, pd.DataFrame] | None = None,
    topic_outputs=None,
    codebook=None,
    tables=None,
) -> list[Path]:
    """Regenerate every output file from the store."""
    out = settings.out_dir
    written: list[Path] = []
    tables = tables or CorpusTables(store)
    coded = tables.coded_sentences
    listing = store.documents(include_duplicates=True)  # duplicate files listed, zero counts
    if "export" not in settings.stages:
        write_csv_atomic(out / "documents.csv", listing[DOCUMENT_COLUMNS])
        written.append(out / "documents.csv")
    else:
        from textmine.export import write_exports

        written += write_exports(
            listing,
            coded,
            out,
            formats=settings.formats,
            doc_texts=store.document_texts() if _needs_texts(settings.formats) else None,
            codebook=codebook,
        )
    write_csv_atomic(out / "sentences.csv", store.sentences())
    written.append(out / "sentences.csv")
    write_csv_atomic(out / "failures.csv", store.failures())
    written.append(out / "failures.csv")
    if topic_outputs is not None:
        written += list(topic_outputs.write(out))
    if trends:
        from textmine.trends import TREND_FILES

        for name, frame in trends.items():
            path = out / TREND_FILES.get(name, f"{name}.csv")
            write_csv_atomic(path, frame)
            written.append(path)
    if "figures" in settings.stages and trends is not None:
        try:
            from textmine.figures import write_figures

            written += list(write_figures(trends, topic_outputs, out / "figures", by=settings.by))
        except Exception as exc:  # charts are a view on the tables: report, keep the run
            report.notes.append(f"figures failed: {type(exc).__name__}: {exc}")
            report.counts["stage_errors"] = report.counts.get("stage_errors", 0) + 1
    return written


def _needs_texts(formats: Iterable[str]) -> bool:
    return any(f in ("qdpx",) for f in formats)


def write_run_json(settings: RunSettings, report: RunReport) -> Path:
    path = settings.out_dir / "run.json"
    write_json_atomic(path, {"settings": settings.to_dict(), **report.to_dict()})
    return path


# -- stage steps shared by `run_pipeline` and the flows ----------------------------------


def plan_stage(store: Store, settings: RunSettings, report: RunReport, run_id: int) -> WorkPlan:
    """Scan the paths and plan the reading; fills the report's file counts."""
    with stage_timer(report, "scan"):
        files = scan_files(settings.paths, settings.resolved_manifest())
        plan = plan_work(store, files, settings.paths, password=settings.password, run_id=run_id)
    report.counts.update(
        files_found=len(files),
        documents_unchanged=len(plan.unchanged),
        duplicates=len(plan.duplicates),
        known_failures_skipped=len(plan.known_failures),
        missing=len(plan.missing),
        documents_changed=len(plan.changed),
        documents_read=0,
        failed=0,
        pages_read=0,
        sentences_new=0,
    )
    report.duplicates = [
        {"path": f.display_path, "duplicate_of": twin, "doc_id": f.doc_id}
        for f, twin in plan.duplicates
    ]
    return plan


def record_extraction(
    store: Store, report: RunReport, extraction: Extraction, run_id: int, settings: RunSettings
) -> None:
    """Commit one extraction and count it in the report."""
    save_extraction(store, extraction, run_id, bool(settings.password))
    counts = report.counts
    if extraction.document is not None:
        counts["documents_read"] += 1
        counts["pages_read"] += int(extraction.document.pages or 0)
        counts["sentences_new"] += len(extraction.sentences)
    else:
        counts["failed"] += 1
        report.failures.append(
            {
                "path": extraction.file.display_path,
                "reason": extraction.reason,
                "message": extraction.message,
            }
        )


def finish_ingest(store: Store, report: RunReport) -> None:
    """Retire content no current file holds (changed or deleted files)."""
    report.counts["documents_retired"] = len(store.refresh_retired())


def codebook_file_version(path: Path | None) -> str | None:
    """The version textmine.codebook gives a codebook file (a hash of its bytes), cheaply.

    Used only to skip loading (and compiling) the codebook when the store is
    already fully coded with it; any mismatch just means the codebook is loaded.
    """
    try:
        if path is None:
            from textmine.codebook import default_codebook_path

            path = default_codebook_path()
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    except (OSError, ImportError):
        return None


def codes_up_to_date(store: Store, settings: RunSettings) -> bool:
    """True when every stored sentence is coded with the codebook file as it is now."""
    version = codebook_file_version(settings.codebook)
    return (
        version is not None
        and store.codebook_version == version
        and store.count_pending(version) == 0
    )


def prepare_codebook(store: Store, settings: RunSettings, report: RunReport):
    """Load the codebook; note when it differs from the one the store was coded with."""
    codebook = load_codebook(settings.codebook)
    report.codebook_version = codebook.version
    if store.codebook_version not in (None, codebook.version):
        report.notes.append(
            f"codebook changed ({store.codebook_version} -> {codebook.version}): "
            "stored sentences are re-coded, not re-extracted"
        )
    return codebook


def outputs_state(store: Store, settings: RunSettings) -> tuple[bool, str]:
    """(outputs on disk are up to date, fingerprint of what they would be made from)."""
    fingerprint = json.dumps(
        {
            "store": store.fingerprint(),
            "settings": settings.output_settings(),
            "textmine": __version__,
        },
        sort_keys=True,
    )
    out = settings.out_dir
    present = (out / "sentences.csv").is_file() and (
        "export" not in settings.stages or (out / "coded_sentences.csv").is_file()
    )
    fresh = store.get_meta(OUTPUTS_KEY) == fingerprint and present and not settings.refit_topics
    return fresh, fingerprint


def topics_stage(
    store: Store, settings: RunSettings, report: RunReport, codebook=None, tables=None
):
    """Topic model (fit, extend or refit); a failure is reported, not raised."""
    if "topics" not in settings.stages or not store.counts()["coded_sentences"]:
        return None
    with stage_timer(report, "topics"):
        try:
            outputs = model_topics(store, settings, codebook, tables)
        except Exception as exc:  # an analysis on top of the corpus: report, keep the run
            report.notes.append(f"topics failed: {type(exc).__name__}: {exc}")
            report.counts["stage_errors"] = report.counts.get("stage_errors", 0) + 1
            return None
    report.topics_refit = bool(getattr(outputs, "refitted", settings.refit_topics))
    report.notes.extend(getattr(outputs, "notes", []) or [])
    return outputs


def trends_stage(store: Store, settings: RunSettings, report: RunReport, tables=None):
    """Trend tables; a failure is reported, not raised."""
    if "trends" not in settings.stages or not store.counts()["coded_sentences"]:
        return None
    with stage_timer(report, "trends"):
        try:
            return compute_trend_tables(store, settings.by, tables)
        except Exception as exc:
            report.notes.append(f"trends failed: {type(exc).__name__}: {exc}")
            report.counts["stage_errors"] = report.counts.get("stage_errors", 0) + 1
            return None


def outputs_stage(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    fingerprint: str,
    *,
    trends=None,
    topic_outputs=None,
    codebook=None,
    tables=None,
) -> list[Path]:
    """Write every output from the store; remember the fingerprint when all stages worked."""
    with stage_timer(report, "outputs"):
        written = write_outputs(
            store, settings, report, trends=trends, topic_outputs=topic_outputs,
            codebook=codebook, tables=tables,
        )
    report.outputs = [str(p) for p in written] + [str(settings.out_dir / "run.json")]
    report.outputs_regenerated = True
    if not report.counts.get("stage_errors"):
        store.set_meta(OUTPUTS_KEY, fingerprint)  # else the next run tries again
    return written


def totals_into_report(store: Store, report: RunReport) -> None:
    report.counts.update({f"{k}_total": v for k, v in store.counts().items()})


# -- the whole run ----------------------------------------------------------------------


def run_pipeline(
    settings: RunSettings, progress: ProgressCallback | None = None
) -> RunReport:
    """Run every stage incrementally; return the report (also written to run.json)."""
    report = RunReport(out_dir=str(settings.out_dir))
    with recorded_run(settings, report, wait_seconds=settings.lock_wait_seconds) as (store, run_id):
        _run_stages(store, settings, report, run_id, progress)
    write_run_json(settings, report)
    return report


@contextlib.contextmanager
def recorded_run(settings: RunSettings, report: RunReport, *, wait_seconds: float,
                 extra_settings: dict | None = None):
    """Lock the output folder, open the store and record the run in it.

    Yields (store, run_id). The run is recorded as finished when the body returns,
    as failed (with the exception in the notes) when it raises; the store is closed
    and the lock released either way. `textmine run` and the Prefect flow share it.
    """
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(settings.out_dir, wait_seconds=wait_seconds):
        store = Store(settings.out_dir / STORE_FILENAME)
        try:
            run_id = store.start_run(settings.to_dict() | (extra_settings or {}), __version__)
            report.run_id = run_id
            try:
                yield store, run_id
            except BaseException as exc:
                report.status = "failed"
                report.notes.append(f"run stopped: {type(exc).__name__}: {exc}")
                store.finish_run(run_id, "failed", report.to_dict(), report.codebook_version)
                raise
            report.status = "finished"
            store.finish_run(run_id, "finished", report.to_dict(), report.codebook_version)
        finally:
            store.close()


class stage_timer:  # noqa: N801  (used like a function)
    """Context manager adding the seconds of a stage to `report.timings`."""

    def __init__(self, report: RunReport, stage: str):
        self.report, self.stage = report, stage

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        timings = self.report.timings
        timings[self.stage] = round(
            timings.get(self.stage, 0.0) + time.perf_counter() - self.start, 3
        )


def _run_stages(store, settings, report, run_id, progress) -> None:
    started = time.perf_counter()
    if "ingest" in settings.stages:
        plan = plan_stage(store, settings, report, run_id)
        with stage_timer(report, "extract"):
            total = len(plan.to_read)
            if progress and total:
                progress("read", 0, total)
            for index, file in enumerate(plan.to_read, 1):
                (extraction,) = extract_files([file], settings.password, settings.spacy_model)
                record_extraction(store, report, extraction, run_id, settings)
                if progress:
                    progress("read", index, total)
        finish_ingest(store, report)
    codebook = None
    report.codebook_version = store.codebook_version
    report.counts["sentences_coded"] = 0
    if "code" in settings.stages:
        with stage_timer(report, "code"):
            if not codes_up_to_date(store, settings):
                codebook = prepare_codebook(store, settings, report)
                report.counts["sentences_coded"] = code_pending(
                    store, codebook, run_id, settings.code_batch_size, progress
                )
    totals_into_report(store, report)
    fresh, fingerprint = outputs_state(store, settings)
    if fresh:
        report.notes.append("nothing new: outputs are up to date and were not rewritten")
    else:
        if codebook is None and "code" in settings.stages:
            codebook = load_codebook(settings.codebook)
        tables = CorpusTables(store)
        if progress:
            progress("topics", 0, 1)
        topic_outputs = topics_stage(store, settings, report, codebook, tables)
        if progress:
            progress("topics", 1, 1)
        trends = trends_stage(store, settings, report, tables)
        if progress:
            progress("outputs", 0, 1)
        outputs_stage(
            store, settings, report, fingerprint,
            trends=trends, topic_outputs=topic_outputs, codebook=codebook, tables=tables,
        )
        if progress:
            progress("outputs", 1, 1)
    report.timings["total"] = round(time.perf_counter() - started, 3)
