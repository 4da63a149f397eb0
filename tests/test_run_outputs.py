"""The one runner's promises about outputs: any codebook code reaches every output,
outputs follow the store, `textmine ingest` shares the store, processes give the
same corpus as one process."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.test_pipeline import CORPUS, NEW_DOCUMENT, SMALL_CORPUS, make_corpus
from textmine.cli import app
from textmine.codebook import default_codebook_path
from textmine.run import RunSettings, run_pipeline
from textmine.run.runner import process_map
from textmine.store import open_store

ADDED_CODE = """
  accountability:
    name: Accountability
    kind: stance
    colour: "#9edae5"
    description: "High-stakes accountability: inspection, floor standards, intervention."
    patterns:
      - {tokens: [{LEMMA: {IN: [inspect, inspection]}}], id: inspection}
      - "floor standard"
      - {phrase: "Ofsted", attr: LOWER}
    exclusions:
      - {tokens: [{LOWER: {IN: [self-inspection, self-inspections]}}], id: self_inspection}
"""


def codebook_with_added_code(folder: Path) -> Path:
    """The packaged codebook with the README's example code appended under `codes:`."""
    text = default_codebook_path().read_text(encoding="utf-8")
    head, rest = text.split("\ncodes:\n", 1)
    # the new code goes after the last code: before the next top-level key
    lines = rest.split("\n")
    end = next(
        (i for i, line in enumerate(lines) if line and not line.startswith((" ", "#"))), len(lines)
    )
    body = "\n".join(lines[:end]).rstrip("\n") + "\n" + ADDED_CODE.strip("\n") + "\n"
    path = folder / "codebook.yml"
    path.write_text(head + "\ncodes:\n" + body + "\n".join(lines[end:]), encoding="utf-8")
    return path


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_added_code_reaches_every_output(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    codebook = codebook_with_added_code(tmp_path)
    out = tmp_path / "out"
    invoke(
        "run",
        str(corpus),
        "--out",
        str(out),
        "--codebook",
        str(codebook),
        "--coder",
        "rules",
        "-f",
        "csv",
        "-f",
        "parquet",
        "-f",
        "qdpx",
        "--workers",
        "1",
    )
    coded = pd.read_csv(out / "coded_sentences.csv")
    assert coded["accountability"].sum() > 0  # the inspection report speaks of inspection
    documents = pd.read_csv(out / "documents.csv")
    assert documents["n_accountability"].sum() == coded["accountability"].sum()
    parquet = pd.read_parquet(out / "coded_sentences.parquet")
    assert parquet["accountability"].sum() == coded["accountability"].sum()
    with zipfile.ZipFile(out / "coded_corpus.qdpx") as project:
        qde = project.read("project.qde").decode("utf-8")
    assert 'name="accountability" isCodable="true"' in qde
    stance = pd.read_csv(out / "stance_trends.csv")
    assert any("accountability" in column for column in stance.columns)
    assert stance.filter(like="accountability").notna().any().any()
    figures = " ".join(
        p.read_text(encoding="utf-8", errors="ignore") for p in (out / "figures").glob("*.html")
    )
    assert "Accountability" in figures or "accountability" in figures
    report = (out / "report.html").read_text(encoding="utf-8")  # written by every run
    assert 'id="code-accountability"' in report
    store = open_store(out)
    assert store.code_columns[-1] == "accountability"


def test_a_corpus_with_nothing_to_draw_is_up_to_date_on_its_second_run(tmp_path):
    """Undated documents give no period and so no figure: a re-run still does no work."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number in (1, 2, 3):
        (corpus / f"note-{number}.txt").write_text(
            f"Schools in the area work together in partnership {number}.\n\n"
            f"The trust competes with other schools for pupils {number}.\n",
            encoding="utf-8",
        )
    out = tmp_path / "out"
    settings = RunSettings(paths=[corpus], out_dir=out, coder="rules", workers=1)
    first = run_pipeline(settings)
    assert first.outputs_regenerated
    assert not list(out.glob("figures/*.png"))  # no dated period: nothing to draw
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.csv")}
    again = run_pipeline(settings)
    assert not again.did_work and not again.outputs_regenerated
    assert "nothing new: outputs are up to date and were not rewritten" in again.notes
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.csv")} == before


@pytest.mark.slow
def test_no_output_is_older_than_the_store(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    stages = ("ingest", "code", "trends", "export")
    run_pipeline(RunSettings(paths=[corpus], out_dir=out, coder="rules", stages=stages))
    # a researcher exports Parquet into the folder, and a blind project under another name
    invoke("export", "--format", "parquet", "--corpus-dir", str(out))
    invoke(
        "export",
        "--format",
        "qdpx",
        "--blind",
        "--corpus-dir",
        str(out),
        "--out",
        str(out / "for-coders.qdpx"),
    )
    before = pd.read_parquet(out / "coded_sentences.parquet")
    shutil.copy2(CORPUS / NEW_DOCUMENT, corpus / NEW_DOCUMENT)
    report = run_pipeline(RunSettings(paths=[corpus], out_dir=out, coder="rules", stages=stages))
    assert report.counts.documents_read == 1
    after = pd.read_parquet(out / "coded_sentences.parquet")
    csv_rows = pd.read_csv(out / "coded_sentences.csv")
    assert len(after) == len(csv_rows) > len(before)  # regenerated with the new document
    assert set(after["doc_id"]) == set(csv_rows["doc_id"])
    # the blind project cannot be remade by a run: removed and listed, never left stale
    assert not (out / "for-coders.qdpx").exists()
    run_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run_json["outputs_removed"] == ["for-coders.qdpx"]
    fingerprints = set(open_store(out).registered_outputs()["fingerprint"])
    assert len(fingerprints) == 1  # every output made from the same state of the store


def test_ingest_writes_into_the_store_and_run_continues_from_it(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:2])
    out = tmp_path / "out"
    invoke("ingest", str(corpus), "--out", str(out), "--quiet")
    store = open_store(out)
    assert store.counts()["documents"] == 2 and store.coding is None
    documents = pd.read_csv(out / "documents.csv")
    assert len(documents) == 2 and len(pd.read_csv(out / "sentences.csv")) > 50
    report = run_pipeline(
        RunSettings(
            paths=[corpus],
            out_dir=out,
            coder="rules",
            stages=("ingest", "code", "trends", "export"),
        )
    )
    assert report.counts.documents_read == 0 and report.counts.sentences_coded > 50
    # ingest again after the run: nothing to read, every output stays as the run left it
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.csv")}
    output = invoke("ingest", str(corpus), "--out", str(out), "--quiet")
    assert "0 new" in output and "nothing new" in output
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.csv")} == before
    assert len(pd.read_csv(out / "coded_sentences.csv")) == report.counts.sentences_coded


@pytest.mark.slow
def test_two_processes_give_the_same_corpus_as_one(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    shutil.copy2(CORPUS / NEW_DOCUMENT, corpus / NEW_DOCUMENT)
    stages = ("ingest", "code", "export")
    one = run_pipeline(
        RunSettings(
            paths=[corpus], out_dir=tmp_path / "one", coder="rules", stages=stages, workers=1
        )
    )
    two = run_pipeline(
        RunSettings(
            paths=[corpus],
            out_dir=tmp_path / "two",
            coder="rules",
            stages=stages,
            workers=2,
            code_batch_documents=1,
        ),
        map_batches=process_map(2),  # a pool for these few files too (`run` reads them here)
    )
    assert one.counts.documents_read == two.counts.documents_read == 4
    for name in ("coded_sentences.csv", "sentences.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


@pytest.mark.slow
def test_a_run_writes_nothing_outside_its_output_folder_but_library_caches(tmp_path):
    import os
    import subprocess
    import sys

    corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:2])
    home, cwd, out = tmp_path / "home", tmp_path / "cwd", tmp_path / "out"
    home.mkdir()
    cwd.mkdir()
    before = {p for p in corpus.rglob("*")}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "MPLCONFIGDIR", "NUMBA_CACHE_DIR"))
    }
    env.update(HOME=str(home), TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "textmine.cli",
            "run",
            str(corpus),
            "--out",
            str(out),
            "--coder",
            "rules",
            "--workers",
            "1",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert {p for p in corpus.rglob("*")} == before  # the corpus is only read
    assert not any(cwd.iterdir())
    written = [p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()]
    allowed = (".cache/matplotlib", ".config/matplotlib", ".cache/fontconfig", ".cache/numba")
    assert all(w.startswith(allowed) for w in written), written
    assert (out / "coded_sentences.csv").is_file()


@pytest.mark.slow
def test_topics_fitted_alongside_give_the_outputs_of_one_process(tmp_path):
    """`--workers 2` fits topics in a second process while this one codes and writes."""
    corpus = make_corpus(tmp_path / "corpus")
    shutil.copy2(CORPUS / NEW_DOCUMENT, corpus / NEW_DOCUMENT)
    # with two workers: a batch per document, coded here and in a worker process (shared_map)
    reports = {
        workers: run_pipeline(
            RunSettings(
                paths=[corpus],
                out_dir=tmp_path / str(workers),
                coder="rules",
                workers=workers,
                code_batch_documents=1 if workers == 2 else 20,
            )
        )
        for workers in (1, 2)
    }
    one, two = reports[1], reports[2]
    assert "topics_wait" in two.timings and "topics_wait" not in one.timings
    assert two.counts.stage_errors == one.counts.stage_errors == 0
    assert two.notes == one.notes
    assert any("topics from" in note for note in two.notes)

    def relative(report, folder):
        return [Path(p).relative_to(tmp_path / folder).as_posix() for p in report.outputs]

    assert relative(two, "2") == relative(one, "1")
    # HTML files carry random element ids and run.json the timings: every other file compared
    compared = [p for p in relative(one, "1") if not p.endswith((".html", "run.json"))]
    assert {"topics.csv", "doc_topics.csv", "topics_over_time.csv"} <= set(compared)
    assert any(p.startswith("figures/topics_over_time") for p in compared)
    for name in compared:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    with open_store(tmp_path / "2") as store:
        assert len(store.read_table("doc_topics")) == len(
            pd.read_csv(tmp_path / "2" / "doc_topics.csv")
        )
    # nothing new: no topic process, outputs kept
    again = run_pipeline(
        RunSettings(paths=[corpus], out_dir=tmp_path / "2", coder="rules", workers=2)
    )
    assert "topics_wait" not in again.timings
    assert "nothing new: outputs are up to date and were not rewritten" in again.notes
    # nothing read, topics refitted: the topic process starts after coding, same topics
    refit = run_pipeline(
        RunSettings(
            paths=[corpus], out_dir=tmp_path / "2", coder="rules", workers=2, refit_topics=True
        )
    )
    assert "topics_wait" in refit.timings and refit.counts.documents_read == 0
    for name in ("topics.csv", "doc_topics.csv", "figures/topics_over_time.png"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


def test_the_topic_process_ends_when_its_run_is_killed():
    """A busy topic process (`_exit_when_gone` runs beside its fit) ends when its run dies."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    busy = (
        "import sys, threading\n"
        "from textmine.run.topic_job import _exit_when_gone\n"
        "threading.Thread(target=_exit_when_gone, args=(int(sys.argv[1]), 0.1), daemon=True).start()\n"
        "while True: sum(range(10000))  # a fit that would run on\n"
    )
    topic = subprocess.Popen([sys.executable, "-c", busy, str(run.pid)])
    try:
        time.sleep(1.0)
        assert topic.poll() is None  # keeps working while its run lives
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        assert topic.wait(timeout=30) == 1
    finally:
        for process in (run, topic):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def test_handing_the_sentences_to_a_topic_process_still_loading_does_not_wait():
    """`TopicJob.start` returns at once though the process reads nothing yet (it loads libraries).

    A pipe holds 64 KiB: a corpus's sentences sent in the run's thread kept the
    run waiting until the topic process had imported its libraries.
    """
    import multiprocessing
    import threading

    from textmine.run.settings import RunSettings as Settings
    from textmine.run.topic_job import TopicJob, TopicResult

    job = TopicJob.__new__(TopicJob)  # its process end is ours, and reads nothing yet
    job.settings, job.with_figure, job.n_sentences = Settings(paths=[]), True, None
    job._connection, ours = multiprocessing.Pipe(duplex=True)
    job._result, job._sender = None, None
    job._process = multiprocessing.get_context("spawn").Process(target=int)
    job._process.start()  # ends at once; `result` joins it
    sentences = pd.DataFrame(
        {"text": [f"Sentence {i} of a long report." * 5 for i in range(20000)]}
    )
    assert len(sentences.to_csv()) > 64 * 1024 * 10
    started = threading.Thread(target=job.start, args=(sentences, pd.DataFrame()), daemon=True)
    started.start()
    started.join(timeout=10)
    returned = not started.is_alive()
    sent_settings, received, documents, with_figure = ours.recv()  # (frees a blocked sender)
    assert returned and job.started  # it had returned before the message was read
    assert received.equals(sentences) and documents.empty and with_figure
    assert sent_settings == job.settings
    ours.send(("status", "fitting"))
    ours.send(("result", TopicResult(None, seconds=1.5)))
    said: list[str] = []
    assert job.result(said.append).seconds == 1.5 and said == ["fitting"]


