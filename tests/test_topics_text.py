"""Topic words without report boilerplate, notes on degenerate results, and the
--n-topics check (issue 11). Real sentences from the bundled corpus."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from typer.testing import CliRunner

from tests.topic_data import ofsted_corpus, seed_corpus
from textmine.cli import app
from textmine.ingest import read_document
from textmine.segment import build_nlp, segment_document
from textmine.topics import TopicSettings, build_chunks, run_topics, stop_words
from textmine.topics.chunks import is_front_matter
from textmine.topics.embed import TfidfSvdEmbedder, token_pattern
from textmine.topics.tables import degenerate_notes

from .conftest import CORPUS, TEST_DATA


@pytest.fixture(scope="module")
def milton_keynes():
    """The sentences of a real 2021 Ofsted report, read and segmented as a run does."""
    document = read_document(
        TEST_DATA / "ingest" / "80524_milton_keynes_csc-inspection_17_december_2021.pdf"
    )
    sentences = segment_document(document, build_nlp())
    documents = [{"doc_id": document.doc_id, "published": "2021-12-17", "duplicate_of": ""}]
    return sentences, pd.DataFrame(documents)


def test_curly_and_straight_apostrophes_end_a_token():
    text = "Lead inspector: Maire Atherton, Her Majesty\u2019s Inspector. The council's children\u2019s homes."
    tokens = re.findall(token_pattern(), text.lower())
    assert "majesty" in tokens and "children" in tokens and "council" in tokens
    assert not [t for t in tokens if "'" in t or "\u2019" in t]
    vocabulary = (
        CountVectorizer(stop_words=stop_words(), token_pattern=token_pattern())
        .fit([text])
        .vocabulary_
    )
    assert "majesty" not in vocabulary and not any(w.startswith("majesty") for w in vocabulary)


def test_front_matter_sentences_are_recognised(milton_keynes):
    sentences, _ = milton_keynes
    flagged = sentences[is_front_matter(sentences["text"])]["text"].tolist()
    for expected in (
        "Inspection dates: 25 October to 5 November 2021",
        "Lead inspector: Maire Atherton, Her Majesty\u2019s Inspector",
        "Judgement Grade",
        "Inspection of Milton Keynes local authority children\u2019s services",
    ):
        assert expected in flagged
    assert any(
        t.startswith("The impact of leaders on social work practice") for t in flagged
    )  # a grade row
    # the findings themselves stay: a small share of the report is front matter
    assert len(flagged) < 0.1 * len(sentences)
    body = sentences[~is_front_matter(sentences["text"])]["text"]
    assert body.str.contains("social workers", case=False).sum() > 10


def test_front_matter_test_is_the_three_patterns_on_short_sentences(milton_keynes):
    """The fast test (start-anchored alternatives matched at the start only) equals the plain one."""
    from textmine.topics.chunks import (
        FRONT_MATTER,
        FRONT_MATTER_MAX_WORDS,
        JUDGEMENT_LINE,
        JUDGEMENT_LINE_MAX_WORDS,
        REPORT_TEMPLATE,
    )

    sentences, _ = milton_keynes
    texts = pd.concat(
        [
            sentences["text"],
            pd.Series(
                [
                    "",
                    "   ",
                    "The report was carried out under section 136 of the Act.",
                    "Her Majesty\u2019s Inspector",
                    "The director has been in post since 2019.",
                    "Overall effectiveness Good",
                    "Overall effectiveness " + "word " * 30 + "good",
                ]
            ),
        ],
        ignore_index=True,
    )
    words = texts.str.split().str.len()
    plain = (
        (texts.str.contains(FRONT_MATTER) | texts.str.contains(REPORT_TEMPLATE))
        & (words <= FRONT_MATTER_MAX_WORDS)
    ) | (texts.str.contains(JUDGEMENT_LINE) & (words <= JUDGEMENT_LINE_MAX_WORDS))
    fast = is_front_matter(texts)
    assert fast.tolist() == plain.astype(bool).tolist()
    assert fast.sum() > 10 and fast.iloc[-5:-1].all() and not fast.iloc[-1]


def test_period_word_counts_are_count_vectorizer_counts(milton_keynes):
    from textmine.topics.tables import count_vocabulary

    sentences, documents = milton_keynes
    texts = [
        *build_chunks(sentences, documents)["text"],
        "",
        "Social workers' visits: social work, SOCIAL  WORK and social-work plans.",
        "Children\u2019s homes; children's homes",
    ]
    vocabulary = sorted(
        {"social work", "social workers", "children", "homes", "children homes", "plans"}
        | {"social-work plans", "visits", "leaders", "care leavers", "work"}
    )
    expected = (
        CountVectorizer(
            vocabulary=vocabulary, ngram_range=(1, 2), token_pattern=token_pattern(), lowercase=True
        )
        .transform(texts)
        .tocsr()
    )
    counts = count_vocabulary(texts, vocabulary)
    assert counts.shape == expected.shape and counts.dtype == expected.dtype
    assert (counts != expected).nnz == 0 and expected.sum() > 50


def test_judgement_lines_are_searched_for_at_the_end_only():
    """JUDGEMENT_LINE ends the text and holds at most JUDGEMENT_LINE_LONGEST characters."""
    from re import _parser  # type: ignore[attr-defined]

    from textmine.topics.chunks import JUDGEMENT_LINE, JUDGEMENT_LINE_LONGEST

    parsed = _parser.parse(JUDGEMENT_LINE.pattern, JUDGEMENT_LINE.flags)
    assert parsed.getwidth()[1] == JUDGEMENT_LINE_LONGEST
    assert parsed[-1] == (_parser.AT, _parser.AT_END)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "good",
                "Good",
                "GOOD",
                "outstanding",
                "requires improvement",
                " to be good",
                "Inadequate",
                " ",
                "  ",
                ":",
                "\n",
                "\t",
                "x",
                "word ",
                "Leadership",
                ".",
            ]
        ),
        max_size=12,
    ).map("".join)
)
def test_judgement_lines_found_at_the_end_are_those_found_anywhere(text):
    from textmine.topics.chunks import (
        _ANYWHERE,
        _AT_START,
        JUDGEMENT_LINE,
        JUDGEMENT_LINE_MAX_WORDS,
    )

    plain = len(text.split()) <= JUDGEMENT_LINE_MAX_WORDS and (
        JUDGEMENT_LINE.search(text) is not None
        or _AT_START.match(text) is not None
        or _ANYWHERE.search(text) is not None
    )
    assert bool(is_front_matter(pd.Series([text])).iloc[0]) == plain


# words, stop words, and characters at the edges of tokens: apostrophes, hyphens,
# underscores, digits, white space that is not a space, combining marks, and
# letters whose lower case depends on their neighbours or differs in length
_TEXT_PIECES = st.sampled_from(
    [
        "Social",
        "work",
        "social-work",
        "the",
        "and",
        "Ofsted",
        "children\u2019s",
        "it's",
        "a",
        "x1",
        "1x",
        "_ab",
        "ab_",
        "a_b",
        "--",
        "-ab-",
        "ab--",
        "12",
        "\u00b2b",
        "caf\u00e9",
        "cafe\u0301",
        "\u03a3\u03a3",
        "O\u03a3",
        "\u017fa",
        "\u212a\u212a",
        "\u0130i",
        "\u00df",
        " ",
        "  ",
        "\t",
        "\n",
        "\xa0",
        "\x1c",
        "\u2028",
        ".",
        ",",
        "(",
        ")",
        ":",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    documents=st.lists(st.lists(_TEXT_PIECES, max_size=30).map("".join), min_size=1, max_size=8),
    phrases=st.booleans(),
    lowercase=st.booleans(),
    tfidf=st.booleans(),
)
def test_fast_counting_equals_scikit_learn(documents, phrases, lowercase, tfidf):
    from textmine.topics.counting import FastCountVectorizer, FastTfidfVectorizer

    plain_class, fast_class = (
        (TfidfVectorizer, FastTfidfVectorizer) if tfidf else (CountVectorizer, FastCountVectorizer)
    )
    options = dict(
        stop_words=stop_words(),
        token_pattern=token_pattern(),
        ngram_range=(1, 2) if phrases else (1, 1),
        lowercase=lowercase,
    )
    plain, fast = plain_class(**options), fast_class(**options)
    try:
        expected = plain.fit_transform(documents)
    except ValueError as exc:  # nothing but stop words
        with pytest.raises(ValueError, match=str(exc)):
            fast.fit_transform(documents)
        return
    result = fast.fit_transform(documents)
    assert fast.get_params() == plain.get_params()
    assert list(fast.vocabulary_.items()) == list(plain.vocabulary_.items())
    for found, wanted in (
        (result, expected),
        (fast.transform(documents[::-1]), plain.transform(documents[::-1])),
    ):
        assert type(found) is type(wanted) and found.dtype == wanted.dtype
        for part in ("data", "indices", "indptr"):
            assert getattr(found, part).dtype == getattr(wanted, part).dtype
            assert np.array_equal(getattr(found, part), getattr(wanted, part))


def test_fast_counting_falls_back_to_scikit_learn_for_other_settings():
    from textmine.topics.counting import FastCountVectorizer

    documents = ["Social work, social workers", "Children\u2019s homes and social work"]
    for options in (
        {"token_pattern": r"(?u)\b\w\w+\b"},
        {"ngram_range": (1, 3)},
        {"strip_accents": "unicode"},
        {"analyzer": "char_wb"},
    ):
        expected = CountVectorizer(**options).fit_transform(documents)
        assert (FastCountVectorizer(**options).fit_transform(documents) != expected).nnz == 0


def test_chunks_leave_out_front_matter(milton_keynes):
    sentences, documents = milton_keynes
    chunks = build_chunks(sentences, documents)
    text = " ".join(chunks["text"])
    for boilerplate in (
        "Lead inspector",
        "Inspection dates",
        "Judgement Grade",
        "Her Majesty\u2019s Inspector",
    ):
        assert boilerplate not in text
    assert len(chunks) > 30


def test_bundled_reports_lose_their_boilerplate_topic_words():
    """TF-IDF vocabulary of real Ofsted chunks: no possessive or boilerplate tokens."""
    sentences, documents = ofsted_corpus(limit=6)
    chunks = build_chunks(sentences, documents)
    embedder = TfidfSvdEmbedder(n_components=20)
    embedder.fit_transform(chunks["text"].tolist())
    vocabulary = set(embedder.pipeline.steps[0][1].vocabulary_)
    # with apostrophes inside tokens and the front matter kept, these were all in it
    assert not [
        w for w in vocabulary if "\u2019" in w or "'" in w
    ]  # children's, majesty's, ofsted's
    assert (
        not {"majesty", "consisted"} & vocabulary
    )  # His Majesty's Inspector, the team consisted of
    assert {"foster", "adoption", "leaders"} <= vocabulary


def test_degenerate_results_are_noted():
    names = {0: "children, social, work", 1: "adoption", 2: "fostering"}
    dominant = np.array([0] * 2404 + [1] * 500 + [2] * 303)
    notes = degenerate_notes(dominant, names, 12)
    assert notes[0].startswith("asked for 12 topics but the model found 3")
    assert notes[1].startswith(
        "degenerate topics: topic 0 (children, social, work) holds 2,404 of 3,207 paragraphs (75%)"
    )
    balanced = np.array([0] * 100 + [1] * 90 + [2] * 80 + [-1] * 300)  # outliers are not a topic
    assert degenerate_notes(balanced, names, "auto") == []
    assert degenerate_notes(balanced, names, 3) == []


def test_fewer_topics_than_asked_reaches_the_notes(tmp_path):
    sentences, documents = seed_corpus()
    chunks = build_chunks(sentences, documents)
    first = chunks.head(6)
    keep = {
        (r.doc_id, p)
        for r in first.itertuples()
        for p in range(r.paragraph_index, r.paragraph_index + r.n_paragraphs)
    }
    small = sentences[
        [
            (d, p) in keep
            for d, p in zip(sentences["doc_id"], sentences["paragraph_index"], strict=True)
        ]
    ]
    outputs = run_topics(small, documents, TopicSettings(n_topics=12), tmp_path / "model")
    assert len(outputs.topics) == 6
    assert any(
        note.startswith("asked for 12 topics but the model found 6") for note in outputs.notes
    )


@pytest.mark.parametrize(
    "value, message", [("0", "at least 2"), ("1", "at least 2"), ("many", "'auto' or a number")]
)
def test_topics_command_rejects_a_bad_number_of_topics_up_front(tmp_path, value, message):
    out = tmp_path / "not-a-corpus"
    result = CliRunner().invoke(app, ["topics", "--out", str(out), "--n-topics", value])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()  # nothing was read or written


def test_run_rejects_a_bad_number_of_topics_up_front(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", str(CORPUS / "seeds"), "--out", str(out), "--n-topics", "0"]
    )
    assert result.exit_code == 2 and "at least 2" in " ".join(result.output.split())
    assert not (out / "textmine.sqlite").exists()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["d1", "d2", "d3", None]),
            st.integers(0, 4),
            st.sampled_from(["", "a", "b c", "Good.", "x"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_paragraph_texts_are_their_non_empty_sentences_joined(rows):
    from textmine.topics.chunks import _joined_texts

    frame = pd.DataFrame(rows, columns=["doc_id", "paragraph_index", "text"])
    grouped = frame.groupby(["doc_id", "paragraph_index"], sort=True)
    expected = grouped["text"].agg(lambda t: " ".join(x for x in t if x)).tolist()
    assert _joined_texts(frame["text"], grouped.ngroup(), grouped.ngroups) == expected


def test_period_of_each_value_is_worked_out_once_per_distinct_value():
    from textmine.periods import period_label
    from textmine.topics.tables import _each

    values = pd.Series(["2021-12-17", "2021", None, "2021-12-17", "", "2020-02-01", None, "bad"])
    calls: list[object] = []

    def label(value):
        calls.append(value)
        return period_label(value, "quarter") or ""

    assert _each(label, values) == [period_label(v, "quarter") or "" for v in values]
    assert len(calls) == 6
