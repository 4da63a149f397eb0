"""`textmine train`: learn a sentence coder from coded sets, with grouped cross-validation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from textmine.cli.app import app

console = Console()
err_console = Console(stderr=True)


def _fmt(value) -> str:
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@app.command("train")
def train_cmd(
    coded: list[Path] = typer.Argument(
        ...,
        help="Coded-set CSVs: id, sentence, one 0/1 column per codebook code; optional "
        "source (cross-validation groups), source_kind or doc_type, doc_id, sentence_index.",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Model folder to write (model files + metrics.json, metrics.md, metrics.csv).",
    ),
    codebook_path: Path | None = typer.Option(
        None,
        "--codebook",
        help="Codebook YAML (default: the packaged codebook); the model "
        "learns every code in it and only codes with this codebook version.",
    ),
    folds: int = typer.Option(
        5,
        "--folds",
        min=0,
        help="Grouped cross-validation folds (0: no cross-validation, just fit).",
    ),
    c: float = typer.Option(10.0, "--c", min=1e-4, help="Inverse L2 regularisation strength."),
    embeddings: bool = typer.Option(
        False,
        "--embeddings/--no-embeddings",
        help="Add the packaged static word embeddings as features (measured: no gain).",
    ),
) -> None:
    """Train a sentence coder on coded sets; report grouped cross-validated kappa and F1."""
    from textmine.cli.coding_commands import _codebook
    from textmine.coded_sets import SentenceCsvError, read_sentence_csv
    from textmine.learned.features import FeatureConfig
    from textmine.learned.train import CodedSetError, train_model

    codebook = _codebook(codebook_path)
    for path in coded:  # strict CSV check first: a shifted row fails here, naming its line
        try:
            read_sentence_csv(path, "coded set")
        except SentenceCsvError as error:
            err_console.print(f"[red]error:[/red] {error}")
            raise typer.Exit(2) from error
    try:
        with console.status("training") as status:
            model, table, summary = train_model(
                coded,
                out,
                codebook,
                config=FeatureConfig(embeddings=embeddings),
                c=c,
                folds=folds,
                progress=lambda message: status.update(message),
            )
    except (CodedSetError, ValueError) as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    if len(table):
        console.print(
            _metrics_table(
                table,
                f"grouped {summary['cross_validation']['folds']}-fold "
                f"cross-validation: {summary['sentences']:,} sentences, "
                f"{summary['groups']:,} sources",
            )
        )
        for name, part in summary.get("by_file", {}).items():
            console.print(_metrics_table(part, f"the same, rows of {name} only"))
    from textmine.learned.model import model_version

    console.print(
        f"model {model_version(out)} for codebook {codebook.version} "
        f"({len(model.codes)} codes, {len(model.space.names):,} features) -> {out} "
        f"in {summary['seconds']:.0f} s"
    )


def _metrics_table(table, title: str) -> Table:
    shown = Table(title=title)
    for column in ("code", "positives", "P", "R", "F1 [95% CI]", "kappa [95% CI]"):
        shown.add_column(column, justify="left" if column == "code" else "right")
    for row in table.to_dict("records"):
        shown.add_row(
            row["code"],
            "" if row["positives"] != row["positives"] else str(int(row["positives"])),
            _fmt(row["precision"]),
            _fmt(row["recall"]),
            f"{_fmt(row['f1'])} [{_fmt(row['f1_low'])}, {_fmt(row['f1_high'])}]",
            ""
            if row["kind"] == "summary"
            else f"{_fmt(row['kappa'])} [{_fmt(row['kappa_low'])}, {_fmt(row['kappa_high'])}]",
        )
    return shown
