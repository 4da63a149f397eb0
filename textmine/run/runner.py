"""The one stage loop: files -> store -> codes -> topics -> trends -> outputs.

`run_stages` is called by `textmine run`, `textmine ingest` and the Prefect
flow. They differ only in the batch mapper they hand it: a plain loop
(`serial_map`), a process pool (`process_map`, `textmine run --workers N`) or
Prefect's task runner (flows/); while the topic process fits, `textmine run`
codes with `shared_map` (this process and N - 1 workers). Pure work (reading,
coding) runs in the mapper; everything that touches the store runs here, in
one process.

Incremental rules (the store remembers everything by content hash):
- a file whose bytes and manifest row are unchanged is skipped; a known path
  with new bytes is read anew and the old content retired from the outputs;
  identical files are read once and reported as duplicates;
- a file that failed is not retried until its bytes, the password or the
  textmine version change; a failure of the reading machinery is retried;
- only sentences not yet coded with the current coding (codebook version and
  coder version) are coded; a document the coder fails on is a failure of the
  run's report (stage "coding") and stays uncoded, so every run tries it again;
  a coder that fails on every document and has coded nothing stops the run;
- topics are refitted only when asked; new sentences are assigned to the saved
  model; nothing new means no topic work at all;
- outputs are regenerated from the store, and skipped when every registered
  output was made from the store's current state with the same settings.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from textmine import __version__
from textmine.columns import SENTENCE_COLUMNS
from textmine.lock import RunLock
from textmine.run.outputs import (
    AnalysisTables,
    outputs_are_fresh,
    outputs_fingerprint,
    write_outputs,
    write_run_json,
)
from textmine.run.plan import WorkPlan, plan_work, scan_files
from textmine.run.settings import (
    RunReport,
    RunSettings,
    settings_environment,
    stage_timer,
    use_settings_environment,
    worker_context,
)
from textmine.run.steps import CoderSpec, Extraction, code_documents, extract_files
from textmine.store import STORE_FILENAME, CodingVersion, Store

if TYPE_CHECKING:
    from textmine.codebook import Codebook
    from textmine.run.topic_job import TopicJob
    from textmine.topics import TopicOutputs

ProgressCallback = Callable[..., None]
"""progress(stage, done, total[, detail]): called as a stage advances (total 0 when unknown).

