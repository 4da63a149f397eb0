"""Periods of publication dates: labels ('2016', '2016-Q4'), first days, dated rows.

Shared by topics over time and the code trends, so both bin dates the same way.
Dates are ISO text as precise as known ('YYYY', 'YYYY-MM' or 'YYYY-MM-DD').
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

PERIODS = ("year", "quarter")
ALL = "all"  # the period (or group) that sums over every period
UNDATED = "undated"  # the period of documents without a usable date
# By quarter, the period of documents dated only to the year (no month, so no quarter).
UNDATED_IN_QUARTER = "undated_in_quarter"
NOT_A_PERIOD = (
    ALL,
    UNDATED,
    UNDATED_IN_QUARTER,
)  # rows of a trend table that are not on the time axis
_DATE = re.compile(r"^\s*(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def period_label(published: object, by: str = "year") -> str | None:
    """'2016' or '2016-Q4' for an ISO date ('YYYY', 'YYYY-MM', 'YYYY-MM-DD').

    None when the date is missing or, for quarters, has no month.
    """
    if by not in PERIODS:
        raise ValueError(f"by must be one of {PERIODS}, not {by!r}")
    match = _DATE.match(str(published or ""))
    if not match:
        return None
    year = match.group(1)
    if by == "year":
        return year
    if not match.group(2):
        return None
    month = int(match.group(2))
    if not 1 <= month <= 12:
        return None
    return f"{year}-Q{(month - 1) // 3 + 1}"


def period_or_undated(published: object, by: str = "year") -> str:
    """`period_label`, else UNDATED_IN_QUARTER for a year-only date by quarter, else UNDATED."""
    label = period_label(published, by)
    if label is not None:
        return label
    if by == "quarter" and period_label(published, "year") is not None:
        return UNDATED_IN_QUARTER
    return UNDATED


def period_start(published_or_period: object, by: str = "year") -> pd.Timestamp | None:
    """First day of the period a date (or a period label) falls in."""
    text = str(published_or_period or "")
    quarter = _QUARTER.match(text)
    if quarter:
        return pd.Timestamp(int(quarter.group(1)), 3 * int(quarter.group(2)) - 2, 1)
    label = period_label(text, by)
    if label is None:
        return None
    if by == "year":
        return pd.Timestamp(int(label), 1, 1)
    return period_start(label, by)


def over_time(table: pd.DataFrame, dimension: str = ALL) -> pd.DataFrame:
    """The dated rows of a trend table for one dimension, oldest first."""
    rows = table[(table["dimension"] == dimension) & ~table["period"].isin(NOT_A_PERIOD)]
    return rows.sort_values(["group", "period_start"], kind="stable").reset_index(drop=True)


def sentences_with_periods(
    coded_sentences: pd.DataFrame, documents: pd.DataFrame | None, by: str, codes: Sequence[str]
) -> pd.DataFrame:
    """Coded sentences with their document's metadata and publication period.

    Duplicate files are left out; missing publisher and doc_type read
    "unknown", a missing date the period 'undated' (see `period_or_undated`);
    each of `codes` present becomes 0/1. Shared by the trend tables and the
    validation design so both group sentences the same way.
    """
    if by not in PERIODS:
        raise ValueError(f"by must be one of {PERIODS}, not {by!r}")
    docs = documents.copy() if documents is not None else pd.DataFrame(columns=["doc_id"])
    if "duplicate_of" in docs.columns:
        docs = docs[docs["duplicate_of"].fillna("").astype(str) == ""]
    docs = docs.drop_duplicates("doc_id")
    meta = [c for c in ("title", "publisher", "doc_type", "published") if c in docs.columns]
    sentences = coded_sentences.drop(columns=[c for c in meta if c in coded_sentences.columns])
    frame = sentences.merge(docs[["doc_id", *meta]], on="doc_id", how="left")
    for column in ("title", "publisher", "doc_type", "published"):
        if column not in frame.columns:
            frame[column] = ""
        frame[column] = frame[column].fillna("").astype(str)
    frame["publisher"] = frame["publisher"].replace("", "unknown")
    frame["doc_type"] = frame["doc_type"].replace("", "unknown")
    frame["period"] = [period_or_undated(p, by) for p in frame["published"]]
    for code in codes:
        if code in frame.columns:
            frame[code] = (pd.to_numeric(frame[code], errors="coerce").fillna(0) > 0).astype(int)
    return frame
