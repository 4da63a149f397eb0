"""`textmine run` / run_pipeline end to end on real files: incremental behaviour,
changed files and codebooks, crash recovery, killed runs, outputs that follow the
store, the run lock and the CLI.

The runner is observed through the batch mapper it is handed (the same seam the
Prefect flow and the process pool use), never by patching its internals.
"""

from __future__ import annotations

import csv
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from textmine.codebook import default_codebook_path, load_codebook
from textmine.columns import CODED_SENTENCE_COLUMNS, DOCUMENT_COLUMNS
from textmine.lock import RunLock, StoreLockedError
from textmine.run import STAGES as ALL_STAGES
from textmine.run import BatchResult, RunSettings, run_pipeline
from textmine.store import CodingVersion, open_store

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
SMALL_CORPUS = [
    "seeds/2014-03-20_ioe-blog_survival-of-the-fittest-or-team-effort.txt",
    "seeds/2017_teachingtimes_school-partnerships-in-england.txt",
    "ofsted/schools/ofsted_103980_rounds-green-primary_2016-11.pdf",
]
NEW_DOCUMENT = "seeds/2013_commons-education-committee_school-partnerships-summary.txt"
# Topics and figures have their own tests; here they would only add minutes.
STAGES = ("ingest", "code", "trends", "export")


