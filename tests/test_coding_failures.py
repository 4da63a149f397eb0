"""A document the coder fails on is bad input: reported with its file and reason, the
rest of the run goes on, and the next run codes it. A coder that fails on every
document stops the run.

The fault is a coder that raises on one document's sentences, handed to the run
in this process (`--workers 1`) in place of the coder loader, or raised inside
the worker processes of a real process pool.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import codebook_file_with_code
from textmine.cli import app
from textmine.run import RunSettings, process_map, run_pipeline, serial_map
from textmine.run import steps as run_steps
from textmine.run.runner import CODING_FAILURE_REASON, CoderBrokenError
from textmine.store import open_store

MARKER = "Quillbrook"  # a made-up word only the bad document holds
DOCUMENTS = {
    "a-partnership.txt": (
        "The two schools formed a partnership to share teachers and training. "
        "Leaders worked together on the curriculum and met every term to plan.\n\n"
        "Pupils from both schools visited each other's classes during the year."
    ),
    "b-bad.txt": (
        f"The {MARKER} trust runs six academies in the county. "
        "Its schools compete for pupils with the local authority schools nearby.\n\n"
        "Parents choose between them after reading the league tables."
    ),
    "c-federation.txt": (
        "The federation shares one executive headteacher across three primary schools. "
        "Governors of the federation meet together each half term.\n\n"
        "Staff move between the schools to teach music and languages."
    ),
}
STAGES = ("ingest", "code", "trends", "export")


class FaultyCoder:
    """The real coder of a spec, raising ValueError on any batch that holds `marker`."""

    def __init__(self, coder, marker: str):
        self.coder, self.marker = coder, marker
        self.version, self.codebook = coder.version, coder.codebook

    def code_sentences(self, sentences: pd.DataFrame) -> pd.DataFrame:
        if sentences["text"].str.contains(self.marker).any():
            raise ValueError(f"cannot code a sentence holding {self.marker!r}")
        return self.coder.code_sentences(sentences)


def use_faulty_coder(monkeypatch, marker: str) -> None:
    """Every coder this process loads raises on sentences holding `marker`."""
    real = run_steps.load_sentence_coder
    monkeypatch.setattr(
        run_steps, "load_sentence_coder", lambda spec: FaultyCoder(real(spec), marker)
    )


def make_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def settings(corpus: Path, out: Path, **kwargs) -> RunSettings:
    kwargs.setdefault("stages", STAGES)
    kwargs.setdefault("workers", 1)
    return RunSettings(paths=[corpus], out_dir=out, coder="rules", **kwargs)


def coded_files(out: Path) -> set[str]:
    return {Path(p).name for p in pd.read_csv(out / "coded_sentences.csv")["path"]}


def doc_id_of(out: Path, name: str) -> str:
    documents = pd.read_csv(out / "documents.csv")
    return documents.loc[documents["path"].map(lambda p: Path(p).name) == name, "doc_id"].item()


def test_a_document_the_coder_fails_on_is_reported_the_rest_coded(tmp_path, monkeypatch):
    corpus, out = make_corpus(tmp_path / "corpus"), tmp_path / "out"
    run_pipeline(settings(corpus, out, stages=("ingest",)))  # one batch of 3 to code below
    use_faulty_coder(monkeypatch, MARKER)

    report = run_pipeline(settings(corpus, out))

    assert report.status == "finished"
    assert coded_files(out) == {"a-partnership.txt", "c-federation.txt"}
    (failure,) = report.failures
    assert Path(failure["path"]).name == "b-bad.txt"
    assert failure["reason"] == CODING_FAILURE_REASON and failure["stage"] == "coding"
    assert failure["doc_id"] == doc_id_of(out, "b-bad.txt")
    assert f"ValueError: cannot code a sentence holding '{MARKER}'" in failure["message"]
    assert report.counts.coding_failed == 1 and report.counts.failed == 0
    run_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run_json["failures"] == [failure] and run_json["status"] == "finished"
    assert run_json["counts"]["coding_failed"] == 1
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Documents the coder failed on" in html and "b-bad.txt" in html
    listed = pd.read_csv(out / "failures.csv")  # no file failed to be read: b only
    assert listed[["path", "reason", "message"]].values.tolist() == [
        [failure["path"], CODING_FAILURE_REASON, failure["message"]]
    ]
    sentences = pd.read_csv(out / "sentences.csv")
    b_sentences = sentences[sentences["path"].str.endswith("b-bad.txt")]
    assert len(b_sentences) > 0  # read and stored, only not coded
    trends = pd.read_csv(out / "stance_trends.csv")
    coded = pd.read_csv(out / "coded_sentences.csv")
    overall = trends[(trends["dimension"] == "all") & (trends["period"] == "all")]
    assert overall["n_sentences"].tolist() == [len(coded)]  # b is in no trend

    # the fault still there and nothing else new: reported again, no output rewritten
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("*.csv")}
    again = run_pipeline(settings(corpus, out))
    assert [f["path"] for f in again.failures] == [failure["path"]]
    assert again.counts.sentences_coded == 0 and not again.outputs_regenerated
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.csv")} == written
    rerun_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert rerun_json["failures"] == [failure] and rerun_json["run_id"] == again.run_id

    # the fault fixed: the next run codes the document and the outputs then hold it
    monkeypatch.undo()
    fixed = run_pipeline(settings(corpus, out))
    assert fixed.failures == [] and fixed.counts.sentences_coded == len(b_sentences)
    assert coded_files(out) == set(DOCUMENTS)
    assert pd.read_csv(out / "failures.csv").empty
    assert "Documents the coder failed on" not in (out / "report.html").read_text(encoding="utf-8")
    idle = run_pipeline(settings(corpus, out))
    assert idle.counts.sentences_coded == 0 and not idle.outputs_regenerated


def test_a_first_run_reports_the_document_and_a_changed_codebook_recodes_the_rest(
    tmp_path, monkeypatch
):
    corpus, out = make_corpus(tmp_path / "corpus"), tmp_path / "out"
    use_faulty_coder(monkeypatch, MARKER)
    first = run_pipeline(settings(corpus, out))
    assert [Path(f["path"]).name for f in first.failures] == ["b-bad.txt"]
    assert coded_files(out) == {"a-partnership.txt", "c-federation.txt"}
    store = open_store(out)
    coding = store.coding
    assert coding is not None and store.count_pending(coding) > 0  # b's sentences wait
    store.close()

    codebook = codebook_file_with_code(
        tmp_path / "codebook.yml",
        "federating",
        {
            "name": "Federating",
            "kind": "partnership",
            "colour": "#9edae5",
            "description": "One leader across several schools.",
            "patterns": ["executive headteacher"],
        },
    )
    changed = run_pipeline(settings(corpus, out, codebook=codebook))
    assert [Path(f["path"]).name for f in changed.failures] == ["b-bad.txt"]
    coded = pd.read_csv(out / "coded_sentences.csv")
    assert changed.counts.sentences_coded == len(coded) > 0  # a and c coded anew
    assert set(coded["codebook_version"]) == {changed.codebook_version} != {coding.codebook_version}
    assert coded["federating"].sum() > 0  # the added code reached the re-coded documents


def test_a_coder_that_fails_on_every_document_stops_the_run(tmp_path, monkeypatch):
    corpus, out = make_corpus(tmp_path / "corpus"), tmp_path / "out"
    use_faulty_coder(monkeypatch, "")  # every sentence holds the empty string

    with pytest.raises(CoderBrokenError, match=r"failed on every document of the run \(3\)"):
        run_pipeline(settings(corpus, out))
    store = open_store(out)
    assert store.runs()["status"].tolist() == ["failed"]
    assert store.coding is None and store.counts()["documents"] == 3  # read, nothing coded
    store.close()
    assert not (out / "coded_sentences.csv").exists()

    result = CliRunner().invoke(
        app, ["run", str(corpus), "--out", str(out), "--coder", "rules", "--workers", "1"]
    )
    assert result.exit_code == 1
    assert "error: the coder failed on every document of the run (3)" in result.output
    assert "a-partnership.txt: ValueError" in " ".join(result.output.split())


def raise_on_marker(batch, step):
    """In a worker process: fail a coding batch that holds MARKER, else run the step."""
    if batch["text"].str.contains(MARKER).any():
        raise ValueError(f"worker cannot code {MARKER}")
    return step(batch)


def pool_failing_on_marker(step, batches, *, name):
    """`process_map(2)`, its coding batches failing in the workers when they hold MARKER."""
    if name != "code":
        return serial_map(step, batches, name=name)
    faulty = functools.partial(raise_on_marker, step=step)
    return process_map(2)(faulty, batches, name=name)


def test_a_batch_failing_in_a_worker_process_is_reported(tmp_path):
    corpus, out = make_corpus(tmp_path / "corpus"), tmp_path / "out"
    run_pipeline(settings(corpus, out, stages=("ingest",)))
    report = run_pipeline(
        settings(corpus, out, workers=2, code_batch_documents=1),  # 3 batches: a real pool
        map_batches=pool_failing_on_marker,
    )
    (failure,) = report.failures
    assert Path(failure["path"]).name == "b-bad.txt" and failure["stage"] == "coding"
    assert f"ValueError: worker cannot code {MARKER}" in failure["message"]
    assert coded_files(out) == {"a-partnership.txt", "c-federation.txt"}