`detail`, when the callback takes a fourth argument, says what a long stage is doing now
("fitting ... on 8,655 chunks"); three-argument callbacks are called without it.
"""


def with_detail(progress: ProgressCallback | None) -> ProgressCallback:
    """`progress` as a callback taking (stage, done, total, detail="")."""
    if progress is None:
        return lambda stage, done, total, detail="": None
    try:
        inspect.signature(progress).bind("", 0, 0, "")
    except TypeError:
        plain = progress
        return lambda stage, done, total, detail="": plain(stage, done, total)
    except ValueError:  # no signature to inspect: call it as documented
        pass
    return progress


@dataclass
class BatchResult:
    """One batch and what the step made of it (or the error that stopped the batch)."""

    batch: Any
    result: Any = None
    error: BaseException | None = None


class BatchMapper(Protocol):
    """Runs `step` on every batch, anywhere; yields results as they finish (any order)."""

    def __call__(
        self, step: Callable[[Any], Any], batches: Sequence[Any], *, name: str
    ) -> Iterator[BatchResult]:
        """Map `step` over `batches`; `name` labels the work (logs, task names)."""
        ...


def serial_map(
    step: Callable[[Any], Any], batches: Sequence[Any], *, name: str = ""
) -> Iterator[BatchResult]:
    """Run every batch in this process, one after another."""
    for batch in batches:
        yield BatchResult(batch, step(batch))


def process_map(workers: int) -> BatchMapper:
    """A mapper running batches on `workers` processes (forkserver: no fork of threads)."""

    def mapper(
        step: Callable[[Any], Any], batches: Sequence[Any], *, name: str = ""
    ) -> Iterator[BatchResult]:
        if len(batches) < 2:
            yield from serial_map(step, batches, name=name)
            return
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=min(workers, len(batches)),
            mp_context=worker_context(),
            initializer=use_settings_environment,
            initargs=(settings_environment(),),
        ) as pool:
            futures = {pool.submit(step, batch): batch for batch in batches}
            for future in concurrent.futures.as_completed(futures):
                try:
                    yield BatchResult(futures[future], future.result())
                except Exception as exc:  # a worker died (e.g. a crash in a C library)
                    yield BatchResult(futures[future], error=exc)

    return mapper


def shared_map(helpers: int) -> BatchMapper:
    """A mapper running batches in this process and on `helpers` worker processes at once.

    For work that runs while another process (the topic process) keeps a core
    busy: this process takes batches from the front, the workers from the back
    (each with one batch queued behind the one it runs), so the work splits
    itself by speed. Results come in any order, as with `process_map`.
    """

    def mapper(
        step: Callable[[Any], Any], batches: Sequence[Any], *, name: str = ""
    ) -> Iterator[BatchResult]:
        if helpers < 1 or len(batches) < 2:
            yield from serial_map(step, batches, name=name)
            return
        waiting = collections.deque(batches)
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=helpers,
            mp_context=worker_context(),
            initializer=use_settings_environment,
            initargs=(settings_environment(),),
        ) as pool:
            sent: dict[concurrent.futures.Future, Any] = {}
            broken: list[BaseException] = []  # a worker died: this process does the rest

            def send() -> None:
                while not broken and len(sent) < 2 * helpers and len(waiting) > 1:
                    try:
                        future = pool.submit(step, waiting[-1])
                    except concurrent.futures.BrokenExecutor as exc:
                        broken.append(exc)
                        return
                    sent[future] = waiting.pop()

            send()
            while waiting or sent:
                for future in [f for f in sent if f.done()]:
                    batch = sent.pop(future)
                    try:
                        yield BatchResult(batch, future.result())
                    except Exception as exc:  # a worker died (e.g. a crash in a C library)
                        yield BatchResult(batch, error=exc)
                send()
                if waiting:
                    batch = waiting.popleft()
                    yield BatchResult(batch, step(batch))
                elif sent:
                    concurrent.futures.wait(sent, return_when=concurrent.futures.FIRST_COMPLETED)

    return mapper


def default_mapper(settings: RunSettings) -> BatchMapper:
    """`process_map` for more than one worker, else `serial_map`."""
    return process_map(settings.workers) if settings.workers > 1 else serial_map


# -- the run's lifecycle ------------------------------------------------------------------


def run_pipeline(
    settings: RunSettings,
    progress: ProgressCallback | None = None,
    *,
    map_batches: BatchMapper | None = None,
    extra_settings: dict | None = None,
    lock_wait_seconds: float | None = None,
) -> RunReport:
    """Run every stage incrementally; return the report (also written to run.json)."""
    report = RunReport(out_dir=str(settings.out_dir))
    wait = settings.lock_wait_seconds if lock_wait_seconds is None else lock_wait_seconds
    with recorded_run(settings, report, wait_seconds=wait, extra_settings=extra_settings) as (
        store,
        run_id,
    ):
        run_stages(
            store,
            settings,
            report,
            run_id,
            map_batches=map_batches or default_mapper(settings),
            progress=progress,
            topics_alongside=map_batches is None and settings.workers > 1,
            small_reads_in_process=map_batches is None,
        )
    write_run_json(settings, report)
    return report


@contextlib.contextmanager
def recorded_run(
    settings: RunSettings,
    report: RunReport,
    *,
    wait_seconds: float,
    extra_settings: dict | None = None,
) -> Iterator[tuple[Store, int]]:
    """Lock the output folder, open the store and record the run in it.

    Yields (store, run_id). The run is recorded as finished when the body
    returns, as failed (with the exception in the notes) when it raises; a run
    killed outright is marked `killed` by the next run. The store is closed and
    the lock released either way.
    """
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(settings.out_dir, wait_seconds=wait_seconds):
        store = Store(settings.out_dir / STORE_FILENAME)
        try:
            killed_before = _killed_runs(store)
            run_id = store.start_run(settings.to_dict() | (extra_settings or {}), __version__)
            report.run_id = run_id
            killed = sorted(set(_killed_runs(store)) - set(killed_before))
            if killed:
                report.notes.append(
                    f"run(s) {', '.join(map(str, killed))} were killed before they finished; "
                    "this run completes their work"
                )
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


def _killed_runs(store: Store) -> list[int]:
    runs = store.runs()
    return [int(r) for r in runs.loc[runs["status"] == "killed", "run_id"]] if len(runs) else []


# -- the stage loop -------------------------------------------------------------------------


def run_stages(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    run_id: int,
    *,
    map_batches: BatchMapper = serial_map,
    progress: ProgressCallback | None = None,
    topics_alongside: bool = False,
    small_reads_in_process: bool = False,
) -> None:
    """Every stage the settings ask for, in order, committing as work arrives.

    With `topics_alongside` (`textmine run --workers N`, N > 1) the topic stage
    runs in its own process (`textmine.run.topic_job`). When there are files to
    read, that process starts before reading and loads the topic libraries
    meanwhile; it is given the sentences right after reading when reading
    changed the store, and the sentences are then coded in this process (two
    busy processes on two cores: this one coding, then writing outputs, the
    other fitting topics). Else it is given the coded sentences after coding.
    With `small_reads_in_process` (the run's own worker pool, not a caller's
    mapper), files adding up to fewer than IN_PROCESS_READING_BYTES are read in
    this process.
    """
    started = time.perf_counter()
    tick = with_detail(progress)
    jobs: list[TopicJob] = []  # the topic process, once started
    read_sentences: pd.DataFrame | None = None  # `Store.sentences()` after reading

    topics_after_reading = topics_alongside and {"code", "topics"} <= set(settings.stages)

    def prepare_topics(plan: WorkPlan) -> None:
        if topics_after_reading and plan.to_read:
            from textmine.run.topic_job import TopicJob

            jobs.append(TopicJob(settings))

    try:
        if "ingest" in settings.stages:
            ingest_stage(
                store,
                settings,
                report,
                run_id,
                map_batches,
                tick,
                prepare_topics,
                in_process_below_bytes=IN_PROCESS_READING_BYTES if small_reads_in_process else 0,
            )
            if topics_after_reading:
                # coding changes no sentence: sentences.csv is written from this frame
                read_sentences = start_topics_after_reading(jobs, settings, store, report)
        codebook = None
        report.codebook_version = store.codebook_version
        report.model_version = store.model_version
        if "code" in settings.stages:
            # the topic process keeps a core busy: code here and on the other workers
            code_map = shared_map(settings.workers - 1) if jobs and jobs[0].started else map_batches
            with stage_timer(report, "code"):
                codebook = code_stage(store, settings, report, run_id, code_map, tick)
        report.counts.set_totals(store.counts())
        fingerprint = outputs_fingerprint(store)
        if outputs_are_fresh(store, settings, fingerprint):
            report.notes.append("nothing new: outputs are up to date and were not rewritten")
        else:
            if codebook is None and store.coding is not None:
                codebook = load_run_codebook(settings)
            analysis = analysis_stages(
                store,
                settings,
                report,
                codebook,
                tick,
                jobs[0] if jobs else None,
                alongside=topics_alongside,
            )
            jobs[:] = [analysis.topic_job] if analysis.topic_job is not None else []
            analysis.sentences = read_sentences
            tick("outputs", 0, 1)
            with stage_timer(report, "outputs"):
                write_outputs(
                    store,
                    settings,
                    report,
                    analysis,
                    codebook=codebook,
                    fingerprint=fingerprint,
                    run_id=run_id,
                    wait_for_topics=lambda: finish_topic_job(store, report, analysis, tick),
                )
            tick("outputs", 1, 1)
    finally:
        for job in jobs:  # finished: a no-op; else its work is not needed
            job.cancel()
    report.timings["total"] = round(time.perf_counter() - started, 3)


def start_topics_after_reading(
    jobs: list[TopicJob], settings: RunSettings, store: Store, report: RunReport
) -> pd.DataFrame | None:
    """Give the topic process (`jobs[0]`, else a new one) the sentences right after reading.

    Only when reading changed the store (so the outputs are not up to date).
    Topics need the sentences' text, not their codes: coding, trends and most
    outputs run alongside. Returns the sentences read (`Store.sentences()`),
    None when none were read.
    """
    counts = report.counts
    if not (counts.documents_read or counts.documents_retired):
        return None
    sentences = store.sentences()
    if sentences.empty:
        return sentences
    if not jobs:
        from textmine.run.topic_job import TopicJob

        jobs.append(TopicJob(settings))
    jobs[0].start(sentences, store.documents())
    return sentences


def ingest_stage(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    run_id: int,
    map_batches: BatchMapper,
    tick: ProgressCallback,
    before_reading: Callable[[WorkPlan], None] | None = None,
    *,
    in_process_below_bytes: int = 0,
) -> WorkPlan:
    """Scan, plan, read the new files in batches; commit each document as it arrives.

    `before_reading`, when given, is called with the plan before any file is read.
    Files adding up to fewer than `in_process_below_bytes` are read in this
    process: starting worker processes would cost more than they save.
    """
    with stage_timer(report, "scan"):
        scan = scan_files(settings.paths, settings.resolved_manifest(), exclude=settings.out_dir)
        plan = plan_work(store, scan, settings.paths, password=settings.password, run_id=run_id)
    if before_reading is not None:
        before_reading(plan)
    counts = report.counts
    counts.files_found = len(scan.files)
    counts.documents_unchanged = len(plan.unchanged)
    counts.duplicates = len(plan.duplicates)
    counts.known_failures_skipped = len(plan.known_failures)
    counts.missing = len(plan.missing)
    counts.documents_changed = len(plan.changed)
    report.duplicates = [
        {"path": f.display_path, "duplicate_of": twin, "doc_id": f.doc_id}
        for f, twin in plan.duplicates
    ]
    report.skipped = [
        {"path": s.path, "reason": s.reason, "message": s.message} for s in plan.skipped
    ]
    record_problems(store, report, plan.problems, run_id)
    total = len(plan.to_read)
    with stage_timer(report, "extract"):
        tick("read", 0, total)
        step = functools.partial(
            extract_files, password=settings.password, spacy_model=settings.spacy_model
        )
        reader, workers = map_batches, settings.workers
        if sum(f.size for f in plan.to_read) < in_process_below_bytes:
            reader, workers = serial_map, 1  # one file at a time, as `--workers 1` reads
        batches = file_batches(plan.to_read, workers)
        done = 0
        for outcome in reader(step, batches, name="extract"):
            extractions = (
                outcome.result
                if outcome.error is None
                else [
                    Extraction(
                        f,
                        reason="malformed",
                        transient=True,
                        message=f"reading failed ({type(outcome.error).__name__}: "
                        f"{outcome.error}); it is tried again on the next run",
                    )
                    for f in outcome.batch
                ]
            )
            for extraction in extractions:
                record_extraction(store, report, extraction, run_id, settings)
            done += len(outcome.batch)
            tick("read", done, total)
    record_failed_copies(store, plan, run_id)
    counts.documents_retired = len(store.refresh_retired())
    return plan


def record_problems(store: Store, report: RunReport, problems: list, run_id: int) -> None:
    """Entries that cannot be read as documents (links, special files) become failures."""
    for problem in problems:
        store.save_failure(
            file_path=problem.path,
            display_path=problem.path,
            doc_id="",
            size=-1,
            reason=problem.reason,
            message=problem.message,
            password_given=False,
            run_id=run_id,
            textmine_version=__version__,
        )
        report.failures.append(
            {
                "path": problem.path,
                "reason": problem.reason,
                "message": problem.message,
                "stage": "reading",
            }
        )
    report.counts.failed += len(problems)


def record_failed_copies(store: Store, plan: WorkPlan, run_id: int) -> None:
    """Copies of a file that failed are failures too, each naming the file it copies."""
    by_display = {f.display_path: f for f in plan.files}
    for copy, twin in plan.duplicates:
        original = by_display.get(twin)
        failure = store.failure_record(original.path) if original is not None else None
        if failure is None or failure["duplicate_of"]:
            continue
        store.save_failure(
            file_path=copy.path,
            display_path=copy.display_path,
            doc_id=copy.doc_id,
            size=copy.size,
            reason=failure["reason"],
            message=f"{failure['message']} (identical to {twin})",
            password_given=False,
            run_id=run_id,
            textmine_version=__version__,
            duplicate_of=copy.doc_id,
        )


# Below this many bytes of files to read, reading in the run's own process is quicker
# than starting worker processes (~1.3 s here); measured, see the README.
IN_PROCESS_READING_BYTES = 12_000_000


def file_batches(files: list, workers: int) -> list[list]:
    """Files in batches: one file each in this process, a few per task for a pool."""
    if workers <= 1 or len(files) < 2:
        return [[f] for f in files]
    size = max(1, min(8, len(files) // (4 * workers)))
    return [files[i : i + size] for i in range(0, len(files), size)]


def record_extraction(
    store: Store, report: RunReport, extraction: Extraction, run_id: int, settings: RunSettings
) -> None:
    """Commit one extraction (document + sentences together, or the failure) and count it."""
    file = extraction.file
    counts = report.counts
    if extraction.document is not None:
        document = extraction.document
        if document.doc_id != file.doc_id:  # type: ignore[attr-defined]
            file.doc_id = document.doc_id  # type: ignore[attr-defined]  # changed after scan
        sentences = (
            extraction.sentences
            if extraction.sentences is not None
            else pd.DataFrame(columns=SENTENCE_COLUMNS)
        )
        store.save_document(
            document,
            sentences,
            file_path=file.path,
            size=file.size,
            manifest_hash=file.manifest_hash,
            run_id=run_id,
            textmine_version=__version__,
        )
        counts.documents_read += 1
        counts.pages_read += int(document.pages or 0)  # type: ignore[attr-defined]
        counts.sentences_new += len(sentences)
        return
    counts.failed += 1
    report.failures.append(
        {
            "path": file.display_path,
            "reason": extraction.reason,
            "message": extraction.message,
            "stage": "reading",
        }
    )
    if extraction.transient:
        return  # not stored: the bytes may be fine, the next run reads them again
    store.save_failure(
        file_path=file.path,
        display_path=file.display_path,
        doc_id=file.doc_id,
        size=file.size,
        reason=extraction.reason or "malformed",
        message=extraction.message or "",
        password_given=bool(settings.password),
        run_id=run_id,
        textmine_version=__version__,
    )


def coder_spec(settings: RunSettings) -> CoderSpec:
    """The coder a run uses, as plain values."""
    return CoderSpec(
        coder=settings.coder,
        model_dir=str(settings.model_dir) if settings.model_dir else None,
        codebook_path=str(settings.codebook) if settings.codebook else None,
    )


def load_run_codebook(settings: RunSettings) -> Codebook:
    """The codebook of the run's settings."""
    from textmine.codebook import load_codebook

    return load_codebook(settings.codebook) if settings.codebook else load_codebook()


