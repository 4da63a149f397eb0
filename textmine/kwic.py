"""Keyword in context over coded sentences, as quanteda's kwic().

A TERM is a word, a phrase ("school partnership") or a glob per word
(`collaborat*`, `partner?`); matching ignores case. Each hit gives the
document, sentence, page, `window` words before (`pre`), the matched words
(`keyword`) and `window` words after (`post`), within the sentence, followed by
the sentence's 0/1 code columns (every code of the codebook the sentences carry).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

import pandas as pd

from textmine.codebook import load_codebook

KWIC_COLUMNS = [
    "docname",
    "doc_id",
    "sentence_id",
    "page",
    "from",
    "to",
    "pre",
    "keyword",
    "post",
    "pattern",
]
_WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")


def _word_regex(glob: str) -> re.Pattern:
    return re.compile(fnmatch.translate(glob.lower()), re.IGNORECASE)


def compile_term(term: str) -> list[re.Pattern]:
    """One regex per word of the term (globs `*`, `?` and `[...]` allowed)."""
    words = term.split()
    if not words:
        raise ValueError("the kwic term is empty")
    return [_word_regex(w) for w in words]


def _code_value(value: object) -> int:
    return 0 if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]


def kwic(
    sentences: pd.DataFrame,
    term: str,
    *,
    window: int = 5,
    text_column: str = "text",
    codes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """All hits of `term` in the sentences, in corpus order, with `window` words of context.

    `sentences` needs `text_column`; `doc_id`, `sentence_id`, `page` and `path`
    are carried when present (`docname` is the file name of `path`, else doc_id).
    Columns are KWIC_COLUMNS, then each of `codes` (default: the packaged
    codebook's `code_columns`) the sentences carry, 0/1 for the hit's sentence.
    """
    if window < 0:
        raise ValueError("window must be 0 or more words")
    if text_column not in sentences.columns:
        raise KeyError(f"no column {text_column!r} in the sentences")
    if codes is None:
        codes = load_codebook().code_columns
    code_columns = [c for c in codes if c in sentences.columns]
    patterns = compile_term(term)
    n = len(patterns)
    first = patterns[0]
    rows = []
    for record in sentences.to_dict("records"):
        text = record.get(text_column)
        if not isinstance(text, str) or not text:
            continue
        tokens = _WORD.findall(text)
        for i in range(len(tokens) - n + 1):
            if not first.fullmatch(tokens[i]):
                continue
            if all(p.fullmatch(tokens[i + j]) for j, p in enumerate(patterns[1:], 1)):
                path = record.get("path")
                docname = (
                    str(path).replace("\\", "/").rsplit("/", 1)[-1]
                    if isinstance(path, str) and path
                    else record.get("doc_id", "")
                )
                rows.append(
                    {
                        "docname": docname,
                        "doc_id": record.get("doc_id", ""),
                        "sentence_id": record.get("sentence_id", record.get("id", "")),
                        "page": record.get("page", ""),
                        "from": i + 1,
                        "to": i + n,
                        "pre": " ".join(tokens[max(0, i - window) : i]),
                        "keyword": " ".join(tokens[i : i + n]),
                        "post": " ".join(tokens[i + n : i + n + window]),
                        "pattern": term,
                        **{code: _code_value(record.get(code)) for code in code_columns},
                    }
                )
    return pd.DataFrame(rows, columns=KWIC_COLUMNS + code_columns)
