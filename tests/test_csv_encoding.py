"""The column-wise CSV encoder writes exactly the bytes pandas' `to_csv` writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textmine import csv_encoding
from textmine.atomic import write_csv_atomic
from textmine.csv_encoding import encode_csv

# text that exercises quoting: the delimiter, quotes, CR, LF, NUL, tabs, non-ASCII
_TEXT = st.text(alphabet=st.sampled_from(list("ab ,\"\r\n\t\x00'=-é’中\u2028")), max_size=12)
_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e16, 1e-5, 0.0001, 123456789.125, 5e-324, 0.1 + 0.2]),
    st.integers(-10_000, 10_000).map(lambda n: round(n / 10_000, 4)),
)


def pandas_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(None, index=False, lineterminator="\r\n").encode("utf-8")


def encoded_bytes(frame: pd.DataFrame) -> bytes:
    blocks = encode_csv(frame)
    assert blocks is not None, "the frame should be encoded column-wise"
    return b"".join(blocks)


@st.composite
def frames(draw) -> pd.DataFrame:
    rows = draw(st.integers(1, 12))
    kinds = draw(
        st.lists(
            st.sampled_from(["int", "uint8", "bool", "float", "str", "object", "text"]),
            min_size=2,
            max_size=6,
        )
    )
    data = {}
    for i, kind in enumerate(kinds):
        name = draw(st.sampled_from([f"c{i}", f"c,{i}", f'q"{i}', f"n\n{i}"]))
        if kind == "int":
            values = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=rows, max_size=rows))
            column = pd.Series(values, dtype="int64")
        elif kind == "uint8":
            values = draw(st.lists(st.integers(0, 255), min_size=rows, max_size=rows))
            column = pd.Series(values, dtype="uint8")
        elif kind == "bool":
            column = pd.Series(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
        elif kind == "float":
            values = draw(st.lists(_FLOATS, min_size=rows, max_size=rows))
            column = pd.Series(values, dtype="float64")
        else:
            cells = st.one_of(_TEXT, st.none()) if kind != "text" else _TEXT
            values = draw(st.lists(cells, min_size=rows, max_size=rows))
            dtype = {"str": "str", "object": object, "text": "str"}[kind]
            column = pd.Series(values, dtype=dtype)
            if kind == "object" and draw(st.booleans()):
                column = column.where(column.notna(), np.nan)  # NaN, not None, for missing
        data[f"{name}_{i}"] = column
    return pd.DataFrame(data)


@settings(max_examples=300, deadline=None)
@given(frames())
def test_encoder_bytes_equal_pandas_to_csv(frame):
    assert encoded_bytes(frame) == pandas_bytes(frame)


def test_blocks_of_rows_join_to_the_same_bytes(monkeypatch):
    frame = pd.DataFrame(
        {
            "id": np.arange(23),
            "text": [f'row "{i}",\n' if i % 3 else "" for i in range(23)],
            "p": np.linspace(-1, 1, 23),
        }
    )
    monkeypatch.setattr(csv_encoding, "ROWS_PER_CHUNK", 5)
    assert len(list(encode_csv(frame) or [])) == 1 + 5  # the header, then 5 blocks
    assert encoded_bytes(frame) == pandas_bytes(frame)


def test_a_text_column_of_several_arrow_chunks():
    chunks = pa.chunked_array([["a,b", None], ['"c"', "d\r"]], type=pa.large_string())
    text = pd.Series(pd.arrays.ArrowStringArray(chunks))
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "text": text, "p": [0.5, 1.0, np.nan, -0.0]})
    assert encoded_bytes(frame) == pandas_bytes(frame)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": ["x", ""]}),  # one column: pandas quotes an empty row ("")
        pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype=str)}),
        pd.DataFrame({"a": [1, 2], "b": pd.Categorical(["x", "y"])}),
        pd.DataFrame({"a": [1, 2], "b": pd.array([1, None], dtype="Int64")}),
        pd.DataFrame({"a": [1, 2], "b": pd.to_datetime(["2020-01-01", "2021-02-03"])}),
        pd.DataFrame({"a": [1, 2], "b": pd.Series(["x", 2.5], dtype=object)}),
        pd.DataFrame({"a": [1, 2], "b": np.array([0.5, 1.5], dtype="float32")}),
        pd.DataFrame({0: [1, 2], "b": ["x", "y"]}),
        pd.DataFrame({"a": [1, 2], "b": pd.Series(["\ud800", "y"], dtype=object)}),  # not UTF-8
    ],
)
def test_other_frames_are_left_to_pandas(frame, tmp_path):
    assert encode_csv(frame) is None


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": ["x", ""]}),
        pd.DataFrame({"a": [1, 2], "b": pd.Categorical(["x", "=y"])}),
        pd.DataFrame({"id": [1, 2], "text": ['=1+2, "q"', "line\r\nbreak"], "p": [0.5, np.nan]}),
    ],
)
def test_write_csv_atomic_writes_pandas_bytes_either_way(frame, tmp_path):
    from textmine.csv_safety import escape_formula_cells

    target = tmp_path / "out.csv"
    write_csv_atomic(target, frame)
    assert target.read_bytes() == pandas_bytes(escape_formula_cells(frame))