def code_stage(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    run_id: int,
    map_batches: BatchMapper,
    tick: ProgressCallback,
) -> Codebook | None:
    """Code every stored sentence not yet coded with the run's coding; return the codebook.

    Returns None without loading anything when the store is coded already with
    the codebook and model files as they are now.

    A batch the coder fails on is coded again one document at a time; each
    document that still fails becomes a `report.failures` entry (reason
    `coding_error`, stage `coding`) and its sentences stay uncoded (pending),
    so the next run codes them again. Raises CoderBrokenError, with nothing
    marked coded, when the coder failed on every document and no sentence of
    the corpus is coded with this coding (a broken coder, not a bad document).
    """
    spec = coder_spec(settings)
    quick = quick_coding_key(spec)
    current = store.coding
    if (
        current is not None
        and quick is not None
        and quick == current.key
        and store.count_pending(current) == 0
    ):
        return None
    from textmine.run.steps import load_sentence_coder

    coder = load_sentence_coder(spec)
    codebook = coder.codebook
    coding = CodingVersion(codebook.version, coder.version, tuple(codebook.code_columns))
    report.codebook_version, report.model_version = coding.codebook_version, coding.model_version
    if current is not None and current.key != coding.key:
        report.notes.append(
            f"coding changed (codebook {current.codebook_version} -> {coding.codebook_version}, "
            f"coder {current.model_version} -> {coding.model_version}): "
            "stored sentences are re-coded, not re-extracted"
        )
    pending = store.pending_sentences(coding)
    total = len(pending)
    coded_before = store.counts()["sentences"] - total  # coded with this coding already
    tick("code", 0, total)
    tally = CodingTally()
    step = functools.partial(code_batch, spec=spec)

    def code_and_save(batches: list[pd.DataFrame]) -> list[tuple[pd.DataFrame, str]]:
        return save_coded_batches(
            map_batches(step, batches, name="code"),
            lambda coded: store.save_codes(coded, coding, run_id),
            tally,
            lambda: tick("code", tally.coded, total),
        )

    failed = code_and_save(sentence_batches(pending, settings.code_batch_documents))
    # a failed batch of several documents: its documents one at a time, so that
    # one bad document does not keep the others of its batch uncoded
    retry = [d for batch, _ in failed if batch["doc_id"].nunique() > 1 for d in by_document(batch)]
    failed = [(b, error) for b, error in failed if b["doc_id"].nunique() == 1]
    if retry:
        failed += code_and_save(retry)
    failed.sort(key=lambda item: str(item[0]["path"].iloc[0]))
    if failed and not tally.coded and not coded_before:
        batch, error = failed[0]
        raise CoderBrokenError(
            f"the coder failed on every document of the run ({len(failed)}) and no sentence "
            f"is coded with codebook {coding.codebook_version} and coder "
            f"{coding.model_version}: the coder does not work (not one bad document); "
            f"first failure: {batch['path'].iloc[0]}: {error}"
        )
    tick("code", total, total)
    # failed documents stay pending: `count_pending` finds them, so the next run codes them
    store.set_coding(coding)
    report.failures.extend(coding_failure(batch, error) for batch, error in failed)
    report.counts.coding_failed = len(failed)
    report.counts.sentences_coded += tally.coded
    return codebook


