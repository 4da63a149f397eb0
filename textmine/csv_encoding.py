"""The bytes `DataFrame.to_csv(index=False, lineterminator=CRLF)` writes, made column-wise.

pandas hands every cell to the standard library's csv writer, one Python
object at a time. For the column types textmine writes (NumPy ints, floats
and bools, text columns of strings and missing values) the same bytes are made
here a column at a time with Arrow compute: each column's cell texts, quoted
where the csv writer quotes (a comma, a double quote, CR or LF), then joined
into CRLF-terminated rows. `encode_csv` returns None for any other frame, and
the caller writes it with pandas.

The cell texts are the ones pandas gives the csv writer (`pandas.core.indexes.
base.get_values_for_csv` with `na_rep=""`): ints and bools as `astype(str)`,
floats as NumPy's `astype(str)` (NaN empty), strings as they are, missing text
empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ROWS_PER_CHUNK = 50_000
"""Rows joined into one block of bytes at a time (bounds the memory of a large file)."""

_NEEDS_QUOTES = r'[,"\r\n]'  # QUOTE_MINIMAL with "," as delimiter and CRLF row ends


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def encode_csv(frame: pd.DataFrame) -> Iterator[memoryview] | None:
    """The UTF-8 bytes of `frame.to_csv(index=False, lineterminator=CRLF)`, in blocks.

    None when the frame has a column (or column name) this encoder does not
    make byte for byte as pandas does, fewer than two columns or no rows: write
    it with pandas then. Every column is converted before the first block is
    returned, so a cell Arrow cannot hold gives None, never a half-made file.
    """
    if frame.shape[1] < 2 or frame.shape[0] == 0:
        return None
    if isinstance(frame.columns, pd.MultiIndex) or not all(type(c) is str for c in frame.columns):
        return None
    cells: list[pa.Array] = []
    try:
        for _, series in frame.items():
            column = _cell_texts(series)
            if column is None:
                return None
            if isinstance(column, pa.ChunkedArray):  # e.g. a str column of several chunks
                column = column.combine_chunks()
            if not (isinstance(column, pa.Array) and column.type == pa.large_string()):
                return None
            cells.append(column)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None
    return _blocks(_header(list(frame.columns)), cells, len(frame))


def _header(names: list[str]) -> bytes:
    """The header row as pandas writes it (through the csv writer)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(names)
    return buffer.getvalue().encode("utf-8")


def _cell_texts(series: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """The column's cells as the csv writer writes them (quoted), or None if unsupported."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iu":
            return pc.cast(pa.array(series.to_numpy()), pa.large_string())
        if dtype.kind == "b":
            flags = pa.array(series.to_numpy())
            return pc.if_else(flags, "True", "False").cast(pa.large_string())
        if dtype == np.float64:
            return _float_texts(series.to_numpy())
        if dtype.kind != "O" or pd.api.types.infer_dtype(series, skipna=True) not in (
            "string",
            "empty",
        ):
            return None
        text = pa.array(series.to_numpy(), type=pa.large_string(), from_pandas=True)
    elif isinstance(dtype, pd.StringDtype):
        text = pa.array(series.array, type=pa.large_string())
    else:
        return None
    if text.null_count:
        text = text.fill_null("")
    return _quoted(text)


def _float_texts(values: np.ndarray) -> pa.Array | pa.ChunkedArray:
    """NumPy's `astype(str)` of each float, NaN empty; made once per distinct value."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    distinct, positions = np.unique(bits, return_inverse=True)  # by bits: -0.0 is not 0.0
    floats = distinct.view(np.float64)
    texts = floats.astype(str).astype(object)
    texts[np.isnan(floats)] = ""
    return pa.array(texts, type=pa.large_string()).take(pa.array(positions.ravel()))


def _quoted(text: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Cells with a comma, quote, CR or LF quoted, their quotes doubled (QUOTE_MINIMAL)."""
    needs = pc.match_substring_regex(text, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return text
    quote = _text('"')
    quoted = pc.binary_join_element_wise(
        quote, pc.replace_substring(text, '"', '""'), quote, _text("")
    )
    return pc.if_else(needs, quoted, text)


def _blocks(header: bytes, cells: list[pa.Array], rows: int) -> Iterator[memoryview]:
    """The header, then the rows joined with commas and CRLF, ROWS_PER_CHUNK rows at a time."""
    yield memoryview(header)
    comma, row_end = _text(","), _text("\r\n")
    separators: list[pa.Array | pa.Scalar] = []
    for column in cells[:-1]:
        separators += [column, comma]
    for start in range(0, rows, ROWS_PER_CHUNK):
        length = min(ROWS_PER_CHUNK, rows - start)
        parts = [p.slice(start, length) if isinstance(p, pa.Array) else p for p in separators]
        lines = pc.binary_join_element_wise(
            *parts, cells[-1].slice(start, length), row_end, _text("")
        )
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
        first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
        yield memoryview(lines.buffers()[2])[first:last]
