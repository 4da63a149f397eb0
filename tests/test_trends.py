"""Trends of the codes: Wilson intervals, shares, per-1,000 rates and grouping."""

import math

import pandas as pd
import pytest

from tests.topic_data import ofsted_corpus, seed_corpus
from textmine.codebook import load_codebook
from textmine.periods import over_time, period_label, period_start
from textmine.trends import compute_trends, undated_notes, wilson_interval

CODE_COLUMNS = load_codebook().code_columns


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # worked with the quadratic-root form (2k + z² ± z·sqrt(z² + 4k(n-k)/n)) / (2(n + z²)),
        # z = 1.96, in 30-digit decimal arithmetic; 0/10: upper = z²/(n + z²) = 3.8416/13.8416
        (5, 20, 0.1118601, 0.4687050),
        (0, 10, 0.0, 0.2775402),
        (10, 10, 0.7224598, 1.0),
        (50, 100, 0.4038298, 0.5961702),  # symmetric around 0.5
    ],
)
def test_wilson_interval_matches_hand_computed_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=2e-7)
    assert hi == pytest.approx(high, abs=2e-7)


def test_wilson_interval_edge_cases():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    narrow, wide = wilson_interval(500, 1000), wilson_interval(5, 10)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert wilson_interval(5, 20, z=2.576)[0] < wilson_interval(5, 20)[0]  # 99% is wider


def test_periods_follow_date_precision():
    assert period_label("2016-11-10", "year") == "2016"
    assert period_label("2016-11", "quarter") == "2016-Q4"
    assert period_label("2016-02-29", "quarter") == "2016-Q1"
    assert period_label("2016", "quarter") is None  # no month: no quarter
    assert period_label("", "year") is None
    assert period_start("2016-Q3") == pd.Timestamp(2016, 7, 1)
    assert period_start("2013-11-06", "year") == pd.Timestamp(2013, 1, 1)
    with pytest.raises(ValueError):
        period_label("2016", "month")


def _controlled_corpus():
    """Real seed sentences with code flags set by hand so every count is known."""
    sentences, documents = seed_corpus()
    sentences[CODE_COLUMNS] = 0
    counts = sentences.groupby("doc_id").size()
    flags = {}
    for i, doc_id in enumerate(sorted(counts.index)):
        rows = sentences.index[sentences["doc_id"] == doc_id]
        sentences.loc[rows[: i + 1], "collaboration"] = 1  # doc i: i+1 collaboration sentences
        sentences.loc[rows[:1], "competition"] = 1  # and one competition sentence
        sentences.loc[rows[:2], "federation"] = 1  # and two federation sentences
        flags[doc_id] = i + 1
    return sentences, documents, counts, flags


def test_per_period_counts_shares_and_rates_are_exact():
    sentences, documents, counts, flags = _controlled_corpus()
    trends = compute_trends(sentences, documents, by="year")
    stance = over_time(trends["stance_trends"])
    years = documents.set_index("doc_id")["published"].str[:4]
    assert list(stance["period"]) == sorted(years.unique())
    for row in stance.itertuples():
        docs = years.index[years == row.period]
        n = int(counts[docs].sum())
        k = sum(flags[d] for d in docs)
        assert row.n_sentences == n
        assert row.n_collaboration == k
        assert row.share_collaboration == pytest.approx(k / n, abs=1e-6)
        low, high = wilson_interval(k, n)
        assert (row.collaboration_ci_low, row.collaboration_ci_high) == (
            pytest.approx(low, abs=1e-6),
            pytest.approx(high, abs=1e-6),
        )
        assert row.n_competition == len(docs)
    partnership = over_time(trends["partnership_trends"])
    for row in partnership.itertuples():
        docs = years.index[years == row.period]
        n = int(counts[docs].sum())
        assert row.n_federation == 2 * len(docs)
        assert row.federation_per_1000 == pytest.approx(1000 * 2 * len(docs) / n, abs=1e-4)
        assert row.faith_per_1000 == 0


def test_grouping_by_doc_type_and_publisher_covers_every_sentence():
    sentences, documents = ofsted_corpus(limit=4)
    seeds, seed_docs = seed_corpus()
    sentences = pd.concat([sentences, seeds], ignore_index=True)
    documents = pd.concat([documents, seed_docs], ignore_index=True)
    stance = compute_trends(sentences, documents)["stance_trends"]
    totals = stance[stance["period"] == "all"]
    for dimension in ("doc_type", "publisher"):
        rows = totals[totals["dimension"] == dimension]
        assert rows["n_sentences"].sum() == len(sentences)
        for row in rows.itertuples():
            docs = documents.loc[documents[dimension] == row.group, "doc_id"]
            subset = sentences[sentences["doc_id"].isin(docs)]
            assert row.n_sentences == len(subset)
            assert row.n_collaboration == int(subset["collaboration"].sum())
    ofsted = totals[(totals["dimension"] == "publisher") & (totals["group"] == "Ofsted")]
    assert ofsted["n_documents"].item() == 4
    assert totals[totals["dimension"] == "all"]["n_sentences"].item() == len(sentences)


