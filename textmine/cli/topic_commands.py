"""`textmine topics` and `textmine trends`: over the processed corpus in --out."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from textmine.cli.app import app, open_processed_corpus

console = Console()
err_console = Console(stderr=True)


def _load_corpus(out: Path):
    with open_processed_corpus(out) as store:
        return store.coded_sentences(), store.documents()


def _load_codebook(path: Path | None):
    from textmine.codebook import CodebookError, load_codebook

    try:
        return load_codebook(path)
    except CodebookError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error


def _by(value: str) -> str:
    if value not in ("year", "quarter"):
        raise typer.BadParameter("use 'year' or 'quarter'")
    return value


@app.command("topics")
def topics_cmd(
    out: Path = typer.Option(
        Path("outputs"),
        "--out",
        help="Folder of a processed corpus (written by `textmine run`); outputs go there too.",
    ),
    by: str = typer.Option(
        "year", "--by", callback=_by, help="Period of topics over time: year or quarter."
    ),
    n_topics: str = typer.Option(
        "auto", "--n-topics", help="'auto' (the clustering decides) or a number of topics."
    ),
    seed_topics_from_codebook: bool = typer.Option(
        False,
        "--seed-topics-from-codebook",
        help="Guide topics with the codebook's words (one seed list per code).",
    ),
    refit: bool = typer.Option(
        False,
        "--refit",
        help="Fit a new model even if one is saved (default: assign new paragraphs to the saved topics).",
    ),
    min_topic_size: int | None = typer.Option(
        None,
        "--min-topic-size",
        help="Smallest topic, in paragraphs (default: max(10, paragraphs / 500)).",
    ),
    codebook_path: Path | None = typer.Option(
        None,
        "--codebook",
        help="Codebook YAML for --seed-topics-from-codebook (default: the packaged codebook).",
    ),
) -> None:
    """Model topics of the corpus's paragraphs.

    Writes topics.csv, doc_topics.csv, topics_over_time.csv and
    figures/topics_over_time.{png,html}.
    """
    from textmine.figures import write_figures
    from textmine.topics import TopicSettings, run_topics, write_topic_tables

    try:
        settings = TopicSettings(
            by=by,
            n_topics=n_topics,
            min_topic_size=min_topic_size,
            seed_topics_from_codebook=seed_topics_from_codebook,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    sentences, documents = _load_corpus(out)
    with console.status(f"modelling topics of {sentences['doc_id'].nunique():,} documents"):
        codebook = _load_codebook(codebook_path) if seed_topics_from_codebook else None
        outputs = run_topics(
            sentences, documents, settings, out / "topic_model", refit=refit, codebook=codebook
        )
        written = write_topic_tables(outputs, out)
        written += write_figures(None, outputs, out / "figures", by=settings.by)
    for note in outputs.notes:
        console.print(f"note: {note}")
    console.print(f"{len(outputs.topics)} topics over {len(outputs.doc_topics):,} paragraphs")
    for path in written:
        console.print(f"wrote {path}")


@app.command("trends")
def trends_cmd(
    out: Path = typer.Option(
        Path("outputs"),
        "--out",
        help="Folder of a processed corpus (written by `textmine run`); outputs go there too.",
    ),
    by: str = typer.Option(
        "year", "--by", callback=_by, help="Period of the trends: year or quarter."
    ),
    codebook_path: Path | None = typer.Option(
        None,
        "--codebook",
        help="Codebook YAML whose codes are counted (default: the packaged codebook).",
    ),
    validation_path: Path | None = typer.Option(
        None,
        "--validation",
        help="Hand-coded sample from `textmine sample` (the CSV filled in, or "
        "`import-qdpx --sample` output): add design-based corrected estimates with 95% intervals.",
    ),
) -> None:
    """Trends of the codes: stance shares and partnership types per 1,000 sentences.

    Stance shares come with Wilson 95% intervals; every table is broken down
    by period, doc_type, publisher and document. Writes stance_trends.csv,
    partnership_trends.csv, document_shares.csv and figures.
    """
    from textmine.cli.sample_command import load_validation_option, print_corrected
    from textmine.export import write_trend_tables
    from textmine.figures import write_figures
    from textmine.trends import compute_trends, undated_notes

    codebook = _load_codebook(codebook_path)
    validation = load_validation_option(validation_path, codebook) if validation_path else None
    sentences, documents = _load_corpus(out)
    with console.status("computing trends"):
        try:
            trends = compute_trends(
                sentences, documents, by=by, codebook=codebook, validation=validation
            )
        except ValueError as error:  # a validation sample that does not fit this corpus
            err_console.print(f"[red]error:[/red] {validation_path}: {error}")
            raise typer.Exit(2) from error
        written = write_trend_tables(trends, out)
        written += write_figures(trends, None, out / "figures", by=by, codebook=codebook)
    console.print(
        f"{len(trends['document_shares'])} documents, "
        f"{int(trends['document_shares']['n_sentences'].sum()):,} sentences"
    )
    for note in undated_notes(trends["stance_trends"]):
        console.print(f"note: {note}")
    print_corrected(trends, codebook)
    for path in written:
        console.print(f"wrote {path}")
