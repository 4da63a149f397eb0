"""read_document on the small real files in tests/data/ingest (golden text, failures)."""

import hashlib
import re
import shutil
from collections import Counter

import pytest

from textmine.columns import FAILURE_REASONS
from textmine.ingest import read_document
from textmine.ingest.detect import detect_format
from textmine.manifest import read_manifest
from textmine.types import IngestError

from .conftest import TEST_DATA

DATA = TEST_DATA / "ingest"
GOLDEN = TEST_DATA / "ingest_golden"
OFSTED = DATA / "80524_milton_keynes_csc-inspection_17_december_2021.pdf"
TES = "2018_tes_warm-words-about-school-partnerships.txt"
IOE = "2014-03-20_ioe-blog_survival-of-the-fittest-or-team-effort.txt"


def page_text(document, page):
    return (
        "\n\n".join(document.text[p.start : p.end] for p in document.paragraphs if p.page == page)
        + "\n"
    )


def failure(path, **kwargs) -> IngestError:
    with pytest.raises(IngestError) as caught:
        read_document(path, **kwargs)
    assert caught.value.reason in FAILURE_REASONS
    return caught.value


@pytest.fixture(scope="module")
def ofsted():
    return read_document(OFSTED)


@pytest.fixture(scope="module")
def manifest():
    return read_manifest(DATA / "manifest.csv")


def test_ofsted_page_matches_golden_text(ofsted):
    assert page_text(ofsted, 2) == (GOLDEN / "80524_milton_keynes_page2.txt").read_text(
        encoding="utf-8"
    )


def test_ofsted_report_has_no_running_lines_and_keeps_pages(ofsted):
    assert ofsted.format == "pdf" and ofsted.pages == 11
    assert "Inspection of Milton Keynes local authority children\u2019s services" in page_text(
        ofsted, 1
    )
    per_page = Counter()
    for page in range(1, ofsted.pages + 1):
        per_page.update(
            {re.sub(r"\d+", "#", p) for p in page_text(ofsted, page).split("\n\n") if p.strip()}
        )
    repeated = [line for line, n in per_page.items() if n > 2 and len(line) > 3]
    assert repeated == []
    # every page but the back page (contact details, licence: all boilerplate) has text
    assert {p.page for p in ofsted.paragraphs} == set(range(1, ofsted.pages))
    assert not re.search(r"[\ufffe\uf000-\uf8ff\r]", ofsted.text)


def test_ofsted_metadata_inferred_without_manifest(ofsted):
    meta = ofsted.meta
    assert meta.doc_type == "inspection_report"
    assert meta.publisher == "Ofsted"
    assert meta.title == "Inspection of Milton Keynes local authority children\u2019s services"
    # the day in the file name (the publication day) beats the PDF's creation the day before
    assert (meta.published, meta.date_source) == ("2021-12-17", "filename")


def test_paragraph_offsets_slice_the_text(ofsted):
    for previous, paragraph in zip(ofsted.paragraphs, ofsted.paragraphs[1:], strict=False):
        assert paragraph.start == previous.end + 2
        assert ofsted.text[previous.end : paragraph.start] == "\n\n"
    assert ofsted.paragraphs[-1].end == len(ofsted.text)
    assert [p.index for p in ofsted.paragraphs] == list(range(len(ofsted.paragraphs)))


def test_doc_id_is_content_hash(ofsted, tmp_path):
    assert ofsted.doc_id == hashlib.sha256(OFSTED.read_bytes()).hexdigest()[:16]
    renamed = tmp_path / "renamed.bin"
    shutil.copy(OFSTED, renamed)
    assert read_document(renamed).doc_id == ofsted.doc_id


@pytest.mark.parametrize("name", [TES, IOE])
def test_seed_text_matches_golden_and_drops_web_boilerplate(name, manifest):
    document = read_document(DATA / name, manifest_row=manifest[name])
    assert document.text + "\n" == (GOLDEN / name).read_text(encoding="utf-8")
    for chrome in [
        "X Close",
        "Menu",
        "- Home",
        "Keep reading",
        "£1 per month",
        "Unlimited access",
        "subscriber-only",
        "newsletters",
        "By Blog Editor",
        "Expert opinion from IOE",
    ]:
        assert chrome not in document.text
    assert document.meta.date_source == "manifest"


def test_seed_without_manifest_still_drops_menus_and_dates_from_byline():
    document = read_document(DATA / IOE)
    assert "X Close" not in document.text and "\nMenu\n" not in document.text
    assert document.text.startswith("Self-improving school system")
    assert (document.meta.published, document.meta.date_source) == ("2014-03-20", "text")
    assert document.meta.doc_type == "blog_post"


