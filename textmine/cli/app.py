"""The typer application that every command module registers on."""

import typer

app = typer.Typer(
    name="textmine",
    help="Mine education-policy documents: ingest, code sentences, model topics and trends, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Mine education-policy documents: ingest, code sentences, model topics and trends, export."""
