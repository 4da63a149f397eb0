"""`textmine code`, `textmine evaluate` and `textmine kwic`.

Coding sentences with the codebook, measuring agreement with a coded set, and
keyword in context.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from textmine.cli.app import app, open_processed_corpus

if TYPE_CHECKING:
    import pandas as pd

console = Console()
err_console = Console(stderr=True)


def _codebook(path: Path | None):
    from textmine.codebook import CodebookError, load_codebook

    try:
        return load_codebook(path)
    except CodebookError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    """The CSV read strictly (textmine.coded_sets); exit 2 naming the file and line if unusable."""
    from textmine.coded_sets import SentenceCsvError, read_sentence_csv

    try:
        frame = read_sentence_csv(path, what)
    except SentenceCsvError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    if frame.attrs.get("encoding") == "cp1252":
        err_console.print(f'note: {path} is not UTF-8; read as Windows-1252 (Excel\'s "CSV")')
    return frame


CODER_HELP = "Sentence coder: learned (the trained model) or rules (the codebook's tagger)."
MODEL_HELP = (
    "Model folder written by `textmine train`, or an encoder folder "
    "(README: Fine-tuned encoder); default: the packaged model."
)


def _sentence_coder(coder: str, model_dir: Path | None, codebook):
    """The chosen coder; exit 2 with the reason if it cannot be loaded."""
    from textmine.learned import load_coder

    try:
        return load_coder(coder, model_dir, codebook)
    except ValueError as error:  # ModelCodebookMismatch, ModelFolderError, unknown coder
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error


def _code_frame(
    frame: pd.DataFrame, codebook, path: Path, coder: str = "learned", model_dir: Path | None = None
) -> pd.DataFrame:
    if "sentence" not in frame.columns:
        err_console.print(
            f"[red]error:[/red] {path} has no `sentence` column "
            f"(columns: {', '.join(frame.columns)})"
        )
        raise typer.Exit(2)
    sentence_coder = _sentence_coder(coder, model_dir, codebook)
    with console.status(f"coding {len(frame):,} sentences"):
        return sentence_coder.code_sentences(frame, text_column="sentence")


@app.command("code")
def code_cmd(
    in_csv: Path = typer.Argument(..., help="CSV with columns id, sentence (others are kept)."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="CSV to write: same rows and order, plus the ten "
        "code columns, evidence, codebook_version, textmine_version.",
    ),
    codebook_path: Path | None = typer.Option(
        None, "--codebook", help="Codebook YAML (default: the packaged codebook)."
    ),
    coder: str = typer.Option("learned", "--coder", help=CODER_HELP),
    model_dir: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
) -> None:
    """Code every sentence of a CSV for stance and partnership types."""
    from textmine.atomic import write_csv_atomic

    codebook = _codebook(codebook_path)
    frame = _read_csv(in_csv, "input")
    coded = _code_frame(frame, codebook, in_csv, coder, model_dir)
    write_csv_atomic(out, coded)
    counts = ", ".join(f"{c} {int(coded[c].sum())}" for c in codebook.code_columns)
    console.print(
        f"coded {len(coded):,} sentences with codebook {codebook.version}, "
        f"coder {coded['model_version'].iloc[0] if len(coded) else coder} -> {out}"
    )
    console.print(f"sentences per code: {counts}")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


@app.command("evaluate")
def evaluate_cmd(
    gold_csv: Path = typer.Argument(..., help="Coded set: id, sentence and the ten code columns."),
    pred: Path | None = typer.Option(
        None,
        "--pred",
        help="Second coding to compare (matched on id, or on sentence_id); "
        "default: code the gold sentences with the codebook.",
    ),
    codebook_path: Path | None = typer.Option(
        None, "--codebook", help="Codebook YAML (default: the packaged codebook)."
    ),
    out: Path = typer.Option(
        Path("outputs") / "evaluation",
        "--out",
        help="Folder for the agreement table and disagreements CSVs.",
    ),
    coder: str = typer.Option("learned", "--coder", help=CODER_HELP),
    model_dir: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
) -> None:
    """Agreement with a coded set: precision, recall, F1, kappa, alpha per code."""
    from textmine.atomic import write_csv_atomic
    from textmine.evaluate import evaluate_coding

    gold = _read_csv(gold_csv, "gold set")
    codebook = _codebook(codebook_path)
    codes = [c for c in codebook.code_columns if c in gold.columns]
    missing = [c for c in codebook.code_columns if c not in gold.columns]
    if missing or "id" not in gold.columns:
        err_console.print(
            f"[red]error:[/red] {gold_csv} lacks column(s) "
            f"{', '.join((['id'] if 'id' not in gold.columns else []) + missing)}"
        )
        raise typer.Exit(2)
    try:
        gold[codes] = gold[codes].astype(int)
    except ValueError as error:
        err_console.print(f"[red]error:[/red] {gold_csv}: code columns must hold 0 or 1 ({error})")
        raise typer.Exit(2) from error
    if pred is None:
        predicted = _code_frame(gold.drop(columns=codes), codebook, gold_csv, coder, model_dir)
        version = predicted["model_version"].iloc[0] if len(predicted) else coder
        source = f"textmine {coder} coder {version} (codebook {codebook.version})"
    else:
        predicted = _read_csv(pred, "predictions")
        source = str(pred)
    try:
        present = [c for c in codes if c in predicted.columns]
        predicted[present] = predicted[present].replace("", "0").astype(int)
        table, diffs = evaluate_coding(
            gold,
            predicted,
            codes,
            stance_codes=codebook.stance_codes,
            partnership_codes=codebook.partnership_codes,
        )
    except ValueError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error

    shown = Table(title=f"{gold_csv.name}: {len(gold)} sentences vs {source}")
    columns = ["code", "gold_pos", "pred_pos", "precision", "recall", "f1", "kappa", "alpha"]
    headers = {"gold_pos": "gold", "pred_pos": "pred", "precision": "P", "recall": "R", "f1": "F1"}
    for column in columns:
        shown.add_column(
            headers.get(column, column),
            justify="left" if column == "code" else "right",
            no_wrap=True,
            min_width=None if column == "code" else 5,
        )
    for row in table.to_dict("records"):
        cells = []
        for column in columns:
            value = row[column]
            if column in ("gold_pos", "pred_pos") and not _missing(value):
                cells.append(str(int(value)))
            elif column == "code" and row["kind"] == "summary":
                cells.append(
                    {"macro_f1_stance": "macro F1 stance"}.get(
                        value, "micro F1 types" if value.startswith("micro") else value
                    )
                )
            elif row["kind"] == "summary" and _missing(value):
                cells.append("")
            else:
                cells.append(_fmt(value))
        shown.add_row(*cells)
    console.print(shown)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", gold_csv.stem)
    table_path = out / f"{stem}_agreement.csv"
    diffs_path = out / f"{stem}_disagreements.csv"
    write_csv_atomic(table_path, table)
    write_csv_atomic(diffs_path, diffs)
    console.print(f"{len(diffs)} disagreement(s) -> {diffs_path}; table -> {table_path}")
    if "inclusion_prob" in gold.columns:  # a `textmine sample`: prevalence bias per period
        from textmine.cli.sample_command import report_validation

        report_validation(gold, predicted, codebook, gold_csv, out / f"{stem}_by_period.csv")


@app.command("kwic")
def kwic_cmd(
    term: str = typer.Argument(
        ..., help="Word, phrase or glob such as 'collaborat*' or 'school partner*'."
    ),
    window: int = typer.Option(5, "--window", min=0, help="Words of context on each side."),
    out: Path = typer.Option(
        Path("outputs"), "--out", help="Folder of the processed corpus written by `textmine run`."
    ),
    csv: Path | None = typer.Option(
        None, "--csv", help="CSV to write (default: OUT/kwic/kwic_<term>.csv)."
    ),
    show: int = typer.Option(20, "--show", min=0, help="Hits to print (all go to the CSV)."),
) -> None:
    """Keyword in context over the processed corpus's sentences, written to CSV."""
    from textmine.atomic import write_csv_atomic
    from textmine.kwic import kwic

    with open_processed_corpus(out) as store:
        sentences = store.coded_sentences()
        codes = store.code_columns
    try:
        hits = kwic(sentences, term, window=window, codes=codes or None)
    except ValueError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    slug = re.sub(r"[^A-Za-z0-9]+", "_", term).strip("_") or "term"
    target = csv or out / "kwic" / f"kwic_{slug}.csv"
    write_csv_atomic(target, hits)
    shown = Table(title=f"kwic '{term}': {len(hits)} hit(s) in {len(sentences):,} sentences")
    for column in ("docname", "page", "pre", "keyword", "post"):
        shown.add_column(
            column,
            justify="right" if column == "pre" else "left",
            style="bold" if column == "keyword" else None,
        )
    for row in hits.head(show).to_dict("records"):
        shown.add_row(
            str(row["docname"]), str(row["page"]), row["pre"], row["keyword"], row["post"]
        )
    console.print(shown)
    console.print(f"-> {target}")
