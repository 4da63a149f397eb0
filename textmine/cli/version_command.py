"""`textmine version`."""

import typer

from textmine import __version__
from textmine.cli.app import app


@app.command("version")
def version_cmd() -> None:
    """Print the textmine version."""
    typer.echo(__version__)
