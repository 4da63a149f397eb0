"""`python -m textmine.cli`: the command line, as the `textmine` script runs it."""

from textmine.cli import main

main()
