"""The corpus store: one SQLite file per output folder (`<out_dir>/textmine.sqlite`).

It records every document by content hash (doc_id) with its extraction (clean
text, paragraphs, metadata), its sentences, the codes of each sentence keyed by
codebook version, the textmine version that produced them, the files that
failed, and every run. Exports are regenerated from it, and incremental runs
ask it what is already done.

Why SQLite: one file beside the outputs, in the standard library (no extra
dependency), transactional (a run killed mid-way loses at most the document or
batch it was writing), and in WAL mode readers (e.g. `textmine topics`) can
read while a run writes.

Consistency rules: a document's extraction and its sentences are committed in
one transaction; codes are committed per batch; a run that dies leaves
complete documents and complete batches, and the next run does the rest.
Two runs on one output folder are kept apart by `RunLock`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from textmine.columns import (
    CODEBOOK_VERSION,
    DOCUMENT_COLUMNS,
    EVIDENCE,
    FAILURE_COLUMNS,
    MODEL_VERSION,
    SENTENCE_COLUMNS,
    TEXTMINE_VERSION,
    coded_sentence_columns,
    probability_column,
)

STORE_FILENAME = "textmine.sqlite"
SCHEMA_VERSION = "2"

# Metadata columns of the documents table: DOCUMENT_COLUMNS up to `source`.
_DOC_META_COLUMNS = DOCUMENT_COLUMNS[: DOCUMENT_COLUMNS.index("source") + 1]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,            -- running | finished | failed | killed
    textmine_version TEXT,
    codebook_version TEXT,
    settings TEXT,                   -- JSON
    report TEXT                      -- JSON
);
-- Every file path ever seen and what it holds now.
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,           -- absolute path
    display_path TEXT,               -- the path as shown in outputs
    doc_id TEXT NOT NULL,            -- content hash of the file's bytes
    size INTEGER,
    manifest_hash TEXT,              -- hash of the manifest row used to read it
    status TEXT NOT NULL,            -- document | duplicate | failed | missing
    first_run INTEGER,
    last_run INTEGER
);
CREATE INDEX IF NOT EXISTS files_doc ON files(doc_id);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    path TEXT, format TEXT, pages INTEGER,
    title TEXT, publisher TEXT, doc_type TEXT, published TEXT, date_source TEXT,
    licence TEXT, source TEXT,
    text TEXT NOT NULL,              -- clean text; offsets refer to it
    paragraphs TEXT NOT NULL,        -- JSON [[index, page, start, end], ...]
    notes TEXT NOT NULL,             -- JSON list of reader remarks
    n_sentences INTEGER NOT NULL,
    manifest_hash TEXT,
    textmine_version TEXT,
    run_id INTEGER,
    retired INTEGER NOT NULL DEFAULT 0  -- 1 when no current file holds this content
);
CREATE TABLE IF NOT EXISTS sentences (
    sentence_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    path TEXT, page INTEGER, paragraph_index INTEGER, sentence_index INTEGER,
    start_char INTEGER, end_char INTEGER, text TEXT NOT NULL,
    paragraph_number TEXT NOT NULL DEFAULT '',  -- "29" when the paragraph is numbered
    ocr INTEGER NOT NULL DEFAULT 0              -- 1 when the page was read by OCR
);
CREATE INDEX IF NOT EXISTS sentences_doc ON sentences(doc_id, sentence_index);
-- One row per sentence and coding (codebook version + coder version).
CREATE TABLE IF NOT EXISTS codings (
    sentence_id TEXT NOT NULL,
    coding_version TEXT NOT NULL,    -- "<codebook_version>/<model_version>"
    doc_id TEXT NOT NULL,
    probabilities TEXT,              -- JSON {code: p}; NULL for a coder without them
    evidence TEXT,
    textmine_version TEXT,
    run_id INTEGER,
    PRIMARY KEY (sentence_id, coding_version)
);
CREATE INDEX IF NOT EXISTS codings_doc ON codings(doc_id, coding_version);
-- The codes of a coding in long form: one row per code a sentence has (any code).
CREATE TABLE IF NOT EXISTS sentence_codes (
    sentence_id TEXT NOT NULL,
    coding_version TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    code TEXT NOT NULL,
    PRIMARY KEY (sentence_id, coding_version, code)
);
CREATE INDEX IF NOT EXISTS sentence_codes_doc ON sentence_codes(coding_version, doc_id, code);
-- Every file a run or an export wrote into the output folder, and the store state it shows.
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT PRIMARY KEY,           -- relative to the output folder
    kind TEXT NOT NULL,              -- what made it (csv, parquet, qdpx, qdc, figure, ...)
    fingerprint TEXT NOT NULL,       -- Store.fingerprint() when it was written
    run_id INTEGER,
    written_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,           -- absolute path
    display_path TEXT,
    doc_id TEXT,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    password_given INTEGER NOT NULL DEFAULT 0,
    textmine_version TEXT,
    run_id INTEGER,
    duplicate_of TEXT NOT NULL DEFAULT ''  -- doc_id when an identical file failed first
);
"""