CODING_FAILURE_REASON = "coding_error"
"""The `reason` of a document whose sentences the coder failed on (a `report.failures` entry)."""


class CoderBrokenError(RuntimeError):
    """The coder failed on every document and has coded no sentence with its coding yet.

    Then it is the coder that does not work (a broken model or codebook, a
    missing library), not a bad document: the run stops instead of writing
    outputs without codes.
    """


@dataclass
class BatchCoding:
    """What coding one batch gave: the coded sentences, or the error that stopped it."""

    coded: pd.DataFrame | None = None
    error: str = ""  # "<exception type>: <message>" when the coder raised


def code_batch(sentences: pd.DataFrame, spec: CoderSpec) -> BatchCoding:
    """`code_documents` on one batch; an exception comes back as text, never raised.

    So a bad document cannot end a batch mapper's loop (`serial_map` runs the
    step in this process), and the outcome always pickles back from a worker.
    """
    try:
        return BatchCoding(coded=code_documents(sentences, spec))
    except Exception as exc:  # bad input for the coder: reported per document, the run goes on
        return BatchCoding(error=f"{type(exc).__name__}: {exc}")


@dataclass
class CodingTally:
    """Sentences coded and saved so far by the code stage (its progress)."""

    coded: int = 0


def save_coded_batches(
    outcomes: Iterator[BatchResult],
    save: Callable[[pd.DataFrame], int],
    tally: CodingTally,
    advanced: Callable[[], None],
) -> list[tuple[pd.DataFrame, str]]:
    """Save each coded batch (`save` returns the sentences saved); the failed (batch, error)s.

    A batch fails when its step returned an error (`code_batch`) or the mapper
    could not run it (`BatchResult.error`: a worker died). `advanced` is called
    after each batch saved.
    """
    failed: list[tuple[pd.DataFrame, str]] = []
    for outcome in outcomes:
        result = outcome.result
        if outcome.error is not None:
            failed.append((outcome.batch, f"{type(outcome.error).__name__}: {outcome.error}"))
        elif result.error:
            failed.append((outcome.batch, result.error))
        else:
            tally.coded += save(result.coded)
            advanced()
    return failed


