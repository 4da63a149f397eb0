"""`textmine sample`: sentences of the processed corpus to code by hand, as CSV or a blind REFI-QDA project."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from textmine.cli.app import app, open_processed_corpus

console = Console(stderr=True)


def sample_csv_beside(qdpx: Path) -> Path:
    """The sample CSV written beside a sample's .qdpx: FILE.qdpx -> FILE.sample.csv."""
    return qdpx.with_name(f"{qdpx.stem}.sample.csv")


@app.command("sample")
def sample_cmd(
    n: int = typer.Option(..., "--n", min=1, help="Sentences to draw."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="FILE.csv (id, sentence, empty code columns, design "
        "columns) or FILE.qdpx (blind REFI-QDA project; FILE.sample.csv is "
        "written beside it).",
    ),
    seed: int = typer.Option(
        0, "--seed", help="Random seed: the same corpus, options and seed give the same sample."
    ),
    by: str = typer.Option("year", "--by", help="Stratify by publication year or quarter."),
    strategy: str = typer.Option(
        "random",
        "--strategy",
        help="random: a stratified probability "
        "sample (corrects trends); uncertain: the sentences the coder is "
        "least sure of (trains a coder only).",
    ),
    stratify_doc_type: bool = typer.Option(
        False, "--stratify-doc-type", help="Also stratify by doc_type within each period."
    ),
    allocation: str = typer.Option(
        "equal",
        "--allocation",
        help="equal: the same number per "
        "period; proportional: in proportion to each period's sentences.",
    ),
    corpus_dir: Path = typer.Option(
        Path("outputs"),
        "--corpus-dir",
        help="Folder of the processed corpus written by `textmine run`.",
    ),
    codebook_path: Path | None = typer.Option(
        None,
        "--codebook",
        help="Codebook YAML whose codes are to be coded (default: the packaged codebook).",
    ),
    validate: bool = typer.Option(
        True, "--validate/--no-validate", help="Validate the .qdpx against the REFI-QDA schema."
    ),
) -> None:
    """Draw sentences to code by hand, to CSV or a blind REFI-QDA project.

    A stratified random sample with inclusion probabilities (for `textmine trends
    --validation` and `textmine evaluate`), or the least certain sentences (for training).
    """
    from textmine.atomic import write_csv_atomic
    from textmine.codebook import CodebookError, load_codebook
    from textmine.validation.design import (
        ALLOCATIONS,
        STRATEGIES,
        draw_random_sample,
        draw_uncertain_sample,
        sample_table,
        sentence_frame,
    )

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".qdpx"):
        raise typer.BadParameter(f"{out} must end in .csv or .qdpx", param_hint="--out")
    for value, allowed, option in (
        (by, ("year", "quarter"), "--by"),
        (strategy, STRATEGIES, "--strategy"),
        (allocation, ALLOCATIONS, "--allocation"),
    ):
        if value not in allowed:
            raise typer.BadParameter(f"use one of {', '.join(allowed)}", param_hint=option)
    try:
        codebook = load_codebook(codebook_path)
    except CodebookError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    with open_processed_corpus(corpus_dir, option="--corpus-dir") as store:
        coded = store.coded_sentences()
        documents = store.documents()
        texts = store.document_texts() if suffix == ".qdpx" else {}
    codes = [c for c in codebook.code_columns if c in coded.columns]
    frame = sentence_frame(coded, documents, by, codes)
    try:
        if strategy == "random":
            sample = draw_random_sample(
                frame,
                n,
                seed=seed,
                by=by,
                stratify_doc_type=stratify_doc_type,
                allocation=allocation,
            )
        else:
            from textmine.coding import get_coder

            sample = draw_uncertain_sample(
                frame, n, codes, seed=seed, is_near_miss=get_coder(codebook).is_candidate
            )
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    table = sample_table(sample, codebook.code_columns)
    written = []
    try:
        if suffix == ".qdpx":
            from textmine.validation.qdpx import write_sample_qdpx

            written.append(
                write_sample_qdpx(out, table, documents, coded, texts, codebook, validate=validate)
            )
            write_csv_atomic(sample_csv_beside(out), table)
            written.append(sample_csv_beside(out))
        else:
            write_csv_atomic(out, table)
            written.append(out)
    except ValueError as error:  # schema or offset problems, named by the library
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    for note in sample.notes:
        console.print(f"note: {note}")
    if strategy == "random":
        _print_strata(table)
    for path in written:
        typer.echo(str(path))
    if suffix == ".qdpx":
        console.print(
            f"Code the sentences under '{_marker()}' in your QDA software, export a .qdpx, then: "
            f"textmine import-qdpx CODED.qdpx --sample {sample_csv_beside(out)} --out validation.csv"
        )
    elif strategy == "random":
        console.print(
            f"Fill in the code columns with 0/1, then: textmine trends --validation {out}"
        )


