"""The command line as researchers met it: strict sentence CSVs (shifted rows, Windows
encodings), --version, tables that fit 80 columns, and a start that does not import what
a command does not need."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from textmine.cli import app
from textmine.codebook import load_codebook
from textmine.coded_sets import SentenceCsvError, read_sentence_csv

try:  # the seed corpus and an in-memory store are shared with the export tests
    from test_export import FrameStore, seed_corpus
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.test_export import FrameStore, seed_corpus

CODE_COLUMNS = load_codebook().code_columns


def _coded_rows(sentences: list[str]) -> str:
    header = ",".join(["id", "sentence", *CODE_COLUMNS])
    rows = [
        ",".join([f"s{i}", text, *["0"] * len(CODE_COLUMNS)])
        for i, text in enumerate(sentences, start=1)
    ]
    return "\n".join([header, *rows]) + "\n"


# --------------------------------------------------------------------------- the reader


def test_reader_matches_pandas_on_a_well_formed_file(tmp_path):
    path = tmp_path / "ok.csv"
    frame = pd.DataFrame(
        {
            "id": ["a1", "a2", "007"],
            "sentence": ['Schools compete, "fiercely", for pupils.', "Line one\nline two", ""],
        }
    )
    frame.to_csv(path, index=False)
    read = read_sentence_csv(path)
    pd.testing.assert_frame_equal(read, pd.read_csv(path, dtype=str, keep_default_na=False))
    assert read["id"].tolist() == ["a1", "a2", "007"] and read.attrs["encoding"] == "utf-8"


def test_an_unquoted_comma_fails_naming_the_file_and_line(tmp_path):
    path = tmp_path / "shifted.csv"
    path.write_text(
        _coded_rows(["Schools compete, and lose.", "Schools work together."]), encoding="utf-8"
    )
    with pytest.raises(
        SentenceCsvError,
        match=r"shifted\.csv, line 2: 13 fields where the "
        r"header has 12.*double quotes",
    ):
        read_sentence_csv(path, "coded set")
    # pandas reads the same file without complaint: the ids become its index, and every
    # column after them holds the next column's values
    shifted = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert shifted["id"].tolist() == ["Schools compete", "Schools work together."]


def test_an_excel_windows_csv_is_read_and_other_bytes_explained(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "id,sentence\r\n1,Caf\u00e9s \u201ccompete\u201d \u2013 or not\r\n".encode("cp1252")
    )
    read = read_sentence_csv(path)
    assert read.loc[0, "sentence"] == "Caf\u00e9s \u201ccompete\u201d \u2013 or not"
    assert read.attrs["encoding"] == "cp1252"
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"id,sentence\n1,fine\n2,bad \x81\x8d byte\n")
    with pytest.raises(SentenceCsvError, match=r"broken\.csv, line 3: .*CSV UTF-8"):
        read_sentence_csv(broken)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"id,sentence,id\n1,a,2\n", "appear twice"),
        (b'id,sentence\n1,"not closed\n', "quote"),
        (b"id,sentence,competition\n1,too few\n", "2 fields where the header has 3"),
    ],
)
def test_other_broken_files_are_named(tmp_path, content, problem):
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    with pytest.raises(SentenceCsvError, match=problem):
        read_sentence_csv(path)


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    "command",
    [
        ["code", "{csv}", "--out", "{out}", "--coder", "rules"],
        ["evaluate", "{csv}", "--pred", "{csv}", "--out", "{out}"],
        ["train", "{csv}", "--out", "{out}", "--folds", "0"],
        ["trends", "--validation", "{csv}", "--out", "{out}"],
    ],
    ids=["code", "evaluate", "train", "trends-validation"],
)
def test_commands_refuse_a_shifted_row(tmp_path, command):
    path = tmp_path / "coded.csv"
    path.write_text(
        _coded_rows(["Schools compete, and lose.", "Schools work together."]), encoding="utf-8"
    )
    args = [a.format(csv=path, out=tmp_path / "out") for a in command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"{path}, line 2: 13 fields" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_version_option():
    from textmine import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"textmine {__version__}"


def test_import_qdpx_evaluate_table_fits_80_columns(tmp_path, monkeypatch):
    import textmine.store
    from textmine.qda import write_qdpx

    corpus = seed_corpus()
    documents, sentences, texts = corpus
    monkeypatch.setattr(textmine.store, "open_store", lambda *_a, **_k: FrameStore(corpus))
    project = write_qdpx(tmp_path / "review.qdpx", documents, sentences, texts, load_codebook())
    human = tmp_path / "human.csv"
    result = CliRunner().invoke(
        app,
        [
            "import-qdpx",
            str(project),
            "--out",
            str(human),
            "--corpus-dir",
            str(tmp_path),
            "--evaluate",
        ],
        terminal_width=80,
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line[:1] in "│┃┏┡└┌"]
    assert len(lines) > 15 and max(len(line) for line in lines) <= 80
    for code in CODE_COLUMNS:  # every code's row whole: its name and six cells, none cut
        row = next(line for line in lines if f" {code} " in line)
        cells = [c.strip() for c in row.split("│")[1:-1]]
        assert cells[0] == code and len(cells) == 6, row
    assert "…" not in result.output
    agreement = pd.read_csv(tmp_path / "human_agreement.csv")
    assert {"precision", "recall", "f1", "kappa", "alpha"} <= set(agreement.columns)


def test_the_cli_starts_without_pandas_and_spacy():
    code = (
        "import sys; from textmine.cli import main; sys.argv = ['textmine', '--version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pandas', 'spacy', 'sklearn', 'prefect') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_sqlalchemy_is_pinned_exactly_with_the_extra_prefect_asks_for():
    """A range let pip download and reject every sqlalchemy[asyncio] 2.1.x first."""
    import re
    from importlib.metadata import version

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    (pin,) = re.findall(
        r'^\s*"(sqlalchemy[^"]*)"',
        pyproject.read_text(encoding="utf-8"),
        flags=re.MULTILINE | re.IGNORECASE,
    )
    match = re.fullmatch(r"sqlalchemy\[asyncio\]==(2\.0\.\d+)", pin)
    assert match, pin
    assert version("sqlalchemy") == match.group(1)
