"""Read sentence CSVs (coded sets, sentences to code, validation samples) strictly.

Every row must have as many fields as the header: a sentence with an
unquoted comma would otherwise shift the columns after it (ids lost, codes
read from the wrong column) without an error. Files are read as UTF-8 (with
or without a byte-order mark); a file saved by Excel on Windows as "CSV
(Comma delimited)" is Windows-1252 and is read as such, and the frame says so
in `frame.attrs["encoding"]`. Anything else fails with `SentenceCsvError`,
naming the file, the line and what to do.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

UTF8_ADVICE = (
    'save it as UTF-8: in Excel, File > Save As > "CSV UTF-8 (Comma delimited)"; in '
    'LibreOffice, Save As > Text CSV with character set "Unicode (UTF-8)"'
)
QUOTING_ADVICE = (
    'put double quotes around text that contains commas, e.g. 1,"Schools compete, and '
    'collaborate." (spreadsheet programs do this when they save as CSV)'
)


class SentenceCsvError(ValueError):
    """A sentence CSV that cannot be read safely; the message names the file, line and problem."""


def _decode(data: bytes, path: Path) -> tuple[str, str]:
    """The text of the file and the encoding it was read with."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            line = data[: utf8_error.start].count(b"\n") + 1
            raise SentenceCsvError(
                f"{path}, line {line}: the file is neither UTF-8 nor Windows-1252 text "
                f"(byte 0x{data[utf8_error.start]:02X}); {UTF8_ADVICE}"
            ) from utf8_error


def read_sentence_csv(path: str | Path, what: str = "CSV") -> pd.DataFrame:
    """Read a CSV of sentences as text columns (dtype str, empty cells as "").

    `what` names the file in errors ("coded set", "gold set"). Raises
    SentenceCsvError when the file is missing, empty, not text, has a
    duplicated or empty column name, has a row with more or fewer fields than
    the header, or an unterminated quote; blank lines are skipped.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        raise SentenceCsvError(f"{what} {path} does not exist") from error
    except OSError as error:
        raise SentenceCsvError(f"{what} {path} cannot be read ({error.strerror})") from error
    text, encoding = _decode(data, path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise SentenceCsvError(
                f"{what} {path} is empty: expected a header row such as id,sentence"
            )
        names = [name.strip() for name in header]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated or "" in names:
            problem = (
                f"column(s) {', '.join(duplicated)} appear twice"
                if duplicated
                else "a column has no name"
            )
            raise SentenceCsvError(f"{what} {path}, line 1 (header): {problem}")
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(names):
                raise SentenceCsvError(
                    f"{what} {path}, line {reader.line_num}: {len(row)} fields where the header "
                    f"has {len(names)} ({', '.join(names)}); "
                    + (
                        QUOTING_ADVICE
                        if len(row) > len(names)
                        else "a field is missing or a quote is not closed"
                    )
                )
            rows.append(row)
    except csv.Error as error:
        raise SentenceCsvError(
            f"{what} {path}, line {reader.line_num}: not valid CSV ({error}); check the quotes "
            "there: a field that opens with a double quote must close with one, and a double "
            'quote inside quoted text is written twice ("")'
        ) from error
    frame = pd.DataFrame(rows, columns=names, dtype=str)
    frame.attrs["encoding"] = encoding
    return frame
