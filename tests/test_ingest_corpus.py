"""ingest_paths over a folder, the four output files, and `textmine ingest`."""

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from textmine.cli import app
from textmine.columns import DOCUMENT_COLUMNS, FAILURE_COLUMNS, SENTENCE_COLUMNS
from textmine.ingest import discover_files, ingest_paths, write_ingest_outputs
from textmine.segment import build_nlp, segment_documents

from .conftest import TEST_DATA

DATA = TEST_DATA / "ingest"
EXPECTED_FAILURES = {
    "empty.pdf": "empty_file",
    "password-example.pdf": "encrypted",
    "invalid.pdf": "malformed",
    "html-error-page-saved-as.pdf": "no_text",
    "linn.pdf": "needs_ocr",
}


@pytest.fixture(scope="module")
def result():
    return ingest_paths([DATA])


def test_discover_walks_folders_and_leaves_out_manifest_and_data(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("A text.", encoding="utf-8")
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "manifest.csv").write_text("path\n", encoding="utf-8")
    (tmp_path / "table.csv").write_text("x\n", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("x", encoding="utf-8")
    found = discover_files([tmp_path, tmp_path / "sub" / "a.txt", tmp_path / "missing.txt"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["b.pdf", "sub/a.txt", "missing.txt"]


def test_every_fixture_is_read_or_failed_with_its_reason(result):
    failures = {f.path.rsplit("/", 1)[-1]: f.reason for f in result.failures}
    assert failures == EXPECTED_FAILURES
    read = {d.path.rsplit("/", 1)[-1] for d in result.documents}
    assert len(read) + len(failures) == len(discover_files([DATA]))
    assert all(d.text and d.paragraphs for d in result.documents)


def test_folder_manifest_is_applied(result):
    by_name = {d.path.rsplit("/", 1)[-1]: d.meta for d in result.documents}
    tes = by_name["2018_tes_warm-words-about-school-partnerships.txt"]
    assert (tes.publisher, tes.doc_type, tes.published, tes.date_source) == ("Tes", "news_article", "2018", "manifest")
    assert by_name["news-article-with-chrome.html"].date_source == "text"


def test_duplicates_are_read_once_and_unchanged_files_skipped(tmp_path):
    for name in ("a.txt", "copy-of-a.txt"):
        shutil.copy(DATA / "cp1252-commons-summary.txt", tmp_path / name)
    shutil.copy(DATA / "utf8-bom-commons-summary.txt", tmp_path / "c.txt")
    first = ingest_paths([tmp_path])
    assert [d.path.rsplit("/", 1)[-1] for d in first.documents] == ["a.txt", "c.txt"]
    assert [(d.path.rsplit("/", 1)[-1], d.doc_id) for d in first.duplicates] == [
        ("copy-of-a.txt", first.documents[0].doc_id)
    ]
    again = ingest_paths([tmp_path], skip_doc_ids={d.doc_id for d in first.documents})
    assert again.documents == [] and len(again.unchanged) == 2 and len(again.duplicates) == 1


def test_outputs_have_the_contract_columns(result, tmp_path):
    sentences = segment_documents(result.documents, build_nlp())
    report = write_ingest_outputs(result, sentences, tmp_path, settings={"paths": [str(DATA)]})
    documents = pd.read_csv(tmp_path / "documents.csv", keep_default_na=False)
    written = pd.read_csv(tmp_path / "sentences.csv", keep_default_na=False)
    failures = pd.read_csv(tmp_path / "failures.csv", keep_default_na=False)
    assert list(documents.columns) == DOCUMENT_COLUMNS
    assert list(written.columns) == SENTENCE_COLUMNS
    assert list(failures.columns) == FAILURE_COLUMNS
    assert len(documents) == len(result.documents) and len(failures) == len(EXPECTED_FAILURES)
    counts = written.groupby("doc_id").size()
    for row in documents.itertuples():
        assert row.n_sentences == counts.get(row.doc_id, 0) > 0
    texts = {d.doc_id: d.text for d in result.documents}
    for row in written.sample(200, random_state=1).itertuples():
        assert texts[row.doc_id][row.start_char : row.end_char] == row.text
    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert run == json.loads(json.dumps(report))
    assert run["counts"]["sentences"] == len(written) and run["counts"]["failures"] == len(EXPECTED_FAILURES)
    assert {"textmine_version", "settings", "counts", "timings_seconds"} <= set(run)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_ingest_command(tmp_path):
    out = tmp_path / "out"
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("password-example.pdf", "cp1252-commons-summary.txt", "empty.pdf"):
        shutil.copy(DATA / name, folder / name)
    runner = CliRunner()
    run = runner.invoke(app, ["ingest", str(folder), "--out", str(out), "--password", "test", "--quiet"])
    assert run.exit_code == 0, run.output
    assert "documents read" in run.output and "sentences" in run.output
    documents = pd.read_csv(out / "documents.csv", keep_default_na=False)
    assert sorted(documents["path"].str.rsplit("/", n=1).str[-1]) == ["cp1252-commons-summary.txt", "password-example.pdf"]
    failures = pd.read_csv(out / "failures.csv", keep_default_na=False)
    assert list(failures["reason"]) == ["empty_file"]
    run_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run_json["settings"]["password_given"] is True


def test_ingest_command_help_and_bad_manifest(tmp_path):
    runner = CliRunner()
    assert "--manifest" in runner.invoke(app, ["ingest", "--help"]).output
    bad = tmp_path / "manifest.csv"
    bad.write_text("path,doc_type\na.txt,novel\n", encoding="utf-8")
    run = runner.invoke(app, ["ingest", str(DATA / "empty.pdf"), "--out", str(tmp_path / "o"), "--manifest", str(bad)])
    assert run.exit_code == 2 and "novel" in run.output
