"""Design-based correction of machine-coded trends with a hand-coded sample (textmine.validation).

The coverage test simulates what the correction is for: a corpus whose true
shares change over periods, coded by a machine whose errors also change over
periods; repeated stratified samples are "hand-coded" (the truth) and the
corrected 95% interval must cover the true share about 95% of the time,
while the interval from counting machine codes does not.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from textmine.codebook import load_codebook
from textmine.trends import compute_trends, wilson_interval
from textmine.validation import (
    ValidationError,
    check_validation,
    corrected_column_names,
    corrected_trends,
    draw_random_sample,
    draw_uncertain_sample,
    read_validation,
    sample_table,
    sentence_frame,
    validation_report,
)
from textmine.validation.correction import difference_estimate, stratified_total
from textmine.validation.design import allocate

CODEBOOK = load_codebook()
STANCE = CODEBOOK.stance_codes
PARTNERSHIP = CODEBOOK.partnership_codes
CODES = CODEBOOK.code_columns

# --------------------------------------------------------------------------- simulation

PERIOD_SIZES = np.array([4000, 6000, 5000, 3000])  # sentences per period
TRUE_PREVALENCE = np.array([0.10, 0.15, 0.20, 0.25])  # the human code rises over time ...
MACHINE_RECALL = np.array([0.80, 0.70, 0.60, 0.50])  # ... and the machine misses more of it
MACHINE_FALSE_POSITIVES = np.array([0.01, 0.01, 0.02, 0.03])
SAMPLE_PER_PERIOD = np.array([250, 250, 250, 250])
REPLICATES = 1000


def _simulated_population(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    period = np.repeat(np.arange(len(PERIOD_SIZES)), PERIOD_SIZES)
    human = rng.random(len(period)) < TRUE_PREVALENCE[period]
    draw = rng.random(len(period))
    machine = np.where(human, draw < MACHINE_RECALL[period], draw < MACHINE_FALSE_POSITIVES[period])
    return period, human.astype(float), machine.astype(float)


def _stratified_samples(rng: np.random.Generator, replicates: int) -> np.ndarray:
    """(replicates, n) sentence indices: a simple random sample within each period, period by period."""
    starts = np.concatenate([[0], np.cumsum(PERIOD_SIZES)[:-1]])
    blocks = []
    for start, size, n in zip(starts, PERIOD_SIZES, SAMPLE_PER_PERIOD, strict=True):
        keys = rng.random((replicates, size))
        blocks.append(np.argpartition(keys, n, axis=1)[:, :n] + start)
    return np.concatenate(blocks, axis=1)


def test_corrected_intervals_cover_the_truth_95_percent_of_the_time_uncorrected_do_not():
    rng = np.random.default_rng(20231101)
    period, human, machine = _simulated_population(rng)
    picked = _stratified_samples(rng, REPLICATES)
    strata = np.repeat(np.arange(len(PERIOD_SIZES)), SAMPLE_PER_PERIOD)
    differences = human[picked] - machine[picked]  # what the hand coders' corrections would be
    # each period, and all periods together (a domain that spans every stratum)
    domains = [(period == p, strata == p) for p in range(len(PERIOD_SIZES))]
    domains.append((np.ones(len(period), bool), np.ones(len(strata), bool)))
    corrected_cover, uncorrected_cover, errors = [], [], []
    for in_population, in_sample in domains:
        truth = human[in_population].mean()
        size = int(in_population.sum())
        domain_sizes = np.bincount(period[in_population], minlength=len(PERIOD_SIZES))
        estimate = difference_estimate(
            np.full(REPLICATES, machine[in_population].sum()),
            size,
            differences,
            in_sample,
            strata,
            PERIOD_SIZES,
            domain_sizes,
        )
        corrected_cover.append((estimate.ci_low <= truth) & (truth <= estimate.ci_high))
        errors.append(estimate.share - truth)
        low, high = wilson_interval(int(machine[in_population].sum()), size)
        uncorrected_cover.append(low <= truth <= high)
    coverage = float(np.mean(corrected_cover))
    assert 0.93 <= coverage <= 0.97, coverage
    for per_domain in corrected_cover:  # no single period is badly off either
        assert per_domain.mean() >= 0.92
    assert np.mean(uncorrected_cover) <= 0.2  # counting machine codes misses the truth
    # unbiased: the mean error is within 3 standard errors of 0 in every domain
    for error in errors:
        assert abs(error.mean()) <= 3 * error.std(ddof=1) / math.sqrt(REPLICATES)


def test_stratified_total_matches_the_textbook_formula_for_one_stratum():
    values = np.array([1.0, 0.0, -1.0, 0.0, 1.0, 1.0])
    size = 40
    total, variance = stratified_total(values, np.zeros(len(values), int), np.array([size]))
    n = len(values)
    assert total == pytest.approx(size * statistics.fmean(values))
    assert variance == pytest.approx(size**2 * (1 - n / size) * statistics.variance(values) / n)


def test_a_census_stratum_is_exact_and_a_stratum_without_disagreement_still_has_width():
    sizes = np.array([3, 200])
    strata = np.array([0, 0, 0, 1, 1, 1, 1])
    differences = np.array([1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0])
    in_first = strata == 0
    exact = difference_estimate(1.0, 3, differences, in_first, strata, sizes, np.array([3, 0]))
    assert exact.share == pytest.approx(1 / 3) and exact.ci_low == exact.ci_high == pytest.approx(
        1 / 3
    )
    second = difference_estimate(
        20.0, 200, differences, ~in_first, strata, sizes, np.array([0, 200])
    )
    assert second.share == pytest.approx(0.1)
    assert second.ci_high - second.ci_low > 0.05  # four agreeing sentences do not prove the share
    uncovered = difference_estimate(
        20.0,
        203,
        differences,
        np.ones(7, bool),
        strata,
        np.array([3, 200, 10]),
        np.array([3, 200, 10]),
    )
    assert not uncovered.estimable and math.isnan(uncovered.share)


# --------------------------------------------------------------------------- sampling


def _strata(sizes: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"period": [k.split("|")[0] for k in sizes], "size": list(sizes.values())},
        index=list(sizes),
    )


@pytest.mark.parametrize("allocation", ["equal", "proportional"])
def test_allocation_sums_to_n_keeps_two_per_stratum_and_never_exceeds_a_stratum(allocation):
    strata = _strata({"2013": 700, "2014": 30, "2015|a": 1, "2015|b": 900, "2016": 5})
    counts = allocate(strata, 120, allocation=allocation)
    assert counts.sum() == 120
    assert (counts >= np.minimum(strata["size"], 2)).all() and (counts <= strata["size"]).all()
    if allocation == "equal":
        assert counts[strata.index.get_loc("2013")] > counts[strata.index.get_loc("2014")] > 20
    else:
        assert counts[strata.index.get_loc("2013")] > 5 * counts[strata.index.get_loc("2014")]
    with pytest.raises(ValueError, match="too small for 5 strata"):
        allocate(strata, 6)


def _corpus(
    n_docs: int = 12, per_doc: int = 80, seed: int = 5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coded sentences and documents: periods 2014-2017, two doc_types, machine codes at random."""
    rng = np.random.default_rng(seed)
    docs, sentences = [], []
    for d in range(n_docs):
        doc_id = f"{d:016x}"
        docs.append(
            {
                "doc_id": doc_id,
                "path": f"corpus/doc{d}.txt",
                "title": f"Document {d}",
                "publisher": "Ofsted" if d % 3 else "DfE",
                "doc_type": "inspection_report" if d % 2 else "policy_paper",
                "published": f"{2014 + d % 4}-0{1 + d % 9}-15",
                "duplicate_of": "",
            }
        )
        for i in range(per_doc):
            row = {
                "sentence_id": f"{doc_id}-{i:05d}",
                "doc_id": doc_id,
                "path": f"corpus/doc{d}.txt",
                "page": 1 + i // 40,
                "start_char": 10 * i,
                "end_char": 10 * i + 9,
                "text": f"Sentence {i} of document {d}.",
            }
            for code in CODES:
                row[code] = int(rng.random() < 0.15)
            sentences.append(row)
    return pd.DataFrame(sentences), pd.DataFrame(docs)


