"""Sentences with spaCy, offline.

Blank English + sentencizer + abbreviation fix, with a lookup lemmatizer
(spacy-lookups-data) that callers can enable. A paragraph's own number
("29. ...") is moved out of its sentences into their `paragraph_number`;
sentences on pages read by OCR are marked `ocr`.

With that default pipeline the run finds sentence starts on the tokenizer's
arrays (`_token_spans`, `_fix_starts`: the rule of `FastSentencizer` then of
`fix_abbreviation_boundaries`, a document at a time); any other pipeline runs
its components. The two must change together: tests/test_segment.py checks
that they give the same sentences on generated text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy
import pandas as pd
import spacy
from spacy.attrs import IDX, IS_PUNCT, LENGTH, ORTH, SENT_START, SPACY
from spacy.language import Language
from spacy.pipeline import Sentencizer
from spacy.tokens import Doc

from textmine.columns import SENTENCE_COLUMNS
from textmine.types import Document

# Abbreviations after which "." never ends a sentence (the tokenizer splits them from their dot).
ALWAYS_CONTINUE = frozenset(["cf", "al", "eg", "ie", "viz", "vs", "approx", "ibid", "cp"])
# Abbreviations that keep the sentence going before a number ("No. 3", "para. 4", "pp. 6-7").
BEFORE_NUMBER = frozenset(
    [
        "no",
        "nos",
        "para",
        "paras",
        "p",
        "pp",
        "art",
        "arts",
        "ch",
        "chap",
        "sec",
        "secs",
        "fig",
        "figs",
        "vol",
        "vols",
        "cl",
        "reg",
        "regs",
        "sch",
        "ref",
        "refs",
        "ed",
    ]
)
# A paragraph's own number at its start: "29. Text", "29.Text" (glued by the PDF),
# "2.1 Text". A bare "12 Text" is a footnote, not a paragraph number.
PARAGRAPH_NUMBER = re.compile(
    r"^(?:(?P<number>\d{1,3})\.(?:\s+(?=[\"'\u2018\u201c(\[]?[^\W\d_])|(?=[A-Z][a-z]))"
    r"|(?P<section>\d{1,3}(?:\.\d{1,3})+)\.?\s+(?=[\"'\u2018\u201c(\[]?[A-Z]))"
)
# A sentence that is only a paragraph number ("51."), split off its paragraph.
BARE_NUMBER = re.compile(r"(\d{1,3})\.")
SENTENCE_FIX = "textmine_abbreviations"
LEMMATIZER = "lemmatizer"


def _continues_sentence(doc: Doc, token_index: int) -> bool:
    token, dot, word = doc[token_index], doc[token_index - 1], doc[token_index - 2]
    if dot.text != "." or word.whitespace_:
        return False
    lower = word.lower_
    if lower in ALWAYS_CONTINUE:
        return True
    if lower in BEFORE_NUMBER and token.text[:1].isdigit():
        return True
    if token.text[:1].islower():
        return True
    # An initial inside a name: "Toby J. Greany"
    return (
        len(word.text) == 1
        and word.text.isupper()
        and token.text[:1].isupper()
        and token_index >= 3
        and doc[token_index - 3].text[:1].isupper()
    )


SENTENCIZER = "textmine_sentencizer"


@Language.factory(SENTENCIZER)
def make_fast_sentencizer(nlp: Language, name: str) -> FastSentencizer:
    """The fast equivalent of spaCy's `sentencizer` with its default punctuation."""
    return FastSentencizer(nlp.vocab)


class FastSentencizer:
    """Sentence starts exactly as spaCy's `sentencizer` with its default punctuation sets them.

    spaCy's component builds a Token object per token in Python; this one reads the
    tokens' ORTH and IS_PUNCT as arrays (same rule: a sentence starts at the first
    token after sentence-final punctuation that is neither punctuation nor one of those
    characters). Sentence starts already set are kept, as spaCy's does by default.
    """

    def __init__(self, vocab) -> None:
        self.final = frozenset(vocab.strings.add(c) for c in Sentencizer.default_punct_chars)
        # Text without a match holds no sentence-final token: it is one sentence.
        self.final_text = re.compile(
            "|".join(
                re.escape(c) for c in sorted(Sentencizer.default_punct_chars, key=len, reverse=True)
            )
        )

    def __call__(self, doc: Doc) -> Doc:
        """Set Token.is_sent_start where it is not set yet."""
        n = len(doc)
        if not n:
            return doc
        values = doc.to_array([ORTH, IS_PUNCT, SENT_START])
        final = self.final
        starts = [False] * n
        starts[0] = True
        start = 0
        seen_final = False
        for i, (orth, punct) in enumerate(values[:, :2].tolist()):
            is_final = orth in final
            if seen_final and not punct and not is_final:
                starts[start] = True
                start = i
                seen_final = False
            elif is_final:
                seen_final = True
        starts[start] = True
        current = values[:, 2].astype(numpy.int64)
        guessed = numpy.where(numpy.asarray(starts), 1, -1)
        sent_start = numpy.where(current == 0, guessed, current)
        doc.from_array([SENT_START], sent_start.astype(numpy.uint64).reshape(-1, 1))  # type: ignore[arg-type]  # spaCy types it as thinc's Ints2d
        return doc


