"""Write the coded corpus: CSV (spreadsheet-safe), Parquet (typed), REFI-QDA; and trend tables.

The tables come from `textmine.tables` (pure); this module writes them, with
atomic writes. `write_exports` writes the coded sentences and documents in the
requested formats, with every code of the codebook; `write_trend_tables` the
three trend CSV files.

CSV cells are protected against formula injection (OWASP "CSV Injection"):
a *text* cell that begins with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading single quote, so a spreadsheet shows it as text and never
evaluates it. Numeric columns are never touched. `unescape_formula` (or the
Parquet export, which keeps every original unescaped) recovers the original.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from textmine.atomic import atomic_open, write_csv_atomic
from textmine.codebook import Codebook, load_codebook
from textmine.columns import CODEBOOK_VERSION, TEXTMINE_VERSION, probability_column
from textmine.csv_safety import (  # noqa: F401 (re-exported: the escaping lived here)
    ESCAPE_PREFIX,
    FORMULA_TRIGGERS,
    escape_formula,
    escape_formula_cells,
    unescape_formula,
    unescape_formula_cells,
)
from textmine.qda import write_qdc, write_qdpx
from textmine.tables import (
    DOCUMENT_INT_COLUMNS,
    SENTENCE_INT_COLUMNS,
    coded_sentences_table,
    count_columns,
    documents_table,
    parse_published,
    share_columns,
)
from textmine.trends import TREND_FILES

EXPORT_FORMATS = ("csv", "parquet", "qdpx", "qdc")

# File names written by `write_exports` inside `out_dir`.
CODED_SENTENCES_NAME = "coded_sentences"
DOCUMENTS_NAME = "documents"
QDPX_NAME = "coded_corpus.qdpx"
QDC_NAME = "codebook.qdc"

# --------------------------------------------------------------------------- writers


def write_csv_export(path: str | Path, table: pd.DataFrame) -> Path:
    """Write a UTF-8 CSV as RFC 4180 says, with formula-injection escaping of text cells.

    CRLF records; fields with a comma, quote, CR or LF are quoted, quotes doubled.
    CRLF as record separator also makes the writer quote a field holding a lone
    carriage return, which a LF-terminated writer would leave bare.
    """
    write_csv_atomic(path, table)  # escapes formula cells (textmine.csv_safety)
    return Path(path)


def _arrow_type(column: str, series: pd.Series, codes: Sequence[str]) -> pa.DataType:
    """Arrow type of an export column: codes int8, counts and positions int32, shares float64."""
    if column in codes:
        return pa.int8()
    if column in ("start_char", "end_char"):
        return pa.int64()
    if (
        column in SENTENCE_INT_COLUMNS
        or column in DOCUMENT_INT_COLUMNS
        or column in count_columns(codes)
    ):
        return pa.int32()
    if column in share_columns(codes) or column in [probability_column(c) for c in codes]:
        return pa.float64()
    if pd.api.types.is_float_dtype(series):
        return pa.float64()
    return pa.string()


def _parquet_frame(table: pd.DataFrame, codes: Sequence[str]) -> tuple[pd.DataFrame, pa.Schema]:
    """Typed copy of an export table and its Arrow schema (dates as date32, codes int8)."""
    frame = table.copy()
    fields: list[pa.Field] = []
    for column in table.columns:
        if column == "published":
            parsed = frame[column].map(parse_published)
            # object dtype even when empty or all unknown (a partial store), never float
            frame[column] = pd.Series([p[0] for p in parsed], index=frame.index, dtype=object)
            frame.insert(
                frame.columns.get_loc(column) + 1,
                "published_precision",
                pd.Series([p[1] for p in parsed], index=frame.index, dtype=object),
            )
            fields.append(pa.field(column, pa.date32()))
            fields.append(pa.field("published_precision", pa.string()))
        else:
            fields.append(pa.field(column, _arrow_type(column, frame[column], codes)))
    for column in frame.columns:
        if column in codes:
            frame[column] = frame[column].astype("int8")
    return frame, pa.schema(fields)


def write_parquet_export(
    path: str | Path,
    table: pd.DataFrame,
    metadata: Mapping[str, str] | None = None,
    *,
    codes: Sequence[str] = (),
) -> Path:
    """Typed Parquet file of an export table; text is kept exactly as in the corpus.

    `codes` are the code columns (written as int8; their `n_<code>` counts as
    int32, `share_<code>` and `p_<code>` as float64).
    """
    frame, schema = _parquet_frame(table, codes)
    arrow_table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    extra = {k.encode(): str(v).encode() for k, v in (metadata or {}).items()}
    arrow_table = arrow_table.replace_schema_metadata(
        {**(arrow_table.schema.metadata or {}), **extra}
    )
    with atomic_open(path, "wb") as handle:
        pq.write_table(arrow_table, handle, compression="zstd")
    return Path(path)


def _versions(coded_sentences: pd.DataFrame) -> dict[str, str]:
    found = {}
    for column in (CODEBOOK_VERSION, TEXTMINE_VERSION):
        values = sorted(
            {str(v) for v in coded_sentences.get(column, pd.Series(dtype=str)).dropna()}
        )
        found[column] = ",".join(values)
    return found


def write_exports(
    documents: pd.DataFrame,
    coded_sentences: pd.DataFrame,
    out_dir: str | Path,
    formats: Iterable[str] = ("csv",),
    doc_texts: Mapping[str, str] | None = None,
    codebook: Codebook | None = None,
    *,
    validate: bool = True,
    include_codings: bool = True,
) -> list[Path]:
    """Write the coded corpus into `out_dir` in each of `formats`; return the written paths.

    csv -> coded_sentences.csv, documents.csv; parquet -> coded_sentences.parquet,
    documents.parquet; qdpx -> coded_corpus.qdpx (needs `doc_texts`, doc_id -> clean
    text, and `codebook`); qdc -> codebook.qdc (needs `codebook`). The codes
    exported are the codebook's (CSV and Parquet default to the packaged
    codebook). REFI-QDA files are validated against the packaged XSD unless
    `validate` is False; `include_codings=False` writes a .qdpx without machine
    codes (blind coding).
    """
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {list(EXPORT_FORMATS)}")
    out = Path(out_dir)
    written: list[Path] = []
    if "csv" in formats or "parquet" in formats:
        tables_codebook = codebook if codebook is not None else load_codebook()
        codes = tables_codebook.code_columns
        sentences = coded_sentences_table(documents, coded_sentences, tables_codebook)
        docs = documents_table(documents, coded_sentences, tables_codebook)
        if "csv" in formats:
            written.append(write_csv_export(out / f"{CODED_SENTENCES_NAME}.csv", sentences))
            written.append(write_csv_export(out / f"{DOCUMENTS_NAME}.csv", docs))
        if "parquet" in formats:
            meta = {**_versions(coded_sentences), "textmine_csv_escaping": "none (original text)"}
            written.append(
                write_parquet_export(
                    out / f"{CODED_SENTENCES_NAME}.parquet", sentences, meta, codes=codes
                )
            )
            written.append(
                write_parquet_export(out / f"{DOCUMENTS_NAME}.parquet", docs, meta, codes=codes)
            )
    if "qdpx" in formats or "qdc" in formats:
        if codebook is None:
            raise ValueError("REFI-QDA exports need the codebook (names, descriptions, colours)")
        if "qdpx" in formats:
            if doc_texts is None:
                raise ValueError("the .qdpx export needs doc_texts (doc_id -> clean text)")
            written.append(
                write_qdpx(
                    out / QDPX_NAME,
                    documents,
                    coded_sentences,
                    doc_texts,
                    codebook,
                    validate=validate,
                    include_codings=include_codings,
                )
            )
        if "qdc" in formats:
            written.append(write_qdc(out / QDC_NAME, codebook, validate=validate))
    return written


def write_trend_tables(
    trends: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike
) -> list[Path]:
    """Write `compute_trends`' tables as CSV files into `out_dir`; return the paths.

    stance_trends.csv, partnership_trends.csv and document_shares.csv (other
    keys as `<key>.csv`).
    """
    out = Path(out_dir)
    written = []
    for key, frame in trends.items():
        path = out / TREND_FILES.get(key, f"{key}.csv")
        write_csv_atomic(path, frame)
        written.append(path)
    return written


def export_paths(out_dir: str | Path, formats: Sequence[str]) -> list[Path]:
    """The paths `write_exports` writes for `formats` (for reports and docs)."""
    out = Path(out_dir)
    names = {
        "csv": [f"{CODED_SENTENCES_NAME}.csv", f"{DOCUMENTS_NAME}.csv"],
        "parquet": [f"{CODED_SENTENCES_NAME}.parquet", f"{DOCUMENTS_NAME}.parquet"],
        "qdpx": [QDPX_NAME],
        "qdc": [QDC_NAME],
    }
    return [out / name for fmt in formats for name in names[fmt]]