def _marker() -> str:
    from textmine.validation.qdpx import SAMPLE_CODE

    return SAMPLE_CODE


def _print_strata(table) -> None:
    strata = table.groupby("stratum", sort=True).agg(
        n=("id", "size"), size=("stratum_size", "first"), p=("inclusion_prob", "first")
    )
    shown = Table(title="sample per stratum")
    for column in ("stratum", "sentences", "sampled", "inclusion prob."):
        shown.add_column(column, justify="left" if column == "stratum" else "right")
    for stratum, row in strata.iterrows():
        shown.add_row(str(stratum), f"{int(row['size']):,}", str(int(row["n"])), f"{row['p']:.4f}")
    console.print(shown)


def load_validation_option(path: Path, codebook):
    """The validation file given to `--validation`, checked; exit 2 with the reason when unusable."""
    from textmine.validation import ValidationError, read_validation

    try:
        return read_validation(path, codebook.code_columns)
    except ValidationError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error


def print_corrected(trends: dict, codebook) -> None:
    """One line per stance code: machine share and corrected share with its interval, all periods."""
    from textmine.validation import corrected_column_names

    stance = trends.get("stance_trends")
    if stance is None or "n_validation" not in stance.columns:
        return
    overall = stance[
        (stance["dimension"] == "all") & (stance["group"] == "all") & (stance["period"] == "all")
    ]
    if overall.empty:
        return
    row = overall.iloc[0]
    console.print(f"corrected with {int(row['n_validation'])} validation sentences:")
    for code in codebook.stance_codes:
        estimate, low, high = corrected_column_names(code, "stance")
        if estimate in row.index:
            console.print(
                f"  {code}: machine {row[f'share_{code}']:.2%}, corrected {row[estimate]:.2%} "
                f"(95% CI {row[low]:.2%}-{row[high]:.2%})"
            )
    notes = stance["validation_note"].fillna("").astype(str)
    flagged = stance[(notes != "") & (stance["dimension"] == "all")]
    if len(flagged):
        first = flagged.iloc[0]
        console.print(
            f"  {len(flagged)} row(s) over time carry a validation_note, e.g. "
            f"{first['period']}: {first['validation_note']}"
        )


def report_validation(gold, predicted, codebook, gold_csv: Path, target: Path) -> None:
    """`textmine evaluate` on a sample with inclusion probabilities: the design-weighted report per period."""
    from textmine.atomic import write_csv_atomic
    from textmine.validation import ValidationError, check_validation, validation_report

    if (gold.get("strategy", "").astype(str) == "uncertain").any() if "strategy" in gold else False:
        console.print(
            "note: an --strategy uncertain sample has no inclusion probabilities; "
            "no design-weighted report"
        )
        return
    try:
        sample = check_validation(gold.astype(str), gold_csv, codebook.code_columns)
        report = validation_report(sample, predicted, codebook.code_columns)
    except (ValidationError, ValueError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    write_csv_atomic(target, report)
    shown = Table(title=f"prevalence, weighted by the sample design ({len(sample)} sentences)")
    for column in ("code", "human", "machine", "bias", "95% CI", "recall"):
        shown.add_column(column, justify="left" if column == "code" else "right", no_wrap=True)
    for row in report[report["period"] == "all"].itertuples(index=False):
        shown.add_row(
            row.code,
            f"{row.human_share:.3f}",
            f"{row.machine_share:.3f}",
            f"{row.bias:+.3f}",
            f"{row.bias_ci_low:+.3f} to {row.bias_ci_high:+.3f}",
            "n/a" if row.recall != row.recall else f"{row.recall:.2f}",
        )
    console.print(shown)
    console.print(f"per code and period, with intervals -> {target}")
