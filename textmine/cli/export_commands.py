"""`textmine export` and `textmine import-qdpx`: the coded corpus out, human codings back in.

Exports go to CSV, Parquet and REFI-QDA; codings made in QDA software come
back from a .qdpx project.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from textmine.cli.app import app, open_processed_corpus

# pandas and the exporters are imported by the commands that use them: `textmine --help`,
# `--version` and the other commands start without them.
console = Console(stderr=True)


def _load_codebook(path: Path | None):
    from textmine.codebook import load_codebook

    return load_codebook(path) if path else load_codebook()


def _open_store(corpus_dir: Path):
    return open_processed_corpus(corpus_dir, option="--corpus-dir")


@app.command("export")
def export_cmd(
    formats: list[str] = typer.Option(
        ["csv"],
        "--format",
        "-f",
        help="Export format: csv | parquet | qdpx | qdc (repeat the option for several).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder to write into (default: the corpus folder); for a single qdpx or qdc "
        "format it may also be a file path ending in .qdpx / .qdc.",
    ),
    corpus_dir: Path = typer.Option(
        Path("outputs"),
        "--corpus-dir",
        help="Folder of the processed corpus written by `textmine run`.",
    ),
    codebook_path: Path | None = typer.Option(
        None,
        "--codebook",
        help="Codebook YAML whose codes are exported (default: the packaged codebook).",
    ),
    blind: bool = typer.Option(
        False,
        "--blind",
        help="qdpx only: documents and codebook without the machine's codings, for independent "
        "human coding.",
    ),
    validate: bool = typer.Option(
        True,
        "--validate/--no-validate",
        help="Validate project.qde / the .qdc against the REFI-QDA schema before writing.",
    ),
) -> None:
    """Export the processed corpus as CSV, Parquet, a REFI-QDA project (.qdpx) or codebook (.qdc)."""
    from textmine.export import EXPORT_FORMATS

    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise typer.BadParameter(
            f"unknown format(s) {unknown}; choose from {', '.join(EXPORT_FORMATS)}",
            param_hint="--format",
        )
    formats = list(dict.fromkeys(formats))
    try:
        codebook = _load_codebook(codebook_path)
        written = _export(formats, out, corpus_dir, codebook, blind=blind, validate=validate)
        _register(corpus_dir, written, formats, blind=blind)
    except ValueError as error:  # codebook, schema or offset problems, named by the library
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    for path in written:
        typer.echo(str(path))


def _register(corpus_dir: Path, written: list[Path], formats: list[str], *, blind: bool) -> None:
    """Files written into the corpus folder join its outputs, so later runs keep them fresh."""
    from textmine.run import register_export
    from textmine.store import store_path

    root = corpus_dir.resolve()
    inside = [p for p in written if p.resolve().is_relative_to(root)]
    if not inside or not store_path(corpus_dir).is_file():
        return  # nothing written into the corpus folder: the store is not opened for writing
    with open_processed_corpus(corpus_dir, option="--corpus-dir", read_only=False) as store:
        for fmt in formats:
            paths = [p for p in inside if p.suffix.lower() == f".{fmt}"]
            register_export(store, corpus_dir, paths, f"{fmt}-blind" if blind else fmt)


def _export(formats, out, corpus_dir, codebook, *, blind: bool, validate: bool) -> list[Path]:
    """Write `formats` from the store in `corpus_dir`; return the written paths."""
    from textmine.export import write_exports
    from textmine.qda import write_qdc, write_qdpx

    single_file = out is not None and len(formats) == 1 and out.suffix.lower() in (".qdpx", ".qdc")
    if single_file and out.suffix.lower() != f".{formats[0]}":
        raise typer.BadParameter(f"{out} does not end in .{formats[0]}", param_hint="--out")
    written: list[Path] = []
    with console.status("Exporting…"):
        if formats == ["qdc"]:
            target = out if single_file else (out or corpus_dir) / "codebook.qdc"
            written.append(write_qdc(target, codebook, validate=validate))
        else:
            with _open_store(corpus_dir) as store:
                documents = store.documents()
                coded = store.coded_sentences()
                texts = store.document_texts() if "qdpx" in formats else None
            if coded.empty:
                console.print(
                    f"[yellow]warning:[/yellow] no coded sentences in {corpus_dir}; "
                    "the exports hold documents only"
                )
            if codebook is not None:
                stored = sorted(set(coded.get("codebook_version", [])))
                version = str(getattr(codebook, "version", ""))
                if stored and version and stored != [version]:
                    console.print(
                        f"[yellow]warning:[/yellow] the corpus was coded with codebook {stored}, "
                        f"the codebook given is {version}"
                    )
            if single_file:
                assert texts is not None  # one file that is not .qdc: the .qdpx, texts read
                written.append(
                    write_qdpx(
                        out,
                        documents,
                        coded,
                        texts,
                        codebook,
                        include_codings=not blind,
                        validate=validate,
                    )
                )
            else:
                written += write_exports(
                    documents,
                    coded,
                    out or corpus_dir,
                    formats,
                    doc_texts=texts,
                    codebook=codebook,
                    validate=validate,
                    include_codings=not blind,
                )
    return written


@app.command("import-qdpx")
def import_qdpx_cmd(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="A .qdpx project exported by QDA software (or a project.qde).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="CSV to write the human coded set to (default: <corpus-dir>/<file>_human_coded.csv).",
    ),
    corpus_dir: Path = typer.Option(
        Path("outputs"),
        "--corpus-dir",
        help="Folder of the processed corpus the project was exported from.",
    ),
    evaluate: bool = typer.Option(
        False,
        "--evaluate",
        help="Also compare the human codes with the machine codes (kappa, Krippendorff's alpha per code).",
    ),
    codebook_path: Path | None = typer.Option(
        None,
        "--codebook",
        help="Codebook YAML whose codes are read back (default: the packaged codebook).",
    ),
    sample: Path | None = typer.Option(
        None,
        "--sample",
        exists=True,
        dir_okay=False,
        help="FILE.sample.csv written by `textmine sample` beside FILE.qdpx: keep only the sampled "
        "sentences, with their inclusion probabilities (a validation file for `trends --validation`).",
    ),
) -> None:
    """Read human codings from a REFI-QDA project into a coded set CSV (codebook format)."""
    from textmine.export import CODED_SENTENCES_NAME, write_csv_export
    from textmine.qda import RefiQdaError, read_qdpx

    try:
        codebook = _load_codebook(codebook_path)
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    with _open_store(corpus_dir) as store:
        coded = store.coded_sentences()
        sentences = store.sentences() if hasattr(store, "sentences") else coded
        texts = store.document_texts()
    try:
        with console.status(f"Reading {file}…"):
            result = read_qdpx(file, sentences, texts, codes=codebook.code_columns)
    except RefiQdaError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    if sample is not None:  # textmine.validation: the sample's sentences and design columns
        from textmine.validation.files import ValidationError, import_sample_coding

        try:
            result = import_sample_coding(result, sample)
        except ValidationError as error:
            console.print(f"[red]error:[/red] {error}")
            raise typer.Exit(1) from error
    target = out or corpus_dir / f"{file.stem}_human_coded.csv"
    write_csv_export(target, result.coded_set)

    summary = Table(title=f"{file.name} → {target}", show_header=False)
    summary.add_row("documents matched", str(len(result.sources_matched)))
    summary.add_row("sentences in coded set", str(len(result.coded_set)))
    summary.add_row("coded selections", str(result.n_selections))
    summary.add_row("selections matched to sentences", str(result.n_selections_matched))
    for user, n in sorted(result.codings_by_user.items()):
        summary.add_row(f"codings by {user}", str(n))
    for convention in sorted(set(result.line_breaks.values())):
        n = sum(c == convention for c in result.line_breaks.values())
        summary.add_row("CRLF sources read with", f"{convention} ({n} source(s))")
    console.print(summary)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if result.coded_set.empty:
        console.print("[red]error:[/red] no source of the project matches a document of the corpus")
        raise typer.Exit(1)

    machine_csv = corpus_dir / f"{CODED_SENTENCES_NAME}.csv"
    if not machine_csv.is_file():
        console.print(
            f"Write the machine codes first: textmine export --format csv --corpus-dir {corpus_dir}"
        )
    console.print("Compare with the machine codes:")
    typer.echo(f"textmine evaluate {target} --pred {machine_csv}")
    if evaluate:
        _evaluate(result.coded_set, coded, target, codebook)


def _evaluate(human, machine, human_csv: Path, codebook) -> None:
    """Agreement of the human coded set with the machine codes (textmine.evaluate).

    The full table (precision, recall, F1, kappa, alpha and their counts) goes to
    <human>_agreement.csv; the terminal gets a compact table that fits 80 columns.
    """
    import math

    from textmine.atomic import write_csv_atomic
    from textmine.evaluate import evaluate_coding
    from textmine.export import write_csv_export

    codes = [c for c in codebook.code_columns if c in human.columns]
    try:
        table, diffs = evaluate_coding(
            human,
            machine,
            codes,
            stance_codes=codebook.stance_codes,
            partnership_codes=codebook.partnership_codes,
        )
    except ValueError as error:
        console.print(f"[red]error:[/red] cannot compare with the machine codes: {error}")
        raise typer.Exit(1) from error
    table_path = human_csv.with_name(f"{human_csv.stem}_agreement.csv")
    diffs_path = human_csv.with_name(f"{human_csv.stem}_disagreements.csv")
    write_csv_atomic(table_path, table)
    write_csv_export(diffs_path, diffs)

    def cell(value: object, integer: bool = False) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if integer:
            return str(int(value))  # type: ignore[call-overload]
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    shown = Table(title=f"human vs machine, {len(human)} sentences")
    columns = {
        "code": "code",
        "gold_pos": "human",
        "pred_pos": "machine",
        "kappa": "kappa",
        "alpha": "alpha",
        "f1": "F1",
    }
    for column, header in columns.items():
        shown.add_column(header, justify="left" if column == "code" else "right")
    for row in table.to_dict("records"):
        shown.add_row(*(cell(row.get(c), integer=c in ("gold_pos", "pred_pos")) for c in columns))
    console.print(shown)
    console.print(f"full table (precision, recall, F1, kappa, alpha) -> {table_path}")
    console.print(f"{len(diffs)} disagreement(s) -> {diffs_path}")
