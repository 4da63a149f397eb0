"""Code sentences with a codebook: ten 0/1 columns plus evidence and versions.

Most sentences contain no trigger word at all, so a cheap prefilter (one
compiled regex over lower-case trigger forms derived from the codebook's
patterns) skips them; only candidate sentences go through the spaCy tagger.
The pipeline is built once per Codebook and cached on it (`codebook.cache`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import cast

import pandas as pd
import spacy
from spacy.tokens import Doc

import textmine
from textmine.codebook import Codebook, CodebookError, load_codebook
from textmine.columns import CODEBOOK_VERSION, EVIDENCE, TEXTMINE_VERSION
from textmine.tagger import TEXT_KEY, TextmineTagger, any_of_strings


class Coder:
    """A built tagging pipeline for one codebook (blank English + textmine_tagger)."""

    def __init__(self, codebook: Codebook):
        self.codebook = codebook
        self.nlp = build_tokenizer_nlp()
        # spaCy types add_pipe as returning any Doc -> Doc callable
        self.tagger = cast(TextmineTagger, self.nlp.add_pipe("textmine_tagger"))
        self.tagger.set_codebook(codebook)
        self.prefilter = build_prefilter(codebook, self.tagger)

    def is_candidate(self, text: str) -> bool:
        """True if the text contains any trigger form (a superset of real matches)."""
        return self.prefilter.is_candidate(text)

    def tag(self, texts: Iterable[str]) -> Iterator[Doc]:
        """The tagged Doc of each text: `nlp.pipe`, with each text handed to the tagger.

        spaCy's tokenizer keeps the text (`doc.text == text`), so the tagger reads the
        text it was given instead of joining it back from the tokens.
        """
        make_doc, pipeline = self.nlp.make_doc, [proc for _, proc in self.nlp.pipeline]
        for text in texts:
            doc = make_doc(text)
            doc.user_data[TEXT_KEY] = text
            for proc in pipeline:
                doc = proc(doc)
            yield doc

    def code(self, texts: Sequence[str]) -> tuple[list[dict[str, int]], list[dict]]:
        """Codes and evidence for each text (each text is coded as one unit)."""
        columns = self.codebook.code_columns
        empty = dict.fromkeys(columns, 0)
        labels: list[dict[str, int]] = [empty] * len(texts)
        evidence: list[dict] = [{}] * len(texts)
        candidates = [
            i for i, t in enumerate(texts) if isinstance(t, str) and t and self.is_candidate(t)
        ]
        docs = self.tag(texts[i] for i in candidates)
        for i, doc in zip(candidates, docs, strict=True):
            labels[i], evidence[i] = self.tagger.label(doc)
        return labels, evidence


def build_tokenizer_nlp() -> spacy.Language:
    """Blank English whose tokenizer keeps hyphenated words whole.

    "multi-agency", "school-to-school", "quasi-market" and "co-operation" stay
    one token each, as the codebook's patterns expect.
    """
    from spacy.lang.char_classes import HYPHENS
    from spacy.tokenizer import Tokenizer
    from spacy.util import compile_infix_regex

    nlp = spacy.blank("en")
    old = nlp.tokenizer
    assert isinstance(old, Tokenizer)  # spaCy types nlp.tokenizer as any str -> Doc callable
    infixes = [
        rule
        for rule in nlp.Defaults.infixes or ()
        if not (isinstance(rule, str) and HYPHENS in rule)
    ]
    # a new Tokenizer (not a changed attribute) keeps spaCy's token cache working
    nlp.tokenizer = Tokenizer(
        nlp.vocab,
        rules=old.rules,
        prefix_search=old.prefix_search,
        suffix_search=old.suffix_search,
        infix_finditer=compile_infix_regex(infixes).finditer,
        token_match=old.token_match,
        url_match=old.url_match,
    )
    return nlp


def get_coder(codebook: Codebook) -> Coder:
    """The Coder for this codebook, built on first use and cached on the codebook."""
    coder = codebook.cache.get("coder")
    if coder is None:
        coder = codebook.cache["coder"] = Coder(codebook)
    return coder


def code_texts(texts: Iterable[str], codebook: Codebook | None = None) -> pd.DataFrame:
    """Code each text as one unit: DataFrame with the code columns and EVIDENCE (JSON)."""
    codebook = codebook if codebook is not None else load_codebook()
    texts = list(texts)
    labels, evidence = get_coder(codebook).code(texts)
    frame = pd.DataFrame(labels, columns=codebook.code_columns).astype("int64")
    frame[EVIDENCE] = [json.dumps(e, ensure_ascii=False) for e in evidence]
    return frame


def code_sentences(
    sentences: pd.DataFrame, codebook: Codebook | None = None, *, text_column: str = "text"
) -> pd.DataFrame:
    """Input columns + code columns (int 0/1) + EVIDENCE + CODEBOOK_VERSION + TEXTMINE_VERSION.

    Rows keep their order and index. Code columns already in the input are replaced.
    """
    codebook = codebook if codebook is not None else load_codebook()
    if text_column not in sentences.columns:
        raise KeyError(
            f"no column {text_column!r} to code; columns are "
            f"{', '.join(map(str, sentences.columns))}"
        )
    texts = ["" if pd.isna(t) else str(t) for t in sentences[text_column]]
    coded = code_texts(texts, codebook)
    coded.index = sentences.index
    generated = [*codebook.code_columns, EVIDENCE, CODEBOOK_VERSION, TEXTMINE_VERSION]
    out = sentences.drop(columns=[c for c in generated if c in sentences.columns])
    out = pd.concat([out, coded], axis=1)
    out[CODEBOOK_VERSION] = codebook.version
    out[TEXTMINE_VERSION] = textmine.__version__
    return out


# -- prefilter -----------------------------------------------------------------
_WORD = re.compile(r"[a-z0-9]+")
_HYPHENATED = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")


class Prefilter:
    """Cheap test that a text may hold a match: its words meet the anchor words.

    Every codebook pattern has an anchor (TextmineTagger.anchors): a required
    token given as lemma or lower-case words, or explicit `prefilter` strings.
    `words` holds every surface form of the anchors (lemma forms from the
    lookup table); `substrings` the explicit strings, looked for in the
    lower-case, whitespace-normalised text.
    """

    def __init__(
        self, words: set[str], substrings: set[str], regexes: Collection[str] = frozenset()
    ):
        self.words = frozenset(words)
        self.substrings = tuple(sorted(substrings))
        self.any_substring = any_of_strings(self.substrings) if self.substrings else None
        self.regex = re.compile("|".join(f"(?:{r})" for r in sorted(regexes))) if regexes else None

    def is_candidate(self, text: str) -> bool:
        """True if the text's words meet an anchor word, substring or regex."""
        low = text.lower()
        if not self.words.isdisjoint(_WORD.findall(low)):
            return True
        if "-" in low and not self.words.isdisjoint(_HYPHENATED.findall(low)):
            return True
        if self.substrings or self.regex is not None:
            flat = " ".join(low.split())
            if self.any_substring is not None and self.any_substring.search(flat):
                return True
            return self.regex is not None and self.regex.search(flat) is not None
        return False


