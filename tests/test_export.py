"""CSV and Parquet exports: tables, spreadsheet-safe CSV, RFC 4180 round trips, Parquet types."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from textmine.codebook import load_codebook
from textmine.columns import CODED_SENTENCE_COLUMNS, DOCUMENT_COLUMNS
from textmine.export import (
    escape_formula,
    escape_formula_cells,
    unescape_formula,
    unescape_formula_cells,
    write_exports,
)
from textmine.tables import (
    _map_distinct,
    _published_text,
    coded_sentences_export_columns,
    coded_sentences_table,
    documents_export_columns,
    documents_table,
    parse_published,
)

CODEBOOK = load_codebook()
CODE_COLUMNS = CODEBOOK.code_columns
# the fixture's coded sentences carry model_version, as the store's do
CODED_SENTENCES_EXPORT_COLUMNS = coded_sentences_export_columns(CODE_COLUMNS, model_version=True)
DOCUMENTS_EXPORT_COLUMNS = documents_export_columns(CODE_COLUMNS, CODEBOOK.stance_codes)

REPO = Path(__file__).resolve().parent.parent
SEEDS = sorted((REPO / "corpus" / "seeds").glob("*.txt"))
SENTENCE = re.compile(r"\S[^\n]*?(?:[.!?](?=\s|$)|(?=\n)|$)")
# Hand-made test codes: which word stems make a fixture sentence carry a code.
FIXTURE_CUES = {
    "competition": ("compet", "market", "league table"),
    "collaboration": ("collaborat", "partnership", "work together", "working together"),
    "academy_trust": ("academy", "academies", "trust"),
    "teaching_school": ("teaching school",),
    "network": ("network",),
}


def seed_corpus() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Documents, coded sentences and texts built from the bundled seed texts and manifest."""
    manifest = pd.read_csv(REPO / "corpus" / "manifest.csv", dtype=str, keep_default_na=False)
    meta = manifest.set_index("path")
    docs, sentences, texts = [], [], {}
    for path in SEEDS:
        data = path.read_bytes()
        doc_id = hashlib.sha256(data).hexdigest()[:16]
        text = data.decode("utf-8")
        texts[doc_id] = text
        rel = f"seeds/{path.name}"
        row = meta.loc[rel]
        matches = list(SENTENCE.finditer(text))
        docs.append(
            {
                "doc_id": doc_id,
                "path": f"corpus/{rel}",
                "format": "text",
                "pages": 1,
                "title": row["title"],
                "publisher": row["publisher"],
                "doc_type": row["doc_type"],
                "published": row["published"],
                "date_source": "manifest",
                "licence": row["licence"],
                "source": row["source"],
                "n_sentences": len(matches),
                "duplicate_of": "",
            }
        )
        paragraph = 0
        for index, match in enumerate(matches):
            if index and "\n\n" in text[matches[index - 1].end() : match.start()]:
                paragraph += 1
            lowered = match.group().lower()
            codes = {
                c: int(any(cue in lowered for cue in FIXTURE_CUES.get(c, ()))) for c in CODE_COLUMNS
            }
            evidence = {
                c: [{"text": cue, "start": lowered.find(cue), "end": lowered.find(cue) + len(cue)}]
                for c in CODE_COLUMNS
                for cue in FIXTURE_CUES.get(c, ())[:1]
                if codes[c] and cue in lowered
            }
            sentences.append(
                {
                    "sentence_id": f"{doc_id}-{index:05d}",
                    "doc_id": doc_id,
                    "path": f"corpus/{rel}",
                    "page": 1,
                    "paragraph_index": paragraph,
                    "sentence_index": index,
                    "start_char": match.start(),
                    "end_char": match.end(),
                    "text": match.group(),
                    **codes,
                    "evidence": json.dumps(evidence),
                    "codebook_version": "cb-test-0001",
                    "textmine_version": "0.1.0",
                }
            )
    return (
        pd.DataFrame(docs, columns=DOCUMENT_COLUMNS),
        pd.DataFrame(sentences, columns=CODED_SENTENCE_COLUMNS),
        texts,
    )


