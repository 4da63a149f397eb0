"""`textmine report`: rebuild the run report (report.html) of a processed corpus."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from textmine.cli.app import app, open_processed_corpus


def _run_codebook(out: Path) -> Path | None:
    """The codebook file the last run named in run.json, when it still exists."""
    try:
        settings = json.loads((out / "run.json").read_text(encoding="utf-8")).get("settings")
    except (OSError, ValueError, AttributeError):
        return None
    path = (settings or {}).get("codebook") if isinstance(settings, dict) else None
    return Path(path) if path and Path(path).is_file() else None


@app.command("report")
def report_cmd(
    out: Path = typer.Option(
        Path("outputs"),
        "--out",
        "-o",
        help="Folder of the processed corpus written by `textmine run`; report.html goes there.",
    ),
    codebook_path: Path | None = typer.Option(
        None,
        "--codebook",
        help="Codebook YAML (default: the one the last run used, else the packaged codebook).",
    ),
) -> None:
    """Rebuild report.html from the store: corpus, validity, trends, codes, topics, settings."""
    from textmine.codebook import CodebookError, load_codebook
    from textmine.report import write_report

    try:
        codebook = load_codebook(codebook_path or _run_codebook(out))
    except CodebookError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    with open_processed_corpus(out) as store:
        path = write_report(store, out, codebook)
    typer.echo(f"report -> {path}")