def build_prefilter(codebook: Codebook, tagger: TextmineTagger) -> Prefilter:
    """The Prefilter of a codebook; a pattern without an anchor is a CodebookError.

    A pattern with no usable required word (e.g. only REGEX tokens) needs
    `prefilter: [...]`: lower-case strings that every match contains.
    """
    lemma_values: set[str] = set()
    anchors = []
    for match_id, pattern in tagger.patterns.items():
        if pattern.exclusion:
            continue
        anchor = tagger.anchors[match_id]
        if anchor is None:
            raise CodebookError(
                f"codebook {codebook.path}: codes.{pattern.code} pattern {pattern.id!r}: "
                "no required word to prefilter on; add `prefilter: [...]` with "
                "lower-case strings every match contains"
            )
        anchors.append(anchor)
        lemma_values.update(v for kind, v in anchor if kind == "lemma")
    forms: dict[str, set[str]] = {v: {v} for v in lemma_values}
    for form, lemma in tagger.lemmas.items():
        low = lemma.lower()
        if low in forms:
            forms[low].add(form.lower())
    words: set[str] = set()
    substrings: set[str] = set()
    regexes: set[str] = set()
    for anchor in anchors:
        for kind, value in anchor:
            if kind == "explicit":
                substrings.add(" ".join(value.split()))
            elif kind == "regex":
                regexes.add(value)
            else:
                for form in forms[value] if kind == "lemma" else {value}:
                    # the word as the prefilter splits it: hyphenated whole, else pieces
                    if _HYPHENATED.fullmatch(form) or _WORD.fullmatch(form):
                        words.add(form)
                    else:  # "children's": spaCy splits off "'s", the stem is the token
                        words.update(w for w in _WORD.findall(form) if len(w) > 2)
    return Prefilter(words, substrings, regexes)