def make_corpus(folder: Path, files=SMALL_CORPUS) -> Path:
    with open(CORPUS / "manifest.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    fields = list(rows[0])
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CORPUS / name, folder / name)
    with open(folder / "manifest.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(r for r in rows if r["path"] in files or r["path"] == NEW_DOCUMENT)
    return folder


def write_edited_codebook(path: Path) -> Path:
    """The packaged codebook with one phrase a researcher added to `faith` (a new version)."""
    data = yaml.safe_load(default_codebook_path().read_text(encoding="utf-8"))
    data["codes"]["faith"]["patterns"].append("parish school")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run(corpus: Path, out: Path, map_batches=None, **kwargs):
    kwargs.setdefault("stages", STAGES)
    kwargs.setdefault("coder", "rules")
    return run_pipeline(RunSettings(paths=[corpus], out_dir=out, **kwargs), map_batches=map_batches)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One real first run over the small corpus; tests start from copies of it."""
    root = tmp_path_factory.mktemp("first")
    corpus = make_corpus(root / "corpus")
    report = run(corpus, root / "out")
    return root, report


@pytest.fixture
def workspace(first_run, tmp_path):
    """A copy of the processed corpus and its output folder (nothing is re-read: the
    store finds every file by its content hash)."""
    root, _ = first_run
    shutil.copytree(root / "corpus", tmp_path / "corpus")
    shutil.copytree(root / "out", tmp_path / "out")
    # as if the first run had been made here: the store's absolute file paths follow
    old, new = str((root / "corpus").resolve()), str((tmp_path / "corpus").resolve())
    with sqlite3.connect(tmp_path / "out" / "textmine.sqlite") as conn:
        conn.execute("UPDATE files SET path = replace(path, ?, ?)", (old, new))
    conn.close()
    moved = run(tmp_path / "corpus", tmp_path / "out")  # the store learns the new paths
    assert moved.counts["documents_read"] == 0 and moved.counts["sentences_coded"] == 0
    return tmp_path / "corpus", tmp_path / "out"


class RecordingMapper:
    """A batch mapper that runs batches in this process, records them, and can crash.

    `crash_on` names the step ("extract" or "code") whose batch number
    `crash_after` (0-based) raises `error` instead of running.
    """

    def __init__(self, crash_on=None, crash_after=0, error=KeyboardInterrupt):
        self.batches = {"extract": [], "code": []}
        self.crash_on, self.crash_after, self.error = crash_on, crash_after, error

    def __call__(self, step, batches, *, name):
        for batch in batches:
            if name == self.crash_on and len(self.batches[name]) >= self.crash_after:
                raise self.error("simulated crash")
            self.batches[name].append(batch)
            yield BatchResult(batch, step(batch))

    @property
    def files_read(self):
        return [f.display_path for batch in self.batches["extract"] for f in batch]

    @property
    def sentences_coded(self):
        return sum(len(batch) for batch in self.batches["code"])


def test_first_run_outputs(first_run):
    root, report = first_run
    out = root / "out"
    assert report.status == "finished"
    assert report.counts["documents_read"] == 3
    assert report.counts["failed"] == 0
    assert report.counts["sentences_coded"] == report.counts["sentences_new"] > 100
    assert report.counts["pages_read"] >= 3
    for name in (
        "documents.csv",
        "sentences.csv",
        "coded_sentences.csv",
        "failures.csv",
        "run.json",
        "textmine.sqlite",
    ):
        assert (out / name).is_file(), name
    for name in ("stance_trends.csv", "partnership_trends.csv", "document_shares.csv"):
        assert (out / name).is_file(), name
    documents = pd.read_csv(out / "documents.csv")
    assert set(DOCUMENT_COLUMNS) <= set(documents.columns)
    assert len(documents) == 3
    assert documents["doc_type"].value_counts().to_dict() == {
        "blog_post": 1,
        "journal_article": 1,
        "inspection_report": 1,
    }
    store = open_store(out)
    coded = store.coded_sentences()
    assert list(coded.columns) == CODED_SENTENCE_COLUMNS
    texts = store.document_texts()
    for row in coded.sample(50, random_state=1).itertuples():
        assert texts[row.doc_id][row.start_char : row.end_char] == row.text
    assert coded["codebook_version"].nunique() == 1
    assert coded["competition"].sum() > 0 and coded["collaboration"].sum() > 0
    assert len(pd.read_csv(out / "coded_sentences.csv")) == len(coded)


def test_rerun_with_nothing_new_does_no_work(workspace):
    corpus, out = workspace
    mapper = RecordingMapper()
    before = (out / "coded_sentences.csv").stat().st_mtime_ns
    report = run(corpus, out, map_batches=mapper)
    assert mapper.files_read == [] and mapper.sentences_coded == 0
    assert report.counts["documents_read"] == 0
    assert report.counts["documents_unchanged"] == 3
    assert report.counts["sentences_coded"] == 0
    assert not report.outputs_regenerated and not report.topics_refit
    assert (out / "coded_sentences.csv").stat().st_mtime_ns == before
    assert "nothing new" in " ".join(report.notes)


def test_new_file_is_processed_alone(workspace):
    corpus, out = workspace
    before = open_store(out).counts()
    shutil.copy2(CORPUS / NEW_DOCUMENT, corpus / NEW_DOCUMENT)
    mapper = RecordingMapper()
    report = run(corpus, out, map_batches=mapper)
    assert mapper.files_read == [str(corpus / NEW_DOCUMENT)]
    assert mapper.sentences_coded == report.counts["sentences_new"]
    assert report.counts["documents_read"] == 1
    assert report.counts["documents_unchanged"] == 3
    assert report.counts["sentences_coded"] == report.counts["sentences_new"]
    after = open_store(out).counts()
    assert after["documents"] == before["documents"] + 1
    assert after["coded_sentences"] == before["coded_sentences"] + report.counts["sentences_new"]
    documents = pd.read_csv(out / "documents.csv")
    row = documents[documents["path"].str.endswith(Path(NEW_DOCUMENT).name)].iloc[0]
    assert row["doc_type"] == "parliamentary_report"  # manifest metadata joined


def test_changed_file_is_read_again_and_old_version_retired(workspace):
    corpus, out = workspace
    target = corpus / SMALL_CORPUS[1]
    old_ids = set(open_store(out).documents()["doc_id"])
    target.write_text(
        target.read_text(encoding="utf-8")
        + "\n\nA new paragraph says that schools compete fiercely for pupils.\n",
        encoding="utf-8",
    )
    report = run(corpus, out)
    assert report.counts["documents_read"] == 1
    assert report.counts["documents_changed"] == 1
    assert report.counts["documents_retired"] == 1
    store = open_store(out)
    new_ids = set(store.documents()["doc_id"])
    assert len(new_ids) == 3 and len(new_ids - old_ids) == 1
    coded = store.coded_sentences()
    assert set(coded["doc_id"]) == new_ids
    assert coded["text"].str.contains("compete fiercely").any()


def test_changed_codebook_recodes_without_extracting(workspace, tmp_path):
    corpus, out = workspace
    codebook = tmp_path / "codebook.yml"
    write_edited_codebook(codebook)
    mapper = RecordingMapper()
    old_version = open_store(out).codebook_version
    total = open_store(out).counts()["sentences"]
    report = run(corpus, out, codebook=codebook, map_batches=mapper)
    assert mapper.files_read == [] and mapper.sentences_coded == total
    assert report.counts["sentences_coded"] == total
    assert report.codebook_version != old_version
    assert any("coding changed (codebook" in n for n in report.notes)
    exported = pd.read_csv(out / "coded_sentences.csv")
    assert set(exported["codebook_version"]) == {report.codebook_version}
    # and the next run with the same codebook does nothing
    assert run(corpus, out, codebook=codebook).counts["sentences_coded"] == 0


def test_run_killed_midway_is_finished_by_the_next_run(first_run, tmp_path):
    root, _clean = first_run
    corpus = make_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):  # dies reading the second file
        run(corpus, out, map_batches=RecordingMapper("extract", crash_after=1))
    store = open_store(out)
    assert store.counts()["documents"] == 1  # the first document, complete
    assert store.runs()["status"].tolist() == ["failed"]

    # second crash: while coding, after the first batch of one document
    with pytest.raises(KeyboardInterrupt):
        run(corpus, out, code_batch_documents=1, map_batches=RecordingMapper("code", 1))
    store = open_store(out)
    assert store.counts()["documents"] == 3
    codebook = load_codebook()
    coding = CodingVersion(codebook.version, "rules", tuple(codebook.code_columns))
    pending = store.count_pending(coding)
    assert 0 < pending < store.counts()["sentences"]

    mapper = RecordingMapper()
    report = run(corpus, out, code_batch_documents=1, map_batches=mapper)
    assert mapper.files_read == []  # nothing read twice
    assert report.counts["sentences_coded"] == pending == mapper.sentences_coded
    finished = pd.read_csv(out / "coded_sentences.csv").drop(columns=["path"])
    reference = pd.read_csv(root / "out" / "coded_sentences.csv").drop(columns=["path"])
    pd.testing.assert_frame_equal(
        finished.sort_values("sentence_id").reset_index(drop=True),
        reference.sort_values("sentence_id").reset_index(drop=True),
    )


def test_a_killed_run_is_marked_killed_by_the_next(workspace):
    corpus, out = workspace
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from textmine.run import RunSettings, run_pipeline\n"
        "def die(step, batches, *, name):\n"
        "    os._exit(9)  # killed outright: no exception handler runs\n"
        "    yield\n"
        f"run_pipeline(RunSettings(paths=[Path({str(corpus)!r})], out_dir=Path({str(out)!r}),"
        " coder='rules', stages=('ingest', 'code')), map_batches=die)\n"
    )
    shutil.copy2(CORPUS / NEW_DOCUMENT, corpus / NEW_DOCUMENT)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == 9, result.stderr
    assert open_store(out).runs()["status"].iloc[-1] == "running"  # as the kill left it
    report = run(corpus, out)
    runs = open_store(out).runs()
    assert runs["status"].tolist()[-2:] == ["killed", "finished"]
    assert any("killed before they finished" in n for n in report.notes)
    assert report.counts["documents_read"] == 1


def test_duplicates_failures_and_deleted_files(workspace):
    corpus, out = workspace
    shutil.copy2(corpus / SMALL_CORPUS[0], corpus / "copy-of-blog.txt")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "empty-too.md").write_bytes(b"")  # same (no) bytes: a failure too, not a duplicate
    (corpus / "picture.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    report = run(corpus, out)
    assert report.counts["duplicates"] == 1
    assert report.duplicates[0]["path"].endswith("copy-of-blog.txt")
    assert sorted(f["reason"] for f in report.failures) == [
        "empty_file",
        "empty_file",
        "unsupported_format",
    ]
    failures = pd.read_csv(out / "failures.csv")
    assert sorted(Path(p).name for p in failures["path"]) == [
        "empty-too.md",
        "empty.txt",
        "picture.pdf",
    ]
    assert len(pd.read_csv(out / "coded_sentences.csv")["doc_id"].unique()) == 3
    listed = pd.read_csv(out / "documents.csv", keep_default_na=False)
    copy = listed[listed["path"].str.endswith("copy-of-blog.txt")].iloc[0]
    assert copy["duplicate_of"] == copy["doc_id"] and copy["n_sentences"] == 0

    # unchanged failures are not retried
    mapper = RecordingMapper()
    again = run(corpus, out, map_batches=mapper)
    assert again.counts["known_failures_skipped"] == 3 and mapper.files_read == []

    # a deleted document and a deleted failure leave the outputs
    (corpus / SMALL_CORPUS[1]).unlink()
    (corpus / "empty.txt").unlink()
    report = run(corpus, out)
    assert report.counts["missing"] == 2
    documents = pd.read_csv(out / "documents.csv")
    assert not documents["path"].str.contains("teachingtimes").any()
    assert len(pd.read_csv(out / "failures.csv")) == 2


def test_a_second_run_on_the_same_folder_is_refused(workspace):
    corpus, out = workspace
    with RunLock(out):
        with pytest.raises(StoreLockedError, match="in use by another textmine run"):
            run(corpus, out)
        # the command line says so and exits with status 3
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from textmine.cli import main; main()",
                "run",
                str(corpus),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 3, result.stderr
        assert "in use by another textmine run" in " ".join(result.stderr.split())
    assert run(corpus, out).status == "finished"  # free again afterwards


def test_cli_run_prints_summary(workspace):
    corpus, out = workspace
    shutil.copy2(CORPUS / NEW_DOCUMENT, corpus / NEW_DOCUMENT)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from textmine.cli import main; main()",
            "run",
            str(corpus),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    summary = dict(
        line.strip().split(None, 1)
        if "  " not in line.strip()
        else [part.strip() for part in line.strip().split("  ", 1)]
        for line in result.stdout.splitlines()[1:]
        if line.strip()
    )
    assert summary["documents read"].startswith("1 new, 3 unchanged (skipped); 4 in the corpus")
    new_sentences = open_store(out).counts()["sentences"]
    assert "in the corpus" in summary["sentences"] and str(new_sentences) in summary["sentences"]
    assert summary["failures"].startswith("0 this run")


@pytest.mark.slow
def test_topics_fitted_once_then_extended_never_refitted_unasked(workspace):
    corpus, out = workspace
    fitted = run(corpus, out, stages=ALL_STAGES)  # no model yet: fitted
    assert fitted.topics_refit
    assert (out / "topics.csv").is_file() and (out / "doc_topics.csv").is_file()
    shutil.copy2(CORPUS / NEW_DOCUMENT, corpus / NEW_DOCUMENT)
    extended = run(corpus, out, stages=ALL_STAGES)
    assert extended.counts["documents_read"] == 1
    assert "topics" in extended.timings and not extended.topics_refit
    doc_topics = pd.read_csv(out / "doc_topics.csv")
    new_id = open_store(out).documents().set_index("path").loc[str(corpus / NEW_DOCUMENT), "doc_id"]
    assert new_id in set(doc_topics["doc_id"])  # the new document's chunks got topics
    idle = run(corpus, out, stages=ALL_STAGES)
    assert "topics" not in idle.timings and not idle.topics_refit
    refit = run(corpus, out, stages=ALL_STAGES, refit_topics=True)
    assert refit.topics_refit and refit.counts["documents_read"] == 0


def test_settings_are_checked():
    with pytest.raises(ValueError, match="year or quarter"):
        RunSettings(by="month")
    with pytest.raises(ValueError, match="auto or a number"):
        RunSettings(n_topics="many")
    with pytest.raises(ValueError, match="unknown stages"):
        RunSettings(stages=("ingest", "dance"))
    with pytest.raises(ValueError, match="unknown export format"):
        RunSettings(formats=("csv", "xlsx"))
    assert RunSettings(n_topics="12").n_topics == 12
    assert RunSettings(password="secret").to_dict()["password"] == "***"
