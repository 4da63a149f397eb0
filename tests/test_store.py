"""The SQLite store: documents by content hash, sentences, codes per codebook version, lock."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textmine.columns import (
    CODE_COLUMNS,
    CODED_SENTENCE_COLUMNS,
    DOCUMENT_COLUMNS,
    FAILURE_COLUMNS,
    SENTENCE_COLUMNS,
    coded_sentence_columns,
)
from textmine.store import (
    CodingVersion,
    Store,
    StoreNotFoundError,
    _code_flags,
    _probability_json,
    _written_probabilities,
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


def coding(version: str, codes=tuple(CODE_COLUMNS)) -> CodingVersion:
    return CodingVersion(version, "rules", tuple(codes))


def code(sentences: pd.DataFrame, version: str) -> pd.DataFrame:
    coded = sentences.copy()
    for column in CODE_COLUMNS:
        coded[column] = 0
    coded["competition"] = coded["text"].str.contains("compete").astype(int)
    coded["collaboration"] = coded["text"].str.contains("collaborate").astype(int)
    coded["federation"] = coded["text"].str.contains("federation").astype(int)
    coded["evidence"] = "{}"
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
    assert (
        store.pending_sentences(coding("v1"))["sentence_id"].tolist()
        == sentences["sentence_id"].tolist()
    )
    store.save_codes(code(store.pending_sentences(coding("v1")), "v1"), coding("v1"), None)
    store.set_coding(coding("v1"))
    assert store.count_pending(coding("v1")) == 0
    assert store.count_pending(coding("v2")) == 3  # another codebook has everything to do

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
            document,
            broken,
            file_path="/abs/a",
            size=1,
            manifest_hash=None,
            run_id=None,
            textmine_version="test",
        )
    assert store.documents().empty
    assert store.sentences().empty
    assert store.known_files() == {}


def test_codes_of_old_codebooks_are_pruned(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    save(store, make_document())
    for version in ("v1", "v2", "v3"):
        store.save_codes(
            code(store.pending_sentences(coding(version)), version), coding(version), None
        )
        store.set_coding(coding(version))
    versions = {r[0] for r in store._query("SELECT DISTINCT coding_version FROM codings")}
    assert versions == {"v2/rules", "v3/rules"}  # the current one and the one before
    coded = store.coded_sentences()
    assert len(coded) == 3 and set(coded["codebook_version"]) == {"v3"}


def test_reextraction_replaces_sentences_and_codes(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    document = make_document()
    save(store, document)
    store.save_codes(code(store.pending_sentences(coding("v1")), "v1"), coding("v1"), None)
    store.set_coding(coding("v1"))
    shorter = make_document(text="Schools compete for pupils.")
    save(store, shorter)
    assert len(store.sentences()) == 1
    assert store.count_pending(coding("v1")) == 1  # its codes went with the old sentences


def test_failures_and_retiring(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    save(store, make_document(), file_path="/abs/a.txt")
    store.save_failure(
        file_path="/abs/bad.pdf",
        display_path="corpus/bad.pdf",
        doc_id="b" * 16,
        size=0,
        reason="empty_file",
        message="the file has no bytes",
        password_given=False,
        run_id=None,
        textmine_version="test",
    )
    failures = store.failures()
    assert list(failures.columns) == FAILURE_COLUMNS
    assert failures.to_dict("records") == [
        {
            "path": "corpus/bad.pdf",
            "reason": "empty_file",
            "message": "the file has no bytes",
            "duplicate_of": "",
        }
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
    store.set_coding(coding("v1"))
    store.save_codes(code(store.pending_sentences(coding("v1")), "v1"), coding("v1"), None)
    coded = store.fingerprint()
    assert len({empty, with_doc, coded}) == 3
    assert store.fingerprint() == coded


def test_result_tables(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    frame = pd.DataFrame(
        {"topic": [0, 1], "label": ["trust, academy", "pupils"], "share": [0.4, 0.6]}
    )
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


def test_any_codebook_code_is_stored_with_probabilities(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    save(store, make_document())
    codes = (*CODE_COLUMNS, "marketing")  # a code a researcher added
    added = coding("v1", codes)
    batch = code(store.pending_sentences(added), "v1")
    batch["marketing"] = [0, 0, 1]
    for column in codes:
        batch[f"p_{column}"] = batch[column] * 0.9 + 0.05
    store.save_codes(batch, added, None)
    store.set_coding(added)
    coded = store.coded_sentences()
    assert list(coded.columns) == coded_sentence_columns(list(codes), with_probabilities=True)
    assert coded["marketing"].tolist() == [0, 0, 1]
    assert coded["p_marketing"].tolist() == pytest.approx([0.05, 0.05, 0.95])
    assert store.documents().loc[0, "n_marketing"] == 1
    assert store.code_columns == list(codes)


def test_read_only_store_reads_a_read_only_folder(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    save(store, make_document())
    store.close()
    for path in (tmp_path / "textmine.sqlite", tmp_path):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        with open_store(tmp_path, read_only=True) as reader:
            assert len(reader.documents()) == 1 and len(reader.sentences()) == 3
            with pytest.raises(sqlite3.OperationalError):
                reader.set_meta("x", "y")
    finally:
        tmp_path.chmod(0o755)
        (tmp_path / "textmine.sqlite").chmod(0o644)


def test_store_of_schema_1_is_migrated(tmp_path):
    path = tmp_path / "textmine.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('codebook_version', 'v0')")
        conn.execute("CREATE TABLE codes (sentence_id TEXT, codebook_version TEXT)")
    conn.close()
    store = Store(path)
    assert store.get_meta("schema_version") == "2" and store.coding is None
    assert not store._query("SELECT name FROM sqlite_master WHERE name = 'codes'")


def test_killed_runs_are_marked_when_the_next_starts(tmp_path):
    store = Store(tmp_path / "textmine.sqlite")
    first = store.start_run({}, "test")  # never finished: the process was killed
    second = store.start_run({}, "test")
    runs = store.runs().set_index("run_id")["status"].to_dict()
    assert runs == {first: "killed", second: "running"}


def test_rows_are_converted_a_column_at_a_time_as_value_by_value():
    """`_plain_rows` (the store's fast row conversion) gives what `_plain` gives per value."""
    import numpy as np

    from textmine.store import _plain, _plain_rows

    frame = pd.DataFrame(
        {
            "count": np.array([3, 4, 5], dtype="int64"),
            "share": [1.5, np.nan, 2.0],
            "text": ["x", None, "z"],
            "flag": [True, False, True],
            "mixed": [{"k": 1}, [1, 2], "s"],
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "string": pd.array(["a", "b", "c"], dtype="string"),
        }
    )
    by_value = [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False, name=None)]
    by_column = _plain_rows(frame)
    assert [tuple(map(repr, row)) for row in by_column] == [
        tuple(map(repr, row)) for row in by_value
    ]
    assert by_column[0] == (3, 1.5, "x", True, '{"k": 1}', 1, "a")
    assert by_column[1][1] is None and by_column[1][2] is None
    assert _plain_rows(frame.iloc[:0]) == [] and _plain_rows(frame[[]]) == [(), (), ()]


