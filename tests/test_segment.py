"""Sentence segmentation: abbreviations, offsets, the lemmatizer switch."""

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textmine.columns import SENTENCE_COLUMNS
from textmine.ingest.reader import assemble
from textmine.segment import LEMMATIZER, build_nlp, segment_document
from textmine.types import Document


@pytest.fixture(scope="module")
def nlp():
    return build_nlp()


def make_document(paragraphs, pages=None):
    pages = pages or [1] * len(paragraphs)
    text, spans = assemble(list(zip(pages, paragraphs, strict=True)))
    return Document(
        doc_id="0123456789abcdef",
        path="corpus/x.txt",
        format="text",
        pages=max(pages),
        text=text,
        paragraphs=spans,
    )


def sentences(nlp, text):
    return list(segment_document(make_document([text]), nlp)["text"])


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Dr. Smith chairs the trust. It has five schools.",
            ["Dr. Smith chairs the trust.", "It has five schools."],
        ),
        ("See No. 3 in the list. Then stop.", ["See No. 3 in the list.", "Then stop."]),
        (
            "Heads, i.e. the leaders, agreed. Others did not.",
            ["Heads, i.e. the leaders, agreed.", "Others did not."],
        ),
        (
            "Networks, e.g. teaching schools, grew. Trusts too.",
            ["Networks, e.g. teaching schools, grew.", "Trusts too."],
        ),
        (
            "This is contested, cf. para. 4 of the report. It matters.",
            ["This is contested, cf. para. 4 of the report.", "It matters."],
        ),
        (
            "Competition rose (Greany et al. 2014). Collaboration fell.",
            ["Competition rose (Greany et al. 2014).", "Collaboration fell."],
        ),
        (
            "Mr. Jones led St. Mary's school. It federated.",
            ["Mr. Jones led St. Mary's school.", "It federated."],
        ),
        (
            "Written by Toby J. Greany in 2014. Read it.",
            ["Written by Toby J. Greany in 2014.", "Read it."],
        ),
        ("They said no. Then they agreed.", ["They said no.", "Then they agreed."]),
        (
            "Costs rose approx. ten per cent. Budgets fell.",
            ["Costs rose approx. ten per cent.", "Budgets fell."],
        ),
    ],
)
def test_abbreviations_do_not_end_sentences(nlp, text, expected):
    assert sentences(nlp, text) == expected


def test_rows_carry_provenance_and_never_cross_paragraphs(nlp):
    document = make_document(
        ["Heading without a full stop", "One. Two two.", "Three on page two."], pages=[1, 1, 2]
    )
    frame = segment_document(document, nlp)
    assert list(frame.columns) == SENTENCE_COLUMNS
    assert list(frame["text"]) == [
        "Heading without a full stop",
        "One.",
        "Two two.",
        "Three on page two.",
    ]
    assert list(frame["paragraph_index"]) == [0, 1, 1, 2]
    assert list(frame["page"]) == [1, 1, 1, 2]
    assert list(frame["sentence_index"]) == [0, 1, 2, 3]
    assert list(frame["sentence_id"]) == [f"0123456789abcdef-{i:05d}" for i in range(4)]
    assert set(frame["doc_id"]) == {"0123456789abcdef"} and set(frame["path"]) == {"corpus/x.txt"}


def test_lemmatizer_is_present_but_off_by_default():
    default = build_nlp()
    assert LEMMATIZER in default.component_names and LEMMATIZER in default.disabled
    lemmatizing = build_nlp(lemmatize=True)
    assert [t.lemma_ for t in lemmatizing("schools were competing")] == ["school", "be", "compete"]


def test_missing_trained_pipeline_is_a_clear_error():
    with pytest.raises(OSError, match=r"not installed.*never downloads"):
        build_nlp("en_core_web_nonexistent_pipeline")


WORDS = st.sampled_from(
    [
        "Dr.",
        "No.",
        "3",
        "i.e.",
        "e.g.",
        "cf.",
        "para.",
        "4",
        "et",
        "al.",
        "Mr.",
        "St.",
        "school",
        "trust",
        "federation",
        "compete",
        "collaborate",
        "!",
        "?",
        ".",
        ",",
        "(",
        ")",
        "\u2019s",
        "\u201cpartnership\u201d",
        "2014.",
        "U.K.",
        "...",
        "-",
        "\u2013",
        "\u00a31m",
        "\u00e9l\u00e8ve",
        "  ",
        "\t",
        "A.",
        "b.",
    ]
)
PARAGRAPH = st.lists(WORDS, min_size=1, max_size=40).map(" ".join).filter(lambda s: s.strip())


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(PARAGRAPH, min_size=1, max_size=6))
def test_offsets_always_slice_back_to_the_sentence(nlp, paragraphs):
    document = make_document([p.strip() for p in paragraphs])
    frame = segment_document(document, nlp)
    previous_end = 0
    for row in frame.itertuples():
        assert document.text[row.start_char : row.end_char] == row.text
        assert row.text == row.text.strip() and row.text
        assert row.start_char >= previous_end
        previous_end = row.end_char


def test_brackets_stay_with_their_sentence(nlp):
    assert sentences(nlp, "Act at the earliest opportunity. (Recommendation) Next.") == [
        "Act at the earliest opportunity.",
        "(Recommendation) Next.",
    ]


def numbered(nlp, paragraphs):
    document = make_document(paragraphs)
    frame = segment_document(document, nlp)
    for row in frame.itertuples():
        assert document.text[row.start_char : row.end_char] == row.text
    return list(zip(frame["paragraph_number"], frame["text"], strict=True))


