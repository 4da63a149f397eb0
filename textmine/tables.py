"""Export tables of the coded corpus: pure functions from the store's tables to the export layout.

`coded_sentences_table` (one row per sentence with its document's metadata)
and `documents_table` (one row per file with sentence and code counts) take
their codes from the codebook, so a code a researcher added gets its column,
its `n_<code>` count and, for a stance code, its `share_<code>`. A learned
coder's `p_<code>` probabilities and `model_version` pass through when the
coded sentences carry them. Writing files is `textmine.export`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date

import pandas as pd

from textmine.codebook import Codebook, load_codebook
from textmine.columns import (
    CODEBOOK_VERSION,
    DOC_ID,
    DOCUMENT_COLUMNS,
    EVIDENCE,
    MODEL_VERSION,
    TEXTMINE_VERSION,
    probability_column,
)

METADATA_COLUMNS = ["title", "publisher", "doc_type", "published"]
SENTENCE_INT_COLUMNS = [
    "page",
    "paragraph_index",
    "sentence_index",
    "start_char",
    "end_char",
    "ocr",
]
DOCUMENT_INT_COLUMNS = ["pages", "n_sentences"]


def count_columns(codes: Sequence[str]) -> list[str]:
    """`n_<code>` for each code: sentences of a document coded with it."""
    return [f"n_{code}" for code in codes]


def share_columns(stance_codes: Sequence[str]) -> list[str]:
    """`share_<code>` for each stance code: its share of a document's sentences."""
    return [f"share_{code}" for code in stance_codes]


def coded_sentences_export_columns(
    codes: Sequence[str], *, probabilities: Sequence[str] = (), model_version: bool = False
) -> list[str]:
    """Columns of the sentence export: ids, metadata, position, text, codes, provenance.

    `probabilities` are the codes whose `p_<code>` column is exported (after the
    codes); `model_version` adds that column after `codebook_version`.
    """
    return [
        "sentence_id",
        DOC_ID,
        *METADATA_COLUMNS,
        "path",
        "page",
        "paragraph_index",
        "paragraph_number",
        "sentence_index",
        "start_char",
        "end_char",
        "text",
        "ocr",
        *codes,
        *(probability_column(code) for code in probabilities),
        EVIDENCE,
        CODEBOOK_VERSION,
        *([MODEL_VERSION] if model_version else []),
        TEXTMINE_VERSION,
    ]


def documents_export_columns(codes: Sequence[str], stance_codes: Sequence[str]) -> list[str]:
    """Columns of the document export: the documents contract, code counts, stance shares."""
    return [*DOCUMENT_COLUMNS, *count_columns(codes), *share_columns(stance_codes)]


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
    if precision == "year":
        return parsed.strftime("%Y")
    return parsed.strftime("%Y-%m") if precision == "month" else parsed.isoformat()


# --------------------------------------------------------------------------- tables


def _text(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.StringDtype):  # every cell a string or missing
        return series.fillna("")
    return series.map(
        lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
    )


def _map_distinct(series: pd.Series, function: Callable[[str], str]) -> pd.Series:
    """`series.map(function)`, calling `function` once per distinct value (missing ones too)."""
    codes, distinct = pd.factorize(series, use_na_sentinel=False)
    mapped = pd.Series(distinct).map(function).take(codes)
    mapped.index = series.index
    return mapped.rename(series.name)