# -- fast paths equal the plain ones ---------------------------------------------------

_PROBABILITIES = st.one_of(
    st.floats(min_value=-1e300, max_value=1e300),  # x 10^4 stays finite (round(4))
    st.sampled_from([0.0, -0.0, 1e-05, 0.00005, 0.99995, 1.0, 1e16, np.nan, np.inf, -np.inf]),
    st.integers(0, 10_000).map(lambda n: n / 10_000),
)


@st.composite
def _codes_and_probabilities(draw, min_rows: int = 0, distinct: bool = False):
    """(code names, rows x codes probabilities), names with JSON-escaped characters."""
    codes = draw(
        st.lists(
            st.sampled_from(["competition", "faith", 'q"uote', "é", "100%", "a\\b"]),
            max_size=4,
            unique=distinct,
        )
    )
    n_rows = draw(st.integers(min_rows, 6))
    values = [[draw(_PROBABILITIES) for _ in codes] for _ in range(n_rows)]
    return codes, np.array(values, dtype=float).reshape(n_rows, len(codes))


@settings(max_examples=200, deadline=None)
@given(_codes_and_probabilities())
def test_probability_json_equals_json_dumps_of_each_row(codes_and_values):
    codes, values = codes_and_values
    expected = [json.dumps(dict(zip(codes, row.tolist(), strict=True))) for row in values.round(4)]
    assert _probability_json(codes, values) == expected


def _one_query_frame(store: Store, select: list[str], join: str = "", params=()) -> pd.DataFrame:
    """The rows `_sentences_by_path` reads, as the one ORDER BY query gives them."""
    return store._frame(
        f"SELECT {', '.join(select)} FROM sentences s "
        f"JOIN documents d ON d.doc_id = s.doc_id AND d.retired = 0 {join} "
        "ORDER BY d.path, s.sentence_index",
        params,
    )


