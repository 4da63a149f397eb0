"""Spreadsheet-safe CSV cells: formula-injection escaping (OWASP "CSV Injection").

A *text* cell that begins with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading single quote, so a spreadsheet shows it as text and never
evaluates it. Numbers (int and float cells, e.g. ``-0.5``) are never touched.
A text cell that already begins with quotes followed by a trigger character
gets one more quote, so that `unescape_formula` is an exact inverse: read a CSV
back with ``pd.read_csv(path, dtype=str, keep_default_na=False)`` and pass it
to `unescape_formula_cells` to recover the original text. Parquet exports keep
the original text unescaped.

`textmine.atomic.write_csv_atomic`, the one CSV writer of textmine, applies
`escape_formula_cells` to every frame it writes.
"""

from __future__ import annotations

import pandas as pd

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
    return (
        pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


_FIRST_CHARACTERS = frozenset([*FORMULA_TRIGGERS, ESCAPE_PREFIX])


def _needs_escaping(series: pd.Series) -> bool:
    """True when some string cell of the column starts with a trigger or a quote."""
    if isinstance(series.dtype, pd.StringDtype):  # missing cells are NA, never a string
        return bool(series.str[:1].isin(list(_FIRST_CHARACTERS)).any())
    firsts = {v[:1] for v in series.to_numpy(dtype=object) if isinstance(v, str)}
    return not firsts.isdisjoint(_FIRST_CHARACTERS)


def escape_formula_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with `escape_formula` applied to every string cell of text columns.

    Returns `frame` itself when no cell needs escaping (no copy), else a copy.
    Column names are escaped too (they become the header row).
    """
    columns = [
        c
        for c in dict.fromkeys(frame.columns)
        if isinstance(frame[c], pd.Series)
        and _is_text_column(frame[c])
        and _needs_escaping(frame[c])
    ]
    renamed = {
        c: escape_formula(c) for c in frame.columns if isinstance(c, str) and escape_formula(c) != c
    }
    if not columns and not renamed:
        return frame
    escaped = frame.copy()
    for column in columns:
        escaped[column] = escaped[column].map(
            lambda v: escape_formula(v) if isinstance(v, str) else v
        )
    return escaped.rename(columns=renamed) if renamed else escaped


def unescape_formula_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Inverse of `escape_formula_cells` for a CSV read back with pandas (as strings)."""
    restored = frame.copy()
    for column in restored.columns:
        if _is_text_column(restored[column]):
            restored[column] = restored[column].map(unescape_formula)
    return restored.rename(
        columns={c: unescape_formula(c) for c in restored.columns if isinstance(c, str)}
    )
