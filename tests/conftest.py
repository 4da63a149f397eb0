"""Shared fixtures: paths to bundled test data and to ../shared when present.

Tests marked `slow` run in CI (the CI environment variable is set there) or with
`--runslow`; a plain local `python -m pytest` skips them.
"""

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
TEST_DATA = REPO / "tests" / "data"
CORPUS = REPO / "corpus"
SHARED = REPO.parent / "shared"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def run_slow_tests(config) -> bool:
    """Slow tests run in CI (CI=true) and when asked with --runslow."""
    return config.getoption("--runslow") or os.environ.get("CI", "").lower() in ("1", "true")


def pytest_collection_modifyitems(config, items):
    skip_shared = pytest.mark.skip(reason="../shared is not beside this checkout")
    skip_slow = pytest.mark.skip(reason="slow: runs in CI, or locally with --runslow")
    slow = run_slow_tests(config)
    for item in items:
        if "shared" in item.keywords and not SHARED.is_dir():
            item.add_marker(skip_shared)
        if "slow" in item.keywords and not slow:
            item.add_marker(skip_slow)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout")
    return SHARED


def codebook_file_with_code(path: Path, key: str, entry: dict) -> Path:
    """Write the packaged codebook with the code `key` (a codebook entry) added; return `path`."""
    from textmine.codebook import default_codebook_path

    data = yaml.safe_load(default_codebook_path().read_text(encoding="utf-8"))
    data["codes"][key] = entry
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