def test_a_few_small_files_are_read_in_the_run_process_with_workers(tmp_path, monkeypatch):
    """Below IN_PROCESS_READING_BYTES a worker pool would cost more than it saves."""
    import os

    import textmine.run.runner as runner

    corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:2])
    readers: list[int] = []

    def extract_here(files, **options):
        readers.append(os.getpid())
        return extract_files(files, **options)

    extract_files = runner.extract_files
    monkeypatch.setattr(runner, "extract_files", extract_here)  # not picklable: no pool
    stages = ("ingest", "code", "export")
    report = run_pipeline(
        RunSettings(paths=[corpus], out_dir=tmp_path / "out", stages=stages, workers=2)
    )
    assert report.counts.documents_read == 2 and set(readers) == {os.getpid()}
    calls = len(readers)
    monkeypatch.setattr(runner, "IN_PROCESS_READING_BYTES", 0)
    pooled = run_pipeline(
        RunSettings(paths=[corpus], out_dir=tmp_path / "pool", stages=stages, workers=2)
    )
    # now a pool, which cannot take the local function: never run here, the files retried later
    assert len(readers) == calls and pooled.counts.documents_read == 0
    assert all("reading failed" in f["message"] for f in pooled.failures)


def test_a_killed_run_leaves_no_topic_process_behind(tmp_path):
    """A run's topic process (`TopicJob`) ends when its run is SIGKILLed while it loads.

    While its libraries load, imports hold the GIL and its watchdog thread
    (`_exit_when_gone`, tested above) cannot run; it ends on reading the closed
    pipe once loaded. During a fit the watchdog ends it within about a second.
    """
    import os
    import signal
    import subprocess
    import sys
    import time

    run = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from textmine.run import RunSettings\n"
        "from textmine.run.topic_job import TopicJob\n"
        "job = TopicJob(RunSettings(paths=[], out_dir=Path(sys.argv[1])))\n"
        "print(job._process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", run, str(tmp_path / "out")], stdout=subprocess.PIPE, text=True
    )
    try:
        topic_pid = int(process.stdout.readline())  # type: ignore[union-attr]
        os.kill(topic_pid, 0)  # alive while its run lives
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        killed = time.monotonic()
        while time.monotonic() - killed < 60:
            try:
                os.kill(topic_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the topic process {topic_pid} outlived its killed run by 60 s")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
