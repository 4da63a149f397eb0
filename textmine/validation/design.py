"""Samples of sentences to code by hand: the sentence frame, strata and how the sample is drawn.

`random` draws a stratified simple random sample without replacement: the
strata are publication periods (and doc_types with `stratify_doc_type`), the
sample size is shared across periods equally or in proportion to their
sentences (then across a period's doc_types in proportion), with at least two
sentences per stratum so that every stratum's variance can be estimated (a
stratum of one sentence is taken whole). Every sampled sentence records its
inclusion probability n_h / N_h, its stratum and the stratum's size N_h.

`uncertain` takes the sentences the coder is least sure of: those whose
probabilities (`p_<code>` columns of a learned coder) are closest to 0.5, or,
for the rule coder, sentences that contain a codebook trigger word but got no
code (rule near-misses). Their selection probabilities are unknown, so such a
sample trains a coder but cannot correct trends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from textmine.columns import probability_column
from textmine.periods import (
    ALL,
    PERIODS,
    UNDATED,
    UNDATED_IN_QUARTER,
    sentences_with_periods,
)

STRATEGIES = ("random", "uncertain")
ALLOCATIONS = ("equal", "proportional")
MIN_PER_STRATUM = 2
STRATUM_SEPARATOR = "|"

# Columns of a sample file, after `id`, `sentence` and the (empty) code columns.
DESIGN_COLUMNS = [
    "document",
    "page",
    "period",
    "doc_type",
    "inclusion_prob",
    "stratum",
    "stratum_size",
    "stratified_by",
    "strategy",
    "doc_id",
]


@dataclass(frozen=True)
class Sample:
    """A drawn sample: one row per sentence to code, and what the command should tell the user."""

    sentences: pd.DataFrame
    notes: list[str]


def sentence_frame(
    coded_sentences: pd.DataFrame, documents: pd.DataFrame, by: str, codes: Sequence[str]
) -> pd.DataFrame:
    """One row per coded sentence with the grouping columns the trend tables use.

    Columns: sentence_id, doc_id, page, text, document (title or path),
    doc_type, publisher, published, period (or 'undated'), each code in
    `codes` as 0/1, and `p_<code>` and evidence when the input has them.
    Duplicate documents are left out, as in the trends.
    """
    frame = sentences_with_periods(coded_sentences, documents, by, codes)
    for column in ("path", "text"):
        if column not in frame.columns:
            frame[column] = ""
        frame[column] = frame[column].fillna("").astype(str)
    names = frame["path"].str.rsplit("/", n=1).str[-1]
    frame["document"] = frame["title"].where(frame["title"] != "", names)
    if "page" not in frame.columns:
        frame["page"] = ""
    keep = [
        "sentence_id",
        "doc_id",
        "page",
        "text",
        "document",
        "doc_type",
        "publisher",
        "published",
        "period",
    ]
    extra = [c for c in frame.columns if c.startswith("p_") or c == "evidence"]
    return frame[keep + list(codes) + extra].reset_index(drop=True)


def stratum_labels(frame: pd.DataFrame, stratify_doc_type: bool) -> pd.Series:
    """Stratum of each sentence: its period, or 'period|doc_type'."""
    if stratify_doc_type:
        return frame["period"].astype(str) + STRATUM_SEPARATOR + frame["doc_type"].astype(str)
    return frame["period"].astype(str)


def stratified_by(by: str, stratify_doc_type: bool) -> str:
    """The design's name as recorded in a sample: 'year' or 'year+doc_type'."""
    return f"{by}+doc_type" if stratify_doc_type else by


def parse_stratified_by(value: str) -> tuple[str, bool]:
    """(by, stratify_doc_type) of a recorded design name; ValueError when it is not one."""
    by, _, rest = value.partition("+")
    if by not in PERIODS or rest not in ("", "doc_type"):
        raise ValueError(
            f"unknown design {value!r}: expected 'year', 'quarter', "
            "'year+doc_type' or 'quarter+doc_type'"
        )
    return by, rest == "doc_type"


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to `weights` that sum to `total` (Hamilton's method)."""
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=int)
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def _fill(sizes: np.ndarray, total: int, minimum: int, weights: np.ndarray) -> np.ndarray:
    """Share `total` over groups of `sizes`: at least min(minimum, size) each, never above size.

    What is left after the minimums goes in proportion to `weights`, capped at
    each group's size, the overflow passed on to groups with room.
    """
    counts = np.minimum(sizes, minimum)
    left = total - counts.sum()
    while left > 0:
        room = sizes - counts
        open_ = room > 0
        if not open_.any():
            break
        share = _largest_remainder(np.where(open_, weights, 0.0), left)
        if share.sum() == 0:  # weights of the groups with room are 0: spread evenly
            share = _largest_remainder(open_.astype(float), left)
        add = np.minimum(share, room)
        counts += add
        left -= int(add.sum())
    return counts


