"""Manifest reading and metadata inference with date_source."""

import pytest

from textmine.ingest.metadata import (
    build_metadata,
    choose_date,
    date_from_filename,
    date_from_text,
    infer_doc_type,
    title_from_filename,
    title_from_pdf,
    title_from_text,
)
from textmine.ingest.pdf import pdf_date
from textmine.manifest import ManifestError, read_manifest


def test_read_manifest_keys_relative_posix_paths(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "\ufeffpath,title,publisher,doc_type,published,licence,source,notes\n"
        "./seeds\\a.txt,A title,Tes,news_article,2018,,seed,extra\n"
        "b.pdf,,,,,,,\n",
        encoding="utf-8",
    )
    rows = read_manifest(manifest)
    assert list(rows) == ["seeds/a.txt", "b.pdf"]
    assert rows["seeds/a.txt"]["title"] == "A title" and rows["seeds/a.txt"]["notes"] == "extra"


@pytest.mark.parametrize(
    "content, message",
    [
        ("title\nx\n", "no 'path' column"),
        ("path,doc_type\na.txt,novel\n", "novel"),
        ("path\na.txt\n./a.txt\n", "listed twice"),
    ],
)
def test_read_manifest_rejects_bad_rows_with_file_and_line(tmp_path, content, message):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(content, encoding="utf-8")
    with pytest.raises(ManifestError, match=message) as caught:
        read_manifest(manifest)
    assert "manifest.csv" in str(caught.value)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("80418_norfolk_csc-inspection_18_may_2026.pdf", "2026-05-18"),
        ("2014-03-20_ioe-blog_survival.txt", "2014-03-20"),
        ("ofsted_103980_rounds-green-primary_2016-11.pdf", "2016-11"),
        ("2007_ascl-leader_achieving-more-together.txt", "2007"),
        ("report-november-2016.pdf", "2016-11"),
        ("no-date-here.txt", ""),
    ],
)
def test_date_from_filename(name, expected):
    assert date_from_filename(name) == expected


def test_date_from_text_uses_publication_cues_and_bylines():
    assert (
        date_from_text("Title\nPublished: 3 May 2019\nInspection dates: 1 to 5 April 2019")
        == "2019-05-03"
    )
    assert date_from_text("By Blog Editor, IOE Digital, on 20 March 2014\nText") == "2014-03-20"
    assert date_from_text("Inspection dates: 1 to 5 April 2019") == ""


def test_pdf_dates_and_titles():
    assert pdf_date("D:20260511150224+01'00'") == "2026-05-11"
    assert pdf_date("D:2015") == "2015"
    assert pdf_date("garbage") == ""
    assert title_from_pdf({"Title": "Microsoft Word - Report on schools.docx"}) == ""
    assert title_from_pdf({"Title": "Microsoft Word - Report on schools"}) == "Report on schools"
    assert title_from_pdf({"Title": "Template"}) == ""


def test_doc_type_inference():
    assert (
        infer_doc_type("Inspection of Norfolk\nInspection dates: 1 May\nLead inspector: A B")
        == "inspection_report"
    )
    assert infer_doc_type("Ofsted inspects schools, said the minister.") == "unknown"
    assert (
        infer_doc_type("House of Commons Education Committee report HC 269")
        == "parliamentary_report"
    )
    assert infer_doc_type("A post", "blogs/ioe-blog_post.txt") == "blog_post"


def test_manifest_wins_and_each_source_is_recorded():
    row = {"title": "T", "publisher": "P", "doc_type": "policy_paper", "published": "2020-01-02"}
    meta = build_metadata(
        "x.pdf",
        raw_text="",
        paragraphs=[],
        manifest_row=row,
        pdf_metadata={"CreationDate": "D:20190101"},
    )
    assert (meta.title, meta.publisher, meta.doc_type, meta.published, meta.date_source) == (
        "T",
        "P",
        "policy_paper",
        "2020-01-02",
        "manifest",
    )
    meta = build_metadata(
        "x.pdf",
        raw_text="",
        paragraphs=["First heading"],
        pdf_metadata={"CreationDate": "D:20190101"},
    )
    assert (meta.published, meta.date_source, meta.title) == (
        "2019-01-01",
        "pdf_metadata",
        "First heading",
    )
    meta = build_metadata("x_2011.pdf", raw_text="Published on 4 July 2012", paragraphs=[])
    assert (meta.published, meta.date_source) == ("2012-07-04", "text")
    meta = build_metadata("x_2011.pdf", raw_text="", paragraphs=[])
    assert (meta.published, meta.date_source, meta.title) == ("2011", "filename", "X 2011")
    meta = build_metadata("notes.txt", raw_text="", paragraphs=[])
    assert (meta.published, meta.date_source, meta.doc_type) == ("", "none", "unknown")


