"""Prefect flows: mine-corpus (incremental, artifacts, bad documents, task runners),
watch-publications against a local feed, and the served deployments.

One temporary Prefect API (prefect_test_harness) is shared by the whole session:
it takes 10-20 s to start.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# Prefect reads these when it is imported: a throw-away PREFECT_HOME, no analytics,
# and room for the temporary API server to start on this slow machine.
_OWN_PREFECT_HOME = None
if "PREFECT_HOME" not in os.environ:
    _OWN_PREFECT_HOME = tempfile.mkdtemp(prefix="textmine-prefect-")
    os.environ["PREFECT_HOME"] = _OWN_PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from flows.mine_corpus import DaskParameters, mine_corpus  # noqa: E402
from flows.watch_publications import watch_publications  # noqa: E402
from tests.test_pipeline import CORPUS, SMALL_CORPUS, make_corpus, write_edited_codebook  # noqa: E402
from textmine.run import RunSettings, run_pipeline  # noqa: E402
from textmine.store import open_store  # noqa: E402

PDF_NAME = "ofsted/schools/ofsted_139305_rough-hay-primary_2016-11.pdf"


@pytest.fixture(scope="session")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    if _OWN_PREFECT_HOME:
        shutil.rmtree(_OWN_PREFECT_HOME, ignore_errors=True)


def _artifact_keys() -> set[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {a.key for a in client.read_artifacts() if a.key}


def test_mine_corpus_flow_is_incremental(prefect_api, tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    (corpus / "empty.txt").write_bytes(b"")  # a bad document must not fail the flow
    (corpus / "scan.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    out = tmp_path / "out"

    first = mine_corpus(corpus_paths=[str(corpus)], out_dir=str(out), coder="rules")
    assert first["status"] == "finished"
    assert first["counts"]["documents_read"] == 3
    assert {f["reason"] for f in first["failures"]} == {"empty_file", "unsupported_format"}
    assert first["counts"]["sentences_coded"] == first["counts"]["sentences_new"] > 100
    for name in (
        "documents.csv",
        "sentences.csv",
        "coded_sentences.csv",
        "failures.csv",
        "run.json",
    ):
        assert (out / name).is_file(), name
    assert {
        "textmine-run-summary",
        "textmine-documents-by-type-and-year",
        "textmine-output-coded-sentences",
    } <= _artifact_keys()

    second = mine_corpus(corpus_paths=[str(corpus)], out_dir=str(out), coder="rules")
    assert second["counts"]["documents_read"] == 0
    assert second["counts"]["sentences_coded"] == 0
    assert second["counts"]["known_failures_skipped"] == 2
    assert not second["outputs_regenerated"] and not second["topics_refit"]

    # a changed codebook re-codes the stored sentences and reads nothing
    codebook = tmp_path / "codebook.yml"
    write_edited_codebook(codebook)  # a researcher adds a phrase: a new codebook version
    third = mine_corpus(
        corpus_paths=[str(corpus)], out_dir=str(out), codebook=str(codebook), coder="rules"
    )
    assert third["counts"]["documents_read"] == 0
    assert third["counts"]["sentences_coded"] == first["counts"]["sentences_new"]
    assert open_store(out).codebook_version == third["codebook_version"]


def test_mine_corpus_refuses_an_unusable_model_before_reading_anything(tmp_path):
    from textmine.learned.coder import ModelCodebookMismatch
    from textmine.learned.model import ModelFolderError

    corpus = make_corpus(tmp_path / "corpus")
    empty_model = tmp_path / "model"
    empty_model.mkdir()
    out = tmp_path / "out"
    # the flow's own body (no Prefect run needed): the same checks as `textmine run`
    with pytest.raises(ModelFolderError, match=r"missing model\.json"):
        mine_corpus.fn(corpus_paths=[str(corpus)], out_dir=str(out), model_dir=str(empty_model))
    codebook = tmp_path / "codebook.yml"
    write_edited_codebook(codebook)  # another codebook version than the packaged model's
    with pytest.raises(ModelCodebookMismatch, match=r"codebook version .* is version"):
        mine_corpus.fn(corpus_paths=[str(corpus)], out_dir=str(out), codebook=str(codebook))
    assert not out.exists()  # nothing read, no store, no lock


def test_watch_publications_downloads_then_mines_what_is_new(prefect_api, tmp_path):
    pdf = (CORPUS / PDF_NAME).read_bytes()
    feed = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>Ofsted</title><id>urn:test</id><updated>2016-11-20T00:00:00Z</updated>"
        b"<entry><id>urn:rough-hay</id><title>Rough Hay Primary School report</title>"
        b"<updated>2016-11-20T00:00:00Z</updated>"
        b'<link rel="enclosure" type="application/pdf" href="/files/rough-hay.pdf"/></entry>'
        b"<entry><id>urn:broken</id><title>Broken link</title>"
        b"<updated>2016-11-21T00:00:00Z</updated>"
        b'<link rel="enclosure" type="application/pdf" href="/files/missing.pdf"/></entry>'
        b"</feed>"
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            routes = {
                "/feed.atom": ("application/atom+xml", feed),
                "/files/rough-hay.pdf": ("application/pdf", pdf),
            }
            if self.path not in routes:
                self.send_error(404)
                return
            kind, body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:2])
        out = tmp_path / "out"
        sources = tmp_path / "sources.yml"
        sources.write_text(
            "inbox: corpus/inbox\nmanifest: corpus/manifest.csv\nfeeds:\n"
            f"  - name: local\n    url: http://127.0.0.1:{server.server_address[1]}/feed.atom\n"
            "    publisher: Ofsted\n    doc_type: inspection_report\n    accept: [pdf]\n",
            encoding="utf-8",
        )
        first = watch_publications(
            sources=str(sources), corpus_paths=[str(corpus)], out_dir=str(out)
        )
        assert [Path(d["path"]).name for d in first["feeds"]["downloaded"]] == ["rough-hay.pdf"]
        assert [f["reason"] for f in first["feeds"]["failures"]] == ["http_error"]
        assert first["mine"]["counts"]["documents_read"] == 3  # two seeds + the download
        documents = open_store(out).documents()
        row = documents[documents["path"].str.endswith("rough-hay.pdf")].iloc[0]
        assert row["title"] == "Rough Hay Primary School report"  # from the feed's manifest row
        assert row["publisher"] == "Ofsted" and row["published"] == "2016-11-20"

        again = watch_publications(
            sources=str(sources), corpus_paths=[str(corpus)], out_dir=str(out)
        )
        assert again["feeds"]["downloaded"] == []
        assert again["mine"]["counts"]["documents_read"] == 0
    finally:
        server.shutdown()
        server.server_close()


def test_serve_registers_cron_schedules_that_survive_shutdown(monkeypatch, tmp_path):
    from flows import serve as serve_module

    captured = {}

    def fake_serve(*deployments, **kwargs):
        captured["deployments"] = deployments
        captured["kwargs"] = kwargs

    monkeypatch.setattr(serve_module, "serve", fake_serve)
    serve_module.serve_deployments(
        sources=tmp_path / "sources.yml",
        corpus=tmp_path / "corpus",
        out_dir=tmp_path / "out",
        watch_cron="0 6 * * *",
        mine_cron="30 2 * * 1",
        timezone="Europe/London",
    )
    assert captured["kwargs"]["pause_on_shutdown"] is False
    mine, watch = captured["deployments"]
    assert (mine.name, watch.name) == ("textmine", "daily")
    assert watch.schedules[0].schedule.cron == "0 6 * * *"
    assert watch.schedules[0].schedule.timezone == "Europe/London"
    assert mine.schedules[0].schedule.cron == "30 2 * * 1"
    assert watch.parameters["out_dir"] == str((tmp_path / "out").resolve())


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["dask", "process"])
def test_other_task_runners_give_the_same_corpus(prefect_api, tmp_path, runner):
    corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:2])
    # the reference: the same corpus through `textmine run`'s pipeline, no Prefect
    run_pipeline(RunSettings(paths=[corpus], out_dir=tmp_path / "ref", stages=("ingest", "code")))
    result = mine_corpus(
        corpus_paths=[str(corpus)],
        out_dir=str(tmp_path / runner),
        task_runner=runner,
        dask=DaskParameters(n_workers=2),
        max_workers=2,
        stages=["ingest", "code"],
    )
    assert result["status"] == "finished"
    assert result["counts"]["documents_read"] == 2
    runs = open_store(tmp_path / runner).runs()
    assert runs["status"].tolist() == ["finished"]
    stored = json.loads(open_store(tmp_path / runner)._query("SELECT settings FROM runs")[0][0])
    assert stored["task_runner"] == runner
    mine = open_store(tmp_path / runner).coded_sentences().drop(columns=["path"])
    ref = open_store(tmp_path / "ref").coded_sentences().drop(columns=["path"])
    assert mine.equals(ref)


def test_flow_module_keeps_prefect_out_of_the_library():
    import subprocess
    import sys

    code = (
        "import sys, textmine.run, textmine.store, textmine.feeds, textmine.cli; "
        "print('prefect' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def _stop(processes) -> None:
    """Terminate the processes this test started, then kill what is left."""
    import subprocess

    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.mark.slow
def test_mine_corpus_runs_on_a_dask_scheduler_with_two_workers(prefect_api, tmp_path):
    """`dask scheduler` + two `dask worker` processes on 127.0.0.1: the same corpus as `textmine run`."""
    import subprocess
    import sys
    import time

    from distributed import Client

    repo = str(Path(__file__).resolve().parent.parent)
    corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:2])
    run_pipeline(RunSettings(paths=[corpus], out_dir=tmp_path / "ref", stages=("ingest", "code")))
    scheduler_file = tmp_path / "scheduler.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])),
    }
    dask = [sys.executable, "-m", "dask"]
    processes = [
        subprocess.Popen(
            [
                *dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    ]
    try:
        deadline = time.monotonic() + 120
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            assert processes[0].poll() is None, processes[0].stderr.read().decode()[-2000:]
            time.sleep(0.5)
        address = json.loads(scheduler_file.read_text(encoding="utf-8"))["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [
                        *dask,
                        "worker",
                        "--scheduler-file",
                        str(scheduler_file),
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                    ],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=180)

        result = mine_corpus(
            corpus_paths=[str(corpus)],
            out_dir=str(tmp_path / "dask"),
            task_runner="dask",
            dask=DaskParameters(address=address),
            stages=["ingest", "code"],
        )

        with Client(address, timeout=60) as client:
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    finally:
        _stop(processes[::-1])  # workers first, then the scheduler
    assert result["status"] == "finished"
    assert result["counts"]["documents_read"] == 2
    assert len(executed) == 2 and sum(executed.values()) >= 2  # the batches ran on the workers
    with open_store(tmp_path / "dask") as store:
        stored = json.loads(store._query("SELECT settings FROM runs")[0][0])
        mine = store.coded_sentences().drop(columns=["path"])
    assert stored["task_runner"] == "dask"
    with open_store(tmp_path / "ref") as store:
        ref = store.coded_sentences().drop(columns=["path"])
    assert mine.equals(ref)