def test_cp1252_and_utf8_bom_read_the_same():
    cp1252 = read_document(DATA / "cp1252-commons-summary.txt")
    utf8 = read_document(DATA / "utf8-bom-commons-summary.txt")
    assert cp1252.text == utf8.text
    assert (
        "\u2019s view: \u201ccollaboration\u201d costs \u00a31.2m a year, per \u00e9l\u00e8ve."
        in cp1252.text
    )
    assert "\ufeff" not in utf8.text
    # hard-wrapped lines were joined into paragraphs
    assert (
        "School partnerships and cooperation have become an increasingly important part"
        in cp1252.text
    )


def test_docx_paragraphs_and_table_rows(manifest):
    name = "dfe-academy-conversion-project-template-great-whelnetham-2021-11-12.docx"
    document = read_document(DATA / name, manifest_row=manifest[name])
    assert document.format == "docx"
    paragraphs = document.text.split("\n\n")
    assert paragraphs[0] == "Project template for:"
    assert "Local authority: Suffolk" in paragraphs
    assert "General information" in paragraphs
    assert document.meta.doc_type == "policy_paper" and document.meta.published == "2021-11-12"
    # pages follow the page breaks Word stored when it last laid the file out
    assert document.pages == 3
    assert {
        p.page for p in document.paragraphs if document.text[p.start : p.end] == "Rationale"
    } == {3}


def test_html_keeps_the_article_only():
    document = read_document(DATA / "news-article-with-chrome.html")
    text = document.text
    assert text.startswith("Multi-academy trusts now educate more than half of the pupils")
    assert "Teaching school hubs replaced the older teaching school alliances in 2021." in text
    for chrome in [
        "cookies",
        "Skip to main content",
        "Sign in",
        "Share on",
        "Related articles",
        "Keep reading",
        "Unlimited access",
        "Terms of use",
        "All rights reserved",
    ]:
        assert chrome not in text
    meta = document.meta
    assert meta.title == "Trusts and federations: is the school system collaborating?"
    assert meta.publisher == "Schools Weekly"
    assert (meta.published, meta.date_source) == ("2019-05-14", "text")
    assert meta.doc_type == "news_article"


def test_empty_file():
    assert failure(DATA / "empty.pdf").reason == "empty_file"


def test_encrypted_pdf_fails_without_password_and_reads_with_it():
    assert failure(DATA / "password-example.pdf").reason == "encrypted"
    assert "wrong password" in failure(DATA / "password-example.pdf", password="nope").message
    document = read_document(DATA / "password-example.pdf", password="test")
    assert document.format == "pdf" and len(document.text) > 100


def test_invalid_pdf_is_malformed_after_trying_pdfplumber():
    error = failure(DATA / "invalid.pdf")
    assert error.reason == "malformed"
    assert "PDFium" in error.message and "pdfplumber" in error.message


def test_html_error_page_named_pdf_is_reported_not_crashing():
    path = DATA / "html-error-page-saved-as.pdf"
    assert detect_format(path.read_bytes())[0] == "html"
    error = failure(path)
    assert error.reason == "no_text" and "error page" in error.message


def test_scanned_pdf_needs_ocr(monkeypatch):
    monkeypatch.setenv(
        "TEXTMINE_OCR", "0"
    )  # as where tesseract is not installed (OCR: test_ingest_text.py)
    error = failure(DATA / "linn.pdf")
    assert error.reason == "needs_ocr" and "1 of 1 pages" in error.message


def test_image_pdf_with_ocr_text_layer_is_read():
    document = read_document(DATA / "graph_ocred.pdf")
    assert document.pages == 1 and re.search(r"[A-Za-z]{4}", document.text)


def test_unsupported_missing_and_unreadable(tmp_path):
    png = tmp_path / "figure.pdf"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert failure(png).reason == "unsupported_format"
    assert failure(tmp_path / "missing.txt").reason == "not_found"
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(bytes(range(1, 9)) * 200)
    assert failure(garbage).reason == "unreadable_encoding"
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n\n  \n", encoding="utf-8")
    assert failure(blank).reason == "no_text"


def test_name_mismatch_is_noted(tmp_path):
    renamed = tmp_path / "article.pdf"
    shutil.copy(DATA / "news-article-with-chrome.html", renamed)
    document = read_document(renamed)
    assert document.format == "html"
    assert any("named .pdf" in note for note in document.notes)


def test_columns_stored_across_the_page_are_read_column_by_column():
    document = read_document(DATA / "two-columns-interleaved.pdf")
    assert document.text.split("\n\n") == [
        "Two columns stored line by line across the page",
        "Schools in the north of the county formed a federation in 2015 and shared their leadership "
        "team across three sites, so that small schools could stay open while the local authority "
        "reduced its own support for school improvement.",
        "Competition for pupils remained strong in the towns where rolls were falling, and several "
        "academy trusts opened new free schools that drew pupils away from the existing community "
        "schools in the same area over the following five years.",
    ]
    assert document.notes == ["pages read column by column (text was stored across columns): [1]"]


def test_pages_in_reading_order_are_not_reread(ofsted):
    assert not any("column" in note for note in ofsted.notes)
