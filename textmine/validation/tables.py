"""Trend tables corrected with a validation sample, and the sample's agreement report.

`corrected_trends` adds, beside each code's columns of `stance_trends` and
`partnership_trends`, the design-based corrected estimate and its 95%
interval (`correction.difference_estimate`), plus `n_validation` and
`validation_note` per row. `validation_report` is the sample-aware
evaluation: per code and period, the human prevalence, the machine's
prevalence bias and its precision and recall, each with a 95% interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from textmine.periods import ALL, UNDATED, period_or_undated
from textmine.validation.correction import difference_estimate, stratified_ratio
from textmine.validation.design import STRATUM_SEPARATOR, parse_stratified_by, sentence_frame

MIN_VALIDATION = 30  # fewer validation sentences in a row: the normal interval is approximate
STANCE_TABLE = "stance_trends"
PARTNERSHIP_TABLE = "partnership_trends"

REPORT_COLUMNS = [
    "code",
    "period",
    "n_validation",
    "human_pos",
    "machine_pos",
    "human_share",
    "human_ci_low",
    "human_ci_high",
    "machine_share",
    "bias",
    "bias_ci_low",
    "bias_ci_high",
    "precision",
    "precision_ci_low",
    "precision_ci_high",
    "recall",
    "recall_ci_low",
    "recall_ci_high",
    "kappa",
    "note",
]


def corrected_column_names(code: str, kind: str) -> tuple[str, str, str]:
    """(estimate, ci_low, ci_high) column names of a code's corrected estimate.

    `kind` is "stance" (a share: `share_corrected_<code>`) or "partnership"
    (per 1,000 sentences: `<code>_per_1000_corrected`).
    """
    estimate = f"share_corrected_{code}" if kind == "stance" else f"{code}_per_1000_corrected"
    return estimate, f"{code}_ci_low_corrected", f"{code}_ci_high_corrected"


def _design(validation: pd.DataFrame) -> tuple[str, bool] | None:
    designs = sorted(
        {d for d in validation.get("stratified_by", pd.Series(dtype=str)).astype(str) if d}
    )
    return parse_stratified_by(designs[0]) if designs else None


def _population_strata(frame: pd.DataFrame, design: tuple[str, bool]) -> np.ndarray:
    """The stratum label of every sentence of `frame` under the sample's design."""
    sample_by, with_doc_type = design
    periods = pd.Series(
        [period_or_undated(p, sample_by) for p in frame["published"]], index=frame.index
    )
    if with_doc_type:
        return (periods + STRATUM_SEPARATOR + frame["doc_type"].astype(str)).to_numpy()
    return periods.to_numpy()


