"""The SQLite store: documents by content hash, sentences, codes per codebook version, lock."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from textmine import store as store_module
from textmine.columns import (
    CODE_COLUMNS,
    CODED_SENTENCE_COLUMNS,
    DOCUMENT_COLUMNS,
    FAILURE_COLUMNS,
    SENTENCE_COLUMNS,
)
from textmine.store import (
    LOCK_FILENAME,
    RunLock,
    Store,
    StoreLockedError,
    StoreNotFoundError,
    open_store,
)
from textmine.types import Document, DocumentMeta, Paragraph

TEXT = "Schools compete for pupils. Trusts collaborate on training. A federation formed."


def make_document(doc_id="a" * 16, path="corpus/a.txt", text=TEXT, published="2014"):
    return Document(
        doc_id=doc_id,
        path=path,
        format="text",
        pages=1,
        text=text,
        paragraphs=[Paragraph(0, 1, 0, len(text))],
        meta=DocumentMeta(title="A", publisher="P", doc_type="blog_post", published=published),
    )


def make_sentences(document) -> pd.DataFrame:
    rows, start = [], 0
    for index, part in enumerate(document.text.split(". ")):
        piece = part if part.endswith(".") else part + "."
        begin = document.text.index(piece, start)
        rows.append(
            {
                "sentence_id": f"{document.doc_id}-{index:05d}",
                "doc_id": document.doc_id,
                "path": document.path,
                "page": 1,
                "paragraph_index": 0,
                "sentence_index": index,
                "start_char": begin,
                "end_char": begin + len(piece),
                "text": piece,
            }
        )
        start = begin + len(piece)
    return pd.DataFrame(rows, columns=SENTENCE_COLUMNS)


def code(sentences: pd.DataFrame, version: str) -> pd.DataFrame:
    coded = sentences.copy()
    for column in CODE_COLUMNS:
        coded[column] = 0
    coded["competition"] = coded["text"].str.contains("compete").astype(int)
    coded["collaboration"] = coded["text"].str.contains("collaborate").astype(int)
    coded["federation"] = coded["text"].str.contains("federation").astype(int)
    coded["evidence"] = "{}"
    coded["codebook_version"] = version
    coded["textmine_version"] = "test"
    return coded


def save(store, document, run_id=None, file_path=None):
    sentences = make_sentences(document)
    store.save_document(
        document,
        sentences,
        file_path=file_path or f"/abs/{document.path}",
        size=len(document.text),
        manifest_hash=None,
        run_id=run_id,
        textmine_version="test",
    )
    return sentences


def test_round_trip_documents_sentences_codes(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    document = make_document()
    sentences = save(store, document)
    assert store.pending_sentences("v1")["sentence_id"].tolist() == sentences["sentence_id"].tolist()
    store.save_codes(code(store.pending_sentences("v1"), "v1"), run_id=None)
    store.set_codebook_version("v1")
    assert store.count_pending("v1") == 0
    assert store.count_pending("v2") == 3  # another codebook has everything to do

    coded = store.coded_sentences()
    assert list(coded.columns) == CODED_SENTENCE_COLUMNS
    assert coded["competition"].tolist() == [1, 0, 0]
    for row in coded.itertuples():
        assert TEXT[row.start_char : row.end_char] == row.text

    docs = store.documents()
    assert list(docs.columns)[: len(DOCUMENT_COLUMNS)] == DOCUMENT_COLUMNS
    assert docs.loc[0, "n_sentences"] == 3
    assert docs.loc[0, "n_competition"] == 1 and docs.loc[0, "n_federation"] == 1
    assert store.document_texts() == {document.doc_id: TEXT}
    assert store.document_paragraphs(document.doc_id) == [(0, 1, 0, len(TEXT))]
    store.close()


def test_document_and_sentences_commit_together(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    document = make_document()
    broken = make_sentences(document)
    broken.loc[1, "sentence_id"] = broken.loc[0, "sentence_id"]  # violates the primary key
    with pytest.raises(sqlite3.IntegrityError):
        store.save_document(
            document, broken, file_path="/abs/a", size=1, manifest_hash=None, run_id=None,
            textmine_version="test",
        )
    assert store.documents().empty
    assert store.sentences().empty
    assert store.known_files() == {}


def test_codes_of_old_codebooks_are_pruned(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    save(store, make_document())
    for version in ("v1", "v2", "v3"):
        store.save_codes(code(store.pending_sentences(version), version), None)
        store.set_codebook_version(version)
    versions = {r[0] for r in store._query("SELECT DISTINCT codebook_version FROM codes")}
    assert versions == {"v2", "v3"}  # the current one and the one before
    assert len(store.coded_sentences()) == 3
    assert len(store.coded_sentences("v2")) == 3


def test_reextraction_replaces_sentences_and_codes(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    document = make_document()
    save(store, document)
    store.save_codes(code(store.pending_sentences("v1"), "v1"), None)
    store.set_codebook_version("v1")
    shorter = make_document(text="Schools compete for pupils.")
    save(store, shorter)
    assert len(store.sentences()) == 1
    assert store.count_pending("v1") == 1  # its codes went with the old sentences


def test_failures_and_retiring(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    save(store, make_document(), file_path="/abs/a.txt")
    store.save_failure(
        file_path="/abs/bad.pdf", display_path="corpus/bad.pdf", doc_id="b" * 16, size=0,
        reason="empty_file", message="the file has no bytes", password_given=False,
        run_id=None, textmine_version="test",
    )
    failures = store.failures()
    assert list(failures.columns) == FAILURE_COLUMNS
    assert failures.to_dict("records") == [
        {"path": "corpus/bad.pdf", "reason": "empty_file", "message": "the file has no bytes"}
    ]
    # the file now holds other bytes: the old content leaves the outputs
    store.set_file("/abs/a.txt", "corpus/a.txt", "c" * 16, 5, None, "failed", None)
    assert store.refresh_retired() == ["a" * 16]
    assert store.documents().empty and store.coded_sentences().empty
    # and comes back without re-extraction when the bytes return
    store.set_file("/abs/a.txt", "corpus/a.txt", "a" * 16, 5, None, "document", None)
    assert store.refresh_retired() == []
    assert len(store.documents()) == 1


def test_duplicates_listed_when_asked(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    save(store, make_document(), file_path="/abs/a.txt")
    store.set_file("/abs/copy.txt", "corpus/copy.txt", "a" * 16, 5, None, "duplicate", None)
    assert len(store.documents()) == 1
    both = store.documents(include_duplicates=True)
    assert both["path"].tolist() == ["corpus/a.txt", "corpus/copy.txt"]
    assert both["duplicate_of"].tolist() == ["", "a" * 16]


def test_fingerprint_follows_content(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    empty = store.fingerprint()
    save(store, make_document())
    with_doc = store.fingerprint()
    store.set_codebook_version("v1")
    store.save_codes(code(store.pending_sentences("v1"), "v1"), None)
    coded = store.fingerprint()
    assert len({empty, with_doc, coded}) == 3
    assert store.fingerprint() == coded


def test_result_tables(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    frame = pd.DataFrame({"topic": [0, 1], "label": ["trust, academy", "pupils"], "share": [0.4, 0.6]})
    store.write_table("topics", frame)
    back = store.read_table("topics")
    assert back.to_dict("records") == frame.to_dict("records")
    assert store.read_table("nothing") is None
    with pytest.raises(ValueError):
        store.write_table("x; DROP TABLE documents", frame)


def test_open_store_needs_a_run(tmp_path):
    with pytest.raises(StoreNotFoundError, match="run `textmine run` first"):
        open_store(tmp_path)
    Store(tmp_path / "textmine.sqlite").close()
    open_store(tmp_path).close()


def test_readers_see_committed_state_while_a_writer_is_open(tmp_path):
    writer = Store(tmp_path / "textmine.sqlite")
    save(writer, make_document())
    reader = open_store(tmp_path)
    assert len(reader.sentences()) == 3
    with writer.transaction() as conn:  # uncommitted work is invisible to the reader
        conn.execute("DELETE FROM sentences")
        assert len(reader.sentences()) == 3
    assert reader.sentences().empty


# -- the run lock ------------------------------------------------------------------------


def test_lock_excludes_a_second_run(tmp_path):
    with RunLock(tmp_path), pytest.raises(StoreLockedError, match="in use by another"):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: free again
        pass


def test_lock_held_by_another_process_and_released_when_it_dies(tmp_path):
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from textmine.store import RunLock; "
            f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match=f"pid {child.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait()
    # the killed run left its lock file behind, but not the lock
    assert (tmp_path / LOCK_FILENAME).exists()
    with RunLock(tmp_path, wait_seconds=5):
        pass


def test_lock_without_fcntl_detects_stale_owner(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "_HAVE_FCNTL", False)
    lock_file = tmp_path / LOCK_FILENAME
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_file.write_text(
        json.dumps({"pid": dead.pid, "host": store_module.socket.gethostname(), "since": "x"})
    )
    with RunLock(tmp_path):  # stale: the owner is gone
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        with pytest.raises(StoreLockedError):
            RunLock(tmp_path).acquire()  # a live owner (us) is respected
    assert not lock_file.exists()


def test_lock_waits_for_release(tmp_path):
    first = RunLock(tmp_path).acquire()
    started = time.monotonic()
    import threading

    threading.Timer(0.5, first.release).start()
    with RunLock(tmp_path, wait_seconds=10):
        assert time.monotonic() - started >= 0.4
