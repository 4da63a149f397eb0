"""`textmine run` (the whole pipeline, incrementally) and `textmine serve` (Prefect schedules)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import typer

from textmine.cli.app import app

if TYPE_CHECKING:
    from rich.progress import TaskID

    from textmine.run import RunReport, RunSettings


@app.command("run")
def run_cmd(
    paths: list[Path] = typer.Argument(
        None,
        help="Files or folders to mine (default: corpus/). Folders are walked recursively.",
        show_default=False,
    ),
    out: Path = typer.Option(
        Path("outputs"), "--out", "-o", help="Output folder (holds the store)."
    ),
    manifest: Path = typer.Option(
        None,
        "--manifest",
        help="Manifest CSV of document metadata (default: manifest.csv in the first folder).",
        show_default=False,
    ),
    codebook: Path = typer.Option(
        None,
        "--codebook",
        help="Codebook YAML (default: the packaged codebook).",
        show_default=False,
    ),
    password: str = typer.Option(
        None,
        "--password",
        help="Password for encrypted PDFs (never written to disk).",
        show_default=False,
    ),
    refit_topics: bool = typer.Option(
        False, "--refit-topics", help="Refit the topic model on the whole corpus."
    ),
    by: str = typer.Option("year", "--by", help="Trend period: year or quarter."),
    n_topics: str = typer.Option("auto", "--n-topics", help="Number of topics: auto or N."),
    formats: list[str] = typer.Option(
        ["csv"],
        "--format",
        "-f",
        help="Export format; repeat for several: csv, parquet, qdpx, qdc.",
    ),
    coder: str = typer.Option(
        "learned",
        "--coder",
        help="Sentence coder: learned (the trained model) or rules (the rule tagger).",
    ),
    model: Path = typer.Option(
        None,
        "--model",
        help="Model folder from `textmine train`, or an encoder folder (default: the packaged model).",
        show_default=False,
    ),
    validation: Path = typer.Option(
        None,
        "--validation",
        help="Human-coded probability sample (from `textmine sample`): adds corrected trends.",
        show_default=False,
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        help="Processes that read and code (0: one per core).",
    ),
    wait: float = typer.Option(
        0.0, "--wait", help="Seconds to wait if another run holds the output folder."
    ),
) -> None:
    """Run the whole pipeline incrementally: read, segment, code, topics, trends, exports.

    Only new or changed files are read, only sentences not yet coded with the
    current codebook and coder are coded, and the topic model is refitted only
    with --refit-topics. Outputs are regenerated from the store in --out.
    """
    from textmine.run import RunSettings

    settings = _checked_settings(
        paths=list(paths) if paths else [Path("corpus")],
        out_dir=out,
        manifest=manifest,
        codebook=codebook,
        coder=coder,
        model_dir=model,
        password=password,
        refit_topics=refit_topics,
        n_topics=n_topics,
        by=by,
        formats=tuple(formats),
        validation=validation,
        workers=workers or default_workers(),
        lock_wait_seconds=wait,
    )
    assert isinstance(settings, RunSettings)
    started = time.perf_counter()
    report = execute_run(settings)
    _print_summary(report, time.perf_counter() - started, settings.out_dir, settings.refit_topics)


def default_workers() -> int:
    """One process per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def _checked_settings(**values) -> RunSettings:
    """RunSettings from command-line values; exit 2 with one line naming the problem."""
    from textmine.codebook import CodebookError
    from textmine.manifest import ManifestError
    from textmine.run import RunSettings
    from textmine.run.preflight import check_run_inputs

    try:
        settings = RunSettings(**values)
        check_run_inputs(settings)  # a model of another codebook: refused now
    except (ValueError, FileNotFoundError, ManifestError, CodebookError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    return settings


def execute_run(settings: RunSettings, quiet: bool = False) -> RunReport:
    """Run the pipeline with progress bars; exit 3 when the folder is locked, 2 on bad config.

    Exit 1 when the coder failed on every document (`CoderBrokenError`).
    """
    from rich.console import Console

    from textmine.lock import StoreLockedError
    from textmine.manifest import ManifestError
    from textmine.run import run_pipeline
    from textmine.run.runner import CoderBrokenError

    console = Console(stderr=True, quiet=quiet)
    try:
        with _progress_bars(console) as progress:
            return run_pipeline(settings, progress=progress)
    except StoreLockedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from exc
    except ManifestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except CoderBrokenError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


class _progress_bars:
    """Rich progress bars, one per stage, driven by run_pipeline's progress callback."""

    LABELS: ClassVar[dict[str, str]] = {
        "read": "reading documents",
        "code": "coding sentences",
        "topics": "topics",
        "outputs": "writing outputs",
    }

    def __init__(self, console):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bars = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self):
        self._bars.__enter__()
        return self.update

    def __exit__(self, *exc):
        self._bars.__exit__(*exc)

    def update(self, stage: str, done: int, total: int, detail: str = "") -> None:
        """Advance a stage's bar; `detail` (what a long stage is doing) follows its label."""
        label = self.LABELS.get(stage, stage)
        finished = total > 0 and done >= total
        description = f"{label}: {detail}" if detail and not finished else label
        if stage not in self._tasks:
            if total == 0 and done == 0:
                return
            self._tasks[stage] = self._bars.add_task(description, total=total)
        self._bars.update(self._tasks[stage], completed=done, total=total, description=description)


