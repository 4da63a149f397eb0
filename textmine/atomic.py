"""Atomic file writes: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from textmine.csv_encoding import encode_csv
from textmine.csv_safety import escape_formula_cells


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file next to `path`; on success rename it over `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with open(tmp_name, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; outputs are for sharing
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented UTF-8 JSON atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_csv_atomic(
    path: str | os.PathLike, frame: pd.DataFrame, *, escape_formulas: bool = True, **kwargs: Any
) -> None:
    """UTF-8 CSV as RFC 4180: CRLF row ends, doubled quotes, fields with CR/LF quoted.

    The one CSV writer of textmine: text cells are escaped against formula
    injection (`textmine.csv_safety`, reversible with `unescape_formula_cells`)
    unless `escape_formulas` is False (only for files that are not for people,
    such as caches read back by textmine).
    """
    if escape_formulas:
        frame = escape_formula_cells(frame)
    blocks = None if kwargs else encode_csv(frame)  # pandas' bytes, made column-wise
    if blocks is not None:
        with atomic_open(path, "wb") as binary:
            for block in blocks:
                binary.write(block)
        return
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False, lineterminator="\r\n", **kwargs)
