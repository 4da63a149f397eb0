"""What a run is asked to do (`RunSettings`) and what it did (`RunReport`, `RunCounts`)."""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Literal, get_args

from textmine import __version__

Stage = Literal["ingest", "code", "topics", "trends", "figures", "export"]
STAGES: tuple[Stage, ...] = get_args(Stage)
EXPORT_FORMATS = ("csv", "parquet", "qdpx", "qdc")
CODERS = ("learned", "rules")
MANIFEST_NAME = "manifest.csv"
ENVIRONMENT_PREFIX = "TEXTMINE_"  # environment variables a run passes on to its workers


@dataclass
class RunSettings:
    """Everything a run needs; the CLI and the flows build one. Validates itself."""

    paths: list[Path] = field(default_factory=lambda: [Path("corpus")])
    out_dir: Path = Path("outputs")
    manifest: Path | None = None  # default: manifest.csv in the first folder given, if any
    codebook: Path | None = None  # default: the packaged codebook
    coder: str = "learned"  # learned | rules
    model_dir: Path | None = None  # default: the packaged model (coder learned)
    password: str | None = None
    refit_topics: bool = False
    n_topics: str | int = "auto"
    by: str = "year"  # trends by year | quarter
    formats: tuple[str, ...] = ("csv",)
    stages: tuple[str, ...] = STAGES
    validation: Path | None = None  # human-coded probability sample for corrected trends
    workers: int = 1  # processes reading and coding (1: in this process)
    code_batch_documents: int = 20
    spacy_model: str | None = None
    lock_wait_seconds: float = 0.0
    task_runner: str = ""  # the Prefect task runner of a flow run (thread, process, dask)

    def __post_init__(self) -> None:
        self.paths = [Path(p) for p in self.paths]
        self.out_dir = Path(self.out_dir)
        self.manifest = Path(self.manifest) if self.manifest else None
        self.codebook = Path(self.codebook) if self.codebook else None
        self.model_dir = Path(self.model_dir) if self.model_dir else None
        self.validation = Path(self.validation) if self.validation else None
        self.formats = tuple(dict.fromkeys(self.formats))
        self.stages = tuple(self.stages)
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}; known: {', '.join(STAGES)}")
        unknown_formats = sorted(set(self.formats) - set(EXPORT_FORMATS))
        if unknown_formats:
            raise ValueError(
                f"unknown export format(s) {', '.join(unknown_formats)}; "
                f"known: {', '.join(EXPORT_FORMATS)}"
            )
        if self.coder not in CODERS:
            raise ValueError(f"--coder must be {' or '.join(CODERS)}, not {self.coder!r}")
        if self.by not in ("year", "quarter"):
            raise ValueError(f"--by must be year or quarter, not {self.by!r}")
        if isinstance(self.n_topics, str) and self.n_topics != "auto":
            if not self.n_topics.isdigit():
                raise ValueError(f"--n-topics must be auto or a number, not {self.n_topics!r}")
            self.n_topics = int(self.n_topics)
        if isinstance(self.n_topics, int) and self.n_topics < 2:
            raise ValueError(f"--n-topics must be auto or at least 2, not {self.n_topics}")
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, not {self.workers}")

    def check_inputs(self) -> None:
        """Fail before any work when a path, the codebook, model or validation file is missing."""
        for path in self.paths:
            if not path.exists() and not path.is_symlink():
                raise FileNotFoundError(f"{path} does not exist")
        for label, option in (
            ("codebook", self.codebook),
            ("manifest", self.manifest),
            ("model folder", self.model_dir),
            ("validation sample", self.validation),
        ):
            if option is not None and not option.exists():
                raise FileNotFoundError(f"{label} {option} does not exist")

    def resolved_manifest(self) -> Path | None:
        """The manifest given, else manifest.csv in the first folder that has one."""
        if self.manifest is not None:
            return self.manifest
        for path in self.paths:
            if path.is_dir() and (path / MANIFEST_NAME).is_file():
                return path / MANIFEST_NAME
        return None

    def to_dict(self) -> dict:
        """Plain values for run.json and the runs table; the password is never written."""
        data = asdict(self)
        data["password"] = "***" if self.password else None
        return {k: _plain(v) for k, v in data.items()}

    def output_settings(self) -> dict:
        """The settings the content of outputs depends on (besides the store's content).

        Stages and formats decide which outputs a run needs, not what they hold:
        `outputs_are_fresh` checks those files exist.
        """
        return {
            "n_topics": self.n_topics,
            "by": self.by,
            "validation": _file_hash(self.validation) if self.validation else None,
        }