def test_random_sample_is_reproducible_and_records_inclusion_probabilities():
    coded, documents = _corpus()
    frame = sentence_frame(coded, documents, "year", CODES)
    first = draw_random_sample(frame, 100, seed=7, stratify_doc_type=True).sentences
    again = draw_random_sample(
        frame.sample(frac=1, random_state=1), 100, seed=7, stratify_doc_type=True
    )
    assert first["sentence_id"].tolist() == again.sentences["sentence_id"].tolist()
    assert len(first) == 100 and first["sentence_id"].is_unique
    sizes = (
        frame.assign(stratum=frame["period"] + "|" + frame["doc_type"]).groupby("stratum").size()
    )
    drawn = first.groupby("stratum").size()
    for stratum, group in first.groupby("stratum"):
        assert group["stratum_size"].iloc[0] == sizes[stratum]
        assert group["inclusion_prob"].iloc[0] == pytest.approx(drawn[stratum] / sizes[stratum])
    assert set(first["stratified_by"]) == {"year+doc_type"} and set(first["strategy"]) == {"random"}
    table = sample_table(first, CODES)
    assert table.columns[:2].tolist() == ["id", "sentence"] and (table[CODES] == "").all().all()


def test_uncertain_sample_takes_probabilities_near_one_half_and_cannot_correct_trends(tmp_path):
    coded, documents = _corpus()
    frame = sentence_frame(coded, documents, "year", CODES)
    rng = np.random.default_rng(3)
    for code in CODES:
        frame[f"p_{code}"] = rng.random(len(frame)) * 0.3  # sure it is absent ...
    frame.loc[[5, 50, 500], f"p_{CODES[0]}"] = [0.45, 0.52, 0.61]  # ... except on three sentences
    sample = draw_uncertain_sample(frame, 3, CODES, seed=1).sentences
    assert set(sample["sentence_id"]) == set(frame.loc[[5, 50, 500], "sentence_id"])
    assert sample["inclusion_prob"].isna().all()
    table = sample_table(sample, CODES)
    table[CODES] = "0"
    path = tmp_path / "uncertain.csv"
    table.to_csv(path, index=False)
    with pytest.raises(
        ValidationError, match=r"uncertain\.csv was drawn with --strategy uncertain"
    ):
        read_validation(path, CODES)