def _join(
    frame: pd.DataFrame, validation: pd.DataFrame, codes: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Validation rows with the corpus's grouping columns and machine codes (`m_<code>`)."""
    notes = []
    columns = ["sentence_id", "doc_type", "publisher", "period", *codes]
    machine = frame[columns].rename(columns={c: f"m_{c}" for c in codes})
    sample = validation[["id", "stratum", "stratum_size", *codes]]
    joined = sample.assign(sentence_id=sample["id"].astype(str)).merge(
        machine, on="sentence_id", how="left", indicator=True
    )
    missing = joined["_merge"] != "both"
    if missing.all():
        raise ValueError(
            "none of the validation sentences is a sentence of the corpus: "
            "was the sample drawn from this corpus?"
        )
    if missing.any():
        notes.append(
            f"{int(missing.sum())} validation sentence(s) are no longer in the corpus and "
            "are left out"
        )
    return joined[~missing].drop(columns="_merge").reset_index(drop=True), notes


def corrected_trends(
    trend_tables: dict[str, pd.DataFrame],
    coded_sentences: pd.DataFrame,
    documents: pd.DataFrame,
    validation: pd.DataFrame,
    *,
    by: str,
    stance_codes: Sequence[str],
    partnership_codes: Sequence[str],
    min_validation: int = MIN_VALIDATION,
) -> dict[str, pd.DataFrame]:
    """`trend_tables` with corrected estimates added to its stance and partnership tables.

    Args:
        trend_tables: `compute_trends(...)`'s dict; other tables are returned unchanged.
        coded_sentences: the coded sentences the trends were computed from.
        documents: their documents (doc_type, publisher, published).
        validation: a checked validation sample (`read_validation`).
        by: the trends' period ('year' or 'quarter'); the sample may have been
            stratified by another.
        stance_codes: the codebook's stance codes (shares); those the
            validation file lacks get no corrected columns.
        partnership_codes: the codebook's partnership types (per 1,000), likewise.
        min_validation: rows with fewer validation sentences get a note.

    Each row gains, for every code, the corrected estimate and its 95%
    interval on the table's scale (share, or per 1,000 sentences), then
    `n_validation` and `validation_note`. Rows without validation sentences,
    or touching a stratum the sample does not cover, keep NaN and say why.
    Raises ValueError when the validation file does not fit the corpus.
    """
    codes = [
        c
        for c in [*stance_codes, *partnership_codes]
        if c in validation.columns and c in coded_sentences.columns
    ]
    result = dict(trend_tables)
    if not codes:
        raise ValueError("the validation file has none of the codes of the trend tables")
    frame = sentence_frame(coded_sentences, documents, by, codes)
    joined, notes = _join(frame, validation, codes)
    design = _design(validation)

    sample_strata = joined["stratum"].astype(str).to_numpy()
    if design is not None:
        population_strata = _population_strata(frame, design)
        labels = sorted(set(sample_strata) | set(population_strata))
        index = {label: i for i, label in enumerate(labels)}
        population_index = np.array([index[s] for s in population_strata], dtype=int)
        sizes = np.bincount(population_index, minlength=len(labels)).astype(float)
        recorded = joined.groupby("stratum")["stratum_size"].first()
        grown = [
            f"{s} ({int(recorded[s])} then, {int(sizes[index[s]])} now)"
            for s in recorded.index
            if int(recorded[s]) != int(sizes[index[s]])
        ]
        if grown:
            notes.append(
                "the corpus changed since the sample was drawn in stratum(s) "
                + ", ".join(grown[:5])
                + ": the sample is treated as a random sample of the strata as they are now"
            )
        uncovered = [s for s in labels if s not in set(sample_strata)]
        if uncovered:
            notes.append(
                "stratum(s) with no validation sentence (rows touching them have no corrected "
                "estimate; draw a supplementary sample): " + ", ".join(uncovered[:5])
            )
    else:  # no recorded design: each inclusion probability is a stratum of size n_h / p
        labels = sorted(set(sample_strata))
        index = {label: i for i, label in enumerate(labels)}
        population_index = None
        sizes = joined.groupby("stratum")["stratum_size"].first().reindex(labels).to_numpy(float)
        notes.append(
            "the validation file records no design (stratified_by): domain sizes within "
            "strata are estimated from the sample"
        )
    sample_index = np.array([index[s] for s in sample_strata], dtype=int)

    machine = frame[codes].to_numpy(dtype=float)
    differences = (
        joined[codes].to_numpy(dtype=float)
        - joined[[f"m_{c}" for c in codes]].to_numpy(dtype=float)
    ).T
    attributes = {d: frame[d].astype(str).to_numpy() for d in ("doc_type", "publisher", "period")}
    sample_attributes = {
        d: joined[d].astype(str).to_numpy() for d in ("doc_type", "publisher", "period")
    }
    kinds = {
        STANCE_TABLE: ("stance", stance_codes, 1.0, 6),
        PARTNERSHIP_TABLE: ("partnership", partnership_codes, 1000.0, 4),
    }
    for key, (kind, table_codes, scale, digits) in kinds.items():
        table = trend_tables.get(key)
        if table is None:
            continue
        present = [
            c
            for c in codes
            if c in table_codes
            and any(col in table.columns for col in (f"share_{c}", f"{c}_per_1000"))
        ]
        estimates: dict[str, list[float]] = {
            name: [] for c in present for name in corrected_column_names(c, kind)
        }
        n_validation, row_notes = [], []
        for row in table.itertuples(index=False):
            mask = _mask(attributes, row.dimension, row.group, row.period, len(frame))
            in_domain = _mask(sample_attributes, row.dimension, row.group, row.period, len(joined))
            size = int(mask.sum())
            if size != int(row.n_sentences):
                raise ValueError(
                    f"{key} row {row.dimension}/{row.group}/{row.period} counts "
                    f"{row.n_sentences} sentences, the corpus {size}: the trend table "
                    "was not computed from these coded sentences"
                )
            if population_index is not None:
                domain_sizes = np.bincount(population_index[mask], minlength=len(labels)).astype(
                    float
                )
            else:  # estimated: the domain's share of each stratum's sample
                in_stratum = np.bincount(sample_index, weights=in_domain, minlength=len(labels))
                n_h = np.bincount(sample_index, minlength=len(labels))
                domain_sizes = sizes * np.divide(
                    in_stratum, n_h, out=np.zeros(len(labels)), where=n_h > 0
                )
            positions = [codes.index(c) for c in present]
            estimate = difference_estimate(
                machine[mask][:, positions].sum(axis=0),
                size,
                differences[positions],
                in_domain,
                sample_index,
                sizes,
                domain_sizes,
            )
            note = _row_note(estimate.n_validation, estimate.estimable, min_validation)
            usable = estimate.estimable and estimate.n_validation > 0
            for i, code in enumerate(present):
                names = corrected_column_names(code, kind)
                values = (estimate.share[i], estimate.ci_low[i], estimate.ci_high[i])
                for name, value in zip(names, values, strict=True):
                    estimates[name].append(
                        round(float(scale * value), digits) if usable else np.nan
                    )
            n_validation.append(estimate.n_validation)
            if row.dimension == ALL and row.group == ALL and row.period == ALL and notes:
                note = "; ".join([*notes, note] if note else notes)
            row_notes.append(note)
        result[key] = _insert(table, present, kind, estimates, n_validation, row_notes)
    return result


def _mask(
    attributes: dict[str, np.ndarray], dimension: str, group: str, period: str, n: int
) -> np.ndarray:
    mask = np.ones(n, dtype=bool)
    if dimension != ALL:
        mask &= attributes[dimension] == str(group)
    if period != ALL:
        mask &= attributes["period"] == str(period)
    return mask


def _row_note(n_validation: int, estimable: bool, min_validation: int) -> str:
    if n_validation == 0:
        return "no validation sentences: no corrected estimate"
    if not estimable:
        return "a stratum of these sentences has no validation sentence: no corrected estimate"
    if n_validation < min_validation:
        return (
            f"only {n_validation} validation sentences (< {min_validation}): interval approximate"
        )
    return ""


def _insert(
    table: pd.DataFrame,
    codes: Sequence[str],
    kind: str,
    estimates: dict[str, list],
    n_validation: list[int],
    notes: list[str],
) -> pd.DataFrame:
    """The table with each code's corrected columns right after its own columns."""
    out = table.drop(
        columns=[c for c in (*estimates, "n_validation", "validation_note") if c in table.columns]
    )
    columns = list(out.columns)
    for code in codes:
        anchor = f"{code}_ci_high" if kind == "stance" else f"{code}_per_1000"
        if anchor not in columns:
            anchor = f"share_{code}" if f"share_{code}" in columns else columns[-1]
        names = corrected_column_names(code, kind)
        position = columns.index(anchor) + 1
        columns[position:position] = list(names)
    data = {
        **{c: out[c] for c in out.columns},
        **{k: pd.Series(v, index=out.index) for k, v in estimates.items()},
    }
    result = pd.DataFrame(data)[columns]
    result["n_validation"] = n_validation
    result["validation_note"] = notes
    return result


def validation_report(
    validation: pd.DataFrame, machine: pd.DataFrame, codes: Sequence[str]
) -> pd.DataFrame:
    """Per code and period (and 'all'): agreement of the machine with the human sample, with 95% intervals.

    `validation` is a checked validation sample (human codes, design
    columns, `period`); `machine` holds `id` and the machine's codes for the
    same sentences. Estimates are weighted by the design (inverse inclusion
    probabilities, per stratum): `human_share` the population's human
    prevalence, `machine_share` the machine's, `bias` = machine - human (the
    error of counting machine codes), `precision` and `recall` of the
    machine; `kappa` is Cohen's kappa on the sample, unweighted.
    """
    from textmine.evaluate import cohen_kappa

    codes = [c for c in codes if c in validation.columns and c in machine.columns]
    keyed = machine.assign(id=machine["id"].astype(str)).drop_duplicates("id").set_index("id")
    ids = validation["id"].astype(str)
    missing = ~ids.isin(keyed.index)
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} validation sentence(s) have no machine codes, "
            f"e.g. {', '.join(ids[missing].head(3))}"
        )
    labels = sorted(set(validation["stratum"].astype(str)))
    strata = validation["stratum"].astype(str).map({s: i for i, s in enumerate(labels)}).to_numpy()
    sizes = validation.groupby("stratum")["stratum_size"].first().reindex(labels).to_numpy(float)
    periods = (
        validation["period"].astype(str)
        if "period" in validation.columns
        else pd.Series(ALL, index=validation.index)
    )
    ordered = sorted(set(periods), key=lambda p: (p == UNDATED, p))
    rows = []
    for code in codes:
        human = validation[code].to_numpy(dtype=float)
        predicted = keyed.loc[ids, code].astype(int).to_numpy(dtype=float)
        for period in [ALL, *ordered]:
            in_domain = (
                np.ones(len(validation), bool) if period == ALL else (periods == period).to_numpy()
            )
            n = int(in_domain.sum())
            share, share_low, share_high = stratified_ratio(human, 1.0, in_domain, strata, sizes)
            machine_share, _, _ = stratified_ratio(predicted, 1.0, in_domain, strata, sizes)
            bias, bias_low, bias_high = stratified_ratio(
                predicted - human, 1.0, in_domain, strata, sizes, bounds=(-1.0, 1.0)
            )
            both = human * predicted
            precision = stratified_ratio(both, predicted, in_domain, strata, sizes)
            recall = stratified_ratio(both, human, in_domain, strata, sizes)
            rows.append(
                {
                    "code": code,
                    "period": period,
                    "n_validation": n,
                    "human_pos": int(human[in_domain].sum()),
                    "machine_pos": int(predicted[in_domain].sum()),
                    "human_share": share,
                    "human_ci_low": share_low,
                    "human_ci_high": share_high,
                    "machine_share": machine_share,
                    "bias": bias,
                    "bias_ci_low": bias_low,
                    "bias_ci_high": bias_high,
                    "precision": precision[0],
                    "precision_ci_low": precision[1],
                    "precision_ci_high": precision[2],
                    "recall": recall[0],
                    "recall_ci_low": recall[1],
                    "recall_ci_high": recall[2],
                    "kappa": cohen_kappa(human[in_domain], predicted[in_domain]),
                    "note": _row_note(n, True, MIN_VALIDATION),
                }
            )
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    numeric = [
        c
        for c in REPORT_COLUMNS
        if c not in ("code", "period", "n_validation", "human_pos", "machine_pos", "note")
    ]
    report[numeric] = report[numeric].astype(float).round(6)
    return report