def allocate(
    strata: pd.DataFrame, n: int, *, allocation: str = "equal", minimum: int = MIN_PER_STRATUM
) -> np.ndarray:
    """Sample size per stratum.

    `strata` has one row per stratum with columns period and size (N_h). Every
    stratum gets min(minimum, N_h); the rest of n is shared so that periods get
    equal parts (`equal`) or parts proportional to their sentences
    (`proportional`), a period's part split over its strata in proportion to
    their sizes, never more than a stratum holds.
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, not {allocation!r}")
    sizes = strata["size"].to_numpy(dtype=int)
    needed = int(np.minimum(sizes, minimum).sum())
    if n < needed:
        raise ValueError(
            f"a sample of {n} is too small for {len(sizes)} strata: it needs at least "
            f"{needed} ({minimum} per stratum)"
        )
    weights = sizes.astype(float)
    if allocation == "equal":
        period_sizes = strata.groupby("period")["size"].transform("sum").to_numpy(dtype=float)
        weights = weights / period_sizes
    return _fill(sizes, min(n, int(sizes.sum())), minimum, weights)


def draw_random_sample(
    frame: pd.DataFrame,
    n: int,
    *,
    seed: int = 0,
    by: str = "year",
    stratify_doc_type: bool = False,
    allocation: str = "equal",
) -> Sample:
    """A stratified simple random sample of `n` sentences of `frame` (see `sentence_frame`).

    The same frame, n, seed and design always give the same sample. Rows are
    in a random order (so coders do not see strata one after another), with
    `inclusion_prob` = n_h / N_h, `stratum`, `stratum_size` = N_h and
    `stratified_by`.
    """
    if n <= 0:
        raise ValueError(f"the sample size must be positive, not {n}")
    if frame.empty:
        raise ValueError("there are no coded sentences to sample from")
    n = min(n, len(frame))
    ordered = frame.sort_values("sentence_id", kind="stable").reset_index(drop=True)
    ordered["stratum"] = stratum_labels(ordered, stratify_doc_type)
    strata = (
        ordered.groupby("stratum", sort=True)
        .agg(period=("period", "first"), size=("sentence_id", "size"))
        .reset_index()
    )
    strata = strata.sort_values(["period", "stratum"], key=_period_key, kind="stable").reset_index(
        drop=True
    )
    strata["n"] = allocate(strata, n, allocation=allocation)
    rng = np.random.default_rng(seed)
    picked = []
    for row in strata.itertuples(index=False):
        members = np.flatnonzero(ordered["stratum"].to_numpy() == row.stratum)
        chosen = rng.choice(members, size=int(row.n), replace=False)
        part = ordered.iloc[np.sort(chosen)].copy()
        part["inclusion_prob"] = row.n / row.size
        part["stratum_size"] = int(row.size)
        picked.append(part)
    sample = pd.concat(picked, ignore_index=True)
    sample = sample.iloc[rng.permutation(len(sample))].reset_index(drop=True)
    sample["stratified_by"] = stratified_by(by, stratify_doc_type)
    sample["strategy"] = "random"
    notes = [
        f"{len(sample)} of {len(frame):,} sentences in {len(strata)} strata "
        f"({stratified_by(by, stratify_doc_type)}, {allocation} allocation, seed {seed})"
    ]
    small = strata[strata["n"] < MIN_PER_STRATUM]
    if len(small):
        notes.append(
            f"{len(small)} stratum(s) of a single sentence are taken whole: "
            + ", ".join(small["stratum"].astype(str).tolist()[:5])
        )
    return Sample(sample, notes)


def _period_key(values: pd.Series) -> pd.Series:
    """Sort key that puts 'undated' after the dated periods."""
    return values.map(
        lambda v: (str(v).split(STRATUM_SEPARATOR)[0] in (UNDATED, UNDATED_IN_QUARTER, ALL), str(v))
    )


def uncertainty_scores(frame: pd.DataFrame, codes: Sequence[str]) -> pd.Series | None:
    """How unsure a learned coder is of each sentence: max over codes of 1 - |2 p - 1|.

    None when the frame has no `p_<code>` column for any code, or when they
    hold only 0 and 1 (the rule coder records its decisions that way).
    """
    columns = [probability_column(c) for c in codes if probability_column(c) in frame.columns]
    if not columns:
        return None
    p = frame[columns].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy()
    if not ((p > 0) & (p < 1)).any():
        return None
    return pd.Series((1.0 - np.abs(2.0 * p - 1.0)).max(axis=1), index=frame.index)


def draw_uncertain_sample(
    frame: pd.DataFrame,
    n: int,
    codes: Sequence[str],
    *,
    seed: int = 0,
    is_near_miss: Callable[[str], bool] | None = None,
) -> Sample:
    """The `n` sentences the coder is least sure of; no inclusion probabilities.

    With probabilities (`p_<code>` columns strictly between 0 and 1): the
    highest `uncertainty_scores`. Without them (the rule coder): sentences for which `is_near_miss(text)` is true (a
    codebook trigger word) but that got no code, drawn at random; if there
    are fewer than n, the rest at random among those that got exactly one code.
    """
    if n <= 0:
        raise ValueError(f"the sample size must be positive, not {n}")
    if frame.empty:
        raise ValueError("there are no coded sentences to sample from")
    rng = np.random.default_rng(seed)
    ordered = frame.sort_values("sentence_id", kind="stable").reset_index(drop=True)
    tiebreak = rng.random(len(ordered))
    scores = uncertainty_scores(ordered, codes)
    notes = []
    if scores is not None:
        ordered["uncertainty"] = scores.round(6)
        ordered["_tie"] = tiebreak
        sample = ordered.sort_values(["uncertainty", "_tie"], ascending=[False, True]).head(n)
        sample = sample.drop(columns="_tie")
        notes.append(
            f"the {len(sample)} sentences whose p_<code> are closest to 0.5 "
            f"(uncertainty {sample['uncertainty'].min():.3f} to {sample['uncertainty'].max():.3f})"
        )
    else:
        if is_near_miss is None:
            raise ValueError(
                "the coded sentences have no p_<code> columns and no near-miss test was given"
            )
        n_codes = ordered[list(codes)].sum(axis=1).to_numpy()
        near = np.array([is_near_miss(t) for t in ordered["text"]]) & (n_codes == 0)
        one = n_codes == 1
        order = np.concatenate(
            [
                np.flatnonzero(near)[np.argsort(tiebreak[near], kind="stable")],
                np.flatnonzero(one)[np.argsort(tiebreak[one], kind="stable")],
            ]
        )[:n]
        sample = ordered.iloc[order].copy()
        sample["uncertainty"] = np.where(near[order], "trigger word, no code", "one code")
        notes.append(
            f"no coder probabilities (rule coder): {int(near[order].sum())} sentences with a "
            f"codebook trigger word but no code (rule near-misses)"
            + (
                f" and {int((~near[order]).sum())} with exactly one code"
                if (~near[order]).any()
                else ""
            )
        )
    sample = sample.reset_index(drop=True)
    sample["inclusion_prob"] = np.nan
    sample["stratum"] = ""
    sample["stratum_size"] = pd.array([pd.NA] * len(sample), dtype="Int64")
    sample["stratified_by"] = ""
    sample["strategy"] = "uncertain"
    notes.append(
        "for training a coder only: these sentences were not drawn with known "
        "probabilities, so they cannot correct trends (use --strategy random for that)"
    )
    return Sample(sample, notes)


def sample_table(sample: Sample | pd.DataFrame, codes: Sequence[str]) -> pd.DataFrame:
    """The sample file's rows: id, sentence, empty code columns to fill in, then DESIGN_COLUMNS."""
    frame = sample.sentences if isinstance(sample, Sample) else sample
    table = pd.DataFrame({"id": frame["sentence_id"].astype(str), "sentence": frame["text"]})
    for code in codes:
        table[code] = ""
    for column in DESIGN_COLUMNS:
        table[column] = frame[column] if column in frame.columns else ""
    if "uncertainty" in frame.columns:
        table["uncertainty"] = frame["uncertainty"]
    table["inclusion_prob"] = pd.to_numeric(table["inclusion_prob"], errors="coerce").round(10)
    return table