def test_uncertain_sample_without_probabilities_takes_rule_near_misses():
    coded, documents = _corpus()
    frame = sentence_frame(coded, documents, "year", CODES)
    frame.loc[frame.index[:40], CODES] = 0
    near = set(frame["sentence_id"].iloc[:40:4])
    sample = draw_uncertain_sample(
        frame,
        10,
        CODES,
        is_near_miss=lambda text: text in set(frame.loc[frame["sentence_id"].isin(near), "text"]),
    )
    assert set(sample.sentences["sentence_id"]) == near
    assert "rule near-misses" in " ".join(sample.notes)


# --------------------------------------------------------------------------- validation files


def _validation_file(tmp_path, coded, documents, n=160, seed=2, human=None) -> pd.DataFrame:
    frame = sentence_frame(coded, documents, "year", CODES)
    table = sample_table(draw_random_sample(frame, n, seed=seed), CODES)
    truth = (human if human is not None else coded).set_index("sentence_id")
    for code in CODES:
        table[code] = truth.loc[table["id"], code].astype(str).to_numpy()
    return table


def test_read_validation_names_the_file_and_the_rows_at_fault(tmp_path):
    coded, documents = _corpus()
    table = _validation_file(tmp_path, coded, documents)
    path = tmp_path / "coded_sample.csv"
    blank = table.copy()
    blank.loc[3, CODES[1]] = ""
    blank.to_csv(path, index=False)
    with pytest.raises(
        ValidationError,
        match=rf"coded_sample\.csv: column {CODES[1]} must hold 0 or 1.*"
        rf"{blank.loc[3, 'id']}",
    ):
        read_validation(path, CODES)
    table.drop(columns="inclusion_prob").to_csv(path, index=False)
    with pytest.raises(ValidationError, match=r"coded_sample\.csv has no `inclusion_prob` column"):
        read_validation(path, CODES)
    with pytest.raises(ValidationError, match=r"missing\.csv does not exist"):
        read_validation(tmp_path / "missing.csv", CODES)
    table.to_csv(path, index=False)
    checked = read_validation(path, CODES)
    assert checked[CODES].dtypes.eq("int64").all() and checked["stratum_size"].dtype == "int64"


