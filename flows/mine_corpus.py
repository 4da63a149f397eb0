"""`mine-corpus`: the textmine run as a Prefect flow, incremental like `textmine run`.

The flow builds `RunSettings`, picks a Prefect task runner and hands
`textmine.run.run_pipeline` a batch mapper that submits each batch of reading
or coding to that task runner. Everything else (planning, the store, topics,
trends, outputs) is the library's one stage loop, in the flow's process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, cast

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
from pydantic import BaseModel, Field, field_validator  # noqa: E402

from textmine.run import STAGES, BatchResult, RunReport, RunSettings, run_pipeline  # noqa: E402
from textmine.run.preflight import check_run_inputs  # noqa: E402
from textmine.store import open_store  # noqa: E402

TaskRunnerName = Literal["thread", "process", "dask"]


class TopicParameters(BaseModel):
    """Topic model and trend settings."""

    n_topics: int = Field(
        default=0,
        ge=0,
        title="n_topics",
        description="Number of topics; 0 (default) lets the clustering decide. Set a number "
        "when the automatic topics are too fine or too coarse to read (tick refit too).",
    )
    refit: bool = Field(
        default=False,
        title="refit",
        description="Fit a new topic model on the whole corpus; default: new paragraphs join "
        "the saved topics. Tick it after adding many documents or changing n_topics.",
    )
    by: Literal["year", "quarter"] = Field(
        default="year",
        title="by",
        description="Period of the trend tables and figures: year, or quarter for a corpus "
        "that spans only a few years.",
    )

    @field_validator("n_topics", mode="before")
    @classmethod
    def _auto_is_zero(cls, value: Any) -> Any:
        """Accept "auto" (the old spelling, and `textmine run --n-topics auto`) as 0."""
        return 0 if value in ("auto", "", None) else value

    @field_validator("n_topics")
    @classmethod
    def _not_one(cls, value: int) -> int:
        if value == 1:
            raise ValueError("n_topics must be 0 (automatic) or at least 2")
        return value

    def run_n_topics(self) -> str | int:
        """n_topics as RunSettings takes it: "auto" for 0."""
        return self.n_topics or "auto"


class DaskParameters(BaseModel):
    """Where Dask runs when task_runner is dask."""

    address: str = Field(
        default="",
        title="address",
        description="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786. Empty "
        "(default): start a local cluster for this run.",
    )
    n_workers: int = Field(
        default=2,
        ge=1,
        title="n_workers",
        description="Worker processes of the local cluster (not used with an address); at "
        "most the number of CPU cores.",
    )
    threads_per_worker: int = Field(
        default=1,
        ge=1,
        title="threads_per_worker",
        description="Threads per local worker; keep 1 (reading and coding are pure Python).",
    )

    @field_validator("address", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


# The local Dask cluster's HTTP server (dashboard and metrics) on a free port: with
# `dashboard_address=None` distributed still listens on 8787 and clashes with anything there.
DASK_DASHBOARD_ADDRESS = ":0"


def make_task_runner(
    name: TaskRunnerName, dask: DaskParameters | None = None, max_workers: int | None = None
):
    """The Prefect task runner for a task_runner parameter (max_workers 0 or None: Prefect's)."""
    max_workers = max_workers or None
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
                "dashboard_address": DASK_DASHBOARD_ADDRESS,
            },
        )
    raise ValueError(f"task_runner must be thread, process or dask, not {name!r}")


# -- the batch mapper: each batch of reading or coding is a task on the flow's runner ----------


