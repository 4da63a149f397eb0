"""Real text from the bundled corpus shaped as coded sentences + documents tables.

Used by the topics, trends and figures tests. The text is real (corpus/seeds and
the Ofsted PDFs in corpus/ofsted); paragraphs come from the files' own line
breaks and sentences from a simple punctuation split, so these tests do not
depend on the ingest and coding stages. Code columns are set by keyword rules
(`keyword_codes`) so that expected counts are known.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from textmine.columns import CODE_COLUMNS, CODED_SENTENCE_COLUMNS

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z“\"'(])")


def _doc_id(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _paragraphs_from_lines(lines: list[str]) -> list[str]:
    paragraphs, current = [], []
    for line in lines:
        line = " ".join(line.split())
        if not line:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line)
        if re.search(r"[.!?:”\"]$", line):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return [p for p in paragraphs if p]


def _pdf_pages(path: Path) -> list[list[str]]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    pages = []
    try:
        for page in pdf:
            textpage = page.get_textpage()
            pages.append(textpage.get_text_range().replace("\r\n", "\n").split("\n"))
            textpage.close()
            page.close()
    finally:
        pdf.close()
    return pages


def keyword_codes(text: str) -> dict[str, int]:
    """Deterministic stand-in codes for tests: keyword rules, not the real codebook."""
    low = text.lower()
    codes = dict.fromkeys(CODE_COLUMNS, 0)
    codes["competition"] = int(bool(re.search(r"\bcompet|\bmarket|league table", low)))
    codes["collaboration"] = int(
        bool(re.search(r"collaborat|partnership|work(ing)? together|cooperat", low))
    )
    codes["academy_trust"] = int("academy" in low or "trust" in low)
    codes["federation"] = int("federation" in low)
    codes["teaching_school"] = int("teaching school" in low)
    codes["local_partnership"] = int("local partnership" in low or "cluster" in low)
    codes["network"] = int("network" in low)
    return codes


def _sentence_rows(doc_id: str, path: str, pages: list[list[str]]) -> list[dict]:
    rows, paragraph_index, offset = [], 0, 0
    for page_number, lines in enumerate(pages, start=1):
        for paragraph in _paragraphs_from_lines(lines):
            for sentence in _SENTENCE_END.split(paragraph):
                sentence = sentence.strip()
                if not sentence:
                    continue
                index = len(rows)
                row = {
                    "sentence_id": f"{doc_id}-{index:05d}",
                    "doc_id": doc_id,
                    "path": path,
                    "page": page_number,
                    "paragraph_index": paragraph_index,
                    "sentence_index": index,
                    "start_char": offset,
                    "end_char": offset + len(sentence),
                    "text": sentence,
                }
                row.update(keyword_codes(sentence))
                row.update(
                    evidence="{}",
                    codebook_version="test-keywords",
                    model_version="rules",
                    textmine_version="test",
                    paragraph_number="",
                    ocr=0,
                )
                rows.append(row)
                offset += len(sentence) + 1
            paragraph_index += 1
    return rows


@lru_cache(maxsize=4)
def _corpus(kind: str, limit: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    manifest = pd.read_csv(CORPUS / "manifest.csv", dtype=str).fillna("")
    if kind == "seeds":
        selected = manifest[manifest["path"].str.startswith("seeds/")]
    else:
        selected = manifest[manifest["path"].str.endswith(".pdf")].sort_values("path")
    if limit:
        selected = selected.head(limit)
    sentences, documents = [], []
    for row in selected.itertuples(index=False):
        file = CORPUS / row.path
        doc_id = _doc_id(file)
        if kind == "seeds":
            pages = [file.read_text(encoding="utf-8").split("\n")]
        else:
            pages = _pdf_pages(file)
        rows = _sentence_rows(doc_id, row.path, pages)
        sentences.extend(rows)
        documents.append(
            {
                "doc_id": doc_id,
                "path": row.path,
                "format": file.suffix.lstrip("."),
                "pages": len(pages),
                "title": row.title,
                "publisher": row.publisher,
                "doc_type": row.doc_type,
                "published": row.published,
                "date_source": "manifest",
                "licence": row.licence,
                "source": row.source,
                "n_sentences": len(rows),
                "duplicate_of": "",
            }
        )
    return pd.DataFrame(sentences)[CODED_SENTENCE_COLUMNS], pd.DataFrame(documents)


def seed_corpus() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(coded_sentences, documents) of the five seed texts."""
    sentences, documents = _corpus("seeds", None)
    return sentences.copy(), documents.copy()


def ofsted_corpus(limit: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(coded_sentences, documents) of the bundled Ofsted PDFs (first `limit` by path)."""
    sentences, documents = _corpus("ofsted", limit)
    return sentences.copy(), documents.copy()