@dataclass
class RunCounts:
    """Counts of one run (this run's work) and totals of the corpus after it."""

    files_found: int = 0
    documents_unchanged: int = 0
    duplicates: int = 0
    known_failures_skipped: int = 0
    missing: int = 0
    documents_changed: int = 0
    documents_read: int = 0
    failed: int = 0
    pages_read: int = 0
    sentences_new: int = 0
    documents_retired: int = 0
    sentences_coded: int = 0
    coding_failed: int = 0  # documents the coder failed on this run (left pending, retried)
    stage_errors: int = 0
    outputs_removed: int = 0
    documents_total: int = 0
    pages_total: int = 0
    sentences_total: int = 0
    coded_sentences_total: int = 0
    failures_total: int = 0
    duplicates_total: int = 0

    def __getitem__(self, name: str) -> int:
        """Counts read like a dict too (`counts["documents_read"]`)."""
        if name not in _COUNT_NAMES:
            raise KeyError(name)
        return int(getattr(self, name))

    def get(self, name: str, default: int = 0) -> int:
        """A count by name, `default` for an unknown name."""
        return int(getattr(self, name)) if name in _COUNT_NAMES else default

    def set_totals(self, totals: dict[str, int]) -> None:
        """Take the store's totals (`Store.counts()`) as the `*_total` counts."""
        for name, value in totals.items():
            setattr(self, f"{name}_total", int(value))

    def to_dict(self) -> dict[str, int]:
        """All counts by name."""
        return asdict(self)


_COUNT_NAMES = frozenset(f.name for f in fields(RunCounts))


@dataclass
class RunReport:
    """What a run did: counts, timings per stage, notes, failures, outputs."""

    run_id: int | None = None
    status: str = "running"
    textmine_version: str = __version__
    codebook_version: str | None = None
    model_version: str | None = None
    out_dir: str = ""
    counts: RunCounts = field(default_factory=RunCounts)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # entries left out on purpose, with reasons
    outputs: list[str] = field(default_factory=list)
    outputs_removed: list[str] = field(default_factory=list)
    topics_refit: bool = False
    outputs_regenerated: bool = False

    def to_dict(self) -> dict:
        """Plain values for run.json."""
        return asdict(self)

    @property
    def did_work(self) -> bool:
        """True when the run read, coded or refitted anything."""
        c = self.counts
        return bool(c.documents_read or c.sentences_coded or self.topics_refit)

    def stage_error(self, stage: str, error: BaseException) -> None:
        """Note an analysis stage that failed while the run goes on."""
        self.notes.append(f"{stage} failed: {type(error).__name__}: {error}")
        self.counts.stage_errors += 1


class stage_timer:
    """Context manager adding the seconds of a stage to `report.timings`."""

    def __init__(self, report: RunReport, stage: str) -> None:
        self.report, self.stage = report, stage
        self.start = 0.0

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        timings = self.report.timings
        timings[self.stage] = round(
            timings.get(self.stage, 0.0) + time.perf_counter() - self.start, 3
        )


def _file_hash(path: Path) -> str:
    """The path and a hash of its bytes, so an edited file counts as a change."""
    import hashlib

    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        digest = "unreadable"
    return f"{path}:{digest}"


def _plain(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def settings_environment() -> dict[str, str]:
    """The TEXTMINE_* environment variables of this process (read limits, OCR, links)."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENVIRONMENT_PREFIX)}


def use_settings_environment(environment: dict[str, str]) -> None:
    """In a worker: take the run's TEXTMINE_* variables, not the forkserver's old ones."""
    for key in [k for k in os.environ if k.startswith(ENVIRONMENT_PREFIX)]:
        del os.environ[key]
    os.environ.update(environment)


def worker_context() -> multiprocessing.context.ForkServerContext:
    """The context of a run's worker processes: forkserver (no fork of threads), steps preloaded."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["textmine.run.steps"])
    return context
