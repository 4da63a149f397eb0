"""Export tables of the coded corpus: CSV (spreadsheet-safe), Parquet (typed), REFI-QDA.

Pure functions over the contract DataFrames of `textmine.columns`:
`coded_sentences_table` and `documents_table` build the two export tables,
`write_exports` writes them in the requested formats with atomic writes.

CSV cells are protected against formula injection (OWASP "CSV Injection"):
a *text* cell that begins with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading single quote, so a spreadsheet shows it as text and never
evaluates it. Numeric columns are never touched. `unescape_formula` (or the
Parquet export, which keeps every original unescaped) recovers the original.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from textmine.atomic import atomic_open
from textmine.columns import (
    CODE_COLUMNS,
    CODEBOOK_VERSION,
    DOC_ID,
    DOCUMENT_COLUMNS,
    EVIDENCE,
    STANCE_CODES,
    TEXTMINE_VERSION,
)

EXPORT_FORMATS = ("csv", "parquet", "qdpx", "qdc")

# File names written by `write_exports` inside `out_dir`.
CODED_SENTENCES_NAME = "coded_sentences"
DOCUMENTS_NAME = "documents"
QDPX_NAME = "coded_corpus.qdpx"
QDC_NAME = "codebook.qdc"

METADATA_COLUMNS = ["title", "publisher", "doc_type", "published"]
CODED_SENTENCES_EXPORT_COLUMNS = [
    "sentence_id",
    DOC_ID,
    *METADATA_COLUMNS,
    "path",
    "page",
    "paragraph_index",
    "sentence_index",
    "start_char",
    "end_char",
    "text",
    *CODE_COLUMNS,
    EVIDENCE,
    CODEBOOK_VERSION,
    TEXTMINE_VERSION,
]
COUNT_COLUMNS = [f"n_{code}" for code in CODE_COLUMNS]
SHARE_COLUMNS = [f"share_{code}" for code in STANCE_CODES]
DOCUMENTS_EXPORT_COLUMNS = [*DOCUMENT_COLUMNS, *COUNT_COLUMNS, *SHARE_COLUMNS]

_INT_SENTENCE_COLUMNS = ["page", "paragraph_index", "sentence_index", "start_char", "end_char"]
_INT_DOCUMENT_COLUMNS = ["pages", "n_sentences", *COUNT_COLUMNS]

# --------------------------------------------------------------------------- CSV injection

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE_PREFIX = "'"


def escape_formula(value: str) -> str:
    """Prefix a single quote to a text cell a spreadsheet could run as a formula.

    Also prefixes cells that already start with quotes followed by a trigger
    character, so that `unescape_formula` is an exact inverse.
    """
    if not value:
        return value
    if value[0] in FORMULA_TRIGGERS:
        return ESCAPE_PREFIX + value
    if value[0] == ESCAPE_PREFIX and value.lstrip(ESCAPE_PREFIX)[:1] in FORMULA_TRIGGERS:
        return ESCAPE_PREFIX + value
    return value


def unescape_formula(value: str) -> str:
    """Undo `escape_formula`: the original text of an escaped CSV cell."""
    if (
        isinstance(value, str)
        and value.startswith(ESCAPE_PREFIX)
        and value.lstrip(ESCAPE_PREFIX)[:1] in FORMULA_TRIGGERS
    ):
        return value[1:]
    return value


def _is_text_column(series: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)


def escape_formula_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of `frame` with `escape_formula` applied to every string cell of text columns."""
    escaped = frame.copy()
    for column in escaped.columns:
        if _is_text_column(escaped[column]):
            escaped[column] = escaped[column].map(
                lambda v: escape_formula(v) if isinstance(v, str) else v
            )
    return escaped


def unescape_formula_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Inverse of `escape_formula_cells` for a CSV read back with pandas (as strings)."""
    restored = frame.copy()
    for column in restored.columns:
        if _is_text_column(restored[column]):
            restored[column] = restored[column].map(unescape_formula)
    return restored


# --------------------------------------------------------------------------- dates

_ISO_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_published(value: object) -> tuple[date | None, str | None]:
    """ISO date of precision year, month or day -> (first day of that period, precision).

    "2007" -> (2007-01-01, "year"); "2014-03" -> (2014-03-01, "month");
    "2014-03-20" -> (2014-03-20, "day"); empty or unparseable -> (None, None).
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None, None
    if isinstance(value, pd.Timestamp):
        return value.date(), "day"
    if isinstance(value, date):
        return value, "day"
    text = str(value).strip()
    match = _ISO_PARTIAL.match(text[:10] if len(text) > 10 and text[10] in "T " else text)
    if not match:
        return None, None
    year, month, day = match.groups()
    try:
        parsed = date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return None, None
    precision = "day" if day else "month" if month else "year"
    return parsed, precision