@pytest.fixture(scope="module")
def corpus():
    return seed_corpus()


INJECTIONS = [
    "=1+1",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\tTAB=1",
    "\rCR=1",
    "'=already quoted",
]


def injected_frames(corpus):
    """The seed corpus with formula-like text in sentences and metadata."""
    documents, sentences, _ = corpus
    sentences = sentences.copy()
    documents = documents.copy()
    for i, payload in enumerate(INJECTIONS):
        sentences.loc[i, "text"] = payload
    documents.loc[0, "title"] = '=HYPERLINK("http://evil","click")'
    documents.loc[1, "publisher"] = "@publisher"
    return documents, sentences


# --------------------------------------------------------------------------- tables


def test_coded_sentences_table_columns_and_metadata(corpus):
    documents, sentences, _ = corpus
    table = coded_sentences_table(documents, sentences)
    assert list(table.columns) == CODED_SENTENCES_EXPORT_COLUMNS
    assert len(table) == len(sentences)
    first_doc = documents.iloc[0]
    rows = table[table.doc_id == first_doc.doc_id]
    assert set(rows.title) == {first_doc.title}
    assert set(rows.publisher) == {first_doc.publisher}
    assert rows.sentence_index.is_monotonic_increasing
    for column in CODE_COLUMNS:
        assert set(table[column].unique()) <= {0, 1}


def test_documents_table_counts_and_shares(corpus):
    documents, sentences, _ = corpus
    extra = documents.iloc[[0]].assign(doc_id="0" * 16, path="corpus/seeds/no-sentences.txt")
    table = documents_table(pd.concat([documents, extra]), sentences)
    assert list(table.columns) == DOCUMENTS_EXPORT_COLUMNS
    for row in table.itertuples():
        own = sentences[sentences.doc_id == row.doc_id]
        assert row.n_sentences == len(own)
        for code in CODE_COLUMNS:
            assert getattr(row, f"n_{code}") == own[code].sum()
        if len(own):
            assert row.share_competition == pytest.approx(own.competition.mean())
            assert row.share_collaboration == pytest.approx(own.collaboration.mean())
    empty = table[table.doc_id == "0" * 16].iloc[0]
    assert empty.n_sentences == 0 and pd.isna(empty.share_competition)
    assert table.n_competition.sum() > 0 and table.n_collaboration.sum() > 0


def test_duplicate_files_keep_a_row_without_double_counting(corpus):
    documents, sentences, _ = corpus
    original = documents.iloc[0]
    duplicate = documents.iloc[[0]].assign(
        path="corpus/copies/same-bytes.txt", duplicate_of=original.doc_id, title="copy title"
    )
    with_duplicate = pd.concat([duplicate, documents], ignore_index=True)
    table = documents_table(with_duplicate, sentences)
    assert len(table) == len(documents) + 1
    rows = table[table.doc_id == original.doc_id].set_index("path")
    assert rows.loc["corpus/copies/same-bytes.txt", "n_sentences"] == 0
    assert rows.loc[original.path, "n_sentences"] == (sentences.doc_id == original.doc_id).sum()
    assert table.n_sentences.sum() == len(sentences)
    sentence_table = coded_sentences_table(with_duplicate, sentences)
    assert "copy title" not in set(sentence_table.title)
    assert len(sentence_table) == len(sentences)


def test_published_precision():
    assert parse_published("2007") == (date(2007, 1, 1), "year")
    assert parse_published("2014-03") == (date(2014, 3, 1), "month")
    assert parse_published("2014-03-20") == (date(2014, 3, 20), "day")
    assert parse_published("") == (None, None)
    assert parse_published("spring 2014") == (None, None)
    assert parse_published("2014-02-30") == (None, None)


# --------------------------------------------------------------------------- CSV injection


