"""The typer application that every command module registers on, and helpers they share."""

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    name="textmine",
    help="Mine education-policy documents: ingest, code sentences, model topics and trends, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        from textmine import __version__

        typer.echo(f"textmine {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the textmine version and exit.",
    ),
) -> None:
    """Mine education-policy documents: ingest, code sentences, model topics and trends, export."""


def open_processed_corpus(folder: Path, option: str = "--out", read_only: bool = True):
    """The store of the corpus a run wrote to `folder`; exit 1 with the reason if there is none."""
    from textmine.store import open_store

    try:
        return open_store(folder, read_only=read_only)
    except FileNotFoundError as error:
        Console(stderr=True).print(
            f"[red]error:[/red] no processed corpus in {folder}: run `textmine run` first, "
            f"or pass {option} with the folder a run wrote"
        )
        raise typer.Exit(1) from error
