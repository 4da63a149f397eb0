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
import errno
import hashlib
import json
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from textmine.columns import (
    CODE_COLUMNS,
    CODEBOOK_VERSION,
    CODED_SENTENCE_COLUMNS,
    DOCUMENT_COLUMNS,
    EVIDENCE,
    FAILURE_COLUMNS,
    SENTENCE_COLUMNS,
    TEXTMINE_VERSION,
)

STORE_FILENAME = "textmine.sqlite"
LOCK_FILENAME = ".textmine.lock"
SCHEMA_VERSION = "1"

# Metadata columns of the documents table: DOCUMENT_COLUMNS up to `source`.
_DOC_META_COLUMNS = DOCUMENT_COLUMNS[: DOCUMENT_COLUMNS.index("source") + 1]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,            -- running | finished | failed
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
    start_char INTEGER, end_char INTEGER, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_doc ON sentences(doc_id, sentence_index);
CREATE TABLE IF NOT EXISTS codes (
    sentence_id TEXT NOT NULL,
    codebook_version TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    {", ".join(f"{c} INTEGER NOT NULL" for c in CODE_COLUMNS)},
    evidence TEXT,
    textmine_version TEXT,
    run_id INTEGER,
    PRIMARY KEY (sentence_id, codebook_version)
);
CREATE INDEX IF NOT EXISTS codes_doc ON codes(doc_id, codebook_version);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,           -- absolute path
    display_path TEXT,
    doc_id TEXT,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    password_given INTEGER NOT NULL DEFAULT 0,
    textmine_version TEXT,
    run_id INTEGER
);
"""


class StoreNotFoundError(FileNotFoundError):
    """No processed corpus in an output folder."""


class StoreLockedError(RuntimeError):
    """Another run holds the output folder."""


def store_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / STORE_FILENAME


def open_store(out_dir: str | os.PathLike) -> Store:
    """Open the store of an output folder written by `textmine run`."""
    path = store_path(out_dir)
    if not path.is_file():
        raise StoreNotFoundError(
            f"no processed corpus in {out_dir}: run `textmine run` first "
            f"(or pass --out with the folder a run wrote)"
        )
    return Store(path)


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

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=60, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=60000")
        with self.transaction() as conn:
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

    # -- meta -----------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def codebook_version(self) -> str | None:
        """The codebook version of the last run that coded (what `coded_sentences` returns)."""
        return self.get_meta("codebook_version")

    # -- runs -----------------------------------------------------------------
    def start_run(self, settings: dict, textmine_version: str) -> int:
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO runs(started_at, status, textmine_version, settings) "
                "VALUES (?, 'running', ?, ?)",
                (_now(), textmine_version, json.dumps(settings, default=str)),
            )
            return int(cursor.lastrowid)

    def finish_run(
        self, run_id: int, status: str, report: dict, codebook_version: str | None = None
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, report = ?, codebook_version = ? "
                "WHERE run_id = ?",
                (_now(), status, json.dumps(report, default=str), codebook_version, run_id),
            )

    def runs(self) -> pd.DataFrame:
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

    def has_document(self, doc_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM documents WHERE doc_id = ?", (doc_id,)))

    def document_manifest_hashes(self) -> dict[str, str | None]:
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
        sentence_rows = [
            tuple(_plain(v) for v in rec)
            for rec in sentences[SENTENCE_COLUMNS].itertuples(index=False, name=None)
        ]
        with self.transaction() as conn:
            conn.execute("DELETE FROM codes WHERE doc_id = ?", (document.doc_id,))
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
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO failures(path, display_path, doc_id, reason, message, "
                "password_given, textmine_version, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET display_path = excluded.display_path, "
                "doc_id = excluded.doc_id, reason = excluded.reason, message = excluded.message, "
                "password_given = excluded.password_given, "
                "textmine_version = excluded.textmine_version, run_id = excluded.run_id",
                (
                    file_path,
                    display_path,
                    doc_id,
                    reason,
                    message,
                    int(password_given),
                    textmine_version,
                    run_id,
                ),
            )
            self.set_file(
                file_path, display_path, doc_id, size, None, "failed", run_id, conn=conn
            )

    def failure_record(self, file_path: str) -> dict | None:
        rows = self._query(
            "SELECT doc_id, reason, password_given, textmine_version FROM failures WHERE path = ?",
            (file_path,),
        )
        if not rows:
            return None
        doc_id, reason, password_given, version = rows[0]
        return {
            "doc_id": doc_id,
            "reason": reason,
            "password_given": bool(password_given),
            "textmine_version": version,
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

    def save_codes(self, coded: pd.DataFrame, run_id: int | None) -> int:
        """Store one batch of coded sentences (sentence_id, CODE_COLUMNS, evidence, versions)."""
        if coded.empty:
            return 0
        columns = ["sentence_id", CODEBOOK_VERSION, "doc_id", *CODE_COLUMNS, EVIDENCE]
        rows = [
            tuple(_plain(v) for v in rec) + (_plain(tm), run_id)
            for rec, tm in zip(
                coded[columns].itertuples(index=False, name=None),
                coded[TEXTMINE_VERSION],
                strict=True,
            )
        ]
        with self.transaction() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO codes({', '.join(columns)}, textmine_version, run_id) "
                f"VALUES ({', '.join('?' * (len(columns) + 2))})",
                rows,
            )
        return len(rows)

    def set_codebook_version(self, version: str) -> None:
        """Make `version` current; codes of versions other than it and the one before go."""
        previous = self.codebook_version
        keep = [v for v in (version, previous) if v]
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('codebook_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (version,),
            )
            if previous != version:
                conn.execute(
                    f"DELETE FROM codes WHERE codebook_version NOT IN "
                    f"({', '.join('?' * len(keep))})",
                    keep,
                )

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
            conn.execute(
                f'CREATE TABLE "{table}" ({", ".join(_quote(c) for c in columns)})'
            )
            conn.executemany(
                f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(columns))})',
                [tuple(_plain(v) for v in rec) for rec in frame.itertuples(index=False, name=None)],
            )

    def read_table(self, name: str) -> pd.DataFrame | None:
        _check_table_name(name)
        table = f"result_{name}"
        if not self._query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)):
            return None
        return self._frame(f'SELECT * FROM "{table}"')

    # -- reads ----------------------------------------------------------------
    def pending_sentences(self, codebook_version: str, limit: int | None = None) -> pd.DataFrame:
        """Sentences of current documents not yet coded with `codebook_version`."""
        sql = (
            f"SELECT {', '.join('s.' + c for c in SENTENCE_COLUMNS)} FROM sentences s "
            "JOIN documents d ON d.doc_id = s.doc_id AND d.retired = 0 "
            "LEFT JOIN codes c ON c.sentence_id = s.sentence_id AND c.codebook_version = ? "
            "WHERE c.sentence_id IS NULL ORDER BY s.doc_id, s.sentence_index"
        )
        params: list = [codebook_version]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return _typed_sentences(self._frame(sql, params))

    def count_pending(self, codebook_version: str) -> int:
        return self._query(
            "SELECT COUNT(*) FROM sentences s "
            "JOIN documents d ON d.doc_id = s.doc_id AND d.retired = 0 "
            "LEFT JOIN codes c ON c.sentence_id = s.sentence_id AND c.codebook_version = ? "
            "WHERE c.sentence_id IS NULL",
            (codebook_version,),
        )[0][0]

    def documents(self, include_duplicates: bool = False) -> pd.DataFrame:
        """Current documents: DOCUMENT_COLUMNS plus `n_<code>` sentence counts.

        Counts are for the current codebook version. With `include_duplicates`,
        every other file holding the same content gets a row too (same doc_id,
        its own path, `duplicate_of` = doc_id).
        """
        version = self.codebook_version or ""
        counts = ", ".join(f"COALESCE(SUM(c.{c}), 0) AS n_{c}" for c in CODE_COLUMNS)
        frame = self._frame(
            f"SELECT {', '.join('d.' + c for c in _DOC_META_COLUMNS)}, d.n_sentences, "
            f"'' AS duplicate_of, {counts} FROM documents d "
            "LEFT JOIN codes c ON c.doc_id = d.doc_id AND c.codebook_version = ? "
            "WHERE d.retired = 0 GROUP BY d.doc_id ORDER BY d.path",
            (version,),
        )
        if include_duplicates and not frame.empty:
            dups = self._query(
                "SELECT f.doc_id, f.display_path FROM files f JOIN documents d ON d.doc_id = f.doc_id "
                "AND d.retired = 0 WHERE f.status = 'duplicate' ORDER BY f.path"
            )
            if dups:
                by_id = frame.set_index("doc_id")
                rows = []
                for doc_id, path in dups:
                    row = by_id.loc[doc_id].to_dict()
                    row.update(doc_id=doc_id, path=path, duplicate_of=doc_id)
                    rows.append(row)
                frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
        columns = DOCUMENT_COLUMNS + [f"n_{c}" for c in CODE_COLUMNS]
        if frame.empty:
            return pd.DataFrame(columns=columns)
        for column in ("pages", "n_sentences", *(f"n_{c}" for c in CODE_COLUMNS)):
            frame[column] = frame[column].astype("int64")
        return frame[columns]

    def coded_sentences(self, codebook_version: str | None = None) -> pd.DataFrame:
        """CODED_SENTENCE_COLUMNS for current documents and one codebook version.

        Defaults to the codebook version of the last run that coded. Sentences not
        (yet) coded with it are left out.
        """
        version = codebook_version or self.codebook_version
        columns = CODED_SENTENCE_COLUMNS
        if version is None:
            return pd.DataFrame(columns=columns)
        select = [f"s.{c}" for c in SENTENCE_COLUMNS] + [f"c.{c}" for c in CODE_COLUMNS]
        select += [f"c.{EVIDENCE}", f"c.{CODEBOOK_VERSION}", f"c.{TEXTMINE_VERSION}"]
        frame = self._frame(
            f"SELECT {', '.join(select)} FROM sentences s "
            "JOIN documents d ON d.doc_id = s.doc_id AND d.retired = 0 "
            "JOIN codes c ON c.sentence_id = s.sentence_id AND c.codebook_version = ? "
            "ORDER BY d.path, s.sentence_index",
            (version,),
        )
        if frame.empty:
            return pd.DataFrame(columns=columns)
        frame = _typed_sentences(frame)
        for column in CODE_COLUMNS:
            frame[column] = frame[column].astype("int64")
        return frame[columns]

    def sentences(self) -> pd.DataFrame:
        """SENTENCE_COLUMNS for current documents."""
        frame = self._frame(
            f"SELECT {', '.join('s.' + c for c in SENTENCE_COLUMNS)} FROM sentences s "
            "JOIN documents d ON d.doc_id = s.doc_id AND d.retired = 0 "
            "ORDER BY d.path, s.sentence_index"
        )
        if frame.empty:
            return pd.DataFrame(columns=SENTENCE_COLUMNS)
        return _typed_sentences(frame)

    def document_texts(self) -> dict[str, str]:
        """{doc_id: clean text} for current documents."""
        return dict(self._query("SELECT doc_id, text FROM documents WHERE retired = 0"))

    def document_paragraphs(self, doc_id: str) -> list[tuple[int, int, int, int]]:
        rows = self._query("SELECT paragraphs FROM documents WHERE doc_id = ?", (doc_id,))
        return [tuple(p) for p in json.loads(rows[0][0])] if rows else []

    def failures(self) -> pd.DataFrame:
        """FAILURE_COLUMNS for files that currently fail (path as shown to the user)."""
        frame = self._frame(
            "SELECT display_path AS path, reason, message FROM failures ORDER BY display_path"
        )
        if frame.empty:
            return pd.DataFrame(columns=FAILURE_COLUMNS)
        return frame[FAILURE_COLUMNS]

    def counts(self) -> dict[str, int]:
        """Totals over current documents."""
        version = self.codebook_version or ""
        docs, pages, sentences = self._query(
            "SELECT COUNT(*), COALESCE(SUM(pages), 0), COALESCE(SUM(n_sentences), 0) "
            "FROM documents WHERE retired = 0"
        )[0]
        coded = self._query(
            "SELECT COUNT(*) FROM codes c JOIN documents d ON d.doc_id = c.doc_id "
            "AND d.retired = 0 WHERE c.codebook_version = ?",
            (version,),
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
        version = self.codebook_version or ""
        digest.update(version.encode())
        for query, params in (
            (
                "SELECT doc_id, manifest_hash, n_sentences, textmine_version FROM documents "
                "WHERE retired = 0 ORDER BY doc_id",
                (),
            ),
            ("SELECT path, doc_id, status FROM files ORDER BY path", ()),
            ("SELECT path, reason, message FROM failures ORDER BY path", ()),
            (
                "SELECT COUNT(*), MAX(rowid) FROM codes WHERE codebook_version = ?",
                (version,),
            ),
        ):
            for row in self._query(query, params):
                digest.update(repr(row).encode())
        return digest.hexdigest()[:16]


# -- run lock -------------------------------------------------------------------


class RunLock:
    """An exclusive lock on an output folder, so two runs never write one store at once.

    POSIX: `fcntl.flock` on `<out_dir>/.textmine.lock`, released by the kernel
    when the process dies, so a killed run never leaves a stale lock. Elsewhere:
    the file is created with O_EXCL and holds the owner's pid and host; a lock
    whose process no longer runs on this host is stale and is taken over.
    """

    def __init__(self, out_dir: str | os.PathLike, wait_seconds: float = 0.0):
        self.path = Path(out_dir) / LOCK_FILENAME
        self.wait_seconds = wait_seconds
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            if self._try_acquire():
                return self
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"{self.path.parent} is in use by another textmine run "
                    f"({self._owner()}); wait for it to finish or use another --out folder"
                )
            time.sleep(0.2)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if _HAVE_FCNTL:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _owner_text(self) -> str:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()})

    def _owner(self) -> str:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return "owner unknown"
        if not data:
            return "owner unknown"
        return f"pid {data.get('pid')} on {data.get('host')} since {data.get('since')}"

    def _try_acquire(self) -> bool:
        if _HAVE_FCNTL:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return False
                raise
            os.ftruncate(fd, 0)
            os.write(fd, self._owner_text().encode())
            self._fd = fd
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if self._is_stale():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                return self._try_acquire()
            return False
        os.write(fd, self._owner_text().encode())
        self._fd = fd
        return True

    def _is_stale(self) -> bool:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return True
        if data.get("host") != socket.gethostname():
            return False  # cannot tell for another machine; leave it to the user
        return not _pid_alive(int(data.get("pid", -1)))


try:
    import fcntl

    _HAVE_FCNTL = True
except ImportError:  # Windows
    _HAVE_FCNTL = False


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- helpers --------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _plain(value):
    """numpy / pandas scalars to Python values SQLite accepts; NaN to NULL."""
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
    for column in ("page", "paragraph_index", "sentence_index", "start_char", "end_char"):
        if column in frame:
            frame[column] = frame[column].astype("int64")
    return frame


def _check_table_name(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad result table name {name!r}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
