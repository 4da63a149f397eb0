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


def _by(value: str) -> str:
    if value not in ("year", "quarter"):
        raise typer.BadParameter("use 'year' or 'quarter'")
    return value


@app.command("topics")
def topics_cmd(
    out: Path = typer.Option(Path("outputs"), "--out", help="Folder of a processed corpus (written by `textmine run`); outputs go there too."),
    by: str = typer.Option("year", "--by", callback=_by, help="Period of topics over time: year or quarter."),
    n_topics: str = typer.Option("auto", "--n-topics", help="'auto' (the clustering decides) or a number of topics."),
    seed_topics_from_codebook: bool = typer.Option(
        False, "--seed-topics-from-codebook", help="Guide topics with the codebook's words (one seed list per code)."),
    refit: bool = typer.Option(
        False, "--refit", help="Fit a new model even if one is saved (default: assign new paragraphs to the saved topics)."),
    min_topic_size: int | None = typer.Option(
        None, "--min-topic-size", help="Smallest topic, in paragraphs (default: max(10, paragraphs / 500))."),
) -> None:
    """Model topics of the corpus's paragraphs; write topics.csv, doc_topics.csv,
    topics_over_time.csv and figures/topics_over_time.{png,html}."""
    from textmine.topics import TopicSettings, topics_stage

    try:
        settings = TopicSettings(by=by, n_topics=n_topics, min_topic_size=min_topic_size,
                                 seed_topics_from_codebook=seed_topics_from_codebook)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    sentences, documents = _load_corpus(out)
    with console.status(f"modelling topics of {sentences['doc_id'].nunique():,} documents"):
        outputs, written = topics_stage(sentences, documents, out, settings, refit=refit)
    for note in outputs.notes:
        console.print(f"note: {note}")
    console.print(f"{len(outputs.topics)} topics over {len(outputs.doc_topics):,} paragraphs")
    for path in written:
        console.print(f"wrote {path}")


@app.command("trends")
def trends_cmd(
    out: Path = typer.Option(Path("outputs"), "--out", help="Folder of a processed corpus (written by `textmine run`); outputs go there too."),
    by: str = typer.Option("year", "--by", callback=_by, help="Period of the trends: year or quarter."),
) -> None:
    """Competition/collaboration shares (Wilson 95% intervals) and partnership types per 1,000
    sentences, per period, doc_type, publisher and document; write stance_trends.csv,
    partnership_trends.csv, document_shares.csv and figures."""
    from textmine.trends import trends_stage

    sentences, documents = _load_corpus(out)
    with console.status("computing trends"):
        trends, written = trends_stage(sentences, documents, out, by=by)
    console.print(f"{len(trends['document_shares'])} documents, "
                  f"{int(trends['document_shares']['n_sentences'].sum()):,} sentences")
    for path in written:
        console.print(f"wrote {path}")
