"""The README stays true: every command is documented, CI runs the README's test command."""

import re

import typer.main

from tests.conftest import REPO
from textmine.cli import app

README = (REPO / "README.md").read_text(encoding="utf-8")


def _command_names() -> list[str]:
    group = typer.main.get_group(app)
    return sorted(group.commands)


def _fenced_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_every_command_is_documented_in_readme():
    missing = [name for name in _command_names() if f"textmine {name}" not in README]
    assert not missing, f"README does not mention: {missing}"


def test_every_command_has_help_text():
    group = typer.main.get_group(app)
    for name, command in group.commands.items():
        assert (command.help or "").strip(), f"`textmine {name}` has no help text"


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_commands = [line for line in _fenced_commands() if line.endswith("python -m pytest")]
    assert len(test_commands) == 1, test_commands
    assert test_commands[0] in ci.splitlines()


def test_readme_has_the_run_command():
    assert any(line.endswith("&& textmine run") for line in _fenced_commands())


def test_readme_sections_are_filled():
    for name in re.findall(r"<!-- section:(\w+) -->", README):
        body = README.split(f"<!-- section:{name} -->", 1)[1].split(f"<!-- /section:{name} -->", 1)[
            0
        ]
        assert body.strip(), f"README section {name!r} is empty"