@task(name="batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def run_batch(step: Callable[[Any], Any], batch: Any) -> Any:
    """Run one step of the pipeline (read files, code sentences) on one batch."""
    return step(batch)


def prefect_map(
    step: Callable[[Any], Any], batches: Sequence[Any], *, name: str = "batch"
) -> Iterator[BatchResult]:
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
    out_dir: str = "outputs",
    manifest: str = "",
    codebook: str = "",
    coder: Literal["learned", "rules"] = "learned",
    model_dir: str = "",
    topics: TopicParameters = TopicParameters(),
    formats: list[Literal["csv", "parquet", "qdpx", "qdc"]] = ["csv"],  # noqa: B006
    stages: list[Literal["ingest", "code", "topics", "trends", "figures", "export"]] = list(  # noqa: B006
        STAGES
    ),
    task_runner: TaskRunnerName = "thread",
    max_workers: int = 0,
    dask: DaskParameters = DaskParameters(),
    pdf_password_secret: str = "",
) -> dict:
    """Mine a corpus incrementally: the same work as `textmine run`.

    Reads new files, codes new sentences, updates topics, trends, exports and
    report.html in out_dir. Every parameter has a default that suits a first run.

    Args:
        corpus_paths: Files or folders to mine; add a folder when new documents are elsewhere.
        out_dir: Output folder (store, tables, report.html); another folder keeps a separate study.
        manifest: Manifest CSV of titles, dates, publishers; empty: manifest.csv in the first folder.
        codebook: Codebook YAML; empty: the packaged codebook. A new codebook re-codes the corpus.
        coder: learned (default, the trained model) or rules (the codebook's rules: for a
            codebook no model was trained for).
        model_dir: Model folder from `textmine train`; empty: the packaged model.
        topics: Number of topics, refit, and the period of trends; defaults suit a first run.
        formats: Exports: csv (default); add qdpx to review codes in NVivo, ATLAS.ti, MAXQDA or
            QualCoder, parquet for large corpora.
        stages: Stages to run (default all); drop topics for a quicker run.
        task_runner: thread (default) suits most runs; process for many PDFs on several cores;
            dask for a Dask cluster (see dask).
        max_workers: Workers of the thread or process pool; 0 (default): Prefect's choice.
            Lower it to leave cores free.
        dask: Used only with task_runner dask: a scheduler address, or a local cluster's size.
        pdf_password_secret: Name of a Prefect Secret block (UI: Blocks, add Secret) holding
            the password of encrypted PDFs; empty: none. The password never shows in the
            run's parameters.
    """
    password = _secret(pdf_password_secret) if pdf_password_secret else None
    settings = RunSettings(
        paths=[Path(p) for p in corpus_paths],
        out_dir=Path(out_dir),
        manifest=Path(manifest) if manifest else None,
        codebook=Path(codebook) if codebook else None,
        coder=coder,
        model_dir=Path(model_dir) if model_dir else None,
        password=password,
        refit_topics=topics.refit,
        n_topics=topics.run_n_topics(),
        by=topics.by,
        formats=tuple(formats),
        stages=tuple(stages),
        task_runner=task_runner,
    )
    check_run_inputs(settings)  # as `textmine run` does: fail before reading anything
    runner = make_task_runner(task_runner, dask, max_workers)
    report = mine_batches.with_options(task_runner=runner)(settings, task_runner)
    _artifacts(settings, report)
    return report.to_dict()


def _secret(name: str) -> str:
    """The value of the Prefect Secret block `name`."""
    from prefect.blocks.system import Secret

    block = cast("Secret", Secret.load(name))  # a flow runs it synchronously
    return str(block.get())


@flow(name="mine-corpus-batches")
def mine_batches(settings: RunSettings, runner_name: str = "thread") -> RunReport:
    """The run itself, its batches on the chosen task runner."""
    logger = get_run_logger()
    report = run_pipeline(
        settings,
        map_batches=prefect_map,
        lock_wait_seconds=600,
        extra_settings={"task_runner": runner_name},
    )
    logger.info(
        "run %s %s: %d documents read, %d sentences coded",
        report.run_id,
        report.status,
        report.counts.documents_read,
        report.counts.sentences_coded,
    )
    return report


# The main outputs, named in the summary with the paths to open them from.
MAIN_OUTPUTS = {
    "report.html": "run report (open in a web browser)",
    "coded_sentences.csv": "coded sentences",
    "documents.csv": "documents",
    "failures.csv": "documents that could not be read",
    "run.json": "settings and counts of this run",
}


def outputs_markdown(out_dir: Path) -> list[str]:
    """Markdown lines naming the output folder and the main outputs by absolute path.

    Prefect's UI cannot open local files (browsers block file:// links from web
    pages), so the paths are written out in full, to copy into a file manager or
    a browser's address bar.
    """
    folder = out_dir.resolve()
    lines = [
        "## Outputs",
        "",
        f"In `{folder}`. Copy a path into your file manager, or into a web browser's "
        "address bar for report.html.",
        "",
    ]
    lines += [
        f"- {label}: `{folder / name}`"
        for name, label in MAIN_OUTPUTS.items()
        if (folder / name).exists()
    ]
    others = sorted(
        p.name
        for p in folder.iterdir()
        if p.name not in MAIN_OUTPUTS and not p.name.startswith(".")
    )
    if others:
        lines += ["", "Also in the folder: " + ", ".join(f"`{name}`" for name in others)]
    return lines


def _artifacts(settings: RunSettings, report: RunReport) -> None:
    """Artifacts on the run the researcher triggered: summary, table, output paths.

    The markdown summary has the counts and names the output folder and the main
    outputs by absolute path; a table counts documents and sentences per
    doc_type and year; link artifacts show each main output's path.
    """
    c = report.counts
    lines = [
        f"# textmine run {report.run_id}: {report.status}",
        "",
        f"Output folder: `{settings.out_dir.resolve()}` (paths of the outputs below)",
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
        f"task runner {settings.task_runner or 'none'}, "
        f"topic model {'fitted this run' if report.topics_refit else 'not refitted'}.",
        "",
        "Timings (s): " + ", ".join(f"{k} {v}" for k, v in report.timings.items()),
        "",
        *outputs_markdown(settings.out_dir),
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
    for name in MAIN_OUTPUTS:
        path = (settings.out_dir / name).resolve()
        if path.exists():  # the link text is the path itself, to copy
            create_link_artifact(
                path.as_uri(),
                link_text=str(path),
                key=f"textmine-output-{name.split('.')[0].replace('_', '-')}",
                description=f"{MAIN_OUTPUTS[name]}: copy the path to open it",
            )
