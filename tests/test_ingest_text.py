"""Text and metadata of real reports: contents pages, paragraph numbers, OCR of
scanned pages, and metadata inferred without a manifest (issue 11)."""

import csv
import io
import re

import pypdfium2 as pdfium
import pytest

from textmine.ingest import read_bytes, read_document
from textmine.ingest.metadata import is_placeholder_title
from textmine.ingest.pdf import PDFIUM_LOCK, ocr_command
from textmine.segment import build_nlp, segment_document
from textmine.types import IngestError

from .conftest import CORPUS, TEST_DATA

DATA = TEST_DATA / "ingest"
CHILDRENS_SERVICES = CORPUS / "ofsted" / "childrens-services"
# A contents entry: a title and its page number ("Executive summary 6").
CONTENTS_ENTRY = re.compile(r"^[A-Z][^.!?]{3,120}[A-Za-z)]\s\d{1,3}$")
needs_tesseract = pytest.mark.skipif(not ocr_command(), reason="tesseract is not installed")


@pytest.fixture(scope="module")
def nlp():
    return build_nlp()


def sentences_of(path, nlp):
    return segment_document(read_document(path), nlp)


@pytest.mark.parametrize(
    "name",
    [
        "80447_cheshire_east_csc-inspection_15_september_2015.pdf",  # "Contents" page with wrapped titles
        "80476_kent_csc-inspection_pdf_23_august_2013.pdf",  # contents under a running header
        "80460_derbyshire_csc-inspection_11_february_2014.pdf",
    ],
)
def test_contents_pages_do_not_become_sentences(nlp, name):
    sentences = sentences_of(CHILDRENS_SERVICES / name, nlp)
    texts = list(sentences["text"])
    assert "Contents" not in texts and "Contents 2" not in texts
    assert [t for t in texts if CONTENTS_ENTRY.match(t)] == []
    run_together = [
        t for t in texts if re.search(r"(?:[A-Za-z)] \d{1,3} [A-Z].*){2}", t) and t[-1] not in ".!?"
    ]
    assert run_together == []
    # the headings themselves are still there, in the body
    assert any(
        t.startswith(("Executive summary", "Summary of key findings", "About this inspection"))
        for t in texts
    )


def test_ofsted_paragraph_numbers_are_a_column_not_text(nlp):
    # Hillingdon 2018: numbers glued to the first word ("10.When children ...")
    sentences = sentences_of(
        CHILDRENS_SERVICES / "80501_hillingdon_csc-inspection_30_may_2018.pdf", nlp
    )
    assert not sentences["text"].str.match(r"\d{1,3}\.\s?[A-Z]").any()
    row = sentences[
        sentences["text"].str.startswith("When children are missing from education")
    ].iloc[0]
    assert row["paragraph_number"] == "10"
    # every sentence of a numbered paragraph carries its number
    paragraph = sentences[sentences["paragraph_index"] == row["paragraph_index"]]
    assert len(paragraph) > 1 and set(paragraph["paragraph_number"]) == {"10"}
    numbers = [int(n) for n in sentences["paragraph_number"].drop_duplicates() if n.isdigit()]
    assert numbers[:5] == sorted(numbers[:5]) and len(numbers) >= 40
    # the offsets still slice the (number-free) sentence out of the clean text
    document = read_document(CHILDRENS_SERVICES / "80501_hillingdon_csc-inspection_30_may_2018.pdf")
    assert document.text[row["start_char"] : row["end_char"]] == row["text"]
    assert document.text[row["start_char"] - 3 : row["start_char"]] == "10."


def test_reports_without_numbered_paragraphs_get_none(nlp):
    sentences = sentences_of(
        CORPUS / "ofsted" / "schools" / "ofsted_139305_rough-hay-primary_2016-11.pdf", nlp
    )
    assert set(sentences["paragraph_number"]) <= {""} | {str(n) for n in range(1, 10)}
    assert set(sentences["ocr"]) == {0}


def test_without_tesseract_a_scan_still_needs_ocr(monkeypatch, tmp_path):
    assert ocr_command({"TEXTMINE_OCR": "0"}) == []
    assert ocr_command({"PATH": str(tmp_path)}) == []  # not installed
    monkeypatch.setenv("TEXTMINE_OCR", "0")
    with pytest.raises(IngestError) as caught:
        read_document(DATA / "linn.pdf")
    assert caught.value.reason == "needs_ocr" and "tesseract" in caught.value.message


@needs_tesseract
@pytest.mark.slow
def test_scanned_pages_are_read_by_ocr_and_marked(nlp, tmp_path):
    # a typed page followed by a scanned one (both real files), as one PDF
    with PDFIUM_LOCK:
        combined = pdfium.PdfDocument.new()
        for source in ("80524_milton_keynes_csc-inspection_17_december_2021.pdf", "linn.pdf"):
            document = pdfium.PdfDocument(str(DATA / source))
            combined.import_pages(document, [0])
            document.close()
        buffer = io.BytesIO()
        combined.save(buffer)
        combined.close()
    document = read_bytes(buffer.getvalue(), tmp_path / "typed-and-scanned.pdf")
    assert document.ocr_pages == [2]
    assert any("read by OCR" in note for note in document.notes)
    sentences = segment_document(document, nlp)
    scanned = sentences[sentences["page"] == 2]
    assert set(scanned["ocr"]) == {1} and set(sentences.loc[sentences["page"] == 1, "ocr"]) == {0}
    text = " ".join(scanned["text"])
    for words in ("LinnSequencer", "MIDI Sequence Recorder", "professional musician"):
        assert words in text


@needs_tesseract
@pytest.mark.slow
def test_a_wholly_scanned_pdf_is_read_instead_of_failing(nlp):
    document = read_document(DATA / "linn.pdf")
    assert document.ocr_pages == [1]
    sentences = segment_document(document, nlp)
    assert len(sentences) > 5 and set(sentences["ocr"]) == {1}


@pytest.mark.slow
def test_bundled_corpus_metadata_without_its_manifest():
    """Every file read as if there were no manifest; the manifest is the answer key."""
    with open(CORPUS / "manifest.csv", encoding="utf-8", newline="") as handle:
        manifest = {row["path"]: row for row in csv.DictReader(handle)}
    exact = 0
    for key, row in manifest.items():
        meta = read_document(CORPUS / key).meta
        published = meta.published
        assert published and meta.date_source in ("text", "filename", "pdf_metadata"), key
        # as precise as the sources allow, and never contradicting the manifest
        assert row["published"].startswith(published) or published.startswith(row["published"]), (
            key,
            published,
            meta.date_source,
            row["published"],
        )
        exact += published == row["published"]
        title = meta.title
        assert (
            not is_placeholder_title(title)
            and title[:1].isupper()
            and not title.endswith((";", ","))
        ), (key, title)
        if "/schools/" in key:
            assert title.startswith("School report: ") and title.split(": ")[1] in row["title"], key
    # the Ofsted reports' days all come out exactly; year-only seeds agree at their precision
    assert exact >= 31, exact
