"""Cleaning rules: characters, running lines, hyphenation, paragraphs, boilerplate."""

from hypothesis import example, given
from hypothesis import strategies as st

from textmine.ingest import boilerplate, clean


def test_pdfium_artefacts_are_normalised():
    raw = "multi\ufffeagency work\r\nline two\u00a0with\u202fspaces \ufb01nal\r\n"
    text = clean.normalize_characters(raw)
    assert "\r" not in text and "\ufffe" not in text
    assert text.split("\n") == ["multi-", "agency work", "line two with spaces final", ""]


def test_hyphen_dropped_for_words_and_kept_for_compounds():
    words = clean.document_vocabulary("no intervention words here")
    assert clean.join_lines("an inter-", "vention was made", words) == "an intervention was made"
    assert clean.join_lines("a child-", "centred response", set()) == "a child-centred response"
    assert clean.join_lines("a multi-", "agency team", set()) == "a multi-agency team"
    # a capital after the hyphen is a compound name, never joined
    assert clean.join_lines("the Anglo-", "Saxon period", set()) == "the Anglo-Saxon period"
    # the hyphenated form written elsewhere in the document wins over the dictionary
    assert clean.join_lines("co-", "operation", {"co-operation"}) == "co-operation"


def test_running_headers_footers_and_page_numbers_removed():
    topics = ["early help", "children in care", "care leavers", "leadership", "fostering"]
    pages = []
    for number, topic in enumerate(topics, start=1):
        pages.append(
            [
                "Inspection of Somewhere local authority children's services",
                f"1 to 5 March 2021 {number}",
                f"Inspectors found that {topic} services are improving.",
                f"Another line about {topic} and its findings.",
                "© Crown copyright 2021" if number == 5 else f"Page {number} of 5",
            ]
        )
    pages[0].insert(0, "Cover title that appears once")
    cleaned = clean.remove_running_lines(pages)
    for lines, topic in zip(cleaned, topics, strict=True):
        body = [
            f"Inspectors found that {topic} services are improving.",
            f"Another line about {topic} and its findings.",
        ]
        assert [line for line in lines if line in body] == body
        assert not any(line.startswith("Inspection of Somewhere") for line in lines)
        assert not any(line.startswith("1 to 5 March") for line in lines)
        assert not any(line.startswith("Page ") for line in lines)
    assert cleaned[0][0] == "Cover title that appears once"
    assert cleaned[4][-1] == "© Crown copyright 2021"  # once only: left to the copyright rule


def test_two_page_document_keeps_lines_seen_once():
    pages = [["Title", "Text on the first page."], ["Different text on page two.", "2"]]
    assert clean.remove_running_lines(pages) == [
        ["Title", "Text on the first page."],
        ["Different text on page two."],
    ]


def test_wrapped_lines_become_paragraphs_with_bullets_headings_and_footnotes():
    lines = [
        "What needs to improve?",
        "\u25fc The rigour of the local authority\u2019s self-evaluation and the quality and breadth of ",
        "performance information informing this.",
        "\uf06e Timely allocation of social workers at the point of transfer between teams.",
        "The experiences and progress of children who need help and ",
        "protection: good",
        "1. The quality of practice with children in need of help and protection remains too ",
        "variable. In most cases, good work is helping to improve children\u2019s circumstances and ",
        "no children were found to be at immediate risk of harm, whose work is",
        "1 The areas for improvement have been cross-referenced with the national framework.",
    ]
    paragraphs = clean.lines_to_paragraphs(lines, wrapped=True)
    assert paragraphs == [
        "What needs to improve?",
        "The rigour of the local authority\u2019s self-evaluation and the quality and breadth of "
        "performance information informing this.",
        "Timely allocation of social workers at the point of transfer between teams.",
        "The experiences and progress of children who need help and protection: good",
        "1. The quality of practice with children in need of help and protection remains too "
        "variable. In most cases, good work is helping to improve children\u2019s circumstances and "
        "no children were found to be at immediate risk of harm, whose work is",
        "1 The areas for improvement have been cross-referenced with the national framework.",
    ]


def test_unwrapped_text_keeps_one_paragraph_per_line():
    lines = ["A long line of prose that ends here.", "Heading", "Another paragraph of prose."]
    assert clean.lines_to_paragraphs(lines) == lines


def test_paragraph_running_over_a_page_break_is_joined_before_footnotes():
    pages = [
        [
            "First page paragraph that ends in the middle of a",
            "1 A footnote at the bottom of the page.",
        ],
        ["sentence on the next page.", "A new paragraph."],
    ]
    merged = clean.merge_across_pages(pages)
    assert merged == [
        (1, "First page paragraph that ends in the middle of a sentence on the next page."),
        (1, "1 A footnote at the bottom of the page."),
        (2, "A new paragraph."),
    ]


def test_list_item_on_a_new_page_is_not_joined():
    pages = [["Improve teaching by:", "planning lessons well"], ["checking understanding"]]
    merged = clean.merge_across_pages(pages, starts_list_item=[False, True])
    assert [text for _, text in merged] == [
        "Improve teaching by:",
        "planning lessons well",
        "checking understanding",
    ]