@pytest.mark.parametrize("payload", INJECTIONS)
def test_escape_formula_round_trip(payload):
    escaped = escape_formula(payload)
    assert escaped.startswith("'")
    assert unescape_formula(escaped) == payload


@given(
    st.text(
        alphabet=st.sampled_from(["'", "=", "+", "-", "@", "\t", "\r", "a", " ", "1"]), max_size=8
    )
)
def test_escape_is_reversible_and_safe(text):
    escaped = escape_formula(text)
    assert unescape_formula(escaped) == text
    assert escaped[:1] not in ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize("text", ["Schools compete.", "'quoted' word", "'", "", "a=b", "12-3"])
def test_harmless_text_is_unchanged(text):
    assert escape_formula(text) == text
    assert unescape_formula(text) == text


def test_only_text_cells_are_escaped():
    frame = pd.DataFrame({"delta": [-2, 3], "ratio": [-0.5, 1.0], "note": ["-2+3", "fine"]})
    escaped = escape_formula_cells(frame)
    assert escaped["delta"].tolist() == [-2, 3]
    assert escaped["ratio"].tolist() == [-0.5, 1.0]
    assert escaped["note"].tolist() == ["'-2+3", "fine"]


@pytest.mark.parametrize("dtype", [object, "string[pyarrow]", "string[python]", "category"])
def test_text_cells_are_escaped_in_every_kind_of_text_column(dtype):
    import numpy as np

    values = ["=1+1", None, "fine", "'@x", "plain", np.str_("-3"), ""]
    if dtype is object:
        values = [*values, 7, 2.5]  # numbers in a text column stay as they are
    column = pd.Series(values, dtype=dtype)
    escaped = escape_formula_cells(pd.DataFrame({"note": column}))["note"]
    expected = [escape_formula(v) if isinstance(v, str) else v for v in values]
    assert [None if pd.isna(v) else v for v in escaped.astype(object)] == expected
    harmless = pd.DataFrame({"note": pd.Series(["fine", None, "a=b"], dtype=dtype)})
    assert escape_formula_cells(harmless) is harmless  # nothing to escape: no copy


def test_csv_export_is_spreadsheet_safe(tmp_path, corpus):
    documents, sentences = injected_frames(corpus)
    write_exports(documents, sentences, tmp_path, formats=["csv"])
    with open(tmp_path / "coded_sentences.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    texts = [row["text"] for row in rows]
    for payload in INJECTIONS:
        assert "'" + payload in texts
        assert payload not in texts
    for row in rows:
        for column, value in row.items():
            assert value[:1] not in ("=", "+", "-", "@", "\t", "\r"), (column, value)
    with open(tmp_path / "documents.csv", encoding="utf-8", newline="") as handle:
        docs = list(csv.DictReader(handle))
    assert '\'=HYPERLINK("http://evil","click")' in [d["title"] for d in docs]
    assert "'@publisher" in [d["publisher"] for d in docs]


def test_csv_originals_recoverable_and_parquet_keeps_them(tmp_path, corpus):
    documents, sentences = injected_frames(corpus)
    write_exports(documents, sentences, tmp_path, formats=["csv", "parquet"])
    from_csv = pd.read_csv(tmp_path / "coded_sentences.csv", dtype=str, keep_default_na=False)
    recovered = unescape_formula_cells(from_csv)
    from_parquet = pq.read_table(tmp_path / "coded_sentences.parquet").to_pandas()
    expected = coded_sentences_table(documents, sentences)
    assert recovered["text"].tolist() == expected["text"].tolist()
    assert from_parquet["text"].tolist() == expected["text"].tolist()
    for payload in INJECTIONS:
        assert payload in from_parquet["text"].tolist()
    docs_parquet = pq.read_table(tmp_path / "documents.parquet").to_pandas()
    assert '=HYPERLINK("http://evil","click")' in docs_parquet["title"].tolist()


# --------------------------------------------------------------------------- RFC 4180


TRICKY = [
    'He said "compete", then left.',
    "line one\nline two",
    "windows\r\nline break inside",
    "lone carriage\rreturn inside",
    "commas, commas, and more, commas",
    '"quoted at start", then text',
    "ünïcödé – dashes — and ‘quotes’",
]


def test_csv_rfc4180_round_trip(tmp_path, corpus):
    documents, sentences, _ = corpus
    sentences = sentences.copy()
    for i, text in enumerate(TRICKY):
        sentences.loc[i, "text"] = text
    write_exports(documents, sentences, tmp_path, formats=["csv"])
    path = tmp_path / "coded_sentences.csv"
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # UTF-8 without BOM
    raw.decode("utf-8")
    expected = coded_sentences_table(documents, sentences)
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader)
        rows = list(reader)
    assert header == CODED_SENTENCES_EXPORT_COLUMNS
    assert len(rows) == len(expected)
    column = [r[header.index("text")] for r in rows]
    assert [unescape_formula(t) for t in column] == expected["text"].tolist()
    # real bullet lines of the seed texts start with "-": escaped in the CSV
    assert any(t.startswith("'- ") for t in column)
    assert set(TRICKY) <= set(column)
    read = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert unescape_formula_cells(read)["text"].tolist() == expected["text"].tolist()
    assert read["start_char"].astype(int).tolist() == expected["start_char"].tolist()
    assert (
        read["evidence"].map(json.loads).tolist() == expected["evidence"].map(json.loads).tolist()
    )
    # ISO dates, as precise as known
    assert set(read["published"]) == set(documents["published"])
    assert {"2007", "2014-03-20"} <= set(read["published"])


