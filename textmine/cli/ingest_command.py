"""`textmine ingest`: read documents into the store and documents.csv, sentences.csv, failures.csv."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from textmine.cli.app import app


@app.command("ingest")
def ingest_cmd(
    paths: list[Path] = typer.Argument(
        ..., help="Files or folders to read (folders are walked recursively)."
    ),
    out: Path = typer.Option(
        Path("outputs"),
        "--out",
        help="Output folder: the store, documents.csv, sentences.csv, failures.csv, run.json.",
    ),
    manifest: Path | None = typer.Option(
        None,
        "--manifest",
        help="Manifest CSV (path,title,publisher,doc_type,published,licence,source); "
        "default: manifest.csv inside the first folder given.",
    ),
    password: str | None = typer.Option(None, "--password", help="Password for encrypted PDFs."),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Installed spaCy pipeline for sentences (default: offline blank English).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Read PDF, HTML, DOCX and text files into clean text and sentences with provenance.

    The same run as `textmine run` with the ingest stage only: documents go into
    the output folder's store, so a later `textmine run --out` on that folder
    codes them without reading them again.
    """
    from textmine.cli.pipeline_commands import (
        _checked_settings,
        _print_summary,
        default_workers,
        execute_run,
    )

    settings = _checked_settings(
        paths=list(paths),
        out_dir=out,
        manifest=manifest,
        password=password,
        spacy_model=model,
        stages=("ingest",),
        workers=default_workers(),
    )
    started = time.perf_counter()
    report = execute_run(settings, quiet=quiet)
    _print_summary(report, time.perf_counter() - started, settings.out_dir, title="textmine ingest")