class StoreNotFoundError(FileNotFoundError):
    """No processed corpus in an output folder."""


@dataclass(frozen=True)
class CodingVersion:
    """Which coding the store's code tables hold: codebook, coder and their codes."""

    codebook_version: str
    model_version: str
    code_columns: tuple[str, ...]

    @property
    def key(self) -> str:
        """The key of this coding in the codings tables."""
        return f"{self.codebook_version}/{self.model_version}"


def store_path(out_dir: str | os.PathLike) -> Path:
    """Path of the store file in an output folder."""
    return Path(out_dir) / STORE_FILENAME


def open_store(out_dir: str | os.PathLike, *, read_only: bool = False) -> Store:
    """Open the store of an output folder written by `textmine run`.

    With `read_only`, the store is opened for reading only, so a folder on a
    read-only drive (an archive, a shared drive) can be queried.
    """
    path = store_path(out_dir)
    if not path.is_file():
        raise StoreNotFoundError(
            f"no processed corpus in {out_dir}: run `textmine run` first "
            f"(or pass --out with the folder a run wrote)"
        )
    return Store(path, read_only=read_only)


@dataclass(frozen=True)
class StoredFile:
    """What the store knows about one path."""

    path: str
    doc_id: str
    size: int
    manifest_hash: str | None
    status: str


