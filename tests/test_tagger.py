"""The tagger component and each context rule, on sentences written for these tests."""

import functools
import json
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from textmine.codebook import default_codebook_path, load_codebook, parse_codebook
from textmine.coding import code_texts, get_coder
from textmine.columns import CODE_COLUMNS
from textmine.tagger import (
    DROPPED_KEY,
    SPANS_KEY,
    search_with_scout,
    without_leading_boundary,
)


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


def codes_of(codebook, sentence: str) -> set[str]:
    row = code_texts([sentence], codebook).iloc[0]
    return {c for c in CODE_COLUMNS if row[c] == 1}


def test_component_writes_labelled_spans(codebook):
    coder = get_coder(codebook)
    assert "textmine_tagger" in coder.nlp.pipe_names
    doc = coder.nlp("Neighbouring Schools Competed for pupils within a multi-academy trust.")
    spans = doc.spans[SPANS_KEY]
    assert {(s.label_, s.text) for s in spans} >= {
        ("competition", "Competed"),
        ("academy_trust", "multi-academy trust"),
    }
    assert all(s.id_ for s in spans)  # the pattern id travels with the span


@pytest.mark.parametrize(
    ("sentence", "code"),
    [
        ("The schools compete.", "competition"),
        ("Academies competed hard.", "competition"),
        ("Competing colleges lost pupils.", "competition"),
        ("They were collaborating closely with two other schools.", "collaboration"),
        ("The heads collaborated with two other schools.", "collaboration"),
    ],
)
def test_lemma_patterns_cover_inflections(codebook, sentence, code):
    found = codes_of(codebook, sentence) & {"competition", "collaboration"}
    assert found == {code}, sentence


def test_hyphenated_compounds_stay_whole(codebook):
    assert codes_of(codebook, "Strong multi-agency working keeps children safe.") == {
        "collaboration",
        "cross_sector",
    }
    assert "competition" in codes_of(codebook, "England's quasi-markets reward popularity.")


# -- negation and contrast -------------------------------------------------------
NEGATED = "The two infant schools share an executive headteacher, but not in a formal federation."
CONTRASTED = "Governors chose an informal partnership rather than a multi-academy trust."


@pytest.fixture(scope="module")
def negating_codebook():
    """The default codebook with negation and contrast cues listed (the rule switched on)."""
    data = yaml.safe_load(default_codebook_path().read_text(encoding="utf-8"))
    data["context"]["negation_cues"] = ["not", "n't", "never", "without", "neither", "nor", "no"]
    data["context"]["contrast_cues"] = ["rather than", "instead of", "as opposed to"]
    return parse_codebook(yaml.safe_dump(data), source="negating codebook")


def test_negated_or_counterfactual_structure_keeps_its_type_by_the_conventions(codebook):
    # codebook Conventions: "not in a formal federation" -> FEDERATION
    assert {"federation", "system_leader"} <= codes_of(codebook, NEGATED)
    assert {"academy_trust", "collaboration", "network"} <= codes_of(codebook, CONTRASTED)
    doc = get_coder(codebook).nlp("They are not a federation.")
    assert list(doc.spans[DROPPED_KEY]) == []


def test_negated_type_is_not_coded_when_the_codebook_lists_negation_cues(negating_codebook):
    codes = codes_of(negating_codebook, NEGATED)
    assert "federation" not in codes
    assert "system_leader" in codes
    doc = get_coder(negating_codebook).nlp("They are not a federation.")
    assert [(s.label_, s.id_) for s in doc.spans[DROPPED_KEY]] == [("federation", "negation")]


def test_contrast_cue_removes_the_type_when_listed(negating_codebook):
    codes = codes_of(negating_codebook, CONTRASTED)
    assert "academy_trust" not in codes
    assert {"collaboration", "network"} <= codes


def test_negation_exceptions_and_other_clauses_keep_the_type(negating_codebook):
    assert "federation" in codes_of(
        negating_codebook, "This is not only a federation but a family."
    )
    assert "federation" in codes_of(negating_codebook, "It is not clear, but the federation grew.")


def test_negation_does_not_remove_stance(negating_codebook):
    # sceptical or negative talk of competition/collaboration is still coded
    assert "competition" in codes_of(negating_codebook, "Heads here do not compete for pupils.")
    assert "collaboration" in codes_of(negating_codebook, "The schools never collaborated at all.")


# -- non-target senses -----------------------------------------------------------
def test_partnership_with_parents_or_pupils_is_not_collaboration(codebook):
    for sentence in (
        "Staff work in partnership with parents to improve attendance.",
        "Parents are valued partners in their children's education.",
        "The home-school partnership agreement is signed each year.",
        "Social workers collaborate openly with children and their families.",
    ):
        assert not codes_of(codebook, sentence) & {"collaboration", "network"}, sentence
    assert {"collaboration", "network"} <= codes_of(
        codebook, "The school works in partnership with two other primary schools."
    )