def _published_text(value: object) -> str:
    """ISO text of a published value as precise as known ("" when unknown)."""
    parsed, precision = parse_published(value)
    if parsed is None:
        return (
            "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
        )
    return {"year": parsed.strftime("%Y"), "month": parsed.strftime("%Y-%m")}.get(
        precision, parsed.isoformat()
    )


# --------------------------------------------------------------------------- tables


def _text(series: pd.Series) -> pd.Series:
    return series.map(
        lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
    )


def _int(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").fillna(0).astype("int64")


def primary_documents(documents: pd.DataFrame) -> pd.DataFrame:
    """One row per doc_id: the first file of each content (rows of duplicates dropped)."""
    if "duplicate_of" in documents:
        is_duplicate = _text(documents["duplicate_of"]) != ""
        documents = pd.concat([documents[~is_duplicate], documents[is_duplicate]])
    return documents.drop_duplicates(DOC_ID)


def coded_sentences_table(documents: pd.DataFrame, coded_sentences: pd.DataFrame) -> pd.DataFrame:
    """Sentence-level export table: one row per coded sentence with its document's metadata.

    Columns are `CODED_SENTENCES_EXPORT_COLUMNS`; rows are ordered by document
    path then sentence index. Codes are 0/1 integers, offsets integers.
    """
    missing = [
        c for c in ("sentence_id", DOC_ID, "text", *CODE_COLUMNS) if c not in coded_sentences
    ]
    if missing:
        raise ValueError(f"coded_sentences lacks columns {missing}")
    sentences = coded_sentences.copy()
    meta = primary_documents(documents).reindex(columns=[DOC_ID, *METADATA_COLUMNS])
    sentences = sentences.drop(columns=[c for c in METADATA_COLUMNS if c in sentences])
    table = sentences.merge(meta, on=DOC_ID, how="left")
    table = table.reindex(columns=CODED_SENTENCES_EXPORT_COLUMNS)
    for column in _INT_SENTENCE_COLUMNS + CODE_COLUMNS:
        table[column] = _int(table[column])
    for column in CODE_COLUMNS:
        table[column] = table[column].clip(0, 1)
    for column in CODED_SENTENCES_EXPORT_COLUMNS:
        if column not in _INT_SENTENCE_COLUMNS + CODE_COLUMNS:
            table[column] = _text(table[column])
    table["published"] = table["published"].map(_published_text)
    table = table.sort_values(["path", DOC_ID, "sentence_index"], kind="stable")
    return table.reset_index(drop=True)


def documents_table(documents: pd.DataFrame, coded_sentences: pd.DataFrame) -> pd.DataFrame:
    """Document-level export table: metadata, sentence and code counts, stance shares.

    `n_sentences` and `n_<code>` are counted from `coded_sentences` (so the
    table always agrees with the sentence export); `share_<stance>` is
    `n_<stance> / n_sentences` (empty when a document has no sentences). Rows of
    duplicate files (`duplicate_of` set) are kept with zero counts, so that
    column sums count each sentence once.
    """
    table = documents.reindex(columns=DOCUMENT_COLUMNS).drop_duplicates([DOC_ID, "path"]).copy()
    if len(coded_sentences):
        codes = coded_sentences[[DOC_ID, *CODE_COLUMNS]].copy()
        for column in CODE_COLUMNS:
            codes[column] = _int(codes[column]).clip(0, 1)
        counts = codes.groupby(DOC_ID).agg(
            n_sentences=(CODE_COLUMNS[0], "size"),
            **{f"n_{code}": (code, "sum") for code in CODE_COLUMNS},
        )
    else:
        counts = pd.DataFrame(columns=["n_sentences", *COUNT_COLUMNS])
    table = table.drop(columns=["n_sentences"]).merge(
        counts, left_on=DOC_ID, right_index=True, how="left"
    )
    for column in _INT_DOCUMENT_COLUMNS:
        table[column] = _int(table[column])
    duplicate = _text(table["duplicate_of"]) != ""
    table.loc[duplicate, ["n_sentences", *COUNT_COLUMNS]] = 0
    for code in STANCE_CODES:
        table[f"share_{code}"] = (
            table[f"n_{code}"] / table["n_sentences"].where(table["n_sentences"] > 0)
        ).astype("float64")
    for column in DOCUMENTS_EXPORT_COLUMNS:
        if column not in _INT_DOCUMENT_COLUMNS + SHARE_COLUMNS:
            table[column] = _text(table[column])
    table["published"] = table["published"].map(_published_text)
    table = table.reindex(columns=DOCUMENTS_EXPORT_COLUMNS)
    return table.sort_values(["path", DOC_ID], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- writers


def write_csv_export(path: str | Path, table: pd.DataFrame) -> Path:
    """UTF-8 CSV as RFC 4180 says (CRLF records, fields with comma, quote, CR or LF quoted,
    quotes doubled), with formula-injection escaping of text cells.

    CRLF as record separator also makes the writer quote a field holding a lone
    carriage return, which a LF-terminated writer would leave bare.
    """
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        escape_formula_cells(table).to_csv(handle, index=False, lineterminator="\r\n")
    return Path(path)


def _parquet_frame(table: pd.DataFrame) -> tuple[pd.DataFrame, pa.Schema]:
    """Typed copy of an export table and its Arrow schema (dates as date32, codes int8)."""
    frame = table.copy()
    fields: list[pa.Field] = []
    for column in frame.columns:
        if column == "published":
            parsed = frame[column].map(parse_published)
            frame[column] = [p[0] for p in parsed]
            frame.insert(
                frame.columns.get_loc(column) + 1, "published_precision", [p[1] for p in parsed]
            )
            fields.append(pa.field(column, pa.date32()))
            fields.append(pa.field("published_precision", pa.string()))
        elif column in CODE_COLUMNS:
            fields.append(pa.field(column, pa.int8()))
        elif column in ("start_char", "end_char"):
            fields.append(pa.field(column, pa.int64()))
        elif column in _INT_SENTENCE_COLUMNS or column in _INT_DOCUMENT_COLUMNS:
            fields.append(pa.field(column, pa.int32()))
        elif column in SHARE_COLUMNS:
            fields.append(pa.field(column, pa.float64()))
        else:
            fields.append(pa.field(column, pa.string()))
    for column in frame.columns:
        if column in CODE_COLUMNS:
            frame[column] = frame[column].astype("int8")
    return frame, pa.schema(fields)


def write_parquet_export(
    path: str | Path, table: pd.DataFrame, metadata: Mapping[str, str] | None = None
) -> Path:
    """Typed Parquet file of an export table; text is kept exactly as in the corpus."""
    frame, schema = _parquet_frame(table)
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
    codebook: object | None = None,
    *,
    validate: bool = True,
    include_codings: bool = True,
) -> list[Path]:
    """Write the coded corpus into `out_dir` in each of `formats`; return the written paths.

    csv -> coded_sentences.csv, documents.csv; parquet -> coded_sentences.parquet,
    documents.parquet; qdpx -> coded_corpus.qdpx (needs `doc_texts`, doc_id -> clean
    text, and `codebook`); qdc -> codebook.qdc (needs `codebook`). REFI-QDA
    files are validated against the packaged XSD unless `validate` is False;
    `include_codings=False` writes a .qdpx without machine codes (blind coding).
    """
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {list(EXPORT_FORMATS)}")
    out = Path(out_dir)
    written: list[Path] = []
    if "csv" in formats or "parquet" in formats:
        sentences = coded_sentences_table(documents, coded_sentences)
        docs = documents_table(documents, coded_sentences)
        if "csv" in formats:
            written.append(write_csv_export(out / f"{CODED_SENTENCES_NAME}.csv", sentences))
            written.append(write_csv_export(out / f"{DOCUMENTS_NAME}.csv", docs))
        if "parquet" in formats:
            meta = {**_versions(coded_sentences), "textmine_csv_escaping": "none (original text)"}
            written.append(
                write_parquet_export(out / f"{CODED_SENTENCES_NAME}.parquet", sentences, meta)
            )
            written.append(write_parquet_export(out / f"{DOCUMENTS_NAME}.parquet", docs, meta))
    if "qdpx" in formats or "qdc" in formats:
        from textmine import refi_qda

        if codebook is None:
            raise ValueError("REFI-QDA exports need the codebook (names, descriptions, colours)")
        if "qdpx" in formats:
            if doc_texts is None:
                raise ValueError("the .qdpx export needs doc_texts (doc_id -> clean text)")
            written.append(
                refi_qda.write_qdpx(
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
            written.append(refi_qda.write_qdc(out / QDC_NAME, codebook, validate=validate))
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