class Store:
    """A textmine store (SQLite). Create with `Store(path)`; the schema is made on open."""

    def __init__(self, path: str | os.PathLike, *, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        if read_only:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(
                uri, uri=True, timeout=60, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA query_only=1")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.path, timeout=60, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=60000")
        with self.transaction() as conn:
            _migrate(conn)
            schema = re.sub(r"--[^\n]*", "", _SCHEMA)
            for statement in schema.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
            )

    # -- plumbing -------------------------------------------------------------
    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; ROLLBACK on any exception (KeyboardInterrupt included)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def _frame(self, sql: str, params: Iterable = ()) -> pd.DataFrame:
        with self._lock:
            cursor = self._conn.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return pd.DataFrame.from_records(rows, columns=names)

    def _sentences_by_path(
        self, select: list[str], join: str = "", params: tuple = ()
    ) -> pd.DataFrame:
        """Current documents' sentences ordered by document path, then sentence index.

        The frame of `SELECT select FROM sentences s JOIN documents d (current
        ones) join ORDER BY d.path, s.sentence_index`, read a document at a time.
        Each document's sentences come in its index's order (no sort of every
        row). That is the order of the one query when no two current documents
        share a path and each document's sentence indexes are distinct integers,
        as checked here; else the one query is run.
        """
        columns = ", ".join(select)
        one_query = (
            f"SELECT {columns} FROM sentences s "
            f"JOIN documents d ON d.doc_id = s.doc_id AND d.retired = 0 {join} "
            "ORDER BY d.path, s.sentence_index"
        )
        per_document = (
            f"SELECT {columns} FROM sentences s {join} WHERE s.doc_id = ? ORDER BY s.sentence_index"
        )
        position = select.index("s.sentence_index")
        with self._lock:
            own_transaction = not self._conn.in_transaction
            if own_transaction:  # one snapshot for all the reads
                self._conn.execute("BEGIN")
            try:
                documents = self._conn.execute(
                    "SELECT doc_id, path FROM documents WHERE retired = 0 ORDER BY path"
                ).fetchall()
                paths = [path for _, path in documents]
                rows: list[tuple] = []
                names: list[str] = []
                ordered = bool(documents) and _distinct_texts(paths)
                for doc_id, _ in documents if ordered else []:
                    cursor = self._conn.execute(per_document, (*params, doc_id))
                    names = [d[0] for d in cursor.description]
                    found = cursor.fetchall()
                    if not _increasing_integers([row[position] for row in found]):
                        ordered = False
                        break
                    rows += found
                if not ordered:
                    cursor = self._conn.execute(one_query, params)
                    names = [d[0] for d in cursor.description]
                    rows = cursor.fetchall()
            finally:
                if own_transaction:
                    self._conn.execute("COMMIT")
        return pd.DataFrame.from_records(rows, columns=names)

    # -- meta -----------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """The meta value stored under `key`, or `default` when there is none."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        """Store `value` under `key` in the meta table, replacing any old value."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def coding(self) -> CodingVersion | None:
        """The current coding (what `coded_sentences` returns), or None before any coding."""
        raw = self.get_meta("coding")
        if not raw:
            return None
        data = json.loads(raw)
        return CodingVersion(
            data["codebook_version"], data["model_version"], tuple(data["code_columns"])
        )

    @property
    def codebook_version(self) -> str | None:
        """The codebook version of the current coding."""
        coding = self.coding
        return coding.codebook_version if coding else None

    @property
    def model_version(self) -> str | None:
        """The coder (model) version of the current coding."""
        coding = self.coding
        return coding.model_version if coding else None

    @property
    def code_columns(self) -> list[str]:
        """The codes of the current coding, in codebook order."""
        coding = self.coding
        return list(coding.code_columns) if coding else []

    # -- runs -----------------------------------------------------------------
    def start_run(self, settings: dict, textmine_version: str) -> int:
        """Record a new run as running; earlier runs still marked running were killed.

        Only the holder of the run lock starts runs, so a run still `running`
        here died without finishing (killed, power cut): it is marked `killed`.
        """
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = 'killed', finished_at = COALESCE(finished_at, ?) "
                "WHERE status = 'running'",
                (_now(),),
            )
            cursor = conn.execute(
                "INSERT INTO runs(started_at, status, textmine_version, settings) "
                "VALUES (?, 'running', ?, ?)",
                (_now(), textmine_version, json.dumps(settings, default=str)),
            )
            return int(cursor.lastrowid or 0)

    def finish_run(
        self, run_id: int, status: str, report: dict, codebook_version: str | None = None
    ) -> None:
        """Record how a run ended, with its report."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, report = ?, codebook_version = ? "
                "WHERE run_id = ?",
                (_now(), status, json.dumps(report, default=str), codebook_version, run_id),
            )

    def runs(self) -> pd.DataFrame:
        """Every run: id, start, end, status, versions."""
        return self._frame(
            "SELECT run_id, started_at, finished_at, status, textmine_version, codebook_version "
            "FROM runs ORDER BY run_id"
        )

    def seconds_per_document(self) -> float | None:
        """Average extraction time per document over earlier finished runs (for batch sizing)."""
        rows = self._query(
            "SELECT report FROM runs WHERE status = 'finished' AND report IS NOT NULL "
            "ORDER BY run_id DESC LIMIT 10"
        )
        total_docs, total_seconds = 0, 0.0
        for (report,) in rows:
            data = json.loads(report)
            n = data.get("counts", {}).get("documents_read", 0)
            seconds = data.get("timings", {}).get("extract", 0.0)
            if n:
                total_docs += n
                total_seconds += seconds
        return total_seconds / total_docs if total_docs else None

    # -- files ----------------------------------------------------------------
    def known_files(self) -> dict[str, StoredFile]:
        """Every file path the store has seen, with its document, size and status."""
        rows = self._query("SELECT path, doc_id, size, manifest_hash, status FROM files")
        return {r[0]: StoredFile(*r) for r in rows}

    def set_file(
        self,
        path: str,
        display_path: str,
        doc_id: str,
        size: int,
        manifest_hash: str | None,
        status: str,
        run_id: int | None,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """Insert or update a file's row, in `conn`'s transaction when given, else in its own."""
        sql = (
            "INSERT INTO files(path, display_path, doc_id, size, manifest_hash, status, "
            "first_run, last_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "display_path = excluded.display_path, doc_id = excluded.doc_id, size = excluded.size, "
            "manifest_hash = excluded.manifest_hash, status = excluded.status, "
            "last_run = excluded.last_run"
        )
        params = (path, display_path, doc_id, size, manifest_hash, status, run_id, run_id)
        if conn is not None:
            conn.execute(sql, params)
        else:
            with self.transaction() as tx:
                tx.execute(sql, params)

    def record_unchanged(
        self, files: Iterable[tuple[str, str, str, int, str | None]], run_id: int | None
    ) -> None:
        """Files whose content is stored already: (path, display_path, doc_id, size, manifest_hash).

        A moved or renamed file's document and sentences take the new path.
        """
        with self.transaction() as conn:
            for path, display_path, doc_id, size, manifest_hash in files:
                self.set_file(
                    path, display_path, doc_id, size, manifest_hash, "document", run_id, conn=conn
                )
                for table in ("documents", "sentences"):
                    conn.execute(
                        f"UPDATE {table} SET path = ? WHERE doc_id = ? AND path != ?",
                        (display_path, doc_id, display_path),
                    )

    def record_duplicates(
        self, files: Iterable[tuple[str, str, str, int, str | None]], run_id: int | None
    ) -> None:
        """Files whose bytes equal another file's: (path, display_path, doc_id, size, hash)."""
        with self.transaction() as conn:
            for path, display_path, doc_id, size, manifest_hash in files:
                self.set_file(
                    path, display_path, doc_id, size, manifest_hash, "duplicate", run_id, conn=conn
                )
                conn.execute("DELETE FROM failures WHERE path = ?", (path,))

    def has_document(self, doc_id: str) -> bool:
        """True when a document with this doc_id is stored."""
        return bool(self._query("SELECT 1 FROM documents WHERE doc_id = ?", (doc_id,)))

    def document_manifest_hashes(self) -> dict[str, str | None]:
        """The manifest-row hash of every stored document, by doc_id."""
        return dict(self._query("SELECT doc_id, manifest_hash FROM documents"))

    def refresh_retired(self) -> list[str]:
        """Mark documents no current file holds as retired (and revive re-appearing ones).

        Returns the doc_ids newly retired. Retired documents keep their data (a
        file that returns to an earlier content is not re-extracted) but leave
        every output.
        """
        with self.transaction() as conn:
            newly = [
                r[0]
                for r in conn.execute(
                    "SELECT doc_id FROM documents WHERE retired = 0 AND doc_id NOT IN "
                    "(SELECT doc_id FROM files WHERE status IN ('document', 'duplicate'))"
                ).fetchall()
            ]
            conn.execute(
                "UPDATE documents SET retired = CASE WHEN doc_id IN "
                "(SELECT doc_id FROM files WHERE status IN ('document', 'duplicate')) "
                "THEN 0 ELSE 1 END"
            )
        return newly

    # -- writes ---------------------------------------------------------------
    def save_document(
        self,
        document,
        sentences: pd.DataFrame,
        *,
        file_path: str,
        size: int,
        manifest_hash: str | None,
        run_id: int | None,
        textmine_version: str,
    ) -> None:
        """Store one read document with its sentences, atomically.

        Replaces an earlier extraction of the same content (and its codes),
        clears a failure recorded for the file, and points the file at it.
        """
        row = document.to_row()
        paragraphs = json.dumps([[p.index, p.page, p.start, p.end] for p in document.paragraphs])
        # frames made before paragraph numbers and OCR marks were columns get their defaults
        sentences = sentences.reindex(columns=SENTENCE_COLUMNS)
        sentences["paragraph_number"] = sentences["paragraph_number"].astype(object).fillna("")
        sentences["ocr"] = sentences["ocr"].fillna(0).astype(int)
        sentence_rows = _plain_rows(sentences)
        with self.transaction() as conn:
            conn.execute("DELETE FROM codings WHERE doc_id = ?", (document.doc_id,))
            conn.execute("DELETE FROM sentence_codes WHERE doc_id = ?", (document.doc_id,))
            conn.execute("DELETE FROM sentences WHERE doc_id = ?", (document.doc_id,))
            conn.execute("DELETE FROM documents WHERE doc_id = ?", (document.doc_id,))
            conn.execute(
                f"INSERT INTO documents({', '.join(_DOC_META_COLUMNS)}, text, paragraphs, notes, "
                "n_sentences, manifest_hash, textmine_version, run_id, retired) "
                f"VALUES ({', '.join('?' * (len(_DOC_META_COLUMNS) + 7))}, 0)",
                [_plain(row.get(c, "")) for c in _DOC_META_COLUMNS]
                + [
                    document.text,
                    paragraphs,
                    json.dumps(list(document.notes)),
                    len(sentence_rows),
                    manifest_hash,
                    textmine_version,
                    run_id,
                ],
            )
            conn.executemany(
                f"INSERT INTO sentences({', '.join(SENTENCE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(SENTENCE_COLUMNS))})",
                sentence_rows,
            )
            conn.execute("DELETE FROM failures WHERE path = ?", (file_path,))
            self.set_file(
                file_path,
                document.path,
                document.doc_id,
                size,
                manifest_hash,
                "document",
                run_id,
                conn=conn,
            )

    def save_failure(
        self,
        *,
        file_path: str,
        display_path: str,
        doc_id: str,
        size: int,
        reason: str,
        message: str,
        password_given: bool,
        run_id: int | None,
        textmine_version: str,
        duplicate_of: str = "",
    ) -> None:
        """Record that a file failed, with its reason (replacing an earlier record)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO failures(path, display_path, doc_id, reason, message, "
                "password_given, textmine_version, run_id, duplicate_of) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET display_path = excluded.display_path, "
                "doc_id = excluded.doc_id, reason = excluded.reason, message = excluded.message, "
                "password_given = excluded.password_given, "
                "textmine_version = excluded.textmine_version, run_id = excluded.run_id, "
                "duplicate_of = excluded.duplicate_of",
                (
                    file_path,
                    display_path,
                    doc_id,
                    reason,
                    message,
                    int(password_given),
                    textmine_version,
                    run_id,
                    duplicate_of,
                ),
            )
            self.set_file(file_path, display_path, doc_id, size, None, "failed", run_id, conn=conn)

    def failure_record(self, file_path: str) -> dict | None:
        """What the store knows of a failed file: doc_id, reason, message, versions."""
        rows = self._query(
            "SELECT doc_id, reason, message, password_given, textmine_version, duplicate_of "
            "FROM failures WHERE path = ?",
            (file_path,),
        )
        if not rows:
            return None
        doc_id, reason, message, password_given, version, duplicate_of = rows[0]
        return {
            "doc_id": doc_id,
            "reason": reason,
            "message": message,
            "password_given": bool(password_given),
            "textmine_version": version,
            "duplicate_of": duplicate_of,
        }

    def mark_missing(self, paths: Iterable[str], run_id: int | None) -> None:
        """Files that were scanned before and are gone now: they leave the outputs."""
        paths = list(paths)
        if not paths:
            return
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE files SET status = 'missing', last_run = ? WHERE path = ?",
                [(run_id, p) for p in paths],
            )
            conn.executemany("DELETE FROM failures WHERE path = ?", [(p,) for p in paths])

    def save_codes(self, coded: pd.DataFrame, coding: CodingVersion, run_id: int | None) -> int:
        """Store one batch of coded sentences under `coding`.

        `coded` has sentence_id, doc_id, one 0/1 column per code of the coding,
        optional `p_<code>` probabilities, evidence and textmine_version.
        """
        if coded.empty:
            return 0
        key = coding.key
        codes = list(coding.code_columns)
        missing = [c for c in ("sentence_id", "doc_id", *codes) if c not in coded.columns]
        if missing:
            raise ValueError(f"coded sentences lack the column(s) {', '.join(missing)}")
        p_columns = [probability_column(c) for c in codes]
        has_p = all(c in coded.columns for c in p_columns)
        ids = coded["sentence_id"].astype(str).tolist()
        doc_ids = coded["doc_id"].astype(str).tolist()
        evidence = _plain_values(coded[EVIDENCE]) if EVIDENCE in coded else [None] * len(coded)
        versions = (
            _plain_values(coded[TEXTMINE_VERSION])
            if TEXTMINE_VERSION in coded
            else [None] * len(coded)
        )
        probabilities: Sequence[str | None]
        if has_p:
            probabilities = _probability_json(codes, coded[p_columns].to_numpy(dtype=float))
        else:
            probabilities = [None] * len(coded)
        rows = list(
            zip(
                ids,
                itertools.repeat(key),
                doc_ids,
                probabilities,
                evidence,
                versions,
                itertools.repeat(run_id),
            )
        )
        values = coded[codes].to_numpy(dtype="int64")
        positives = [
            (ids[i], key, doc_ids[i], codes[j]) for i, j in zip(*values.nonzero(), strict=True)
        ]
        with self.transaction() as conn:
            conn.executemany(
                "DELETE FROM sentence_codes WHERE sentence_id = ? AND coding_version = ?",
                [(sid, key) for sid in ids],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO codings(sentence_id, coding_version, doc_id, "
                "probabilities, evidence, textmine_version, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO sentence_codes(sentence_id, coding_version, doc_id, code) "
                "VALUES (?, ?, ?, ?)",
                positives,
            )
        return len(rows)

    def set_coding(self, coding: CodingVersion) -> None:
        """Make `coding` current; codings other than it and the one before are dropped."""
        previous = self.coding
        keep = [c.key for c in (coding, previous) if c is not None]
        value = json.dumps(
            {
                "codebook_version": coding.codebook_version,
                "model_version": coding.model_version,
                "code_columns": list(coding.code_columns),
            }
        )
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('coding', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (value,),
            )
            if previous is None or previous.key != coding.key:
                marks = ", ".join("?" * len(keep))
                for table in ("codings", "sentence_codes"):
                    conn.execute(f"DELETE FROM {table} WHERE coding_version NOT IN ({marks})", keep)

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Replace a result table (topics, trends) in one transaction."""
        _check_table_name(name)
        table = f"result_{name}"
        frame = frame.reset_index(drop=True)
        with self.transaction() as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            columns = [str(c) for c in frame.columns]
            if not columns:
                return
            conn.execute(f'CREATE TABLE "{table}" ({", ".join(_quote(c) for c in columns)})')
            conn.executemany(
                f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(columns))})',
                _plain_rows(frame),
            )

    def read_table(self, name: str) -> pd.DataFrame | None:
        """A result table written by `write_table`; None when there is none."""
        _check_table_name(name)
        table = f"result_{name}"
        if not self._query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)):
            return None
        return self._frame(f'SELECT * FROM "{table}"')

    # -- reads ----------------------------------------------------------------
    def pending_sentences(
        self, coding: CodingVersion, limit_documents: int | None = None
    ) -> pd.DataFrame:
        """Sentences of current documents not yet coded with `coding`, whole documents.

        Columns: SENTENCE_COLUMNS and the document's doc_type. With
        `limit_documents`, only the sentences of that many documents.
        """
        columns = ", ".join("s." + c for c in SENTENCE_COLUMNS)
        pending_docs = (
            "SELECT DISTINCT s.doc_id FROM sentences s "
            "JOIN documents d ON d.doc_id = s.doc_id AND d.retired = 0 "
            "LEFT JOIN codings c ON c.sentence_id = s.sentence_id AND c.coding_version = ? "
            "WHERE c.sentence_id IS NULL ORDER BY s.doc_id"
        )
        params: list = [coding.key]
        if limit_documents is not None:
            pending_docs += " LIMIT ?"
            params.append(int(limit_documents))
        sql = (
            f"SELECT {columns}, d.doc_type FROM sentences s "
            "JOIN documents d ON d.doc_id = s.doc_id "
            f"WHERE s.doc_id IN ({pending_docs}) "
            "AND NOT EXISTS (SELECT 1 FROM codings c WHERE c.sentence_id = s.sentence_id "
            "AND c.coding_version = ?) ORDER BY s.doc_id, s.sentence_index"
        )
        params.append(coding.key)
        frame = self._frame(sql, params)
        if frame.empty:
            return pd.DataFrame(columns=[*SENTENCE_COLUMNS, "doc_type"])
        return _typed_sentences(frame)

    def count_pending(self, coding: CodingVersion) -> int:
        """How many sentences of current documents are not yet coded with `coding`."""
        return self._query(
            "SELECT COUNT(*) FROM sentences s "
            "JOIN documents d ON d.doc_id = s.doc_id AND d.retired = 0 "
            "LEFT JOIN codings c ON c.sentence_id = s.sentence_id AND c.coding_version = ? "
            "WHERE c.sentence_id IS NULL",
            (coding.key,),
        )[0][0]

    def documents(self, include_duplicates: bool = False) -> pd.DataFrame:
        """Current documents: DOCUMENT_COLUMNS plus `n_<code>` sentence counts.

        Counts are for the current coding, one column per code of its codebook.
        With `include_duplicates`, every other file holding the same content gets
        a row too (same doc_id, its own path, `duplicate_of` = doc_id).
        """
        coding = self.coding
        codes = list(coding.code_columns) if coding else []
        count_columns = [f"n_{c}" for c in codes]
        frame = self._frame(
            f"SELECT {', '.join('d.' + c for c in _DOC_META_COLUMNS)}, d.n_sentences, "
            "'' AS duplicate_of FROM documents d WHERE d.retired = 0 ORDER BY d.path"
        )
        columns = DOCUMENT_COLUMNS + count_columns
        if frame.empty:
            return pd.DataFrame(columns=columns)
        if coding is not None:
            counts = self._frame(
                "SELECT doc_id, code, COUNT(*) AS n FROM sentence_codes "
                "WHERE coding_version = ? GROUP BY doc_id, code",
                (coding.key,),
            )
            wide = (
                counts.pivot(index="doc_id", columns="code", values="n")
                if not counts.empty
                else pd.DataFrame()
            )
            for code in codes:
                series = wide[code] if code in wide else pd.Series(dtype="float64")
                frame[f"n_{code}"] = frame["doc_id"].map(series).fillna(0).astype("int64")
        if include_duplicates:
            dups = self._query(
                "SELECT f.doc_id, f.display_path FROM files f JOIN documents d "
                "ON d.doc_id = f.doc_id AND d.retired = 0 WHERE f.status = 'duplicate' "
                "ORDER BY f.path"
            )
            if dups:
                by_id = frame.set_index("doc_id")
                rows = []
                for doc_id, path in dups:
                    row = by_id.loc[doc_id].to_dict()
                    row.update(doc_id=doc_id, path=path, duplicate_of=doc_id)
                    rows.append(row)
                frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
        for column in ("pages", "n_sentences", *count_columns):
            frame[column] = frame[column].astype("int64")
        return frame[columns]

    def coded_sentences(self) -> pd.DataFrame:
        """Coded sentences of current documents with the current coding.

        Columns: `coded_sentence_columns(codes, with_probabilities)`: sentence
        columns, one 0/1 column per code, `p_<code>` when the coder gives
        probabilities, evidence and the versions. Sentences not (yet) coded with
        the current coding are left out.
        """
        coding = self.coding
        if coding is None:
            return pd.DataFrame(columns=coded_sentence_columns([]))
        codes = list(coding.code_columns)
        select = [f"s.{c}" for c in SENTENCE_COLUMNS]
        select += ["c.probabilities", f"c.{EVIDENCE}", f"c.{TEXTMINE_VERSION}"]
        frame = self._sentences_by_path(
            select,
            "JOIN codings c ON c.sentence_id = s.sentence_id AND c.coding_version = ?",
            (coding.key,),
        )
        with_p = bool(len(frame)) and frame["probabilities"].notna().all()
        columns = coded_sentence_columns(codes, with_probabilities=with_p)
        if frame.empty:
            return pd.DataFrame(columns=columns)
        frame = _typed_sentences(frame)
        positives = self._query(
            "SELECT sentence_id, code FROM sentence_codes WHERE coding_version = ?",
            (coding.key,),
        )
        for code, flags in _code_flags(frame["sentence_id"], positives, codes).items():
            frame[code] = flags
        written = _written_probabilities(frame["probabilities"], codes) if with_p else None
        if written is not None:  # every row as save_codes writes it: a column per code
            for code, column_values in written.items():
                frame[probability_column(code)] = pd.Series(column_values, index=frame.index)
        elif with_p:  # one JSON object per row: parsed as one array, a column per code
            parsed = json.loads("[" + ",".join(frame["probabilities"]) + "]")
            missing = float("nan")
            for code in codes:
                if not any(code in row for row in parsed):  # stored without it: 0.0, as before
                    frame[probability_column(code)] = 0.0
                    continue
                values = (row.get(code, missing) for row in parsed)  # NaN where a row lacks it
                frame[probability_column(code)] = pd.Series(
                    np.fromiter(values, "float64", count=len(parsed)), index=frame.index
                )
        frame[CODEBOOK_VERSION] = coding.codebook_version
        frame[MODEL_VERSION] = coding.model_version
        return frame[columns]

    def sentences(self) -> pd.DataFrame:
        """SENTENCE_COLUMNS for current documents."""
        frame = self._sentences_by_path([f"s.{c}" for c in SENTENCE_COLUMNS])
        if frame.empty:
            return pd.DataFrame(columns=SENTENCE_COLUMNS)
        return _typed_sentences(frame)

    def document_texts(self) -> dict[str, str]:
        """{doc_id: clean text} for current documents."""
        return dict(self._query("SELECT doc_id, text FROM documents WHERE retired = 0"))

    def document_paragraphs(self, doc_id: str) -> list[tuple[int, int, int, int]]:
        """A document's paragraphs as (index, page, start, end); [] for an unknown doc_id."""
        rows = self._query("SELECT paragraphs FROM documents WHERE doc_id = ?", (doc_id,))
        return [tuple(p) for p in json.loads(rows[0][0])] if rows else []

    def failures(self) -> pd.DataFrame:
        """FAILURE_COLUMNS for files that currently fail (path as shown to the user)."""
        frame = self._frame(
            "SELECT display_path AS path, reason, message, duplicate_of FROM failures "
            "ORDER BY display_path"
        )
        if frame.empty:
            return pd.DataFrame(columns=FAILURE_COLUMNS)
        return frame[FAILURE_COLUMNS]

    def counts(self) -> dict[str, int]:
        """Totals over current documents."""
        coding = self.coding
        docs, pages, sentences = self._query(
            "SELECT COUNT(*), COALESCE(SUM(pages), 0), COALESCE(SUM(n_sentences), 0) "
            "FROM documents WHERE retired = 0"
        )[0]
        coded = self._query(
            "SELECT COUNT(*) FROM codings c JOIN documents d ON d.doc_id = c.doc_id "
            "AND d.retired = 0 WHERE c.coding_version = ?",
            (coding.key if coding else "",),
        )[0][0]
        failed = self._query("SELECT COUNT(*) FROM failures")[0][0]
        duplicates = self._query("SELECT COUNT(*) FROM files WHERE status = 'duplicate'")[0][0]
        return {
            "documents": docs,
            "pages": pages,
            "sentences": sentences,
            "coded_sentences": coded,
            "failures": failed,
            "duplicates": duplicates,
        }

    def fingerprint(self) -> str:
        """A hash of everything the outputs are made from (cheap: no text is read)."""
        digest = hashlib.sha256()
        coding = self.coding
        key = coding.key if coding else ""
        digest.update(repr(coding).encode())
        for query, params in (
            (
                "SELECT doc_id, manifest_hash, n_sentences, textmine_version FROM documents "
                "WHERE retired = 0 ORDER BY doc_id",
                (),
            ),
            ("SELECT path, doc_id, status FROM files ORDER BY path", ()),
            ("SELECT path, reason, message FROM failures ORDER BY path", ()),
            ("SELECT COUNT(*), MAX(rowid) FROM codings WHERE coding_version = ?", (key,)),
        ):
            for row in self._query(query, params):
                digest.update(repr(row).encode())
        return digest.hexdigest()[:16]

    # -- outputs ----------------------------------------------------------------
    def register_outputs(
        self, paths: Iterable[str], kind: str, fingerprint: str, run_id: int | None
    ) -> None:
        """Record files written into the output folder (paths relative to it)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO outputs(path, kind, fingerprint, run_id, written_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, "
                "fingerprint = excluded.fingerprint, run_id = excluded.run_id, "
                "written_at = excluded.written_at",
                [(p, kind, fingerprint, run_id, _now()) for p in paths],
            )

    def registered_outputs(self) -> pd.DataFrame:
        """Every registered output: path (relative to the folder), kind, fingerprint, run_id."""
        return self._frame(
            "SELECT path, kind, fingerprint, run_id, written_at FROM outputs ORDER BY path"
        )

    def forget_outputs(self, paths: Iterable[str]) -> None:
        """Drop files from the registry (they were removed)."""
        with self.transaction() as conn:
            conn.executemany("DELETE FROM outputs WHERE path = ?", [(p,) for p in paths])


# -- helpers --------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store of an earlier schema to this one (codes are re-made, not copied)."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if row is None:
        return
    sentence_columns = [r[1] for r in conn.execute("PRAGMA table_info(sentences)").fetchall()]
    if sentence_columns and "paragraph_number" not in sentence_columns:
        conn.execute("ALTER TABLE sentences ADD COLUMN paragraph_number TEXT NOT NULL DEFAULT ''")
    if sentence_columns and "ocr" not in sentence_columns:
        conn.execute("ALTER TABLE sentences ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0")
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if version is None or version[0] == SCHEMA_VERSION:
        return
    # schema 1 kept ten fixed code columns: drop them; the next run codes again.
    conn.execute("DROP TABLE IF EXISTS codes")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(failures)").fetchall()]
    if columns and "duplicate_of" not in columns:
        conn.execute("ALTER TABLE failures ADD COLUMN duplicate_of TEXT NOT NULL DEFAULT ''")
    conn.execute("DELETE FROM meta WHERE key IN ('codebook_version', 'outputs_fingerprint')")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))


_JSON_NUMBER = r"-?[0-9][0-9.eE+-]*|NaN|-?Infinity"  # what json.loads may read as a number


def _written_probabilities(texts: pd.Series, codes: list[str]) -> dict[str, np.ndarray] | None:
    """The probability columns of JSON objects all written as `_probability_json` writes them.

    {code: float64 per row}, the values `json.loads` reads from each row, or
    None when a row has another layout (other keys, order or spacing): parse
    those with `json`. Each distinct number text of a column is read once by
    `json.loads`.
    """
    if not codes or len(set(codes)) != len(codes) or len(texts) == 0:
        return None
    keys = ", ".join(
        f"{re.escape(json.dumps(code))}: (?P<p{i}>{_JSON_NUMBER})" for i, code in enumerate(codes)
    )
    try:
        strings = pa.array(texts.array, type=pa.large_string())
        if isinstance(strings, pa.ChunkedArray):
            strings = strings.combine_chunks()
        found = pc.extract_regex(strings, f"^\\{{{keys}\\}}$")
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if found.null_count:  # a row of another layout
        return None
    columns: dict[str, np.ndarray] = {}
    for index, code in enumerate(codes):
        encoded = pc.dictionary_encode(found.field(index))
        try:
            numbers = [json.loads(text) for text in encoded.dictionary.to_pylist()]
        except ValueError:  # not a JSON number after all: `json` says why
            return None
        if not all(type(n) in (int, float) for n in numbers):
            return None
        distinct = np.array([float(n) for n in numbers], dtype="float64")
        columns[code] = distinct[encoded.indices.to_numpy(zero_copy_only=False)]
    return columns


def _distinct_texts(values: list) -> bool:
    """True when every value is a string and no two are equal."""
    return all(type(v) is str for v in values) and len(set(values)) == len(values)


def _increasing_integers(values: list) -> bool:
    """True when every value is an int and each is larger than the one before."""
    return all(type(v) is int for v in values) and all(a < b for a, b in itertools.pairwise(values))


def _code_flags(
    sentence_ids: pd.Series, positives: list[tuple], codes: list[str]
) -> dict[str, np.ndarray | pd.Series]:
    """{code: 0/1 int64 per sentence}: 1 where (sentence_id, code) is a row of `positives`.

    As `sentence_ids.isin(ids of the code)`, in one pass over `positives`.
    """
    row_of = {sid: row for row, sid in enumerate(sentence_ids.tolist())}
    if len(row_of) != len(sentence_ids):  # a sentence twice: test each code's ids
        return {
            code: sentence_ids.isin({sid for sid, c in positives if c == code}).astype("int64")
            for code in codes
        }
    flags = {code: np.zeros(len(sentence_ids), dtype=np.int64) for code in codes}
    for sentence_id, code in positives:
        row = row_of.get(sentence_id)
        if row is not None and code in flags:
            flags[code][row] = 1
    return flags


def _plain_rows(frame: pd.DataFrame) -> list[tuple]:
    """The frame's rows as tuples of `_plain` values, converted a column at a time.

    `tolist()` gives Python ints, floats and strings already; only other values
    (NaN, NumPy or pandas scalars, dicts, lists) go through `_plain`.
    """
    columns = []
    for _, column in frame.items():
        values = column.tolist()
        columns.append([v if type(v) in _PLAIN_TYPES else _plain(v) for v in values])
    return list(zip(*columns, strict=True)) if columns else [() for _ in range(len(frame))]


_PLAIN_TYPES = (str, int)  # exactly these types: `_plain` returns them unchanged (not bool)


def _plain_values(column: pd.Series) -> list:
    """`[_plain(v) for v in column]`, calling `_plain` only for values it would change."""
    return [v if type(v) in _PLAIN_TYPES else _plain(v) for v in column.tolist()]


def _probability_json(codes: list[str], values: np.ndarray) -> list[str]:
    """`json.dumps(dict(zip(codes, row)))` of each row rounded to 4 places, made column-wise.

    Each distinct value of a column is written once, as `json` writes a float
    (its repr; NaN, Infinity, -Infinity), then every row is filled into one
    template of the codes as `json` writes the keys.
    """
    rounded = values.round(4)
    if not codes or len(set(codes)) != len(codes):
        return [json.dumps(dict(zip(codes, row.tolist(), strict=True))) for row in rounded]
    columns = []
    for j in range(len(codes)):
        bits = np.ascontiguousarray(rounded[:, j]).view(np.int64)
        distinct, positions = np.unique(bits, return_inverse=True)  # by bits: -0.0 is kept
        texts = [json.dumps(v) for v in distinct.view(np.float64).tolist()]
        columns.append(np.array(texts, dtype=object)[positions.ravel()])
    template = "{" + ", ".join(json.dumps(c).replace("%", "%%") + ": %s" for c in codes) + "}"
    return [template % row for row in zip(*columns, strict=True)]


def _plain(value):
    """A value SQLite accepts: NumPy / pandas scalars as Python values, NaN as NULL, dict/list as JSON."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _typed_sentences(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("page", "paragraph_index", "sentence_index", "start_char", "end_char", "ocr"):
        if column in frame:
            frame[column] = frame[column].astype("int64")
    return frame


def _check_table_name(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad result table name {name!r}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
