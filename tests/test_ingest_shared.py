"""Every edge case in ../shared/corpus/edge-cases, the multi-column page, and the
real Ofsted reports (no running headers or footers left)."""

import re
from collections import Counter

import pandas as pd
import pytest

from textmine.ingest import read_document
from textmine.run import RunSettings, run_pipeline
from textmine.types import IngestError

from .conftest import TEST_DATA

pytestmark = pytest.mark.shared

GOLDEN = TEST_DATA / "ingest_golden"
# Expected outcome of every document file under edge-cases/: "read" or a failure reason.
EDGE_CASES = {
    "html-error-page-saved-as.pdf": "no_text",  # an HTML web error page, detected by its bytes
    "pdfplumber/federal-register-2020-17221.pdf": "read",
    "pdfplumber/scotus-transcript-p1.pdf": "read",
    "pdfplumber/password-example.pdf": "encrypted",
    "pdfplumber/empty.pdf": "empty_file",
    "pdfplumber/malformed-from-issue-932.pdf": "needs_ocr",  # glyphs without Unicode map + image
    "pdfplumber/nics-background-checks-2015-11.pdf": "read",
    "pdfplumber/nics-background-checks-2015-11-rotated.pdf": "read",
    "pdfplumber/issue-33-lorem-ipsum.pdf": "read",
    "pdfplumber/senate-expenditures.pdf": "read",
    "pdfplumber/issue-912.pdf": "read",
    "pdfplumber/pdf_structure.pdf": "read",
    "pdfplumber/word365_structure.pdf": "read",
    "pdfplumber/image_structure.pdf": "read",
    "pdfplumber/la-precinct-bulletin-2014-p1.pdf": "read",
    "pdfplumber/2023-06-20-PV.pdf": "read",
    "pdfplumber/expected_scotus-transcript-p1.txt": "read",
    "pdfplumber/expected_scotus-transcript-p1-cropped.txt": "read",
    "pdfplumber/pdfplumber_LICENSE.txt": "read",
    "ocrmypdf/c02-22.pdf": "needs_ocr",
    "ocrmypdf/linn.pdf": "needs_ocr",
    "ocrmypdf/linn.txt": "read",
    "ocrmypdf/skew.pdf": "needs_ocr",
    "ocrmypdf/rotated_skew.pdf": "needs_ocr",
    "ocrmypdf/cardinal.pdf": "needs_ocr",
    "ocrmypdf/invalid.pdf": "malformed",
    "ocrmypdf/graph_ocred.pdf": "read",  # image with an OCR text layer
    "ocrmypdf/francais.pdf": "needs_ocr",
    "ocrmypdf/multipage.pdf": "needs_ocr",  # 5 of 6 pages are images
    "ocrmypdf/README.rst": "read",
}
OFSTED_SAMPLE = [
    "childrens-services/80418_norfolk_csc-inspection_pdf_16_august_2013.pdf",
    "childrens-services/80456_coventry_csc-inspection_21_march_2014.pdf",
    "childrens-services/80480_lancashire_csc-inspection_27_november_2015.pdf",
    "childrens-services/80429_birmingham_csc-inspection_25_november_2016.pdf",
    "childrens-services/80530_north_yorkshire_csc-inspection_06_august_2018.pdf",
    "childrens-services/80492_croydon_csc-inspection_16_march_2020.pdf",
    "childrens-services/80475_hertfordshire_csc-inspection_10_march_2023.pdf",
    "childrens-services/80418_norfolk_csc-inspection_18_may_2026.pdf",
    "schools/ofsted_103980_rounds-green-primary_2016-11.pdf",
    "schools/ofsted_139305_rough-hay-primary_2016-11.pdf",
]


def outcome(path, **kwargs):
    try:
        document = read_document(path, **kwargs)
    except IngestError as error:
        return error.reason
    assert document.text.strip() and document.paragraphs
    return "read"


def test_edge_case_list_covers_every_file(shared_dir):
    root = shared_dir / "corpus" / "edge-cases"
    files = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".csv"
    }
    assert files == set(EDGE_CASES)


@pytest.mark.parametrize("name, expected", sorted(EDGE_CASES.items()))
def test_edge_case_is_read_or_failed_with_its_reason(shared_dir, name, expected, monkeypatch):
    monkeypatch.setenv(
        "TEXTMINE_OCR", "0"
    )  # scans fail as without tesseract (OCR: test_ingest_text.py)
    assert outcome(shared_dir / "corpus" / "edge-cases" / name) == expected


def test_password_example_reads_with_its_password(shared_dir):
    path = shared_dir / "corpus" / "edge-cases" / "pdfplumber" / "password-example.pdf"
    assert outcome(path, password="test") == "read"


def test_multi_column_page_keeps_reading_order(shared_dir):
    document = read_document(
        shared_dir / "corpus/edge-cases/pdfplumber/federal-register-2020-17221.pdf"
    )
    page_1 = (
        "\n\n".join(document.text[p.start : p.end] for p in document.paragraphs if p.page == 1)
        + "\n"
    )
    assert page_1 == (GOLDEN / "federal-register-2020-17221_page1.txt").read_text(encoding="utf-8")
    assert "The FAA proposes to supersede Airworthiness Directive (AD) 2018–23–51" in document.text
    # running header, footer and printer's slug are gone from every page
    for running in ("VerDate", "Federal Register / Vol. 85", "jbell on DSK"):
        assert running not in document.text
    # a paragraph broken by a page turn and a hyphen is whole again
    assert "accident after takeoff from Soekarno-Hatta International Airport" in document.text


def test_ofsted_reports_have_no_repeated_header_or_footer_lines(shared_dir):
    for name in OFSTED_SAMPLE:
        document = read_document(shared_dir / "corpus" / "ofsted" / name)
        pages_with = Counter()
        for page in range(1, document.pages + 1):
            lines = {
                re.sub(r"\d+", "#", document.text[p.start : p.end]).strip().lower()
                for p in document.paragraphs
                if p.page == page
            }
            pages_with.update(
                line for line in lines if len(line) > 3 and re.search(r"[a-z]{3}", line)
            )
        repeated = {line: n for line, n in pages_with.items() if n > max(2, document.pages / 2)}
        assert repeated == {}, name
        assert not re.search(r"(?m)^(page )?\d+( of \d+)?$", document.text), name
        assert document.meta.doc_type == "inspection_report", name


@pytest.mark.slow
def test_whole_shared_corpus_ingests(shared_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "TEXTMINE_OCR", "0"
    )  # scans fail as without tesseract (OCR: test_ingest_text.py)
    out = tmp_path / "out"
    report = run_pipeline(
        RunSettings(paths=[shared_dir / "corpus"], out_dir=out, stages=("ingest",), workers=2)
    )
    reasons = {f["path"].split("edge-cases/")[-1]: f["reason"] for f in report.failures}
    assert reasons == {name: reason for name, reason in EDGE_CASES.items() if reason != "read"}
    documents = pd.read_csv(out / "documents.csv", keep_default_na=False, dtype=str)
    ofsted = documents[documents["path"].str.contains("/ofsted/")]
    assert len(ofsted) == 84 and (ofsted["n_sentences"].astype(int) > 50).all()
    assert set(ofsted["date_source"]) == {"manifest"}
