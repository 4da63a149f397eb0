r"""File names that are not valid UTF-8, kept losslessly and shown safely.

On POSIX a file name is bytes. Python turns the bytes that are not UTF-8 into
lone surrogates ("caf\udce9.txt"), which no UTF-8 writer (SQLite, CSV, JSON)
accepts. `safe_display_path` gives a printable form with such bytes written as
``\xe9`` ("caf\xe9.txt"); `path_bytes` gives the exact bytes to store;
`path_from_bytes` turns them back into a path that opens the file.
"""

from __future__ import annotations

import os
from pathlib import Path


def path_bytes(path: str | os.PathLike) -> bytes:
    """The exact bytes of a path (os.fsencode), for lossless storage."""
    return os.fsencode(path)


def path_from_bytes(raw: bytes) -> Path:
    """The path whose bytes are `raw` (inverse of `path_bytes`)."""
    return Path(os.fsdecode(raw))


def has_undecodable_bytes(path: str | os.PathLike) -> bool:
    """True when the path holds bytes that are not UTF-8 (lone surrogates in its str)."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def safe_display_text(text: str) -> str:
    r"""`text` with lone surrogates written as \xNN (bytes of a non-UTF-8 name) or \udNNN."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    raw = text.encode("utf-8", "surrogateescape") if _only_escaped(text) else None
    if raw is not None:
        return raw.decode("utf-8", "backslashreplace")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _only_escaped(text: str) -> bool:
    """True when every lone surrogate is one that surrogateescape made (U+DC80..U+DCFF)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def safe_display_path(path: str | os.PathLike) -> str:
    r"""A path as valid UTF-8 text for outputs: "/corpus/caf\xe9.txt" for caf<0xE9>.txt.

    Forward slashes on every system; unchanged for names that are valid UTF-8.
    """
    raw = os.fspath(path)
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    return safe_display_text(Path(raw).as_posix())
