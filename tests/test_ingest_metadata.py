"""Manifest reading and metadata inference with date_source."""

import pytest

from textmine.ingest.metadata import (
    build_metadata,
    date_from_filename,
    date_from_text,
    infer_doc_type,
    title_from_pdf,
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
    assert date_from_text("Title\nPublished: 3 May 2019\nInspection dates: 1 to 5 April 2019") == "2019-05-03"
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
    assert infer_doc_type("Inspection of Norfolk\nInspection dates: 1 May\nLead inspector: A B") == "inspection_report"
    assert infer_doc_type("Ofsted inspects schools, said the minister.") == "unknown"
    assert infer_doc_type("House of Commons Education Committee report HC 269") == "parliamentary_report"
    assert infer_doc_type("A post", "blogs/ioe-blog_post.txt") == "blog_post"


def test_manifest_wins_and_each_source_is_recorded():
    row = {"title": "T", "publisher": "P", "doc_type": "policy_paper", "published": "2020-01-02"}
    meta = build_metadata("x.pdf", raw_text="", paragraphs=[], manifest_row=row,
                          pdf_metadata={"CreationDate": "D:20190101"})
    assert (meta.title, meta.publisher, meta.doc_type, meta.published, meta.date_source) == (
        "T", "P", "policy_paper", "2020-01-02", "manifest")
    meta = build_metadata("x_2011.pdf", raw_text="", paragraphs=["First heading"], pdf_metadata={"CreationDate": "D:20190101"})
    assert (meta.published, meta.date_source, meta.title) == ("2019-01-01", "pdf_metadata", "First heading")
    meta = build_metadata("x_2011.pdf", raw_text="Published on 4 July 2012", paragraphs=[])
    assert (meta.published, meta.date_source) == ("2012-07-04", "text")
    meta = build_metadata("x_2011.pdf", raw_text="", paragraphs=[])
    assert (meta.published, meta.date_source, meta.title) == ("2011", "filename", "x 2011")
    meta = build_metadata("notes.txt", raw_text="", paragraphs=[])
    assert (meta.published, meta.date_source, meta.doc_type) == ("", "none", "unknown")
