"""The package's shape: no import cycles, and the fixed code lists stay inside the codebook.

The import graph is read from the source with `ast` (nothing is imported):
an edge runs from a module to every textmine module whose namespace one of its
import statements reads (`from textmine.ingest import clean` reads
`textmine.ingest` and runs `textmine.ingest.clean`).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "textmine"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _absolute(module: str | None, level: int, current: str, is_package: bool) -> str:
    """The absolute name of a (possibly relative) `from ... import` source."""
    if not level:
        return module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(
    source: str, name: str, *, is_package: bool = False, inside_functions: bool
) -> set[str]:
    """The textmine modules that module `name` (source text) imports.

    At module level only, or also inside functions when `inside_functions`.
    """
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if _is_type_checking(node):
                continue  # never runs
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name in MODULES)
            elif isinstance(node, ast.ImportFrom):
                origin = _absolute(node.module, node.level, name, is_package)
                if origin in MODULES:
                    found.add(origin)
                found.update(
                    f"{origin}.{alias.name}"
                    for alias in node.names
                    if f"{origin}.{alias.name}" in MODULES
                )
            is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if is_function and not inside_functions:
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    visit(children)

    visit(ast.parse(source).body)
    found.discard(name)
    return found


def import_graph(*, inside_functions: bool) -> dict[str, set[str]]:
    """Module -> the textmine modules it imports, for every module of the package."""
    return {
        name: imported_modules(
            path.read_text(encoding="utf-8"),
            name,
            is_package=path.name == "__init__.py",
            inside_functions=inside_functions,
        )
        for name, path in MODULES.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle of `graph` once, as a path that returns to its first module."""
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def walk(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycle = [*path[path.index(target) :], target]
                if frozenset(cycle) not in seen_cycles:
                    seen_cycles.add(frozenset(cycle))
                    cycles.append(cycle)
            elif target not in state:
                walk(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    return cycles


def test_cycle_finder_finds_a_cycle_and_passes_a_tree():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_relative_and_package_imports_are_edges():
    source = (
        "from textmine.ingest import clean\n"
        "from . import detect\n"
        "import textmine.store\n"
        "if TYPE_CHECKING:\n"
        "    from textmine.run import RunSettings\n"
        "def later():\n"
        "    from textmine.export import write_exports\n"
    )
    module_level = imported_modules(source, "textmine.ingest.reader", inside_functions=False)
    assert module_level == {
        "textmine.ingest",
        "textmine.ingest.clean",
        "textmine.ingest.detect",
        "textmine.store",
    }
    everywhere = imported_modules(source, "textmine.ingest.reader", inside_functions=True)
    assert everywhere == module_level | {"textmine.export"}


def test_module_level_imports_have_no_cycle():
    cycles = import_cycles(import_graph(inside_functions=False))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_inside_functions_add_no_cycle_either():
    cycles = import_cycles(import_graph(inside_functions=True))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_only_the_codebook_names_the_standard_codes():
    """columns.CODE_COLUMNS (and the stance/partnership lists) check codebooks; nothing else uses them."""
    fixed_lists = {"CODE_COLUMNS", "STANCE_CODES", "PARTNERSHIP_CODES"}
    users = []
    for name, path in MODULES.items():
        if name in ("textmine.columns", "textmine.codebook"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "textmine.columns":
                users += [f"{name}: {a.name}" for a in node.names if a.name in fixed_lists]
    assert not users, "take the codes from the codebook instead: " + ", ".join(users)