def by_document(sentences: pd.DataFrame) -> list[pd.DataFrame]:
    """One batch per document, in the order the documents come."""
    return [sentences[sentences["doc_id"] == d] for d in dict.fromkeys(sentences["doc_id"])]


def coding_failure(sentences: pd.DataFrame, error: str) -> dict[str, str]:
    """The `report.failures` entry of a document whose sentences could not be coded.

    The keys of a reading failure (`path`, `reason`, `message`, `stage`) and the
    document's `doc_id`.
    """
    return {
        "path": str(sentences["path"].iloc[0]),
        "reason": CODING_FAILURE_REASON,
        "message": f"coding failed ({error}); its {len(sentences)} sentences stay uncoded "
        "and are coded again on the next run",
        "stage": "coding",
        "doc_id": str(sentences["doc_id"].iloc[0]),
    }


def sentence_batches(sentences: pd.DataFrame, documents_per_batch: int) -> list[pd.DataFrame]:
    """Sentences split into batches of whole documents (neighbours stay together)."""
    if sentences.empty:
        return []
    doc_ids = list(dict.fromkeys(sentences["doc_id"]))
    groups = [
        set(doc_ids[i : i + documents_per_batch])
        for i in range(0, len(doc_ids), documents_per_batch)
    ]
    return [sentences[sentences["doc_id"].isin(g)] for g in groups]


