"""`mine-corpus`: the textmine pipeline as a Prefect flow, incremental like `textmine run`.

The flow calls the same library functions as `textmine run` (`textmine.pipeline`).
Pure work (reading + segmenting documents, coding sentences) runs as tasks on
batches through the chosen task runner; everything that touches the store runs
in the flow's own process, so one SQLite writer commits each document and each
batch of codes as it arrives. Batches are sized from Prefect's per-task
overhead, measured at the start of the run.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Literal

from flows.settings import configure_prefect_env

configure_prefect_env()

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import (  # noqa: E402
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.futures import as_completed  # noqa: E402
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner  # noqa: E402
from prefect.tasks import exponential_backoff  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from textmine import pipeline as tp  # noqa: E402
from textmine.store import Store  # noqa: E402

TaskRunnerName = Literal["thread", "process", "dask"]
# Work per task should dwarf Prefect's overhead per task: aim for overhead <= 5 %.
OVERHEAD_SHARE = 0.05
DEFAULT_SECONDS_PER_DOCUMENT = 0.5
SECONDS_PER_SENTENCE = 0.0004  # coding, measured on the bundled corpus


class TopicParameters(BaseModel):
    """Topic model and trend settings."""

    n_topics: Literal["auto"] | int = Field("auto", description="Number of topics, or auto.")
    refit: bool = Field(False, description="Refit the topic model on the whole corpus.")
    by: Literal["year", "quarter"] = Field("year", description="Period of the trend tables.")


class DaskParameters(BaseModel):
    """Where Dask runs when task_runner is dask."""

    address: str | None = Field(
        None, description="Address of a running Dask scheduler (tcp://host:8786); "
        "empty: start a local cluster for the run."
    )
    n_workers: int = Field(2, ge=1, description="Workers of the local cluster.")
    threads_per_worker: int = Field(1, ge=1, description="Threads per local worker.")


def make_task_runner(name: TaskRunnerName, dask: DaskParameters | None = None, max_workers=None):
    """The Prefect task runner for a task_runner parameter."""
    if name == "thread":
        return ThreadPoolTaskRunner(max_workers=max_workers)
    if name == "process":
        return ProcessPoolTaskRunner(max_workers=max_workers)
    if name == "dask":
        from prefect_dask import DaskTaskRunner

        dask = dask or DaskParameters()
        if dask.address:
            return DaskTaskRunner(address=dask.address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": dask.n_workers,
                "threads_per_worker": dask.threads_per_worker,
                "processes": True,
                "dashboard_address": None,
            },
        )
    raise ValueError(f"task_runner must be thread, process or dask, not {name!r}")


# -- tasks: pure work on batches (run wherever the task runner puts them) -----------------


@task(name="noop", cache_policy=NO_CACHE)
def noop_task() -> None:
    """Nothing: used to measure the task runner's overhead per task."""