def test_a_clear_date_in_the_file_name_beats_the_pdf_creation_date():
    # Ofsted's file name carries the publication day; the PDF was made three days before
    meta = build_metadata(
        "80431_blackpool_csc-inspection_08_september_2014.pdf",
        raw_text="",
        paragraphs=[],
        pdf_metadata={"CreationDate": "D:20140905120000+01'00'"},
    )
    assert (meta.published, meta.date_source) == ("2014-09-08", "filename")
    # a publication line in the text beats both
    meta = build_metadata(
        "report_08_september_2014.pdf",
        raw_text="Report published: 10 September 2014",
        paragraphs=[],
        pdf_metadata={"CreationDate": "D:20140905"},
    )
    assert (meta.published, meta.date_source) == ("2014-09-10", "text")
    # a less trusted date that is more precise and agrees refines the date; one that disagrees does not
    meta = build_metadata(
        "school_2016-11.pdf",
        raw_text="",
        paragraphs=[],
        pdf_metadata={"CreationDate": "D:20161103"},
    )
    assert (meta.published, meta.date_source) == ("2016-11-03", "pdf_metadata")
    meta = build_metadata(
        "school_2016-11.pdf",
        raw_text="",
        paragraphs=[],
        pdf_metadata={"CreationDate": "D:20170104"},
    )
    assert (meta.published, meta.date_source) == ("2016-11", "filename")


@pytest.mark.parametrize(
    "candidates, expected",
    [
        (
            [("", "text"), ("2013", "filename"), ("2013-08-07", "pdf_metadata")],
            ("2013-08-07", "pdf_metadata"),
        ),
        (
            [("2013-08", "text"), ("2013-08-16", "filename"), ("2013-08-07", "pdf_metadata")],
            ("2013-08-16", "filename"),
        ),
        (
            [("1066-01-01", "text"), ("2013", "filename")],
            ("2013", "filename"),
        ),  # implausible dates are skipped
        ([("", "text"), ("", "filename")], ("", "none")),
    ],
)
def test_choose_date_prefers_trust_then_precision(candidates, expected):
    assert choose_date(candidates) == expected


def test_placeholder_and_list_item_titles_are_not_used():
    placeholder = {"Title": "LA NAME  - standard-short inspection report - INSPECTION DATE"}
    assert title_from_pdf(placeholder) == ""
    assert title_from_pdf({"Title": "[School name] inspection report"}) == ""
    assert (
        title_from_pdf({"Title": "Inspection of Leeds City local authority children's services"})
        != ""
    )
    meta = build_metadata(
        "80481_leeds.pdf",
        raw_text="",
        pdf_metadata=placeholder,
        paragraphs=[
            "Inspection of Leeds City local authority children's services",
            "Inspection dates",
        ],
    )
    assert meta.title == "Inspection of Leeds City local authority children's services"
    # a document that opens with prose: a list item further down is not its title
    opening = (
        "This article explores the development of school to school support and partnerships in England. "
        * 3
    )
    assert (
        title_from_text([opening, "structural governance models, such as multi-academy trusts;"])
        == ""
    )
    assert title_from_text(["structural governance models, such as federations;"]) == ""
    # a heading that only names a kind of document is joined with the next one
    assert title_from_text(
        ["School report", "Rounds Green Primary School", "Inspection dates 9-10 November 2016"]
    ) == ("School report: Rounds Green Primary School")
    assert title_from_text(
        ["Project template for:", "Great Whelnetham Primary School - URN 124700"]
    ) == ("Project template for: Great Whelnetham Primary School - URN 124700")
    assert title_from_text(["Summary", opening]) == ""


def test_title_from_a_file_name_drops_its_leading_date():
    assert title_from_filename("seeds/2013_commons-education-committee_summary.txt") == (
        "Commons education committee summary"
    )
    assert title_from_filename("2014-03-20_ioe-blog_team-effort.txt") == "Ioe blog team effort"
    assert title_from_filename("80418_norfolk_csc-inspection_18_may_2026.pdf") == (
        "80418 norfolk csc inspection 18 may 2026"
    )