def test_write_exports_is_atomic_and_rejects_unknown_formats(tmp_path, corpus):
    documents, sentences, _ = corpus
    with pytest.raises(ValueError, match="unknown export format"):
        write_exports(documents, sentences, tmp_path, formats=["xlsx"])
    written = write_exports(documents, sentences, tmp_path, formats=["csv", "parquet"])
    assert sorted(p.name for p in written) == sorted(p.name for p in tmp_path.iterdir())
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ValueError, match="codebook"):
        write_exports(documents, sentences, tmp_path, formats=["qdc"])


# --------------------------------------------------------------------------- Parquet


def test_parquet_types(tmp_path, corpus):
    documents, sentences, _ = corpus
    write_exports(documents, sentences, tmp_path, formats=["parquet"])
    schema = pq.read_schema(tmp_path / "coded_sentences.parquet")
    assert schema.field("published").type == pa.date32()
    assert schema.field("published_precision").type == pa.string()
    for code in CODE_COLUMNS:
        assert schema.field(code).type == pa.int8()
    assert schema.field("start_char").type == pa.int64()
    assert schema.field("end_char").type == pa.int64()
    assert schema.field("page").type == pa.int32()
    assert schema.field("sentence_index").type == pa.int32()
    assert schema.field("text").type == pa.string()
    assert schema.metadata[b"codebook_version"] == b"cb-test-0001"

    docs = pq.read_table(tmp_path / "documents.parquet").to_pandas()
    docs_schema = pq.read_schema(tmp_path / "documents.parquet")
    assert docs_schema.field("share_competition").type == pa.float64()
    assert docs_schema.field("n_sentences").type == pa.int32()
    assert docs_schema.field("n_academy_trust").type == pa.int32()
    by_path = docs.set_index("path")
    ascl = by_path.loc["corpus/seeds/2007_ascl-leader_achieving-more-together.txt"]
    assert ascl.published == date(2007, 1, 1) and ascl.published_precision == "year"
    ioe = by_path.loc["corpus/seeds/2014-03-20_ioe-blog_survival-of-the-fittest-or-team-effort.txt"]
    assert ioe.published == date(2014, 3, 20) and ioe.published_precision == "day"

    sentences_back = pq.read_table(tmp_path / "coded_sentences.parquet").to_pandas()
    expected = coded_sentences_table(documents, sentences)
    for code in CODE_COLUMNS:
        assert sentences_back[code].tolist() == expected[code].tolist()
    assert sentences_back["end_char"].tolist() == expected["end_char"].tolist()


