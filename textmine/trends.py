"""Trends of the sentence codes: shares with Wilson intervals and rates per 1,000 sentences.

Pure functions on the coded sentences and documents tables. Each trend table has
one row per (dimension, group, period): dimension "all" is the whole corpus,
"doc_type" and "publisher" break it down; period "all" sums over time and
"undated" holds documents without a usable date ("undated_in_quarter", by
quarter, those dated only to the year). The codes come from the
codebook: its stance codes get shares with intervals, its partnership types
rates per 1,000 sentences, any code a researcher added included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from textmine.codebook import Codebook, load_codebook
from textmine.periods import (
    ALL,
    NOT_A_PERIOD,
    PERIODS,
    UNDATED,
    UNDATED_IN_QUARTER,
    period_start,
    sentences_with_periods,
)

KEY_COLUMNS = ["dimension", "group", "period", "period_start"]

TREND_FILES = {
    "stance_trends": "stance_trends.csv",
    "partnership_trends": "partnership_trends.csv",
    "document_shares": "document_shares.csv",
}


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


def _codebook(codebook: Codebook | None) -> Codebook:
    return codebook if codebook is not None else load_codebook()


def _present(codes: Sequence[str], frame: pd.DataFrame) -> list[str]:
    return [c for c in codes if c in frame.columns]


def stance_columns(
    counts: pd.DataFrame, n: pd.Series, stance_codes: Sequence[str]
) -> dict[str, list]:
    """n_<code>, share_<code> and its 95% Wilson interval for each stance code in `counts`."""
    columns: dict[str, list] = {}
    for code in _present(stance_codes, counts):
        k = counts[code].astype(int)
        intervals = [wilson_interval(int(a), int(b)) for a, b in zip(k, n, strict=True)]
        columns[f"n_{code}"] = k.tolist()
        columns[f"share_{code}"] = [
            round(a / b, 6) if b else math.nan for a, b in zip(k, n, strict=True)
        ]
        columns[f"{code}_ci_low"] = [round(lo, 6) for lo, _ in intervals]
        columns[f"{code}_ci_high"] = [round(hi, 6) for _, hi in intervals]
    return columns


def partnership_columns(
    counts: pd.DataFrame, n: pd.Series, partnership_codes: Sequence[str]
) -> dict[str, list]:
    """n_<code> and <code>_per_1000 for each partnership type in `counts`."""
    columns: dict[str, list] = {}
    for code in _present(partnership_codes, counts):
        k = counts[code].astype(int)
        columns[f"n_{code}"] = k.tolist()
        columns[f"{code}_per_1000"] = [
            round(1000 * a / b, 4) if b else math.nan for a, b in zip(k, n, strict=True)
        ]
    return columns


def _grouped(frame: pd.DataFrame, by: str, codes: Sequence[str], make) -> pd.DataFrame:
    """Counts per (dimension, group, period) and the columns `make(agg, n)` adds."""
    parts = []
    for dimension in (ALL, "doc_type", "publisher"):
        group_values = frame[dimension] if dimension != ALL else pd.Series(ALL, index=frame.index)
        for over_time in (True, False):
            periods = frame["period"] if over_time else pd.Series(ALL, index=frame.index)
            keyed = frame[["doc_id", *codes]].assign(  # only the columns counted
                _group=group_values.to_numpy(), _period=periods.to_numpy()
            )
            agg = (
                keyed.groupby(["_group", "_period"], sort=True)
                .agg(
                    n_documents=("doc_id", "nunique"),
                    n_sentences=("doc_id", "size"),
                    **{code: (code, "sum") for code in codes},
                )
                .reset_index()
            )
            part = pd.DataFrame(
                {
                    "dimension": dimension,
                    "group": agg["_group"].astype(str),
                    "period": agg["_period"].astype(str),
                }
            )
            starts = [period_start(p, by) for p in part["period"]]
            part["period_start"] = [s.strftime("%Y-%m-%d") if s is not None else "" for s in starts]
            part["n_documents"] = agg["n_documents"].astype(int).to_numpy()
            part["n_sentences"] = agg["n_sentences"].astype(int).to_numpy()
            for name, values in make(agg, agg["n_sentences"]).items():
                part[name] = values
            parts.append(part)
    result = pd.concat(parts, ignore_index=True)
    order = {ALL: 0, "doc_type": 1, "publisher": 2}
    result["_d"] = result["dimension"].map(order)
    result["_p"] = result["period"].map(
        lambda p: (p == ALL, p == UNDATED, p == UNDATED_IN_QUARTER, p)
    )
    result = result.sort_values(["_d", "group", "_p"], kind="stable").drop(columns=["_d", "_p"])
    return result.reset_index(drop=True)


def stance_trends(
    coded_sentences: pd.DataFrame,
    documents: pd.DataFrame,
    by: str = "year",
    *,
    codebook: Codebook | None = None,
) -> pd.DataFrame:
    """Sentences and the share coded with each stance code, with Wilson 95% intervals.

    The stance codes are the codebook's (default: the packaged codebook).
    """
    codes = _present(_codebook(codebook).stance_codes, coded_sentences)
    frame = sentences_with_periods(coded_sentences, documents, by, codes)
    return _stance_trends(frame, by, codes)


def _stance_trends(frame: pd.DataFrame, by: str, codes: list[str]) -> pd.DataFrame:
    """`stance_trends` of `sentences_with_periods` (its `codes` 0/1 among them)."""
    return _grouped(frame, by, codes, lambda agg, n: stance_columns(agg, n, codes))


def partnership_trends(
    coded_sentences: pd.DataFrame,
    documents: pd.DataFrame,
    by: str = "year",
    *,
    codebook: Codebook | None = None,
) -> pd.DataFrame:
    """Sentences coded with each partnership type, and the rate per 1,000 sentences.

    The partnership types are the codebook's (default: the packaged codebook).
    """
    codes = _present(_codebook(codebook).partnership_codes, coded_sentences)
    frame = sentences_with_periods(coded_sentences, documents, by, codes)
    return _partnership_trends(frame, by, codes)


def _partnership_trends(frame: pd.DataFrame, by: str, codes: list[str]) -> pd.DataFrame:
    """`partnership_trends` of `sentences_with_periods` (its `codes` 0/1 among them)."""
    return _grouped(frame, by, codes, lambda agg, n: partnership_columns(agg, n, codes))


def document_shares(
    coded_sentences: pd.DataFrame,
    documents: pd.DataFrame,
    by: str = "year",
    *,
    codebook: Codebook | None = None,
) -> pd.DataFrame:
    """One row per document: stance shares with intervals and partnership rates.

    Sorted by collaboration share (highest first), then by doc_id.
    """
    codebook = _codebook(codebook)
    stance = _present(codebook.stance_codes, coded_sentences)
    partnership = _present(codebook.partnership_codes, coded_sentences)
    frame = sentences_with_periods(coded_sentences, documents, by, stance + partnership)
    return _document_shares(frame, stance, partnership)


def _document_shares(
    frame: pd.DataFrame, stance: list[str], partnership: list[str]
) -> pd.DataFrame:
    """`document_shares` of `sentences_with_periods` (the stance and partnership codes 0/1)."""
    meta = ["doc_id", "path", "title", "publisher", "doc_type", "published", "period"]
    if "path" not in frame.columns:
        frame = frame.assign(path="")
    agg = (
        frame.groupby("doc_id", sort=True)
        .agg(
            **{c: (c, "first") for c in meta if c != "doc_id"},
            n_sentences=("doc_id", "size"),
            **{code: (code, "sum") for code in stance + partnership},
        )
        .reset_index()
    )
    result = agg[[*meta, "n_sentences"]].copy()
    for name, values in stance_columns(agg, agg["n_sentences"], stance).items():
        result[name] = values
    for name, values in partnership_columns(agg, agg["n_sentences"], partnership).items():
        result[name] = values
    if "share_collaboration" in result.columns:
        result = result.sort_values(
            ["share_collaboration", "doc_id"], ascending=[False, True], kind="stable"
        )
    return result.reset_index(drop=True)


def compute_trends(
    coded_sentences: pd.DataFrame,
    documents: pd.DataFrame,
    by: str = "year",
    *,
    codebook: Codebook | None = None,
    validation: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """{'stance_trends', 'partnership_trends', 'document_shares'} for the coded corpus.

    Every code of `codebook` (default: the packaged codebook) that the coded
    sentences carry is counted, codes a researcher added included. With a
    `validation` sample (`textmine.validation.read_validation`), the stance and
    partnership tables also carry the design-based corrected estimates.
    """
    if by not in PERIODS:
        raise ValueError(f"by must be one of {PERIODS}, not {by!r}")
    codebook = _codebook(codebook)
    stance = _present(codebook.stance_codes, coded_sentences)
    partnership = _present(codebook.partnership_codes, coded_sentences)
    # one frame for the three tables: a code's column is the same whichever codes are made 0/1
    frame = sentences_with_periods(coded_sentences, documents, by, stance + partnership)
    trends = {
        "stance_trends": _stance_trends(frame, by, stance),
        "partnership_trends": _partnership_trends(frame, by, partnership),
        "document_shares": _document_shares(frame, stance, partnership),
    }
    if validation is not None:
        from textmine.validation import corrected_trends

        trends = corrected_trends(
            trends,
            coded_sentences,
            documents,
            validation,
            by=by,
            stance_codes=codebook.stance_codes,
            partnership_codes=codebook.partnership_codes,
        )
    return trends


def undated_notes(table: pd.DataFrame) -> list[str]:
    """What a trend table leaves off its time axis, in words.

    Undated documents (period "undated") and, by quarter, documents dated only
    to the year (period "undated_in_quarter").
    """
    notes = []
    rows = table[(table["dimension"] == ALL) & table["period"].isin([UNDATED_IN_QUARTER, UNDATED])]
    for row in rows.itertuples(index=False):
        if row.period == UNDATED_IN_QUARTER:
            notes.append(
                f"{row.n_sentences:,} sentences of {row.n_documents:,} documents dated only to "
                "the year are in no quarter (period undated_in_quarter)"
            )
        else:
            notes.append(
                f"{row.n_sentences:,} sentences of {row.n_documents:,} documents without a "
                "usable date are in no period (period undated)"
            )
    return notes


__all__ = [
    "ALL",
    "KEY_COLUMNS",
    "NOT_A_PERIOD",
    "TREND_FILES",
    "UNDATED",
    "UNDATED_IN_QUARTER",
    "compute_trends",
    "document_shares",
    "partnership_columns",
    "partnership_trends",
    "stance_columns",
    "stance_trends",
    "undated_notes",
    "wilson_interval",
]
