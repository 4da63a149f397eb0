"""Trends of the sentence codes: shares with Wilson intervals and rates per 1,000 sentences.

Pure functions on the coded sentences and documents tables. Each trend table has
one row per (dimension, group, period): dimension "all" is the whole corpus,
"doc_type" and "publisher" break it down; period "all" sums over time and
"undated" holds documents without a usable date.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from textmine.columns import PARTNERSHIP_CODES, STANCE_CODES

PERIODS = ("year", "quarter")
ALL = "all"
UNDATED = "undated"
_DATE = re.compile(r"^\s*(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?")

KEY_COLUMNS = ["dimension", "group", "period", "period_start"]


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (nan, nan) when n is 0."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


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


def period_start(published_or_period: object, by: str = "year") -> pd.Timestamp | None:
    """First day of the period a date (or a period label) falls in."""
    text = str(published_or_period or "")
    quarter = re.match(r"^(\d{4})-Q([1-4])$", text)
    if quarter:
        return pd.Timestamp(int(quarter.group(1)), 3 * int(quarter.group(2)) - 2, 1)
    label = period_label(text, by)
    if label is None:
        return None
    if by == "year":
        return pd.Timestamp(int(label), 1, 1)
    return period_start(label, by)


def _sentences_with_documents(coded_sentences: pd.DataFrame, documents: pd.DataFrame, by: str) -> pd.DataFrame:
    docs = documents.copy() if documents is not None else pd.DataFrame(columns=["doc_id"])
    if "duplicate_of" in docs.columns:
        docs = docs[docs["duplicate_of"].fillna("").astype(str) == ""]
    docs = docs.drop_duplicates("doc_id")
    keep = [c for c in ("doc_id", "title", "publisher", "doc_type", "published") if c in docs.columns]
    frame = coded_sentences.merge(docs[keep], on="doc_id", how="left", suffixes=("", "_doc"))
    for column in ("title", "publisher", "doc_type", "published"):
        if column not in frame.columns:
            frame[column] = ""
        frame[column] = frame[column].fillna("").astype(str)
    frame["publisher"] = frame["publisher"].replace("", "unknown")
    frame["doc_type"] = frame["doc_type"].replace("", "unknown")
    frame["period"] = [period_label(p, by) or UNDATED for p in frame["published"]]
    for code in _codes(coded_sentences):
        frame[code] = (pd.to_numeric(frame[code], errors="coerce").fillna(0) > 0).astype(int)
    return frame


def _codes(frame: pd.DataFrame) -> list[str]:
    return [c for c in STANCE_CODES + PARTNERSHIP_CODES if c in frame.columns]


def _stance_columns(counts: pd.DataFrame, n: pd.Series) -> dict[str, list]:
    columns: dict[str, list] = {}
    for code in STANCE_CODES:
        if code not in counts.columns:
            continue
        k = counts[code].astype(int)
        intervals = [wilson_interval(int(a), int(b)) for a, b in zip(k, n, strict=True)]
        columns[f"n_{code}"] = k.tolist()
        columns[f"share_{code}"] = [round(a / b, 6) if b else math.nan for a, b in zip(k, n, strict=True)]
        columns[f"{code}_ci_low"] = [round(lo, 6) for lo, _ in intervals]
        columns[f"{code}_ci_high"] = [round(hi, 6) for _, hi in intervals]
    return columns


def _partnership_columns(counts: pd.DataFrame, n: pd.Series) -> dict[str, list]:
    columns: dict[str, list] = {}
    for code in PARTNERSHIP_CODES:
        if code not in counts.columns:
            continue
        k = counts[code].astype(int)
        columns[f"n_{code}"] = k.tolist()
        columns[f"{code}_per_1000"] = [round(1000 * a / b, 4) if b else math.nan for a, b in zip(k, n, strict=True)]
    return columns


def _grouped(frame: pd.DataFrame, by: str, kind: str) -> pd.DataFrame:
    codes = _codes(frame)
    parts = []
    for dimension in (ALL, "doc_type", "publisher"):
        group_values = frame[dimension] if dimension != ALL else pd.Series(ALL, index=frame.index)
        for over_time in (True, False):
            periods = frame["period"] if over_time else pd.Series(ALL, index=frame.index)
            keyed = frame.assign(_group=group_values.to_numpy(), _period=periods.to_numpy())
            agg = keyed.groupby(["_group", "_period"], sort=True).agg(
                n_documents=("doc_id", "nunique"), n_sentences=("doc_id", "size"),
                **{code: (code, "sum") for code in codes},
            ).reset_index()
            part = pd.DataFrame({
                "dimension": dimension,
                "group": agg["_group"].astype(str),
                "period": agg["_period"].astype(str),
            })
            starts = [period_start(p, by) for p in part["period"]]
            part["period_start"] = [s.strftime("%Y-%m-%d") if s is not None else "" for s in starts]
            part["n_documents"] = agg["n_documents"].astype(int).to_numpy()
            part["n_sentences"] = agg["n_sentences"].astype(int).to_numpy()
            make = _stance_columns if kind == "stance" else _partnership_columns
            for name, values in make(agg, agg["n_sentences"]).items():
                part[name] = values
            parts.append(part)
    result = pd.concat(parts, ignore_index=True)
    order = {ALL: 0, "doc_type": 1, "publisher": 2}
    result["_d"] = result["dimension"].map(order)
    result["_p"] = result["period"].map(lambda p: (p == ALL, p == UNDATED, p))
    result = result.sort_values(["_d", "group", "_p"], kind="stable").drop(columns=["_d", "_p"])
    return result.reset_index(drop=True)


def stance_trends(coded_sentences: pd.DataFrame, documents: pd.DataFrame, by: str = "year") -> pd.DataFrame:
    """Sentences, competition and collaboration shares with Wilson 95% intervals."""
    return _grouped(_sentences_with_documents(coded_sentences, documents, by), by, "stance")


def partnership_trends(coded_sentences: pd.DataFrame, documents: pd.DataFrame, by: str = "year") -> pd.DataFrame:
    """Sentences coded with each partnership type, and the rate per 1,000 sentences."""
    return _grouped(_sentences_with_documents(coded_sentences, documents, by), by, "partnership")


def document_shares(coded_sentences: pd.DataFrame, documents: pd.DataFrame, by: str = "year") -> pd.DataFrame:
    """One row per document: stance shares with intervals and partnership rates.

    Sorted by collaboration share (highest first), then by doc_id.
    """
    frame = _sentences_with_documents(coded_sentences, documents, by)
    codes = _codes(frame)
    meta = ["doc_id", "path", "title", "publisher", "doc_type", "published", "period"]
    if "path" not in frame.columns:
        frame["path"] = ""
    agg = frame.groupby("doc_id", sort=True).agg(
        **{c: (c, "first") for c in meta if c != "doc_id"},
        n_sentences=("doc_id", "size"), **{code: (code, "sum") for code in codes},
    ).reset_index()
    result = agg[meta + ["n_sentences"]].copy()
    for name, values in _stance_columns(agg, agg["n_sentences"]).items():
        result[name] = values
    for name, values in _partnership_columns(agg, agg["n_sentences"]).items():
        result[name] = values
    if "share_collaboration" in result.columns:
        result = result.sort_values(["share_collaboration", "doc_id"], ascending=[False, True], kind="stable")
    return result.reset_index(drop=True)


def compute_trends(coded_sentences: pd.DataFrame, documents: pd.DataFrame, by: str = "year") -> dict[str, pd.DataFrame]:
    """{'stance_trends', 'partnership_trends', 'document_shares'} for the coded corpus."""
    if by not in PERIODS:
        raise ValueError(f"by must be one of {PERIODS}, not {by!r}")
    return {
        "stance_trends": stance_trends(coded_sentences, documents, by),
        "partnership_trends": partnership_trends(coded_sentences, documents, by),
        "document_shares": document_shares(coded_sentences, documents, by),
    }


def over_time(table: pd.DataFrame, dimension: str = ALL) -> pd.DataFrame:
    """The dated rows of a trend table for one dimension, oldest first."""
    rows = table[(table["dimension"] == dimension) & ~table["period"].isin([ALL, UNDATED])]
    return rows.sort_values(["group", "period_start"], kind="stable").reset_index(drop=True)


__all__ = [
    "compute_trends", "document_shares", "over_time", "partnership_trends", "period_label",
    "period_start", "stance_trends", "trends_stage", "wilson_interval",
]


TREND_FILES = {
    "stance_trends": "stance_trends.csv",
    "partnership_trends": "partnership_trends.csv",
    "document_shares": "document_shares.csv",
}


def trends_stage(
    coded_sentences: pd.DataFrame, documents: pd.DataFrame, out_dir, by: str = "year"
) -> tuple[dict[str, pd.DataFrame], list]:
    """Compute the trends, write the three CSV files and the stance/partnership figures."""
    from pathlib import Path

    from textmine.atomic import write_csv_atomic
    from textmine.figures import write_figures

    out = Path(out_dir)
    trends = compute_trends(coded_sentences, documents, by=by)
    written = []
    for key, name in TREND_FILES.items():
        write_csv_atomic(out / name, trends[key])
        written.append(out / name)
    written += write_figures(trends, None, out / "figures", by=by)
    return trends, written
