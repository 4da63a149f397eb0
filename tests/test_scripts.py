"""scripts/sample_ofsted_sentences.py: the draw behind tests/data/ofsted_gold.csv."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SHARED, TEST_DATA
from textmine.codebook import load_codebook

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "sample_ofsted_sentences.py"


def draw(out: Path, folder: Path = REPO / "corpus" / "ofsted") -> pd.DataFrame:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def test_the_sample_of_ofsted_sentences_is_fixed_stratified_and_uncoded(tmp_path):
    first = draw(tmp_path / "first.csv")
    draw(tmp_path / "again.csv")  # the same draw: a fixed seed
    assert (tmp_path / "first.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()
    codes = load_codebook().code_columns
    assert list(first.columns) == ["id", "sentence", *codes, "source", "page", "stratum"]
    assert (first[codes] == "").all().all()  # left for the coder
    assert first["stratum"].value_counts().to_dict() == {"random": 100, "vocabulary": 100}
    assert first["sentence"].is_unique and first["id"].is_unique
    assert (first["sentence"].str.split().str.len() >= 5).all()
    vocabulary = re.compile(
        r"partner|collaborat|co-?operat|compet|network|trust|federat|teaching school|"
        r"leaders? of education|diocese|diocesan|executive head|cluster|market|league table|"
        r"multi-agency|agencies|together|other schools|alliance|consorti",
        re.IGNORECASE,
    )
    assert first.loc[first["stratum"] == "vocabulary", "sentence"].str.contains(vocabulary).all()
    assert first["source"].str.startswith("ofsted/").all()


@pytest.mark.shared
def test_the_draw_from_the_shared_reports_is_the_ofsted_set_in_the_repository(tmp_path):
    """The 200 sentences of tests/data/ofsted_gold.csv, drawn again from ../shared's reports."""
    drawn = draw(tmp_path / "sample.csv", SHARED / "corpus" / "ofsted")
    coded = pd.read_csv(TEST_DATA / "ofsted_gold.csv", dtype=str, keep_default_na=False)
    columns = ["id", "sentence", "source", "page", "stratum"]
    pd.testing.assert_frame_equal(drawn[columns], coded[columns])