OPENING = frozenset("([{\"'\u201c\u2018")


@Language.component(SENTENCE_FIX)
def fix_abbreviation_boundaries(doc: Doc) -> Doc:
    """Fix sentence starts the sentencizer puts after abbreviations and numbers.

    Undoes sentence starts that follow an abbreviation's dot ("cf. para. 4",
    "No. 3", "et al."), an initial ("J. Smith"), a paragraph number ("12. The ...")
    or that begin in lower case; starts a sentence at its opening bracket or quote.
    """
    if len(doc) < 3:
        return doc
    starts = doc.to_array([SENT_START]).tolist()
    for index in range(2, len(doc)):
        if starts[index] != 1:  # the loop changes only tokens before `index`
            continue
        token, before = doc[index], doc[index - 1]
        paragraph_number = index == 2 and doc[0].text.isdigit() and before.text in {".", ")"}
        if paragraph_number or _continues_sentence(doc, index):
            token.is_sent_start = False
        elif before.text in OPENING and not before.whitespace_ and doc[index - 2].is_punct:
            before.is_sent_start = True  # "... opportunity. (Recommendation)"
            token.is_sent_start = False
    return doc


def build_nlp(model: str | None = None, *, lemmatize: bool = False) -> Language:
    """The sentence pipeline.

    Default: spacy.blank("en") + sentencizer + abbreviation fix + a lookup
    lemmatizer, disabled unless `lemmatize` (enable later with
    nlp.enable_pipe("lemmatizer")). `model` names an installed trained pipeline
    (e.g. "en_core_web_sm"); it is never downloaded.
    """
    if model:
        if not (spacy.util.is_package(model) or spacy.util.ensure_path(model).exists()):
            raise OSError(
                f"spaCy pipeline {model!r} is not installed. textmine never downloads models; "
                f"install it yourself (python -m spacy download {model}) or leave the model unset "
                "to use the built-in blank English pipeline."
            )
        nlp = spacy.load(model)
        if not any(nlp.has_pipe(name) for name in ("parser", "senter", "sentencizer")):
            nlp.add_pipe("sentencizer", first=True)
        if not lemmatize and nlp.has_pipe(LEMMATIZER):
            nlp.disable_pipe(LEMMATIZER)
        return nlp
    nlp = spacy.blank("en")
    nlp.add_pipe(SENTENCIZER)
    nlp.add_pipe(SENTENCE_FIX)
    nlp.add_pipe(LEMMATIZER, config={"mode": "lookup"})
    nlp.initialize()
    if not lemmatize:
        nlp.disable_pipe(LEMMATIZER)
    return nlp


def _sentence_spans(nlp: Language, texts: list[str]) -> Iterable[list[tuple[int, int]]]:
    with nlp.select_pipes(disable=[LEMMATIZER] if LEMMATIZER in nlp.pipe_names else []):
        for whole, doc in zip(texts, nlp.pipe(texts, batch_size=256), strict=True):
            spans = []
            for sent in doc.sents:
                start, end = sent.start_char, sent.end_char
                text = whole[start:end]  # = sent.text (tokenization keeps the text), no token walk
                stripped = text.strip()
                if not stripped:
                    continue
                start += len(text) - len(text.lstrip())
                end = start + len(stripped)
                spans.append((start, end))
            yield spans


def _is_default_pipeline(nlp: Language) -> bool:
    """True when `nlp` splits sentences with build_nlp()'s own components only."""
    return (
        [name for name in nlp.pipe_names if name != LEMMATIZER] == [SENTENCIZER, SENTENCE_FIX]
        and isinstance(nlp.get_pipe(SENTENCIZER), FastSentencizer)
        and nlp.get_pipe(SENTENCE_FIX) is fix_abbreviation_boundaries
    )