def _print_summary(
    report, seconds: float, out_dir: Path, refit_asked: bool = False, title: str = "textmine run"
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    c = report.counts
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("files found", str(c.get("files_found", 0)))
    table.add_row(
        "documents read",
        f"{c.get('documents_read', 0)} new"
        + (f" ({c['documents_changed']} changed)" if c.get("documents_changed") else "")
        + f", {c.get('documents_unchanged', 0)} unchanged (skipped)"
        + f"; {c.get('documents_total', 0)} in the corpus",
    )
    table.add_row("duplicates", str(c.get("duplicates", 0)))
    table.add_row("pages", f"{c.get('pages_read', 0)} new; {c.get('pages_total', 0)} in the corpus")
    table.add_row(
        "sentences",
        f"{c.get('sentences_new', 0)} new, {c.get('sentences_coded', 0)} coded this run; "
        f"{c.get('sentences_total', 0)} in the corpus",
    )
    failures = f"{c.get('failed', 0)} this run; {c.get('failures_total', 0)} files failing"
    if c.get("known_failures_skipped"):
        failures += f" ({c['known_failures_skipped']} unchanged, not retried)"
    if c.get("coding_failed"):
        failures += f"; {c['coding_failed']} documents not coded (retried next run)"
    table.add_row("failures", failures)
    if c.get("documents_retired") or c.get("missing"):
        table.add_row(
            "retired",
            f"{c.get('documents_retired', 0)} old versions, {c.get('missing', 0)} files gone",
        )
    if report.topics_refit:
        topics = "model refitted (--refit-topics)" if refit_asked else "model fitted"
    elif "topics" in report.timings:
        topics = "new text assigned to the saved model (no refit)"
    else:
        topics = "unchanged"
    table.add_row("topics", topics)
    table.add_row("codebook", str(report.codebook_version or "-"))
    table.add_row("coder", str(report.model_version or "-"))
    table.add_row("outputs", f"{out_dir}" + ("" if report.outputs_regenerated else " (up to date)"))
    if report.outputs_removed:
        table.add_row("removed", ", ".join(report.outputs_removed) + " (stale, not regenerated)")
    table.add_row(
        "time",
        f"{seconds:.1f} s ("
        + ", ".join(f"{k} {v:.1f}" for k, v in report.timings.items() if k != "total")
        + ")",
    )
    console.print(table)
    for failure in report.failures[:20]:
        label = "not coded" if failure.get("stage") == "coding" else "failed"
        console.print(
            f"  [yellow]{label}[/yellow] {failure['path']}: {failure['reason']} - "
            f"{failure['message']}"
        )
    if len(report.failures) > 20:
        console.print(f"  ... and {len(report.failures) - 20} more in {out_dir / 'run.json'}")
    for note in report.notes:
        console.print(f"  note: {note}")


@app.command("serve")
def serve_cmd(
    sources: Path = typer.Option(
        Path("flows/sources.yml"),
        "--sources",
        help="Sources YAML for watch-publications (see flows/sources.example.yml).",
    ),
    corpus: Path = typer.Option(
        Path("corpus"), "--corpus", help="Corpus folder mine-corpus reads."
    ),
    out: Path = typer.Option(Path("outputs"), "--out", "-o", help="Output folder runs write."),
    watch_cron: str = typer.Option(
        "0 6 * * *",
        "--watch-cron",
        help="Cron schedule of watch-publications (default daily 06:00).",
    ),
    mine_cron: str = typer.Option(
        None,
        "--mine-cron",
        help="Cron schedule of mine-corpus (default: none; trigger it by hand or from the UI).",
        show_default=False,
    ),
    timezone: str = typer.Option(
        "Europe/London", "--timezone", help="Time zone of the cron schedules."
    ),
) -> None:
    """Register the mine-corpus and watch-publications deployments and keep serving them.

    Needs a Prefect server (`prefect server start`) and PREFECT_API_URL pointing at
    it. Schedules stay active when this process stops, so they survive restarts.
    """
    repo = Path(__file__).resolve().parents[2]
    if (repo / "flows").is_dir() and str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    try:
        from flows.serve import serve_deployments
    except ImportError as exc:
        typer.echo(f"error: the flows/ folder of the textmine checkout is needed ({exc})", err=True)
        raise typer.Exit(2) from exc
    serve_deployments(
        sources=sources,
        corpus=corpus,
        out_dir=out,
        watch_cron=watch_cron,
        mine_cron=mine_cron,
        timezone=timezone,
    )
