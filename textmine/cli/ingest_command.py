"""`textmine ingest`: read documents into documents.csv, sentences.csv, failures.csv, run.json."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from textmine.cli.app import app


@app.command("ingest")
def ingest_cmd(
    paths: list[Path] = typer.Argument(..., help="Files or folders to read (folders are walked recursively)."),
    out: Path = typer.Option(Path("outputs"), "--out", help="Folder for documents.csv, sentences.csv, failures.csv, run.json."),
    manifest: Path | None = typer.Option(
        None, "--manifest", help="Manifest CSV (path,title,publisher,doc_type,published,licence,source); "
        "default: manifest.csv inside each folder given.",
    ),
    password: str | None = typer.Option(None, "--password", help="Password for encrypted PDFs."),
    model: str | None = typer.Option(
        None, "--model", help="Installed spaCy pipeline for sentences (default: offline blank English)."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Read PDF, HTML, DOCX and text files into clean text and sentences with provenance."""
    from textmine.ingest import ingest_paths, summary_lines, write_ingest_outputs
    from textmine.manifest import ManifestError
    from textmine.segment import build_nlp, segment_documents

    console = Console(stderr=True)
    try:
        nlp = build_nlp(model)
        result = ingest_paths(paths, manifest=manifest, password=password, progress=not quiet)
    except (OSError, ManifestError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    segment_started = time.perf_counter()
    if quiet or not result.documents:
        sentences = segment_documents(result.documents, nlp)
    else:
        import pandas as pd
        from rich.progress import track

        from textmine.segment import segment_document

        frames = [segment_document(d, nlp) for d in track(
            result.documents, description="sentences", console=console, transient=True
        )]
        sentences = pd.concat(frames, ignore_index=True)
    settings = {
        "paths": [str(p) for p in paths],
        "out": str(out),
        "manifest": str(manifest) if manifest else None,
        "password_given": password is not None,
        "model": model or "blank:en+sentencizer",
    }
    timings = {"read": result.seconds, "segment": time.perf_counter() - segment_started}
    report = write_ingest_outputs(result, sentences, out, settings=settings, timings=timings)
    table = Table(title=f"textmine ingest → {out}", show_header=False)
    for label, value in summary_lines(report):
        table.add_row(label, value)
    console.print(table)
    for failure in result.failures:
        console.print(f"  [yellow]{failure.reason}[/yellow] {failure.path}: {failure.message}")