def _paragraph_spans(nlp: Language, texts: list[str]) -> list[list[tuple[int, int]]]:
    """Sentence spans (start, end) of each text, as `_sentence_spans` finds them.

    With build_nlp()'s default pipeline the sentence starts are found from the
    tokenizer's arrays, all texts of a document at once (no Doc pipeline, no
    Span objects), and a text without sentence-final punctuation, one sentence
    by the sentencizer's rule, is not tokenized; any other pipeline runs as it is.
    """
    if not _is_default_pipeline(nlp):
        return list(_sentence_spans(nlp, texts))
    sentencizer = nlp.get_pipe(SENTENCIZER)
    assert isinstance(sentencizer, FastSentencizer)  # _is_default_pipeline checked it
    found: list[list[tuple[int, int]]] = []
    arrays: list[numpy.ndarray] = []
    split: list[int] = []  # indexes of the texts that are tokenized
    for number, text in enumerate(texts):
        if sentencizer.final_text.search(text):
            doc = nlp.make_doc(text)
            arrays.append(doc.to_array([ORTH, IS_PUNCT, IDX, LENGTH, SPACY]))
            split.append(number)
            found.append([])
        else:
            stripped = text.strip()
            start = len(text) - len(text.lstrip())
            found.append([(start, start + len(stripped))] if stripped else [])
    if split:
        for number, spans in zip(
            split, _token_spans(texts, split, arrays, sentencizer.final), strict=True
        ):
            found[number] = spans
    return found


def _token_spans(
    texts: list[str], split: list[int], arrays: list[numpy.ndarray], final: frozenset[int]
) -> list[list[tuple[int, int]]]:
    """Sentence spans of the texts `split` from their tokens' ORTH, IS_PUNCT, IDX, LENGTH, SPACY.

    The rule of FastSentencizer then fix_abbreviation_boundaries, on arrays: a
    token that is neither punctuation nor sentence-final starts a sentence when
    a sentence-final token lies between it and the word token before it in its
    text; each text's first token starts one.
    """
    counts = numpy.asarray([len(array) for array in arrays], dtype=numpy.int64)
    tokens = numpy.concatenate(arrays).astype(numpy.int64)
    orth, punct, idx, length, space = tokens.T
    offsets = numpy.cumsum(counts) - counts
    first = numpy.zeros(len(tokens), dtype=bool)
    first[offsets[counts > 0]] = True
    final_ids = numpy.sort(
        numpy.fromiter(final, dtype=numpy.uint64, count=len(final)).astype(numpy.int64)
    )
    # membership by binary search: numpy.isin would sort every token's ORTH
    is_final = final_ids[numpy.searchsorted(final_ids, orth).clip(0, len(final_ids) - 1)] == orth
    finals_before = numpy.cumsum(is_final) - is_final
    word = (punct == 0) & ~is_final
    # a word starts a sentence when a final token lies between it and the word before
    # it in its text (or its text's first token): compare the counts of finals before them
    marks = numpy.flatnonzero(word | first)
    previous = numpy.zeros(len(marks), dtype=numpy.int64)
    previous[1:] = finals_before[marks[:-1]]
    starts = first.copy()
    starts[marks] |= word[marks] & (finals_before[marks] > previous)
    text_of = numpy.searchsorted(offsets, numpy.arange(len(tokens)), side="right") - 1
    local = numpy.arange(len(tokens)) - offsets[text_of]
    candidates = numpy.flatnonzero(starts & (local >= 2))
    if len(candidates):
        _fix_starts(
            [texts[number] for number in split],
            candidates,
            starts,
            text_of,
            local,
            idx,
            length,
            space,
            punct,
        )
    begins = numpy.flatnonzero(starts)
    lasts = numpy.append(begins[1:], len(tokens)) - 1
    found: list[list[tuple[int, int]]] = [[] for _ in split]
    for position, start, end in zip(
        text_of[begins].tolist(),
        idx[begins].tolist(),
        (idx[lasts] + length[lasts]).tolist(),
        strict=True,
    ):
        text = texts[split[position]][start:end]
        stripped = text.strip()
        if not stripped:
            continue
        start += len(text) - len(text.lstrip())
        found[position].append((start, start + len(stripped)))
    return found


