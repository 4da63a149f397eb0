"""Command-line interface: a thin layer over the library, one module per stage."""

from textmine.cli.app import app

# Importing a module registers its commands on `app`.
from textmine.cli import (  # noqa: E402,F401  isort: skip
    version_command,
)


def main() -> None:
    app()
