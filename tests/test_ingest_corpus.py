"""Reading a folder through the runner (ingest stage): every file read or failed with
its reason, the folder manifest, duplicates, the output contract, `textmine ingest`."""

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from textmine.cli import app
from textmine.columns import DOCUMENT_COLUMNS, FAILURE_COLUMNS, SENTENCE_COLUMNS
from textmine.ingest import discover_files
from textmine.run import RunSettings, run_pipeline
from textmine.store import open_store

from .conftest import TEST_DATA

DATA = TEST_DATA / "ingest"
EXPECTED_FAILURES = {
    "empty.pdf": "empty_file",
    "password-example.pdf": "encrypted",
    "invalid.pdf": "malformed",
    "html-error-page-saved-as.pdf": "no_text",
    "linn.pdf": "needs_ocr",
}


def ingest(paths, out, **settings):
    return run_pipeline(RunSettings(paths=list(paths), out_dir=out, stages=("ingest",), **settings))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest") / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "TEXTMINE_OCR", "0"
        )  # linn.pdf fails as without tesseract (OCR: test_ingest_text.py)
        return ingest([DATA], out), out


def test_discover_walks_folders_and_leaves_out_manifest_and_data(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("A text.", encoding="utf-8")
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "manifest.csv").write_text("path\n", encoding="utf-8")
    (tmp_path / "table.csv").write_text("x\n", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("x", encoding="utf-8")
    found = discover_files([tmp_path, tmp_path / "sub" / "a.txt", tmp_path / "missing.txt"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "b.pdf",
        "sub/a.txt",
        "missing.txt",
    ]


def test_every_fixture_is_read_or_failed_with_its_reason(ingested):
    report, out = ingested
    failures = {f["path"].rsplit("/", 1)[-1]: f["reason"] for f in report.failures}
    assert failures == EXPECTED_FAILURES
    documents = pd.read_csv(out / "documents.csv", keep_default_na=False)
    assert len(documents) + len(failures) == len(discover_files([DATA]))
    texts = open_store(out).document_texts()
    assert all(texts.values()) and len(texts) == len(documents)


def test_folder_manifest_is_applied(ingested):
    _, out = ingested
    documents = pd.read_csv(out / "documents.csv", keep_default_na=False, dtype=str)
    by_name = documents.set_index(documents["path"].str.rsplit("/", n=1).str[-1])
    tes = by_name.loc["2018_tes_warm-words-about-school-partnerships.txt"]
    assert (tes.publisher, tes.doc_type, tes.published, tes.date_source) == (
        "Tes",
        "news_article",
        "2018",
        "manifest",
    )
    assert by_name.loc["news-article-with-chrome.html", "date_source"] == "text"


def test_duplicates_are_read_once_and_unchanged_files_skipped(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.txt", "copy-of-a.txt"):
        shutil.copy(DATA / "cp1252-commons-summary.txt", corpus / name)
    shutil.copy(DATA / "utf8-bom-commons-summary.txt", corpus / "c.txt")
    first = ingest([corpus], tmp_path / "out")
    assert first.counts.documents_read == 2
    assert [d["path"].rsplit("/", 1)[-1] for d in first.duplicates] == ["copy-of-a.txt"]
    again = ingest([corpus], tmp_path / "out")
    assert again.counts.documents_read == 0 and again.counts.documents_unchanged == 2
    assert again.counts.duplicates == 1


def test_outputs_have_the_contract_columns(ingested):
    report, out = ingested
    documents = pd.read_csv(out / "documents.csv", keep_default_na=False)
    written = pd.read_csv(out / "sentences.csv", keep_default_na=False)
    failures = pd.read_csv(out / "failures.csv", keep_default_na=False)
    assert list(documents.columns) == DOCUMENT_COLUMNS
    assert list(written.columns) == SENTENCE_COLUMNS
    assert list(failures.columns) == FAILURE_COLUMNS
    assert len(failures) == len(EXPECTED_FAILURES)
    counts = written.groupby("doc_id").size()
    for row in documents.itertuples():
        assert row.n_sentences == counts.get(row.doc_id, 0) > 0
    texts = open_store(out).document_texts()
    for row in written.sample(200, random_state=1).itertuples():
        assert texts[row.doc_id][row.start_char : row.end_char] == row.text
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["counts"]["sentences_total"] == len(written)
    assert run["counts"]["failures_total"] == len(EXPECTED_FAILURES)
    assert run["counts"]["documents_read"] == report.counts.documents_read == len(documents)
    assert not list(out.glob("*.tmp"))


def test_ingest_command(tmp_path):
    out = tmp_path / "out"
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("password-example.pdf", "cp1252-commons-summary.txt", "empty.pdf"):
        shutil.copy(DATA / name, folder / name)
    runner = CliRunner()
    run = runner.invoke(
        app, ["ingest", str(folder), "--out", str(out), "--password", "test", "--quiet"]
    )
    assert run.exit_code == 0, run.output
    assert "documents read" in run.output and "2 new" in run.output
    documents = pd.read_csv(out / "documents.csv", keep_default_na=False)
    assert sorted(documents["path"].str.rsplit("/", n=1).str[-1]) == [
        "cp1252-commons-summary.txt",
        "password-example.pdf",
    ]
    failures = pd.read_csv(out / "failures.csv", keep_default_na=False)
    assert list(failures["reason"]) == ["empty_file"]
    run_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run_json["settings"]["password"] == "***"  # given, never written
    assert run_json["settings"]["stages"] == ["ingest"]


def test_ingest_command_help_and_bad_manifest(tmp_path):
    runner = CliRunner()
    assert "--manifest" in runner.invoke(app, ["ingest", "--help"]).output
    bad = tmp_path / "manifest.csv"
    bad.write_text("path,doc_type\na.txt,novel\n", encoding="utf-8")
    run = runner.invoke(
        app,
        ["ingest", str(DATA / "empty.pdf"), "--out", str(tmp_path / "o"), "--manifest", str(bad)],
    )
    assert run.exit_code == 2 and "novel" in run.output
    assert not (tmp_path / "o").exists()  # configuration is checked before any work