# --------------------------------------------------------------------------- CLI


class FrameStore:
    """Stands in for textmine.store.Store: serves the seed corpus frames."""

    def __init__(self, corpus):
        self.documents_frame, self.coded_frame, self.texts = corpus

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def documents(self):
        return self.documents_frame

    def coded_sentences(self):
        return self.coded_frame

    def sentences(self):
        return self.coded_frame[self.coded_frame.columns[:9]]

    def document_texts(self):
        return self.texts


def test_export_and_import_commands(tmp_path, corpus, monkeypatch):
    from typer.testing import CliRunner

    import textmine.store
    from textmine.cli import app

    opened = []

    def fake_open_store(out_dir, **_options):
        opened.append(Path(out_dir))
        return FrameStore(corpus)

    monkeypatch.setattr(textmine.store, "open_store", fake_open_store)
    runner = CliRunner()
    corpus_dir = tmp_path / "processed"
    result = runner.invoke(
        app,
        [
            "export",
            "-f",
            "csv",
            "-f",
            "parquet",
            "-f",
            "qdpx",
            "-f",
            "qdc",
            "--corpus-dir",
            str(corpus_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in corpus_dir.iterdir())
    assert names == sorted(
        [
            "coded_sentences.csv",
            "documents.csv",
            "coded_sentences.parquet",
            "documents.parquet",
            "coded_corpus.qdpx",
            "codebook.qdc",
        ]
    )
    assert opened == [corpus_dir]

    single = tmp_path / "review.qdpx"
    result = runner.invoke(
        app, ["export", "-f", "qdpx", "--out", str(single), "--corpus-dir", str(corpus_dir)]
    )
    assert result.exit_code == 0, result.output
    assert single.is_file()

    human = tmp_path / "human.csv"
    result = runner.invoke(
        app, ["import-qdpx", str(single), "--out", str(human), "--corpus-dir", str(corpus_dir)]
    )
    assert result.exit_code == 0, result.output
    assert f"textmine evaluate {human} --pred {corpus_dir / 'coded_sentences.csv'}" in result.output
    coded = unescape_formula_cells(pd.read_csv(human, dtype={"id": str}, keep_default_na=False))
    _, sentences, _ = corpus
    assert coded["id"].tolist() == sentences["sentence_id"].tolist()
    assert (
        coded[CODE_COLUMNS].astype(int).values.tolist() == sentences[CODE_COLUMNS].values.tolist()
    )

    result = runner.invoke(
        app,
        [
            "import-qdpx",
            str(single),
            "--out",
            str(human),
            "--corpus-dir",
            str(corpus_dir),
            "--evaluate",
        ],
    )
    assert result.exit_code == 0, result.output
    agreement = pd.read_csv(tmp_path / "human_agreement.csv")
    per_code = agreement[agreement.code.isin(CODE_COLUMNS)]
    assert (per_code.f1.dropna() == 1.0).all() and len(per_code) == len(CODE_COLUMNS)

    result = runner.invoke(app, ["export", "-f", "xlsx", "--corpus-dir", str(corpus_dir)])
    assert result.exit_code != 0 and "xlsx" in result.output


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["", "2021", "2021-03", "2021-03-04", "2021-3-4", "no date", "2020"]),
        ),
        max_size=30,
    ),
    st.sampled_from(["str", object]),
)
def test_mapping_distinct_values_once_equals_series_map(values, dtype):
    series = pd.Series(values, dtype=dtype, index=range(5, 5 + len(values)), name="published")
    expected = series.map(_published_text)
    pd.testing.assert_series_equal(_map_distinct(series, _published_text), expected)