def _int(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").fillna(0).astype("int64")


def _codebook(codebook: Codebook | None) -> Codebook:
    return codebook if codebook is not None else load_codebook()


def primary_documents(documents: pd.DataFrame) -> pd.DataFrame:
    """One row per doc_id: the first file of each content (rows of duplicates dropped)."""
    if "duplicate_of" in documents:
        is_duplicate = _text(documents["duplicate_of"]) != ""
        documents = pd.concat([documents[~is_duplicate], documents[is_duplicate]])
    return documents.drop_duplicates(DOC_ID)


def coded_sentences_table(
    documents: pd.DataFrame, coded_sentences: pd.DataFrame, codebook: Codebook | None = None
) -> pd.DataFrame:
    """Sentence-level export table: one row per coded sentence with its document's metadata.

    Columns are `coded_sentences_export_columns` of the codebook's codes
    (default: the packaged codebook), with the `p_<code>` and `model_version`
    columns the coded sentences carry; rows are ordered by document path then
    sentence index. Codes are 0/1 integers, offsets integers, probabilities floats.
    """
    codes = _codebook(codebook).code_columns
    missing = [c for c in ("sentence_id", DOC_ID, "text", *codes) if c not in coded_sentences]
    if missing:
        raise ValueError(f"coded_sentences lacks columns {missing}")
    probabilities = [c for c in codes if probability_column(c) in coded_sentences]
    columns = coded_sentences_export_columns(
        codes, probabilities=probabilities, model_version=MODEL_VERSION in coded_sentences
    )
    float_columns = [probability_column(c) for c in probabilities]
    int_columns = SENTENCE_INT_COLUMNS + list(codes)
    sentences = coded_sentences.copy()
    meta = primary_documents(documents).reindex(columns=[DOC_ID, *METADATA_COLUMNS])
    sentences = sentences.drop(columns=[c for c in METADATA_COLUMNS if c in sentences])
    table = sentences.merge(meta, on=DOC_ID, how="left")
    table = table.reindex(columns=columns)
    for column in int_columns:
        table[column] = _int(table[column])
    for column in codes:
        table[column] = table[column].clip(0, 1)
    for column in float_columns:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
    for column in columns:
        if column not in int_columns and column not in float_columns:
            table[column] = _text(table[column])
    table["published"] = _map_distinct(table["published"], _published_text)
    table = table.sort_values(["path", DOC_ID, "sentence_index"], kind="stable")
    return table.reset_index(drop=True)


def documents_table(
    documents: pd.DataFrame, coded_sentences: pd.DataFrame, codebook: Codebook | None = None
) -> pd.DataFrame:
    """Document-level export table: metadata, sentence and code counts, stance shares.

    `n_sentences` and `n_<code>` (every code of the codebook, default: the
    packaged one) are counted from `coded_sentences`, so the table always agrees
    with the sentence export; `share_<stance>` is `n_<stance> / n_sentences`
    (empty when a document has no sentences). Rows of duplicate files
    (`duplicate_of` set) are kept with zero counts, so that column sums count
    each sentence once.
    """
    codebook = _codebook(codebook)
    codes, stance_codes = codebook.code_columns, codebook.stance_codes
    counted = count_columns(codes)
    shares = share_columns(stance_codes)
    int_columns = DOCUMENT_INT_COLUMNS + counted
    table = documents.reindex(columns=DOCUMENT_COLUMNS).drop_duplicates([DOC_ID, "path"]).copy()
    present = [c for c in codes if c in coded_sentences]
    if len(coded_sentences):
        frame = coded_sentences[[DOC_ID, *present]].copy()
        for column in present:
            frame[column] = _int(frame[column]).clip(0, 1)
        counts = frame.groupby(DOC_ID).agg(
            n_sentences=(DOC_ID, "size"),
            **{f"n_{code}": (code, "sum") for code in present},
        )
    else:
        counts = pd.DataFrame(columns=["n_sentences", *counted])
    table = table.drop(columns=["n_sentences"]).merge(
        counts, left_on=DOC_ID, right_index=True, how="left"
    )
    table = table.reindex(columns=[*table.columns, *(c for c in counted if c not in table)])
    for column in int_columns:
        table[column] = _int(table[column])
    duplicate = _text(table["duplicate_of"]) != ""
    table.loc[duplicate, ["n_sentences", *counted]] = 0
    for code in stance_codes:
        table[f"share_{code}"] = (
            table[f"n_{code}"] / table["n_sentences"].where(table["n_sentences"] > 0)
        ).astype("float64")
    columns = documents_export_columns(codes, stance_codes)
    for column in columns:
        if column not in int_columns + shares:
            table[column] = _text(table[column])
    table["published"] = table["published"].map(_published_text)
    table = table.reindex(columns=columns)
    return table.sort_values(["path", DOC_ID], kind="stable").reset_index(drop=True)