def quick_coding_key(spec: CoderSpec) -> str | None:
    """The coding key the spec will give, from file hashes alone (None when unsure)."""
    from textmine.codebook import codebook_file_version

    try:
        codebook_version = codebook_file_version(spec.codebook_path)
        if spec.coder == "rules":
            return f"{codebook_version}/rules"
        from textmine.learned.model import model_version  # no spaCy import

        return (
            f"{codebook_version}/{model_version(Path(spec.model_dir) if spec.model_dir else None)}"
        )
    except Exception:  # unreadable or broken files: the full load reports them
        return None


def analysis_stages(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    codebook: Codebook | None,
    tick: ProgressCallback,
    topic_job: TopicJob | None = None,
    *,
    alongside: bool = False,
) -> AnalysisTables:
    """Topics and trends on the coded corpus; a failing analysis is reported, not raised.

    With `alongside` the topic stage runs in its own process (`topic_job`, started
    after reading, or started here) and is waited for by the outputs stage
    (`finish_topic_job`); else it runs here.
    """
    analysis = AnalysisTables()
    if not store.counts()["coded_sentences"] or codebook is None:
        if topic_job is not None:
            topic_job.cancel()
        return analysis
    coded, documents = store.coded_sentences(), store.documents()
    analysis.coded_sentences = coded
    if topic_job is not None and (
        "topics" not in settings.stages or (topic_job.started and not topic_job.matches(len(coded)))
    ):
        topic_job.cancel()  # not the corpus that is coded now (a sentence left uncoded): fit anew
        topic_job = None
    if "topics" in settings.stages and alongside:
        from textmine.run.topic_job import TopicJob

        topic_job = topic_job or TopicJob(settings)
        if not topic_job.started:
            topic_job.start(coded, documents)
    if topic_job is not None:
        tick("topics", 0, 1, "fitting in a second process, alongside the outputs")
        analysis.topic_job = topic_job
        analysis.topic_notes_at = len(report.notes)
    elif "topics" in settings.stages:
        tick("topics", 0, 1)
        with stage_timer(report, "topics"):
            try:
                analysis.topic_outputs = fit_topics(
                    store,
                    settings,
                    coded,
                    documents,
                    codebook,
                    status=lambda text: tick("topics", 0, 1, text),
                )
            except Exception as exc:  # an analysis on top of the corpus: report, keep the run
                report.stage_error("topics", exc)
        if analysis.topic_outputs is not None:
            report.topics_refit = bool(
                getattr(analysis.topic_outputs, "refitted", settings.refit_topics)
            )
            report.notes.extend(getattr(analysis.topic_outputs, "notes", []) or [])
        tick("topics", 1, 1)
    if "trends" in settings.stages:
        with stage_timer(report, "trends"):
            try:
                analysis.trends = compute_trend_tables(
                    store, settings, report, coded, documents, codebook
                )
            except Exception as exc:
                report.stage_error("trends", exc)
    return analysis