def test_corrected_trends_equal_machine_shares_when_the_humans_agree(tmp_path):
    coded, documents = _corpus()
    validation = check_validation(_validation_file(tmp_path, coded, documents), "v.csv", CODES)
    trends = compute_trends(coded, documents, "year", codebook=CODEBOOK)
    out = corrected_trends(
        trends,
        coded,
        documents,
        validation,
        by="year",
        stance_codes=STANCE,
        partnership_codes=PARTNERSHIP,
    )
    stance, partnership = out["stance_trends"], out["partnership_trends"]
    for code in STANCE:
        estimate, low, high = corrected_column_names(code, "stance")
        columns = stance.columns.tolist()
        assert columns.index(estimate) == columns.index(f"{code}_ci_high") + 1
        assert stance[estimate].to_numpy() == pytest.approx(stance[f"share_{code}"].to_numpy())
        assert (stance[low] <= stance[estimate]).all() and (stance[estimate] <= stance[high]).all()
    for code in PARTNERSHIP:
        estimate, _, high = corrected_column_names(code, "partnership")
        assert partnership[estimate].to_numpy() == pytest.approx(
            partnership[f"{code}_per_1000"].to_numpy()
        )
        assert (partnership[high] > 1).any()  # per 1,000 sentences, like the table
    overall = stance[(stance["dimension"] == "all") & (stance["period"] == "all")].iloc[0]
    assert overall["n_validation"] == len(validation)
    per_period = stance[(stance["dimension"] == "all") & (stance["period"] != "all")]
    assert per_period["n_validation"].sum() == len(validation)
    assert out["document_shares"] is trends["document_shares"]


def test_corrected_trends_move_to_the_human_share_and_flag_thin_or_uncovered_rows(tmp_path):
    coded, documents = _corpus()
    human = coded.copy()
    code = STANCE[-1]
    human[code] = 0  # the humans find the machine's codes of this code all wrong
    table = _validation_file(tmp_path, coded, documents, human=human)
    dropped = table[~table["period"].eq("2016")]  # the 2016 sentences went uncoded
    validation = check_validation(dropped.astype(str), "v.csv", CODES)
    trends = compute_trends(coded, documents, "year", codebook=CODEBOOK)
    stance = corrected_trends(
        trends,
        coded,
        documents,
        validation,
        by="year",
        stance_codes=STANCE,
        partnership_codes=PARTNERSHIP,
    )["stance_trends"]
    estimate, low, high = corrected_column_names(code, "stance")
    rows = stance[stance["dimension"] == "all"].set_index("period")
    for period in ("2014", "2015", "2017"):  # the truth, 0, is inside; the machine's share is not
        assert (
            rows.loc[period, low] == 0.0
            and rows.loc[period, high] < rows.loc[period, f"share_{code}"]
        )
    assert (
        math.isnan(rows.loc["2016", estimate])
        and "no validation sentences" in rows.loc["2016", "validation_note"]
    )
    assert math.isnan(rows.loc["all", estimate])  # 2016 is part of every period together
    assert "2016" in rows.loc["all", "validation_note"]
    thin = stance[(stance["n_validation"] > 0) & (stance["n_validation"] < 30)]
    assert len(thin) and thin["validation_note"].str.contains("interval approximate").all()


def test_validation_report_weights_by_design_and_measures_the_bias(tmp_path):
    coded, documents = _corpus()
    human = coded.copy()
    code = STANCE[0]
    human[code] = 0
    validation = check_validation(
        _validation_file(tmp_path, coded, documents, human=human), "v.csv", CODES
    )
    machine = coded.rename(columns={"sentence_id": "id"})
    report = validation_report(validation, machine, CODES)
    assert set(report["period"]) == {"all", "2014", "2015", "2016", "2017"}
    row = report[(report["code"] == code) & (report["period"] == "all")].iloc[0]
    assert row["human_share"] == 0 and row["recall"] != row["recall"]  # no human positives: NaN
    machine_share = coded[code].mean()
    assert row["bias_ci_low"] <= machine_share <= row["bias_ci_high"]
    assert row["precision"] == 0 and row["bias"] == pytest.approx(row["machine_share"])
    agree = report[(report["code"] == STANCE[-1]) & (report["period"] == "all")].iloc[0]
    assert agree["bias"] == 0 and agree["precision"] == agree["recall"] == 1 and agree["kappa"] == 1