def test_sports_and_writing_competitions_are_not_competition(codebook):
    for sentence in (
        "Pupils won a regional writing competition last year.",
        "Many pupils take part in inter-school sports competitions.",
        "Older pupils compete in football tournaments against other teams.",
        "Competitive sport is popular at lunchtime.",
        "Pupils take part in a wide range of clubs and competitions.",
        "Pupils compete for house points throughout the year.",
    ):
        assert "competition" not in codes_of(codebook, sentence), sentence
    assert "competition" in codes_of(codebook, "Secondary schools compete for the same pupils.")


def test_labour_and_housing_markets_are_not_competition(codebook):
    for sentence in (
        "Careers lessons explain the local labour market to students.",
        "The housing market makes it hard to recruit teachers.",
        "Leaders use labour market information in careers guidance.",
    ):
        assert "competition" not in codes_of(codebook, sentence), sentence
    assert "competition" in codes_of(codebook, "The education market rewards popular schools.")


def test_collaborative_learning_inside_one_classroom_is_not_collaboration(codebook):
    for sentence in (
        "Pupils collaborate well in small groups during science lessons.",
        "Teachers in the English department work together to plan lessons.",
        "Students share ideas and work collaboratively in class.",
        "Collaborative learning is a strength of the school.",
    ):
        assert "collaboration" not in codes_of(codebook, sentence), sentence
    assert "collaboration" in codes_of(
        codebook, "Teachers collaborate with colleagues from other schools to plan lessons."
    )


# -- structure merely named --------------------------------------------------------
def test_named_structure_gets_its_type_but_not_collaboration(codebook):
    assert codes_of(codebook, "The academy chain appointed a new chief executive.") == {
        "academy_trust"
    }
    assert codes_of(codebook, "She was designated a national leader of education in 2012.") == {
        "system_leader"
    }
    assert codes_of(codebook, "Two teaching school alliances closed this year.") == {
        "teaching_school"
    }
    # the same structure with partnership language is collaboration too
    assert "collaboration" in codes_of(
        codebook, "The academy chain helps its schools share expertise with other schools."
    )


# -- organisations other than schools ----------------------------------------------
def test_multi_agency_partnership_working_is_collaboration_and_cross_sector(codebook):
    assert codes_of(
        codebook, "Leaders work well with the police and health partners to protect children."
    ) == {"collaboration", "cross_sector"}
    assert codes_of(
        codebook, "The council and its partners share information quickly when children go missing."
    ) == {"collaboration", "cross_sector"}


def test_listing_who_was_met_is_not_collaboration(codebook):
    for sentence in (
        "Inspectors spoke with partners and senior managers.",
        "Inspectors met with representatives of partner agencies.",
        "Referrals from partner agencies are sometimes late.",
    ):
        assert not codes_of(codebook, sentence) & {"collaboration", "cross_sector"}, sentence


# -- NETWORK as the fallback ---------------------------------------------------------
def test_network_only_when_no_specific_type_covers_the_partnership(codebook):
    assert codes_of(codebook, "Our school joined an informal network of rural primaries.") == {
        "collaboration",
        "network",
    }
    # covered by the type it introduces
    codes = codes_of(codebook, "Partnerships such as federations have grown quickly.")
    assert "federation" in codes and "network" not in codes
    # a partnership that is itself a specific type
    codes = codes_of(codebook, "Independent state school partnerships received new funding.")
    assert codes == {"collaboration", "cross_sector"}
    # a second, uncovered partnership keeps NETWORK beside the type
    codes = codes_of(
        codebook,
        "Some schools are federated; others rely on informal partnerships with neighbours.",
    )
    assert {"federation", "network"} <= codes


def test_grouping_in_a_local_area_is_local_partnership(codebook):
    codes = codes_of(codebook, "A group of headteachers in the local area meets every term.")
    assert {"collaboration", "local_partnership"} <= codes
    assert "network" not in codes


@pytest.mark.parametrize(
    "sentence",
    [
        "The Education Action Zone ran a summer school.",
        "Two EAZs and the EiC programme funded learning mentors.",
        "Excellence in Cities reached 58 local education authorities.",
        "Derby was one of the first six Opportunity Areas.",
        "The regional adoption agency places children without delay.",
        "Adopt Berkshire has arranged five placements.",
        "Policies are written through the pan-Berkshire procedures subgroup.",
        "Out-of-hours services are shared with two neighbouring authorities.",
        "Profiles are shared within the regional adoption consortium.",
        "Essex, as part of Partners in Practice, supports other councils.",
        "Cross-authority arrangements for missing children are effective.",
    ],
)
def test_area_programmes_and_groupings_of_authorities_are_local_partnership(codebook, sentence):
    # codebook Conventions: area programmes and groupings of local authorities
    codes = codes_of(codebook, sentence)
    assert "local_partnership" in codes
    assert "network" not in codes


