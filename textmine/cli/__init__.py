"""Command-line interface: a thin layer over the library, one module per stage."""

from textmine.cli.app import app

# Importing a module registers its commands on `app`.
from textmine.cli import (  # noqa: F401  isort: skip
    version_command,
    ingest_command,
    export_commands,
    pipeline_commands,
    coding_commands,
    train_command,
    topic_commands,
    report_command,
    sample_command,
)


def main() -> None:
    """Run the `textmine` command line (the console-script entry point)."""
    app()
