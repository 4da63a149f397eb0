"""Segmentation + coding speed over the whole bundled corpus, against named baselines.

    python benchmarks/code.py [--repeat N] [PATH ...]

Reads every document once (not timed) with textmine's reader, then times, in
the same run and over the same paragraphs:

1. baseline: a blank English pipeline with only the sentencizer (no coding);
2. baseline: blank English + sentencizer + lookup lemmatizer + the textmine
   tagger on EVERY sentence (no prefilter) — what coding costs without it;
3. textmine's `segment_document` alone and `code_sentences` alone (prefilter,
   then the tagger only on candidate sentences), to show where time goes;
4. textmine: `segment_document` + `code_sentences`, end to end.

Prints sentences/s and words/s for each and textmine's ratio to the 150,000
words/s target and to the baselines. Default input: the bundled `corpus/`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_WORDS_PER_SECOND = 150_000


def read_corpus(paths: list[Path]):
    from textmine.ingest import discover_files, read_document
    from textmine.types import IngestError

    documents = []
    for path in discover_files(paths):
        try:
            documents.append(read_document(path))
        except IngestError:
            continue
    return documents


def best_of(repeat: int, run) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[REPO / "corpus"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per method (best is kept)")
    args = parser.parse_args()

    import pandas as pd
    import spacy

    from textmine.codebook import load_codebook
    from textmine.coding import code_sentences, get_coder
    from textmine.segment import build_nlp, segment_document

    documents = read_corpus(args.paths)
    paragraphs = [d.text[p.start : p.end] for d in documents for p in d.paragraphs]
    words = sum(len(p.split()) for p in paragraphs)
    codebook = load_codebook()
    coder = get_coder(codebook)  # built once, outside the timings
    segment_nlp = build_nlp()

    blank = spacy.blank("en")
    blank.add_pipe("sentencizer")

    def sentencizer_only() -> int:
        return sum(len(list(doc.sents)) for doc in blank.pipe(paragraphs, batch_size=256))

    sentences = pd.concat([segment_document(d, segment_nlp) for d in documents], ignore_index=True)
    texts = sentences["text"].tolist()

    def tagger_on_every_sentence() -> int:
        for doc in coder.nlp.pipe(texts, batch_size=256):
            coder.tagger.label(doc)
        return len(texts)

    def textmine_segment_only() -> int:
        return sum(len(segment_document(d, segment_nlp)) for d in documents)

    def textmine_code_only() -> int:
        return len(code_sentences(sentences, codebook))

    def textmine_segment_and_code() -> int:
        frames = [segment_document(d, segment_nlp) for d in documents]
        coded = code_sentences(pd.concat(frames, ignore_index=True), codebook)
        return len(coded)

    rows = []
    for name, run in (
        ("blank sentencizer (baseline)", sentencizer_only),
        ("tagger on every sentence, no segmentation (baseline)", tagger_on_every_sentence),
        ("textmine segment only (segment_document)", textmine_segment_only),
        ("textmine code only (code_sentences on the sentences)", textmine_code_only),
        ("textmine segment + code", textmine_segment_and_code),
    ):
        seconds, count = best_of(args.repeat, run)
        rows.append((name, seconds, count))

    candidates = sum(coder.is_candidate(t) for t in texts)
    print(
        f"{len(documents)} documents, {len(paragraphs):,} paragraphs, {words:,} words, "
        f"{len(texts):,} sentences ({candidates:,} = {candidates / max(len(texts), 1):.0%} "
        f"pass the prefilter); best of {args.repeat}"
    )
    print(f"{'method':55s} {'seconds':>8s} {'sent/s':>10s} {'words/s':>11s}")
    for name, seconds, count in rows:
        print(f"{name:55s} {seconds:8.3f} {count / seconds:10,.0f} {words / seconds:11,.0f}")
    textmine_wps = words / rows[-1][1]
    print(
        f"textmine vs target {TARGET_WORDS_PER_SECOND:,} words/s: "
        f"{textmine_wps / TARGET_WORDS_PER_SECOND:.2f}x"
    )
    print(
        f"textmine vs blank sentencizer: {rows[0][1] / rows[-1][1]:.2f}x the speed; "
        f"vs tagger on every sentence: {rows[1][1] / rows[-1][1]:.2f}x"
    )


if __name__ == "__main__":
    main()