def fit_topics(
    store: Store,
    settings: RunSettings,
    coded: pd.DataFrame,
    documents: pd.DataFrame,
    codebook: Codebook,
    status: Callable[[str], None] | None = None,
) -> TopicOutputs:
    """Fit (first time, or when asked) or extend the topic model; keep its tables in the store.

    `status` is told what the topic stage is doing (for a progress line).
    """
    from textmine.run.topic_job import topic_outputs_of

    outputs = topic_outputs_of(settings, coded, documents, codebook, status)
    keep_topic_tables(store, outputs)
    return outputs


def keep_topic_tables(store: Store, outputs: TopicOutputs) -> None:
    """The topic tables as result tables of the store."""
    for name in ("topics", "doc_topics", "topics_over_time"):
        frame = getattr(outputs, name, None)
        if isinstance(frame, pd.DataFrame):
            store.write_table(name, frame)


def finish_topic_job(
    store: Store, report: RunReport, analysis: AnalysisTables, tick: ProgressCallback
) -> None:
    """Wait for the topic process; keep its tables and notes as the in-process stage would.

    Its notes go where the topic stage's notes go in a one-process run (before the
    trend notes); `timings["topics"]` is the topic process's own seconds and
    `timings["topics_wait"]` how long this process waited for it.
    """
    job = analysis.topic_job
    if job is None:
        return
    waited = time.perf_counter()
    result = job.result(status=lambda text: tick("topics", 0, 1, text))
    analysis.topic_job = None
    report.timings["topics_wait"] = round(time.perf_counter() - waited, 3)
    report.timings["topics"] = round(result.seconds, 3)
    notes_before = len(report.notes)
    if result.error is not None:
        report.stage_error("topics", result.error)
    elif result.outputs is not None:
        try:
            keep_topic_tables(store, result.outputs)
            analysis.topic_outputs = result.outputs
        except Exception as exc:  # as in the one-process stage: reported, the run goes on
            report.stage_error("topics", exc)
    if analysis.topic_outputs is not None:
        report.topics_refit = bool(getattr(analysis.topic_outputs, "refitted", True))
        report.notes.extend(getattr(analysis.topic_outputs, "notes", []) or [])
    analysis.topic_figures = list(result.figure_paths)
    analysis.topic_figure_error = result.figure_error
    added = report.notes[notes_before:]
    del report.notes[notes_before:]
    report.notes[analysis.topic_notes_at : analysis.topic_notes_at] = added
    tick("topics", 1, 1)


def compute_trend_tables(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    coded: pd.DataFrame,
    documents: pd.DataFrame,
    codebook: Any,
) -> dict[str, pd.DataFrame]:
    """Trend tables of the codebook's codes; kept in the store as result tables."""
    from textmine.trends import compute_trends, undated_notes

    validation = None
    if settings.validation is not None:
        from textmine.validation import read_validation

        validation = read_validation(settings.validation, codebook.code_columns)
    trends = compute_trends(
        coded, documents, by=settings.by, codebook=codebook, validation=validation
    )
    for name, frame in trends.items():
        store.write_table(f"trend_{name}", frame)
    report.notes.extend(undated_notes(trends["stance_trends"]))
    return trends