def test_quarters_report_year_only_dates_as_undated_in_quarter():
    sentences, documents = seed_corpus()
    documents.loc[documents["path"].str.contains("teachingtimes"), "published"] = ""  # one undated
    trends = compute_trends(sentences, documents, by="quarter")
    stance = trends["stance_trends"]
    rows = stance[stance["dimension"] == "all"].set_index("period")
    year_only = documents[documents["published"].str.len() == 4]["doc_id"]
    undated = documents[documents["published"] == ""]["doc_id"]
    assert len(year_only) == 2 and len(undated) == 1
    assert (
        rows.loc["undated_in_quarter", "n_sentences"] == sentences["doc_id"].isin(year_only).sum()
    )
    assert rows.loc["undated_in_quarter", "n_documents"] == 2
    assert rows.loc["undated", "n_sentences"] == sentences["doc_id"].isin(undated).sum()
    assert rows.loc["undated_in_quarter", "period_start"] == ""
    # every sentence is in exactly one period row: quarters, undated_in_quarter, undated
    assert rows.drop(index="all")["n_sentences"].sum() == len(sentences)
    assert list(rows.index[-3:]) == ["undated_in_quarter", "undated", "all"]
    assert "2013-Q4" in rows.index and "2014-Q1" in rows.index
    # off the time axis of the figures, and said in words
    assert not over_time(stance)["period"].isin(["undated", "undated_in_quarter"]).any()
    notes = undated_notes(stance)
    assert notes[0].startswith(
        f"{rows.loc['undated_in_quarter', 'n_sentences']:,} sentences of 2 documents "
        "dated only to the year are in no quarter"
    )
    # by year the year-only documents are dated, and there is no such row
    by_year = compute_trends(sentences, documents, by="year")["stance_trends"]
    assert "undated_in_quarter" not in set(by_year["period"])
    assert len(undated_notes(by_year)) == 1


def test_document_shares_sorted_by_collaboration_and_duplicates_left_out():
    sentences, documents, counts, flags = _controlled_corpus()
    documents.loc[0, "duplicate_of"] = "somethingelse"  # this row is a duplicate copy
    dropped = documents.loc[0, "doc_id"]
    shares = compute_trends(sentences, documents)["document_shares"]
    expected = sorted(
        ((flags[d] / counts[d], d) for d in counts.index), key=lambda x: (-x[0], x[1])
    )
    assert list(shares["doc_id"]) == [d for _, d in expected]
    assert shares["share_collaboration"].is_monotonic_decreasing
    row = shares.set_index("doc_id").loc[dropped]
    assert row["publisher"] == "unknown"  # metadata of a duplicate row is not used
    assert {"title", "published", "collaboration_ci_low", "federation_per_1000"} <= set(
        shares.columns
    )


def test_empty_corpus_gives_empty_tables():
    sentences, documents = seed_corpus()
    trends = compute_trends(sentences.iloc[:0], documents)
    assert set(trends) == {"stance_trends", "partnership_trends", "document_shares"}
    assert all(frame.empty for frame in trends.values())


def test_the_run_report_says_which_documents_are_in_no_quarter():
    from textmine.report.data import _undated

    sentences, documents = seed_corpus()
    stance = compute_trends(sentences, documents, by="quarter")["stance_trends"]
    undated = _undated(stance)
    year_only = documents[documents["published"].str.len() == 4]["doc_id"]
    assert undated == {
        "year_only_documents": len(year_only),
        "year_only_sentences": int(sentences["doc_id"].isin(year_only).sum()),
    }
    assert _undated(compute_trends(sentences, documents, by="year")["stance_trends"]) == {}
    from tests.test_report import _report_data
    from textmine.report.html import render_report

    page = render_report(_report_data(undated={**undated, "documents": 1, "sentences": 9}))
    assert (
        f"Left out of the periods: 1 undated documents (9 sentences); {len(year_only)} documents dated "
        f"only to the year, so in no quarter ({undated['year_only_sentences']:,} sentences, "
        "period undated_in_quarter)."
    ) in page


@pytest.mark.parametrize("by", ["year", "quarter"])
def test_compute_trends_equals_each_table_made_on_its_own(by):
    """compute_trends prepares the sentences once for the three tables: the same tables."""
    from textmine.trends import document_shares, partnership_trends, stance_trends

    sentences, documents = ofsted_corpus(limit=4)
    seeds, seed_docs = seed_corpus()
    sentences = pd.concat([sentences, seeds], ignore_index=True)
    documents = pd.concat([documents, seed_docs], ignore_index=True)
    sentences["federation"] = sentences["federation"].where(sentences.index % 3 > 0, 2.0)
    trends = compute_trends(sentences, documents, by=by)
    for name, table in (
        ("stance_trends", stance_trends(sentences, documents, by)),
        ("partnership_trends", partnership_trends(sentences, documents, by)),
        ("document_shares", document_shares(sentences, documents, by)),
    ):
        pd.testing.assert_frame_equal(trends[name], table, check_exact=True)