def test_paragraph_numbers_move_out_of_the_text_into_their_column(nlp):
    assert numbered(nlp, ["34. Children are seen. They are safe.", "A heading"]) == [
        ("34", "Children are seen."),
        ("34", "They are safe."),
        ("", "A heading"),
    ]
    # glued to the first word by the PDF (Ofsted 2018 reports)
    assert numbered(nlp, ["29.In 2015, services were reviewed."]) == [
        ("29", "In 2015, services were reviewed.")
    ]
    # section numbers, quotes after the number
    assert numbered(
        nlp, ["2.1 Adoption performance Good", "12. \u2018Staying Put\u2019 works."]
    ) == [("2.1", "Adoption performance Good"), ("12", "\u2018Staying Put\u2019 works.")]
    # a number glued inside a paragraph starts a new numbered paragraph there
    assert numbered(nlp, ["Practice is good. 153.Rigorous plans exist. They work."]) == [
        ("", "Practice is good."),
        ("153", "Rigorous plans exist."),
        ("153", "They work."),
    ]
    # a number left at the end of a paragraph belongs to the next one, never to a sentence
    assert numbered(
        nlp, ["The plan covers education services. 51.", "The local authority acts."]
    ) == [("", "The plan covers education services."), ("51", "The local authority acts.")]


def test_numbers_that_are_not_paragraph_numbers_stay(nlp):
    assert numbered(
        nlp,
        [
            "1 Ofsted produces this report under its power.",  # a footnote
            "3.5 million pupils attend.",
            "Young people stay until the age of 18. They then leave.",
        ],
    ) == [
        ("", "1 Ofsted produces this report under its power."),
        ("", "3.5 million pupils attend."),
        ("", "Young people stay until the age of 18."),
        ("", "They then leave."),
    ]


def test_sentences_on_ocr_pages_are_marked(nlp):
    text, spans = assemble([(1, "Typed text."), (2, "Scanned text.")])
    document = Document(
        doc_id="0123456789abcdef",
        path="x.pdf",
        format="pdf",
        pages=2,
        text=text,
        paragraphs=spans,
        ocr_pages=[2],
    )
    frame = segment_document(document, nlp)
    assert list(zip(frame["text"], frame["ocr"], strict=True)) == [
        ("Typed text.", 0),
        ("Scanned text.", 1),
    ]


SENTENCE_PUNCT = st.sampled_from(
    ["!", "?", ".", "\u3002", "\u061f", "\u0964", "\u2026", "?!", ".)"]
)


@functools.cache
def sentencizers():
    """spaCy's sentencizer and textmine's, each alone in a blank English pipeline."""
    import spacy

    from textmine.segment import SENTENCIZER

    theirs, ours = spacy.blank("en"), spacy.blank("en")
    theirs.add_pipe("sentencizer")
    ours.add_pipe(SENTENCIZER)
    return theirs, ours


def spacy_and_fast_starts(text: str) -> tuple[list[bool], list[bool]]:
    theirs, ours = sentencizers()
    return (
        [bool(t.is_sent_start) for t in theirs(text)],
        [bool(t.is_sent_start) for t in ours(text)],
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(WORDS, SENTENCE_PUNCT), min_size=0, max_size=40).map(" ".join))
def test_the_fast_sentencizer_starts_sentences_where_spacys_does(text):
    theirs, ours = spacy_and_fast_starts(text)
    assert ours == theirs


def test_the_fast_sentencizer_agrees_with_spacys_on_the_bundled_corpus():
    from pathlib import Path

    seeds = sorted((Path(__file__).resolve().parents[1] / "corpus" / "seeds").glob("*.txt"))
    assert seeds
    for path in seeds:
        for paragraph in path.read_text(encoding="utf-8").split("\n\n"):
            theirs, ours = spacy_and_fast_starts(paragraph)
            assert ours == theirs, paragraph[:80]


# Text built from the pieces the fast path has to get right: abbreviations, initials,
# paragraph numbers, brackets and quotes after a full stop, odd spaces, other scripts'
# sentence ends, and paragraphs without any sentence-final character.
SENTENCE_PIECES = st.sampled_from(
    [
        "The",
        "school",
        "cf.",
        "et al.",
        "No.",
        "3",
        "para.",
        "e.g.",
        "J.",
        "Smith",
        "12.",
        "2.1",
        "(Recommendation)",
        "“Good”",
        ".",
        "!",
        "?",
        "...",
        "。",
        "‼",
        "-",
        "(",
        ")",
        "'",
        "a",
        "B.",
        "x.y",
        "51.",
        "Mr.",
        "  ",
        "\t",
        "\n",
        "vs.",
        "1.",
        "Ofsted",
    ]
)
PARAGRAPH_TEXTS = st.lists(
    st.lists(SENTENCE_PIECES, min_size=0, max_size=14).map(" ".join)
    | st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(PARAGRAPH_TEXTS)
def test_array_spans_equal_the_spacy_pipeline(nlp, texts):
    from textmine.segment import _paragraph_spans, _sentence_spans

    assert _paragraph_spans(nlp, texts) == list(_sentence_spans(nlp, texts))


def test_another_pipeline_takes_the_spacy_path(nlp, monkeypatch):
    import textmine.segment as segment

    monkeypatch.setattr(segment, "_is_default_pipeline", lambda nlp: False)
    monkeypatch.setattr(segment, "_token_spans", None)  # would fail if called
    texts = ["One. Two cf. three.", "No stop here"]
    assert segment._paragraph_spans(nlp, texts) == [[(0, 4), (5, 19)], [(0, 12)]]