def test_web_boilerplate_rules_generalise_beyond_the_seed_texts():
    lines = [
        "\u00d7 Close",
        "The Schools Gazette",
        "News and views for school leaders",
        "Search",
        "Main menu",
        "",
        "Federations are growing",
        "By Sam Writer, 3 June 2019",
        "Share this article",
        "Federations of small rural primaries grew again this year.",
        "|",
        "Heads said that sharing staff kept schools open.",
        "Continue reading with a subscription",
        "You have reached your limit of free articles.",
        "* Unlimited access to every article",
        "* Our weekly newsletter",
        "Copyright 2019 Gazette Media Ltd. All rights reserved.",
    ]
    kept = [
        line
        for line in boilerplate.remove_boilerplate(lines, title="Federations are growing")
        if line
    ]
    assert kept == [
        "Federations are growing",
        "Federations of small rural primaries grew again this year.",
        "Heads said that sharing staff kept schools open.",
    ]
    rules = {
        r.text: r.rule for r in boilerplate.find_boilerplate(lines, title="Federations are growing")
    }
    assert rules["\u00d7 Close"] == "navigation"
    assert rules["The Schools Gazette"] == "masthead"
    assert rules["By Sam Writer, 3 June 2019"] == "byline"
    assert rules["|"] == "no_letters"
    assert rules["* Our weekly newsletter"] == "paywall"


def test_prose_mentioning_subscriptions_is_not_a_paywall():
    lines = [
        "Schools subscribe to many services.",
        "Keep reading for just \u00a31 per month",
        "A long paragraph of real prose follows the marker here and it is far too long to be a "
        "promotional line, because it carries on about school partnerships for many words.",
    ]
    kept = [line for line in boilerplate.remove_boilerplate(lines) if line]
    assert kept == [lines[0], lines[2]]


def test_publication_back_matter_removed():
    blocks = [
        (3, "Leaders know their services well."),
        (
            4,
            "You may reuse this information (not including logos) free of charge in any format or "
            "medium, under the terms of the Open Government Licence.",
        ),
        (4, "Piccadilly Gate"),
        (4, "Store Street"),
        (4, "Manchester"),
        (4, "M1 2WD"),
        (4, "T: 0300 123 1231"),
        (4, "E: enquiries@example.gov.uk"),
    ]
    assert boilerplate.remove_back_matter(blocks) == [(3, "Leaders know their services well.")]


def test_tables_of_contents_are_dropped():
    contents_page = [
        "Contents",
        "Contents 2",
        "The local authority 3",
        "Executive summary 6",
        "The experiences and progress of children who need help and",  # a title wrapped before its number
        "protection 11",
        "Leadership, management and governance 35",
    ]
    next_page = [
        "Information about this inspection 48",
        "The local authority",
        "Children's services in the area require improvement to be good.",
        "They rose to 36",
    ]
    pages = [["Cover"], contents_page, next_page] + [
        [f"Body text of page {n}."] for n in range(4, 50)
    ]
    cleaned = clean.remove_contents(pages)
    assert cleaned[1] == []
    # the block runs on at the top of the next page, and stops at the first line that is not an entry
    assert cleaned[2] == next_page[1:]
    assert cleaned[3:] == pages[3:]
    # dot leaders mark entries wherever they are
    assert clean.remove_contents(
        [["Introduction . . . . . . . 4", "1.2 Methods ........ 12", "Real text."]]
    ) == [["Real text."]]


def test_lines_ending_in_numbers_without_a_contents_heading_stay():
    lines = [
        "Children in care 230",
        "Care leavers 121",
        "Children in need 1,205",
        "Numbers rose in 2015.",
    ]
    assert clean.remove_contents([lines, ["Other page."]]) == [lines, ["Other page."]]
    # a heading followed by prose is not a table of contents
    prose = ["Contents", "The report sets out what inspectors found in 2019."]
    assert clean.remove_contents([prose]) == [prose]


def test_a_paragraph_number_glued_to_its_word_starts_a_paragraph():
    lines = [
        "Co-working with the youth offending service for young people at risk of criminal",
        "exploitation is effective, and due consideration is given to them as victims.",
        "10.When children are missing from education, all reasonable checks are made to",
        "help to track and identify their whereabouts, including unannounced home visits.",
        "Staff and the children missing education officer work closely with the police.",
    ]
    paragraphs = clean.lines_to_paragraphs(lines, wrapped=True)
    assert [p[:8] for p in paragraphs] == ["Co-worki", "10.When "]


def test_other_whitespace_lists_every_space_but_space_and_newline():
    expected = [chr(c) for c in range(0x110000) if chr(c).isspace() and chr(c) not in " \n"]
    assert [c for c in map(chr, range(0x110000)) if clean.OTHER_WHITESPACE.match(c)] == expected


LINE_TEXT = st.lists(
    st.sampled_from(
        [*"aB1 \n\t.\u00a0\u2028\x1c9\u0130\u2003\u200bz\r\ue000\u00ad", "\ufb01", "  "]
    ),
    max_size=40,
).map("".join)


@given(st.lists(LINE_TEXT | st.just("a" * 121) | st.just(" " + "b" * 120), max_size=8))
@example(["a ", "b"])
@example(["a", " b"])
@example([" a"])
@example(["a "])
@example(["a  b"])
def test_page_line_keys_equal_line_key(lines):
    expected = [clean.line_key(line) if line and len(line) <= 120 else "" for line in lines]
    assert clean._line_keys(lines) == expected


def normalize_plain(text):
    """normalize_characters with SPACES applied to every text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\ufffe", "-\n").replace("\u00ad\n", "-\n").replace("\u00ad", "")
    text = text.replace("\u2011", "-").replace("\x0c", "\n")
    for ligature, letters in clean.LIGATURES.items():
        text = text.replace(ligature, letters)
    text = clean.ZERO_WIDTH.sub("", text)
    text = clean.SURROGATE.sub("\ufffd", text)
    if clean.PRIVATE_USE.search(text):
        text = clean.PRIVATE_USE.sub("", clean.LEADING_PRIVATE_USE.sub("\u2022 ", text))
    return clean.SPACES.sub(" ", text)


@given(LINE_TEXT | st.text(max_size=30))
def test_normalize_characters_equals_the_plain_substitution(text):
    assert clean.normalize_characters(text) == normalize_plain(text)