@pytest.mark.parametrize("shared_path", [False, True])
def test_sentences_read_a_document_at_a_time_in_the_order_of_one_query(tmp_path, shared_path):
    store = Store(tmp_path / "textmine.sqlite")
    texts = {"c" * 16: "z/b.txt", "a" * 16: "z/c.txt", "b" * 16: "z/a.txt", "d" * 16: "Z/é.txt"}
    for doc_id, path in texts.items():  # paths in another order than doc_ids
        path = "z/same.txt" if shared_path and doc_id in ("a" * 16, "b" * 16) else path
        save(store, make_document(doc_id=doc_id, path=path, text=f"{doc_id}. {TEXT}"))
    store.save_codes(code(store.pending_sentences(coding("v1")), "v1"), coding("v1"), None)
    store.set_coding(coding("v1"))
    select = [f"s.{c}" for c in SENTENCE_COLUMNS]
    expected = _one_query_frame(store, select)
    if shared_path:  # two documents share a path: their sentences interleave by index
        shared = expected[expected["path"] == "z/same.txt"]
        assert shared["doc_id"].iloc[:2].nunique() == 2
    pd.testing.assert_frame_equal(store._sentences_by_path(select), expected, check_exact=True)
    pd.testing.assert_frame_equal(
        store.sentences(), expected.astype({"page": "int64", "ocr": "int64"}), check_exact=True
    )
    join = "JOIN codings c ON c.sentence_id = s.sentence_id AND c.coding_version = ?"
    coded = [*select, "c.probabilities", "c.evidence"]
    pd.testing.assert_frame_equal(
        store._sentences_by_path(coded, join, ("v1/rules",)),
        _one_query_frame(store, coded, join, ("v1/rules",)),
        check_exact=True,
    )
    store.close()


@pytest.mark.parametrize("ids", [["s1", "s2", "s3"], ["s1", "s2", "s1"], []])
def test_code_flags_equal_isin_of_each_codes_sentences(ids):
    sentence_ids = pd.Series(ids, dtype="str")
    positives = [("s1", "x"), ("s3", "x"), ("s2", "y"), ("s9", "x"), ("s1", "other")]
    flags = _code_flags(sentence_ids, positives, ["x", "y", "z"])
    for code in ("x", "y", "z"):
        ids_of_code = {sid for sid, c in positives if c == code}
        assert list(flags[code]) == sentence_ids.isin(ids_of_code).astype("int64").tolist()
        assert np.asarray(flags[code]).dtype == np.int64


def _json_columns(texts: list[str], codes: list[str]) -> dict[str, np.ndarray]:
    """The probability columns as `coded_sentences` reads them with `json`."""
    parsed = json.loads("[" + ",".join(texts) + "]")
    return {
        code: np.fromiter((row.get(code, np.nan) for row in parsed), "float64", len(parsed))
        for code in codes
    }


@settings(max_examples=200, deadline=None)
@given(_codes_and_probabilities(min_rows=1, distinct=True))
def test_written_probabilities_equal_json_of_each_row(codes_and_values):
    codes, values = codes_and_values
    texts = _probability_json(codes, values)
    read = _written_probabilities(pd.Series(texts, dtype="str"), codes)
    if not codes:
        assert read is None
        return
    assert read is not None  # what save_codes writes is read without json
    for code, column in _json_columns(texts, codes).items():
        np.testing.assert_array_equal(read[code], column)
        assert np.array_equal(np.signbit(read[code]), np.signbit(column))


@pytest.mark.parametrize(
    "texts",
    [
        ['{"a": 0.5, "b": 1}', '{"a":0.5, "b": 1}'],  # other spacing
        ['{"a": 0.5, "b": 1}', '{"b": 1, "a": 0.5}'],  # other order
        ['{"a": 0.5, "b": 1}', '{"a": 0.5}'],  # a key missing
        ['{"a": 0.5, "b": 1}', '{"a": 0.5, "b": 1, "c": 2}'],  # another key
        ['{"a": 0.5, "b": 1}', '{"a": "0.5", "b": 1}'],  # a string
        ['{"a": 0.5, "b": 01}'],  # not a JSON number
    ],
)
def test_other_probability_layouts_are_left_to_json(texts):
    assert _written_probabilities(pd.Series(texts, dtype="str"), ["a", "b"]) is None
