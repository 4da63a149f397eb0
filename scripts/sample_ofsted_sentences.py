"""Sample sentences from Ofsted reports for hand coding (tests/data/ofsted_gold.csv).

Reads every PDF under the given folder with pypdfium2 (plain text per page),
splits pages into sentences with a simple regular expression, keeps sentences
of 5+ words, and draws, with a fixed seed:
  * RANDOM_N sentences at random (what most of a report looks like), and
  * VOCAB_N sentences among those containing partnership/competition
    vocabulary (so the rare codes are represented),
never the same sentence twice. Writes a CSV with the coded-set columns, codes
left empty for the human coder, plus source file, page and stratum.

    python scripts/sample_ofsted_sentences.py ../shared/corpus/ofsted tests/data/ofsted_sample.csv
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pandas as pd
import pypdfium2 as pdfium

from textmine.codebook import load_codebook

SEED = 20261122
RANDOM_N = 100
VOCAB_N = 100
VOCAB = re.compile(
    r"partner|collaborat|co-?operat|compet|network|\btrust\b|federat|teaching school|"
    r"leaders? of education|diocese|diocesan|executive head|cluster|market|league table|"
    r"multi-agency|agencies|work(?:s|ed|ing)? together|other schools|alliance|consorti",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z‘'\"(])")


def page_sentences(pdf_path: Path):
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        for index in range(len(pdf)):
            text = pdf[index].get_textpage().get_text_range()
            text = re.sub(r"-\s*\r?\n\s*(?=[a-z])", "", text)  # hyphenated line breaks
            text = re.sub(r"\s+", " ", text).strip()
            for sentence in _SPLIT.split(text):
                sentence = sentence.strip(" •▪-–")
                if len(sentence.split()) >= 5:
                    yield index + 1, sentence
    finally:
        pdf.close()


def main(folder: str, out: str) -> None:
    rows = []
    seen = set()
    for path in sorted(Path(folder).rglob("*.pdf")):
        for page, sentence in page_sentences(path):
            if sentence in seen:
                continue
            seen.add(sentence)
            rows.append(
                {
                    "source": str(path.relative_to(Path(folder).parent)),
                    "page": page,
                    "sentence": sentence,
                }
            )
    rng = random.Random(SEED)
    order = list(range(len(rows)))
    rng.shuffle(order)
    random_pick = order[:RANDOM_N]
    taken = set(random_pick)
    vocab_pool = [i for i in order[RANDOM_N:] if VOCAB.search(rows[i]["sentence"])]
    vocab_pick = vocab_pool[:VOCAB_N]
    sample = []
    for stratum, picks in (("random", random_pick), ("vocabulary", vocab_pick)):
        for i in picks:
            if i in taken and stratum == "vocabulary":
                continue
            sample.append({**rows[i], "stratum": stratum})
    frame = pd.DataFrame(sample)
    frame.insert(0, "id", [f"o{n:04d}" for n in range(1, len(frame) + 1)])
    codes = load_codebook().code_columns  # the codebook's codes, left empty for the coder
    for code in codes:
        frame[code] = ""
    frame = frame[["id", "sentence", *codes, "source", "page", "stratum"]]
    frame.to_csv(out, index=False)
    print(f"{len(rows)} sentences in {folder}; wrote {len(frame)} to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