def _fix_starts(
    texts: list[str],
    candidates: numpy.ndarray,
    starts: numpy.ndarray,
    text_of: numpy.ndarray,
    local: numpy.ndarray,
    idx: numpy.ndarray,
    length: numpy.ndarray,
    space: numpy.ndarray,
    punct: numpy.ndarray,
) -> None:
    """fix_abbreviation_boundaries on token arrays: change `starts` at the candidate starts."""

    def token(index: int) -> str:
        begin = int(idx[index])
        return texts[int(text_of[index])][begin : begin + int(length[index])]

    for index in candidates.tolist():
        position = int(local[index])
        text = token(index)
        before = token(index - 1)
        paragraph_number = position == 2 and token(index - 2).isdigit() and before in {".", ")"}
        if paragraph_number or _continues(token, space, index, position, text, before):
            starts[index] = False
        elif before in OPENING and not space[index - 1] and punct[index - 2]:
            starts[index - 1] = True  # "... opportunity. (Recommendation)"
            starts[index] = False


def _continues(token, space: numpy.ndarray, index: int, position: int, text: str, dot: str) -> bool:
    """_continues_sentence on token arrays."""
    if dot != "." or space[index - 2]:
        return False
    word = token(index - 2)
    lower = word.lower()
    if lower in ALWAYS_CONTINUE:
        return True
    if lower in BEFORE_NUMBER and text[:1].isdigit():
        return True
    if text[:1].islower():
        return True
    return (
        len(word) == 1
        and word.isupper()
        and text[:1].isupper()
        and position >= 3
        and token(index - 3)[:1].isupper()
    )


def paragraph_number(text: str) -> tuple[str, int]:
    """(number, characters it takes) for a numbered paragraph's start, else ("", 0).

    "29. In 2015, ..." -> ("29", 4); "29.In 2015" -> ("29", 3); "2.1 Adoption" -> ("2.1", 4).
    """
    match = PARAGRAPH_NUMBER.match(text)
    if not match:
        return "", 0
    return match["number"] or match["section"], match.end()


def _numbered_spans(
    text: str, spans: list[tuple[int, int]], carried: str
) -> tuple[list[tuple[int, int, str]], str]:
    """Sentence spans without paragraph numbers, each with the number it falls under.

    A number opening a sentence is moved out of it and holds for the sentences
    after it in the paragraph; a sentence that is only a number ("51.") is
    dropped and numbers what follows it, or the next paragraph when it is the
    paragraph's last (`carried` in, and the number returned to carry on).
    """
    numbered: list[tuple[int, int, str]] = []
    number = carried
    for start, end in spans:
        bare = BARE_NUMBER.fullmatch(text, start, end)
        if bare:
            number = bare[1]
            continue
        found, length = paragraph_number(text[start:end])
        if found and start + length < end:
            number, start = found, start + length
        numbered.append((start, end, number))
    carry = number if spans and BARE_NUMBER.fullmatch(text, *spans[-1]) else ""
    return numbered, carry


def segment_document(document: Document, nlp: Language) -> pd.DataFrame:
    """Sentences of one document (SENTENCE_COLUMNS), never crossing a paragraph.

    Offsets are into document.text: text == document.text[start_char:end_char].
    A paragraph's own number ("29. ...") is not part of its sentences: it is
    their `paragraph_number`. `ocr` is 1 for sentences on pages read by OCR.
    The lemmatizer is not run here.
    """
    paragraphs = document.paragraphs
    texts = [document.text[p.start : p.end] for p in paragraphs]
    ocr_pages = set(document.ocr_pages)
    rows = []
    index = 0
    carried = ""
    for paragraph, text, spans in zip(paragraphs, texts, _paragraph_spans(nlp, texts), strict=True):
        numbered, carried = _numbered_spans(text, spans, carried)
        for start, end, number in numbered:
            absolute_start, absolute_end = paragraph.start + start, paragraph.start + end
            rows.append(
                (
                    f"{document.doc_id}-{index:05d}",
                    document.doc_id,
                    document.path,
                    paragraph.page,
                    paragraph.index,
                    index,
                    absolute_start,
                    absolute_end,
                    document.text[absolute_start:absolute_end],
                    number,
                    int(paragraph.page in ocr_pages),
                )
            )
            index += 1
    return pd.DataFrame(rows, columns=SENTENCE_COLUMNS)


def segment_documents(documents: Iterable[Document], nlp: Language) -> pd.DataFrame:
    """segment_document for many documents, concatenated."""
    frames = [segment_document(document, nlp) for document in documents]
    if not frames:
        return pd.DataFrame(columns=SENTENCE_COLUMNS)
    return pd.concat(frames, ignore_index=True)