def test_other_action_zones_and_a_lone_authority_are_not_local_partnership(codebook):
    assert "local_partnership" not in codes_of(codebook, "The Health Action Zone closed.")
    assert "local_partnership" not in codes_of(
        codebook, "The local authority has improved its adoption service."
    )
    assert "local_partnership" not in codes_of(codebook, "Adopt a clear plan for every child.")


# -- evidence ------------------------------------------------------------------------------
def test_evidence_gives_text_and_offsets_relative_to_the_sentence(codebook):
    sentence = "League tables push schools to compete, yet heads share expertise."
    row = code_texts([sentence], codebook).iloc[0]
    evidence = json.loads(row["evidence"])
    assert set(evidence) == {c for c in CODE_COLUMNS if row[c] == 1}
    for items in evidence.values():
        for item in items:
            assert sentence[item["start"] : item["end"]] == item["text"]
            assert item["rule"]
    assert {i["text"] for i in evidence["competition"]} == {"League tables", "compete"}


def test_partnership_with_colleges_or_businesses_is_cross_sector(codebook):
    assert codes_of(
        codebook, "The sixth form is run in partnership with a local further education college."
    ) == {"collaboration", "cross_sector"}
    # schools and colleges merely side by side are not a cross-sector partnership
    assert "cross_sector" not in codes_of(
        codebook, "Schools and colleges moved from competition to collaboration."
    )


def test_mat_means_multi_academy_trust_unless_multi_agency(codebook):
    assert codes_of(codebook, "Some MATs have grown too quickly.") == {"academy_trust"}
    codes = codes_of(codebook, "Families are supported by locally based Multi-Agency teams (MAT).")
    assert "academy_trust" not in codes and "cross_sector" in codes


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (
            "Staff from the two schools plan lessons together and moderate each other's work.",
            {"collaboration"},
        ),
        ("Teachers in the mathematics department plan lessons together every week.", set()),
        ("Pupils plan their projects together in small groups.", set()),
        (
            "The council and the NHS jointly commission services for care leavers.",
            {"collaboration", "cross_sector"},
        ),
    ],
)
def test_doing_things_together_counts_only_between_institutions(codebook, sentence, expected):
    assert codes_of(codebook, sentence) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet="ab .-(*\\", max_size=5), max_size=12),
    st.text(alphabet="ab .-(*\\", max_size=30),
)
def test_any_of_strings_finds_a_text_holding_any_of_them(strings, text):
    from textmine.tagger import any_of_strings

    assert (any_of_strings(strings).search(text) is not None) == any(s in text for s in strings)


_TAG_WORDS = [
    "schools",
    "work",
    "closely",
    "together",
    "with",
    "partners",
    ",",
    "but",
    "not",
    "in",
    "a",
    "formal",
    "federation",
    ";",
    "help",
    "others",
    "beyond",
    "their",
    "own",
    "school",
    "all",
    "pupils",
    "in",
    "the",
    "local",
    "area",
    "multi-agency",
    "police",
    "health",
    "collaboration",
    "partnership",
    "Trust",
    "competing",
    "",
    "spoke",
    "with",
    "",
    "\t",
    "co-operate",
    "Children's",
    "services",
    "é",
    "’",
    "-",
    ".",
    "teamwork",
    "with",
    "xwith",
    "self-help",
    "others",
]


@functools.cache
def _default_coder():
    return get_coder(load_codebook())


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(_TAG_WORDS), max_size=30).map(" ".join))
def test_tag_hands_the_text_to_the_tagger_with_the_same_result_as_pipe(text):
    """Coder.tag (the text given, not rebuilt from tokens) tags exactly as nlp.pipe."""
    coder = _default_coder()
    (fast,) = coder.tag([text])
    (plain,) = coder.nlp.pipe([text])
    assert fast.text == text
    for key in (SPANS_KEY, DROPPED_KEY):
        assert [(s.start, s.end, s.label_, s.id_) for s in fast.spans[key]] == [
            (s.start, s.end, s.label_, s.id_) for s in plain.spans[key]
        ]
    assert coder.tagger.label(fast) == coder.tagger.label(plain)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_TAG_WORDS), max_size=30).map(" ".join))
def test_a_regex_searched_after_its_scout_finds_what_it_finds_alone(text):
    """search_with_scout (the regex without its leading \\b first) == regex.search."""
    tagger = _default_coder().tagger
    low = text.lower()
    assert tagger.by_regex_scouted
    for regex, scout, _ in tagger.by_regex_scouted:
        assert search_with_scout(regex, scout, low) == (regex.search(low) is not None)
    for pattern in (r"\bwith\b", r"\b(?:help|support)\S*\W+others\b", r"\bé", r"\b\w+-\w+"):
        regex = re.compile(pattern)
        scout = without_leading_boundary(regex)
        assert scout is not None and scout.pattern == pattern[2:]
        assert search_with_scout(regex, scout, low) == (regex.search(low) is not None)
    assert without_leading_boundary(re.compile(r"with\b")) is None
