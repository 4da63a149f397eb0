"""Keyword in context over sentences (quanteda-style columns)."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from textmine.cli import app
from textmine.codebook import load_codebook
from textmine.kwic import KWIC_COLUMNS, kwic

SENTENCES = pd.DataFrame(
    {
        "sentence_id": ["d1-00000", "d1-00001", "d2-00000"],
        "doc_id": ["d1", "d1", "d2"],
        "path": ["corpus/a/report.pdf", "corpus/a/report.pdf", "corpus/b/paper.txt"],
        "page": [1, 2, 1],
        "text": [
            "Schools value collaboration with partners.",
            "Collaborative work between school partnerships grew, said the head.",
            "Competition drove schools apart.",
        ],
    }
)


def test_glob_term_finds_every_form_with_context():
    hits = kwic(SENTENCES, "collaborat*", window=2)
    assert list(hits.columns) == KWIC_COLUMNS
    assert hits.keyword.tolist() == ["collaboration", "Collaborative"]
    first = hits.iloc[0]
    assert (first.docname, first.doc_id, first.sentence_id, first.page) == (
        "report.pdf",
        "d1",
        "d1-00000",
        1,
    )
    assert (first.pre, first.post) == ("Schools value", "with partners")
    assert hits.iloc[1].pre == ""


def test_phrase_term_and_window():
    hits = kwic(SENTENCES, "school partnership*", window=1)
    assert hits.keyword.tolist() == ["school partnerships"]
    assert (hits.iloc[0].pre, hits.iloc[0].post) == ("between", "grew")
    assert (hits.iloc[0]["from"], hits.iloc[0]["to"]) == (4, 5)


def test_no_hit_gives_empty_frame_and_bad_terms_are_errors():
    assert kwic(SENTENCES, "federation").empty
    with pytest.raises(ValueError):
        kwic(SENTENCES, "   ")
    with pytest.raises(ValueError):
        kwic(SENTENCES, "school", window=-1)


def test_cli_without_processed_corpus_says_run_first(tmp_path):
    result = CliRunner().invoke(app, ["kwic", "collaborat*", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "textmine run" in " ".join(result.output.split())


def test_cli_over_a_processed_corpus_writes_csv(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text(
        "School partnerships matter to us.\n\nOur schools collaborate with partners in a "
        "local network. Collaboration takes time.\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(docs), "--out", str(out)]).exit_code == 0
    target = tmp_path / "hits.csv"
    result = runner.invoke(
        app, ["kwic", "collaborat*", "--window", "2", "--out", str(out), "--csv", str(target)]
    )
    assert result.exit_code == 0, result.output
    hits = pd.read_csv(target)
    codes = load_codebook().code_columns
    assert list(hits.columns) == KWIC_COLUMNS + codes  # each hit's sentence codes follow
    assert hits.collaboration.tolist() == [1, 1]
    assert hits.keyword.tolist() == ["collaborate", "Collaboration"]
    assert hits.docname.tolist() == ["note.txt", "note.txt"]
    assert hits.pre.tolist()[0] == "Our schools"
