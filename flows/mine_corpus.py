"""`mine-corpus`: the textmine run as a Prefect flow, incremental like `textmine run`.

The flow builds `RunSettings`, picks a Prefect task runner and hands
`textmine.run.run_pipeline` a batch mapper that submits each batch of reading
or coding to that task runner. Everything else (planning, the store, topics,
trends, outputs) is the library's one stage loop, in the flow's process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

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
from pydantic import BaseModel, Field  # noqa: E402

from textmine.run import STAGES, BatchResult, RunReport, RunSettings, run_pipeline  # noqa: E402
from textmine.store import open_store  # noqa: E402

TaskRunnerName = Literal["thread", "process", "dask"]


class TopicParameters(BaseModel):
    """Topic model and trend settings."""

    n_topics: Literal["auto"] | int = Field(default="auto", description="Number of topics, or auto.")
    refit: bool = Field(default=False, description="Refit the topic model on the whole corpus.")
    by: Literal["year", "quarter"] = Field(default="year", description="Period of the trend tables.")


class DaskParameters(BaseModel):
    """Where Dask runs when task_runner is dask."""

    address: str | None = Field(
        default=None, description="Address of a running Dask scheduler (tcp://host:8786); "
        "empty: start a local cluster for the run."
    )
    n_workers: int = Field(default=2, ge=1, description="Workers of the local cluster.")
    threads_per_worker: int = Field(default=1, ge=1, description="Threads per local worker.")


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


# -- the batch mapper: each batch of reading or coding is a task on the flow's runner ----------


@task(name="batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def run_batch(step: Callable[[Any], Any], batch: Any) -> Any:
    """Run one step of the pipeline (read files, code sentences) on one batch."""
    return step(batch)


def prefect_map(step: Callable[[Any], Any], batches: Sequence[Any], *,
                name: str = "batch") -> Iterator[BatchResult]:
    """Submit every batch to the current task runner; yield results as they finish."""
    batch_task = run_batch.with_options(name=f"{name}-batch")
    futures = {batch_task.submit(step, batch): index for index, batch in enumerate(batches)}
    for future in as_completed(list(futures)):
        batch = batches[futures[future]]
        try:
            yield BatchResult(batch, future.result())
        except Exception as exc:  # the task failed after its retries: the runner reports it
            yield BatchResult(batch, error=exc)


# -- the flow -------------------------------------------------------------------------------


@flow(name="mine-corpus", log_prints=True)
def mine_corpus(
    corpus_paths: list[str] = ["corpus"],  # noqa: B006  (never mutated)
    manifest: str | None = None,
    codebook: str | None = None,
    coder: Literal["learned", "rules"] = "learned",
    model_dir: str | None = None,
    out_dir: str = "outputs",
    topics: TopicParameters = TopicParameters(),
    formats: list[Literal["csv", "parquet", "qdpx", "qdc"]] = ["csv"],  # noqa: B006
    task_runner: TaskRunnerName = "thread",
    dask: DaskParameters = DaskParameters(),
    max_workers: int | None = None,
    password: str | None = None,
    stages: list[Literal["ingest", "code", "topics", "trends", "figures", "export"]] = list(  # noqa: B006
        STAGES
    ),
) -> dict:
    """Mine a corpus incrementally; the same work as `textmine run`.

    Reads new files, codes new sentences, and updates topics, trends and exports
    in out_dir.

    Args:
        corpus_paths: Files or folders to mine.
        manifest: Manifest CSV (default: manifest.csv in the first folder).
        codebook: Codebook YAML (default: the packaged codebook).
        coder: learned (the trained model, default) or rules (the rule tagger).
        model_dir: Model folder from `textmine train` (default: the packaged model).
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
    settings = RunSettings(
        paths=[Path(p) for p in corpus_paths],
        out_dir=Path(out_dir),
        manifest=Path(manifest) if manifest else None,
        codebook=Path(codebook) if codebook else None,
        coder=coder,
        model_dir=Path(model_dir) if model_dir else None,
        password=password,
        refit_topics=topics.refit,
        n_topics=topics.n_topics,
        by=topics.by,
        formats=tuple(formats),
        stages=tuple(stages),
    )
    runner = make_task_runner(task_runner, dask, max_workers)
    report = mine_batches.with_options(task_runner=runner)(settings, task_runner)
    _artifacts(settings, report)
    return report.to_dict()


@flow(name="mine-corpus-batches")
def mine_batches(settings: RunSettings, runner_name: str = "thread") -> RunReport:
    """The run itself, its batches on the chosen task runner."""
    logger = get_run_logger()
    report = run_pipeline(settings, map_batches=prefect_map, lock_wait_seconds=600,
                          extra_settings={"task_runner": runner_name})
    logger.info("run %s %s: %d documents read, %d sentences coded", report.run_id,
                report.status, report.counts.documents_read, report.counts.sentences_coded)
    return report


def _artifacts(settings: RunSettings, report: RunReport) -> None:
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
    with open_store(settings.out_dir, read_only=True) as store:
        documents = store.documents()
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