@task(name="extract-batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def extract_batch_task(files: list[tp.SourceFile], password: str | None, spacy_model: str | None):
    """Read and segment a batch of files; bad files come back as failures, never raise."""
    return tp.extract_files(files, password, spacy_model)


@task(name="code-batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def code_batch_task(sentences, codebook_path: str | None):
    """Code a batch of sentences with the codebook (loaded once per worker)."""
    return tp.code_batch(sentences, _codebook(codebook_path))


_CODEBOOKS: dict = {}


def _codebook(path: str | None):
    key = (path, Path(path).stat().st_mtime_ns if path else None)
    if key not in _CODEBOOKS:
        _CODEBOOKS[key] = tp.load_codebook(Path(path) if path else None)
    return _CODEBOOKS[key]


# -- tasks in the flow's process (they touch the store or write files) ------------------


@task(name="scan-and-plan", retries=2, retry_delay_seconds=exponential_backoff(2),
      cache_policy=NO_CACHE)
def plan_task(store: Store, settings: tp.RunSettings, report: tp.RunReport, run_id: int):
    return tp.plan_stage(store, settings, report, run_id)


@task(name="topics", cache_policy=NO_CACHE)
def topics_task(store, settings, report, codebook, tables):
    return tp.topics_stage(store, settings, report, codebook, tables)


@task(name="trends", cache_policy=NO_CACHE)
def trends_task(store, settings, report, tables):
    return tp.trends_stage(store, settings, report, tables)


@task(name="write-outputs", retries=2, retry_delay_seconds=exponential_backoff(2),
      cache_policy=NO_CACHE)
def outputs_task(store, settings, report, fingerprint, trends, topic_outputs, codebook, tables):
    return tp.outputs_stage(
        store, settings, report, fingerprint,
        trends=trends, topic_outputs=topic_outputs, codebook=codebook, tables=tables,
    )


# -- batch sizing -------------------------------------------------------------------------


def measure_task_overhead(samples: int = 4) -> float:
    """Seconds Prefect spends per task on the current runner (round trip of a no-op task)."""
    noop_task.submit().result()  # warm-up (worker start, imports)
    started = time.perf_counter()
    for _ in range(samples):
        noop_task.submit().result()
    return (time.perf_counter() - started) / samples


def batch_size(n_items: int, seconds_per_item: float, overhead: float, workers: int) -> int:
    """Items per task so that overhead stays under OVERHEAD_SHARE of the work, while
    keeping at least two batches per worker when there are enough items."""
    if n_items <= 0:
        return 1
    for_overhead = math.ceil(overhead / (OVERHEAD_SHARE * max(seconds_per_item, 1e-6)))
    for_parallelism = math.ceil(n_items / (2 * max(workers, 1)))
    return max(1, min(for_overhead, for_parallelism))


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- the flow -------------------------------------------------------------------------------


@flow(name="mine-corpus", log_prints=True)
def mine_corpus(
    corpus_paths: list[str] = ["corpus"],  # noqa: B006  (never mutated)
    manifest: str | None = None,
    codebook: str | None = None,
    out_dir: str = "outputs",
    topics: TopicParameters = TopicParameters(),
    formats: list[Literal["csv", "parquet", "qdpx", "qdc"]] = ["csv"],  # noqa: B006
    task_runner: TaskRunnerName = "thread",
    dask: DaskParameters = DaskParameters(),
    max_workers: int | None = None,
    password: str | None = None,
    stages: list[Literal["ingest", "code", "topics", "trends", "figures", "export"]] = list(  # noqa: B006,B008
        tp.STAGES
    ),
) -> dict:
    """Mine a corpus incrementally: read new files, code new sentences, update topics,
    trends and exports in out_dir. Same work as `textmine run`.

    Args:
        corpus_paths: Files or folders to mine.
        manifest: Manifest CSV (default: manifest.csv in the first folder).
        codebook: Codebook YAML (default: the packaged codebook).
        out_dir: Output folder (holds the store).
        topics: Topic model and trend settings.
        formats: Export formats.
        task_runner: thread (default), process, or dask.
        dask: Dask scheduler address or local cluster size (task_runner dask).
        max_workers: Workers of the thread or process pool (default: Prefect's).
        password: Password for encrypted PDFs (Prefect stores flow parameters in its
            database; textmine itself never writes it).
        stages: Stages to run (default all): ingest, code, topics, trends, figures, export.
    """
    settings = tp.RunSettings(
        paths=[Path(p) for p in corpus_paths],
        out_dir=Path(out_dir),
        manifest=Path(manifest) if manifest else None,
        codebook=Path(codebook) if codebook else None,
        password=password,
        refit_topics=topics.refit,
        n_topics=topics.n_topics,
        by=topics.by,
        formats=tuple(formats),
        stages=tuple(stages),
    )
    runner = make_task_runner(task_runner, dask, max_workers)
    return mine_batches.with_options(task_runner=runner)(settings, task_runner)


@flow(name="mine-corpus-batches")
def mine_batches(settings: tp.RunSettings, runner_name: str = "thread") -> dict:
    """The body of mine-corpus, run on the chosen task runner."""
    logger = get_run_logger()
    report = tp.RunReport(out_dir=str(settings.out_dir))
    started = time.perf_counter()
    with tp.recorded_run(settings, report, wait_seconds=600,
                         extra_settings={"task_runner": runner_name}) as (store, run_id):
        _mine(store, settings, report, run_id, runner_name, logger)
        report.timings["total"] = round(time.perf_counter() - started, 3)
        documents = store.documents()
    tp.write_run_json(settings, report)
    _artifacts(documents, settings, report)
    return report.to_dict()


def _mine(store, settings, report, run_id, runner_name, logger) -> None:
    workers = _workers(runner_name)
    overhead = None
    if "ingest" in settings.stages:
        overhead = _ingest(store, settings, report, run_id, runner_name, workers, logger)
    codebook = None
    report.codebook_version = store.codebook_version
    report.counts["sentences_coded"] = 0
    if "code" in settings.stages and not tp.codes_up_to_date(store, settings):
        with tp.stage_timer(report, "code"):
            codebook = tp.prepare_codebook(store, settings, report)
            pending = store.pending_sentences(codebook.version)
            if len(pending):
                overhead = overhead if overhead is not None else measure_task_overhead()
                size = batch_size(len(pending), SECONDS_PER_SENTENCE, overhead, workers)
                path = str(settings.codebook) if settings.codebook else None
                futures = [
                    code_batch_task.submit(batch, path)
                    for batch in (pending.iloc[i : i + size] for i in range(0, len(pending), size))
                ]
                for future in as_completed(futures):
                    report.counts["sentences_coded"] += store.save_codes(future.result(), run_id)
            store.set_codebook_version(codebook.version)
    tp.totals_into_report(store, report)
    fresh, fingerprint = tp.outputs_state(store, settings)
    if fresh:
        report.notes.append("nothing new: outputs are up to date and were not rewritten")
        return
    if codebook is None and "code" in settings.stages:
        codebook = tp.load_codebook(settings.codebook)
    tables = tp.CorpusTables(store)
    topic_outputs = topics_task(store, settings, report, codebook, tables)
    trends = trends_task(store, settings, report, tables)
    outputs_task(store, settings, report, fingerprint, trends, topic_outputs, codebook, tables)


def _ingest(store, settings, report, run_id, runner_name, workers, logger) -> float | None:
    """Plan, then read new files in batches on the task runner; commit each as it comes."""
    plan = plan_task(store, settings, report, run_id)
    logger.info(
        "%d files: %d to read, %d unchanged, %d duplicates",
        report.counts["files_found"], len(plan.to_read), len(plan.unchanged),
        len(plan.duplicates),
    )
    overhead = None
    if plan.to_read:
        overhead = measure_task_overhead()
        per_doc = store.seconds_per_document() or DEFAULT_SECONDS_PER_DOCUMENT
        size = batch_size(len(plan.to_read), per_doc, overhead, workers)
        report.notes.append(
            f"task overhead {overhead * 1000:.0f} ms on {runner_name}; "
            f"{size} documents per extract task"
        )
        with tp.stage_timer(report, "extract"):
            futures = {
                extract_batch_task.submit(batch, settings.password, settings.spacy_model): batch
                for batch in _chunks(plan.to_read, size)
            }
            for future in as_completed(list(futures)):
                try:
                    extractions = future.result()
                except Exception as exc:  # the whole batch task failed: report its files
                    extractions = [
                        tp.Extraction(f, reason="malformed",
                                      message=f"extract task failed ({type(exc).__name__}: {exc})")
                        for f in futures[future]
                    ]
                for extraction in extractions:
                    tp.record_extraction(store, report, extraction, run_id, settings)
    tp.finish_ingest(store, report)
    return overhead


def _workers(runner_name: str) -> int:
    import os

    return max(1, os.cpu_count() or 1) if runner_name != "dask" else 2


def _artifacts(documents, settings: tp.RunSettings, report: tp.RunReport) -> None:
    """Run summary for the Prefect UI: markdown, counts by doc_type and year, output links."""
    c = report.counts
    lines = [
        f"# textmine run {report.run_id}: {report.status}",
        "",
        "| | this run | corpus |",
        "|---|---:|---:|",
        f"| documents read | {c.get('documents_read', 0)} | {c.get('documents_total', 0)} |",
        f"| unchanged (skipped) | {c.get('documents_unchanged', 0)} | |",
        f"| duplicates | {c.get('duplicates', 0)} | {c.get('duplicates_total', 0)} |",
        f"| pages | {c.get('pages_read', 0)} | {c.get('pages_total', 0)} |",
        f"| sentences | {c.get('sentences_new', 0)} | {c.get('sentences_total', 0)} |",
        f"| sentences coded | {c.get('sentences_coded', 0)} | {c.get('coded_sentences_total', 0)} |",
        f"| failures | {c.get('failed', 0)} | {c.get('failures_total', 0)} |",
        "",
        f"Codebook `{report.codebook_version}`, textmine {report.textmine_version}, "
        f"topic model {'fitted this run' if report.topics_refit else 'not refitted'}.",
        "",
        "Timings (s): " + ", ".join(f"{k} {v}" for k, v in report.timings.items()),
    ]
    if report.failures:
        lines += ["", "## Failures", "", "| file | reason | message |", "|---|---|---|"]
        lines += [
            f"| {f['path']} | {f['reason']} | {str(f['message']).replace('|', '/')} |"
            for f in report.failures[:50]
        ]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    create_markdown_artifact(
        "\n".join(lines), key="textmine-run-summary", description="textmine run summary"
    )
    if len(documents):
        year = documents["published"].fillna("").astype(str).str[:4].replace("", "unknown")
        table = (
            documents.assign(year=year)
            .groupby(["doc_type", "year"])
            .agg(documents=("doc_id", "size"), sentences=("n_sentences", "sum"))
            .reset_index()
        )
        create_table_artifact(
            table.astype({"documents": int, "sentences": int}).to_dict("records"),
            key="textmine-documents-by-type-and-year",
            description="documents and sentences per doc_type and year",
        )
    for name in ("coded_sentences.csv", "documents.csv", "failures.csv", "run.json"):
        path = (settings.out_dir / name).resolve()
        if path.exists():
            create_link_artifact(
                path.as_uri(), link_text=name,
                key=f"textmine-output-{name.split('.')[0].replace('_', '-')}",
            )
