"""The textmine tagger: a spaCy component that finds codebook patterns, then 0/1 codes.

The sentence-level step turns the component's spans into 0/1 codes with evidence.

Component `textmine_tagger` (one per codebook):
  1. gives every token a lower-cased lookup lemma (spacy-lookups-data), so
     "competing", "Competed" and "competes" all match LEMMA "compete";
  2. runs a Matcher (token patterns) and a PhraseMatcher (lemma phrases);
  3. drops matches that overlap an exclusion of the same code (non-target
     senses: partnership with parents, sports competitions, labour market...);
  4. drops partnership types governed by a negation or contrast cue
     ("but not in a formal federation", "rather than a trust");
  5. writes the kept matches to `doc.spans["textmine"]` (label = code,
     span_id = pattern id) and the dropped ones to `doc.spans["textmine_dropped"]`
     (label = code, span_id = the reason).

`TextmineTagger.label(doc)` then applies the sentence-level context rules and
returns the codes and the evidence. Each rule is a module-level function
(`is_negated`, `is_agency_context`, `is_within_one_school`,
`is_consultation_only`, `partners_work_together`, `multi_agency_cross_sector`,
`local_area_partnership`, `fallback_covered`, `codes_from_evidence`) whose
docstring names the codebook rule it implements.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy
from spacy.attrs import LEMMA, LOWER, ORTH
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from textmine.codebook import Codebook, ContextRules, Pattern, load_codebook

SPANS_KEY = "textmine"
DROPPED_KEY = "textmine_dropped"
TEXT_KEY = "textmine_text"  # doc.user_data key: the sentence text, read once


def load_lemma_table() -> dict[str, str]:
    """The English lookup lemma table shipped with spacy-lookups-data (form -> lemma)."""
    import spacy_lookups_data

    path = Path(spacy_lookups_data.__file__).parent / "data" / "en_lemma_lookup.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _cue_regex(cues) -> re.Pattern | None:
    """Word-bounded regex for cue words/phrases; a trailing `*` matches any ending."""
    cues = sorted({c for c in cues if c}, key=len, reverse=True)
    if not cues:
        return None
    parts = [re.escape(c[:-1]) + r"[\w-]*" if c.endswith("*") else re.escape(c) for c in cues]
    return re.compile(rf"(?<![a-z0-9])(?:{'|'.join(parts)})(?![a-z0-9])")


_NEGATED_OPS = {"?", "*", "!"}


def _single_token_values(tokens) -> tuple[str, list[str]] | None:
    """(attribute, values) if the pattern is one token with one plain attribute test."""
    if len(tokens) != 1 or len(tokens[0]) != 1:
        return None
    ((attr, value),) = tokens[0].items()
    if attr not in ("LOWER", "LEMMA", "ORTH"):
        return None
    if isinstance(value, str):
        return attr, [value]
    if (
        isinstance(value, dict)
        and list(value) == ["IN"]
        and all(isinstance(v, str) for v in value["IN"])
    ):
        return attr, list(value["IN"])
    return None


def choose_anchor(pattern: Pattern, lemma_doc, avoid: set[str]) -> list[tuple[str, str]] | None:
    """One required token of a pattern, as [(kind, value)], kind in lemma/lower/explicit/regex.

    Every match of the pattern has a token whose lemma (kind "lemma") or lower-case
    text (kind "lower") is one of the values, or contains an explicit `prefilter`
    string. Prefers anchors without frequent words (`avoid`), then longer ones.
    None when the pattern has no usable required token (only REGEX, wildcards...).
    """
    if pattern.prefilter or pattern.prefilter_regex:
        return [("explicit", p) for p in pattern.prefilter] + [
            ("regex", r) for r in pattern.prefilter_regex
        ]
    if pattern.phrase is not None:
        doc = lemma_doc(pattern.phrase)
        options = [
            [("lemma", t.lemma_)] if pattern.attr == "LEMMA" else [("lower", t.lower_)]
            for t in doc
            if not t.is_punct
        ]
    else:
        options = []
        for spec in pattern.tokens or ():  # a pattern has a phrase or tokens
            op = str(spec.get("OP", ""))
            if op in _NEGATED_OPS or op.startswith("{0") or op.startswith("{,"):
                continue
            for key, kind in (
                ("LEMMA", "lemma"),
                ("LOWER", "lower"),
                ("ORTH", "lower"),
                ("TEXT", "lower"),
            ):
                value = spec.get(key)
                if isinstance(value, str):
                    options.append([(kind, value.lower())])
                elif isinstance(value, dict) and isinstance(value.get("IN"), list):
                    options.append([(kind, str(v).lower()) for v in value["IN"]])
    options = [o for o in options if o and all(v.strip() for _, v in o)]
    if not options:
        return None
    return min(
        options,
        key=lambda o: (
            sum(10 if v in STOP_WORDS else int(v in avoid) for _, v in o),
            -min(len(v) for _, v in o),
        ),
    )


def pattern_flags(codebook: Codebook) -> dict[tuple[str, str], Pattern]:
    """Patterns by (code, pattern id); patterns sharing an id share their flags."""
    flags: dict[tuple[str, str], Pattern] = {}
    for code in codebook.codes.values():
        for p in code.patterns:
            old = flags.get((p.code, p.id))
            if old is not None:
                p = replace(
                    p,
                    needs_institution=p.needs_institution or old.needs_institution,
                    grouping=p.grouping or old.grouping,
                )
            flags[(p.code, p.id)] = p
    return flags


class TextmineTagger:
    """Find codebook patterns in a Doc and write them to doc.spans[SPANS_KEY]."""

    def __init__(self, nlp: Language, name: str = "textmine_tagger", spans_key: str = SPANS_KEY):
        """An empty tagger for `nlp`; `set_codebook` (or `initialize`) gives it patterns."""
        self.nlp = nlp
        self.name = name
        self.spans_key = spans_key
        self.codebook: Codebook | None = None
        self.lemmas: dict[str, str] = {}

    # -- setup ---------------------------------------------------------------
    def initialize(self, get_examples=None, *, nlp=None, codebook_path: str | None = None):
        """Load the patterns (spaCy's initialize hook); default: the packaged codebook."""
        self.set_codebook(load_codebook(codebook_path))

    def set_codebook(self, codebook: Codebook) -> None:
        """Compile the codebook's patterns and context vocabularies."""
        self.codebook = codebook
        if not self.lemmas:
            self.lemmas = load_lemma_table()
            strings = self.nlp.vocab.strings
            lemma_of: dict[int, int] = {}
            for form, lemma in self.lemmas.items():
                form_hash = strings.add(form.lower())
                if form == form.lower() or form_hash not in lemma_of:
                    lemma_of[form_hash] = strings.add(lemma.lower())
            self.lemma_of_lower = lemma_of
        vocab = self.nlp.vocab
        avoid = set(codebook.context.prefilter_avoid) | set(STOP_WORDS)
        self.phrase_matchers = {
            "LEMMA": PhraseMatcher(vocab, attr="LEMMA"),
            "LOWER": PhraseMatcher(vocab, attr="LOWER"),
        }
        self.patterns: dict[int, Pattern] = {}
        self.anchors: dict[int, list[tuple[str, str]] | None] = {}
        # Token patterns each get a small Matcher, run only when the sentence has
        # the pattern's anchor word (spaCy's Matcher costs patterns x tokens).
        self.token_matchers: dict[int, Matcher] = {}
        self.by_lemma: dict[int, set[int]] = defaultdict(set)  # lemma hash -> matchers
        self.by_lower: dict[int, set[int]] = defaultdict(set)  # lower-case hash -> matchers
        self.by_substring: dict[str, set[int]] = defaultdict(set)
        self.by_regex: dict[re.Pattern, set[int]] = defaultdict(set)
        self.always: set[int] = set()
        # single-token patterns: attribute -> value hash -> match ids
        self.single: dict[str, dict[int, list[int]]] = {
            "LOWER": defaultdict(list),
            "LEMMA": defaultdict(list),
            "ORTH": defaultdict(list),
        }
        for code in codebook.codes.values():
            for i, pattern in enumerate(code.patterns + code.exclusions):
                key = f"textmine|{code.key}|{i}"
                match_id = vocab.strings.add(key)
                self.patterns[match_id] = pattern
                anchor = choose_anchor(pattern, self.lemma_doc, avoid)
                self.anchors[match_id] = anchor
                if pattern.tokens is None:
                    assert pattern.phrase is not None  # a pattern has a phrase or tokens
                    self.phrase_matchers[pattern.attr].add(key, [self.lemma_doc(pattern.phrase)])
                    continue
                simple = _single_token_values(pattern.tokens)
                if simple is not None:  # one token, plain values: a dictionary lookup
                    attr, values = simple
                    for value in values:
                        self.single[attr][vocab.strings.add(value)].append(match_id)
                    continue
                matcher = Matcher(vocab)
                matcher.add(key, [list(pattern.tokens)])
                self.token_matchers[match_id] = matcher
                if anchor is None:
                    self.always.add(match_id)
                for kind, value in anchor or ():
                    if kind == "explicit":
                        self.by_substring[value].add(match_id)
                    elif kind == "regex":
                        self.by_regex[re.compile(value)].add(match_id)
                    else:
                        index = self.by_lemma if kind == "lemma" else self.by_lower
                        index[vocab.strings.add(value)].add(match_id)
        self.any_substring = any_of_strings(self.by_substring)
        self.by_regex_scouted = [
            (regex, without_leading_boundary(regex), ids) for regex, ids in self.by_regex.items()
        ]
        self.flags = pattern_flags(codebook)
        self.requires: dict[tuple[str, ...], re.Pattern] = {
            p.requires: regex
            for p in self.patterns.values()
            if p.requires and (regex := _cue_regex(p.requires)) is not None
        }
        cues = ContextCues.from_context(codebook.context)
        self.cues = cues
        # the cue regexes stay readable here too (textmine.learned.features reads them)
        self.re_within_school, self.re_institution = cues.re_within_school, cues.re_institution
        self.re_agency, self.re_joint_working = cues.re_agency, cues.re_joint_working
        self.re_consultation, self.re_consultation_exempt = (
            cues.re_consultation,
            cues.re_consultation_exempt,
        )
        self.re_local_area, self.re_school = cues.re_local_area, cues.re_school
        self.partnership_codes = set(codebook.partnership_codes)
        self.fallback = codebook.fallback_code

    def lemma_doc(self, text: str) -> Doc:
        """A tokenized, lemmatized Doc (no matching): how patterns and prefilter see text."""
        return self._lemmatize(self.nlp.make_doc(text))

    def _single_token_matches(
        self, lowers: list[int], lemmas: list[int], orths: list[int]
    ) -> list[tuple[int, int, int]]:
        """Matches of the one-token patterns, by dictionary lookup per token.

        In token order; for one token, the LOWER, then LEMMA, then ORTH patterns.
        """
        single = self.single
        hits = list(
            zip(
                map(single["LOWER"].get, lowers),
                map(single["LEMMA"].get, lemmas),
                map(single["ORTH"].get, orths),
                strict=True,
            )
        )
        matches: list[tuple[int, int, int]] = []
        for i, found in enumerate(hits):
            for ids in found:
                if ids:
                    matches.extend((match_id, i, i + 1) for match_id in ids)
        return matches

    def _active_token_matchers(
        self, lower_text: str, lowers: list[int], lemmas: list[int]
    ) -> set[int]:
        active = set(self.always)
        by_lower, by_lemma = self.by_lower, self.by_lemma
        for key in set(lowers):
            hit = by_lower.get(key)
            if hit:
                active |= hit
        for key in set(lemmas):
            hit = by_lemma.get(key)
            if hit:
                active |= hit
        if self.by_substring and self.any_substring.search(lower_text):
            for string, ids in self.by_substring.items():
                if string in lower_text:
                    active |= ids
        for regex, scout, ids in self.by_regex_scouted:
            if not ids <= active and search_with_scout(regex, scout, lower_text):
                active |= ids
        return active

    def _lemmatized_values(self, doc: Doc) -> tuple[list[int], list[int], list[int]]:
        """Lemmatize the Doc (as `_lemmatize`); its tokens' LOWER, LEMMA and ORTH ids."""
        lower_orth = doc.to_array([LOWER, ORTH])
        lowers: list[int] = lower_orth[:, 0].tolist()
        lemma_of = self.lemma_of_lower
        lemmas: list[int] = list(map(lemma_of.get, lowers, lowers))
        if lemmas:
            doc.from_array([LEMMA], numpy.array(lemmas, dtype="uint64").reshape(-1, 1))  # type: ignore[arg-type]  # spaCy types it as thinc's Ints2d
        return lowers, lemmas, lower_orth[:, 1].tolist()

    def _lemmatize(self, doc: Doc) -> Doc:
        """Set every token's lemma to the lower-cased lookup lemma of its lower-case form."""
        if len(doc):
            lower = doc.to_array([LOWER])
            lemma_of = self.lemma_of_lower
            lemmas = numpy.fromiter(
                (lemma_of.get(k, k) for k in lower.tolist()), dtype="uint64", count=len(lower)
            )
            doc.from_array([LEMMA], lemmas.reshape(-1, 1))  # type: ignore[arg-type]  # spaCy types it as thinc's Ints2d
        return doc

    # -- component -----------------------------------------------------------
    def _require_codebook(self) -> Codebook:
        """The codebook; a clear error when the tagger was never given one."""
        if self.codebook is None:
            raise ValueError(
                "textmine_tagger has no codebook: call nlp.initialize() or "
                "tagger.set_codebook(codebook) first"
            )
        return self.codebook

    def __call__(self, doc: Doc) -> Doc:
        """Write the kept matches to doc.spans[spans_key], the dropped ones (with reasons) apart."""
        self._require_codebook()
        lowers, lemmas, orths = self._lemmatized_values(doc)
        text = doc.user_data.get(TEXT_KEY)  # set by textmine.coding.Coder.tag
        if not isinstance(text, str):
            text = doc.text  # built from the tokens on every access: read it once
            doc.user_data[TEXT_KEY] = text
        lower_text = text.lower()
        raw = self._single_token_matches(lowers, lemmas, orths)
        active = [
            m
            for m in self._active_token_matchers(lower_text, lowers, lemmas)
            if m in self.token_matchers
        ]
        patterns = self.patterns
        for match_id in active:  # triggers first
            if not patterns[match_id].exclusion:
                raw.extend(self.token_matchers[match_id](doc))
        for matcher in self.phrase_matchers.values():
            raw.extend(matcher(doc))
        # exclusions only matter for codes that have a trigger here
        triggered = {patterns[m].code for m, _, _ in raw if not patterns[m].exclusion}
        for match_id in active:
            pattern = patterns[match_id]
            if pattern.exclusion and pattern.code in triggered:
                raw.extend(self.token_matchers[match_id](doc))
        triggers: dict[str, list[Span]] = defaultdict(list)
        exclusions: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for match_id, start, end in raw:
            pattern = self.patterns[match_id]
            if pattern.requires and not self.requires[pattern.requires].search(lower_text):
                continue
            if pattern.exclusion:
                exclusions[pattern.code].append((start, end))
            else:
                triggers[pattern.code].append(
                    Span(doc, start, end, label=pattern.code, span_id=pattern.id)
                )
        kept: list[Span] = []
        dropped: list[Span] = []
        for code, spans in triggers.items():
            for span in filter_spans(spans):
                reason = None
                if any(s < span.end and span.start < e for s, e in exclusions.get(code, ())):
                    reason = "exclusion"
                elif code in self.partnership_codes and is_negated(doc, span.start, self.cues):
                    reason = "negation"
                if reason:
                    dropped.append(Span(doc, span.start, span.end, label=code, span_id=reason))
                else:
                    kept.append(span)
        kept.sort(key=lambda s: (s.start, s.end))
        doc.spans[self.spans_key] = kept
        doc.spans[DROPPED_KEY] = dropped
        return doc

    # -- sentence-level step -------------------------------------------------
    def label(self, doc: Doc) -> tuple[dict[str, int], dict[str, list[dict]]]:
        """Turn the spans of a tagged sentence into 0/1 codes and evidence.

        The context rules run in this order, each a function of this module:
        `is_agency_context`, `is_within_one_school`, `is_consultation_only` and
        `partners_work_together` decide which matches to drop
        (`spans_kept_in_context`); then `multi_agency_cross_sector`,
        `local_area_partnership` and `fallback_not_covered` add or remove
        codes; `codes_from_evidence` sets each code only from its own evidence
        (a structure merely named gets its type, not COLLABORATION).
        """
        cb = self._require_codebook()
        spans = list(doc.spans[self.spans_key])
        original = doc.user_data.get(TEXT_KEY) or doc.text
        blanked = blank_exclusions(original.lower(), doc.spans.get(DROPPED_KEY, []))
        # each cue test runs only when a span it could affect is present
        if not spans:
            return dict.fromkeys(cb.code_columns, 0), {}
        cues, flags = self.cues, self.flags
        agency_context = is_agency_context(spans, blanked, cues)
        kept = spans_kept_in_context(
            spans,
            flags,
            cues,
            in_school=is_within_one_school(spans, blanked, cues, flags, agency_context),
            consultation=is_consultation_only(spans, blanked, cues),
            agency_context=agency_context,
            joint_working=partners_work_together(spans, blanked, cues, agency_context),
        )
        by_code: dict[str, list[tuple[int, int, str, str]]] = defaultdict(list)
        for span in kept:
            by_code[span.label_].append((span.start_char, span.end_char, span.text, span.id_))
        network_spans = [s for s in kept if s.label_ == self.fallback]
        covered: set[tuple[int, int]] = set()

        if by_code.get("collaboration") and "cross_sector" in cb.codes and agency_context:
            by_code["cross_sector"].append(
                multi_agency_cross_sector(spans, blanked, original, cues)
            )
        multi_agency = agency_context or bool(by_code.get("cross_sector"))
        if multi_agency:  # partnership mentions here are the multi-agency partnership
            covered.update((s.start, s.end) for s in network_spans)

        if "local_partnership" in cb.codes and not multi_agency:
            found, grouped = local_area_partnership(
                kept, blanked, original, cues, flags, self.fallback
            )
            if found is not None:
                by_code["local_partnership"].append(found)
                covered.update(grouped)

        if self.fallback:
            specific = [
                s for s in kept if s.label_ in self.partnership_codes and s.label_ != self.fallback
            ]
            covered |= fallback_covered(doc, network_spans, specific, covered, cues)
            by_code[self.fallback] = [
                item
                for item, span in zip(by_code.get(self.fallback, []), network_spans, strict=True)
                if (span.start, span.end) not in covered
            ]
        return codes_from_evidence(by_code, cb.code_columns)


def without_leading_boundary(regex: re.Pattern) -> re.Pattern | None:
    r"""`regex` without its leading `\b`: a regex that matches wherever `regex` does.

    Searched first, it rules out most texts faster (a leading `\b` stops the regex
    engine from skipping to the possible first characters). None when the pattern
    does not start with `\b` or the rest is no regex.
    """
    pattern = regex.pattern
    if not isinstance(pattern, str) or not pattern.startswith(r"\b"):
        return None
    try:
        return re.compile(pattern[2:], regex.flags)
    except re.error:
        return None


def search_with_scout(regex: re.Pattern, scout: re.Pattern | None, text: str) -> bool:
    """True if `regex` matches in `text`; `scout` (a regex matching wherever it does) first."""
    return (scout is None or scout.search(text) is not None) and regex.search(text) is not None


def any_of_strings(strings: Iterable[str]) -> re.Pattern:
    """A regex that finds a text holding any of the strings.

    The strings' letters form a trie, one branch per first character: searching it is
    ~4x faster than `any(s in text ...)` over a hundred strings.
    """
    trie: dict = {}
    for string in strings:
        node = trie
        for char in string:
            node = node.setdefault(char, {})
        node[""] = {}

    def branch(node: dict) -> str:
        alternatives = [re.escape(c) + branch(child) for c, child in sorted(node.items()) if c]
        if not alternatives:
            return ""
        if len(alternatives) == 1 and "" not in node:
            return alternatives[0]
        return "(?:" + "|".join(alternatives) + ")" + ("?" if "" in node else "")

    if not trie:
        return re.compile(r"(?!)")  # no strings: never matches
    return re.compile(branch(trie))


# -- context rules -----------------------------------------------------------------
# Each function implements one rule of the codebook (shared/codebook.md, mirrored in
# the `context` vocabularies of textmine/data/codebook.yml) on one tagged sentence.


@dataclass(frozen=True)
class ContextCues:
    """The codebook's context vocabularies, compiled once for the context rules."""

    negation: frozenset[str]
    contrast: tuple[tuple[str, ...], ...]
    clause_breaks: frozenset[str]
    negation_exceptions: frozenset[str]
    negation_window: int
    coverage: tuple[tuple[str, ...], ...]
    coverage_window: int
    consultation_targets: frozenset[str]
    re_within_school: re.Pattern | None
    re_institution: re.Pattern | None
    re_agency: re.Pattern | None
    re_joint_working: re.Pattern | None
    re_consultation: re.Pattern | None
    re_consultation_exempt: re.Pattern | None
    re_local_area: re.Pattern | None
    re_school: re.Pattern | None

    @classmethod
    def from_context(cls, ctx: ContextRules) -> ContextCues:
        """Compile a codebook's `context` entry (single-word negation cues as words, the rest as phrases)."""
        return cls(
            negation=frozenset(c for c in ctx.negation_cues if " " not in c),
            contrast=tuple(
                tuple(c.split())
                for c in ctx.contrast_cues + tuple(c for c in ctx.negation_cues if " " in c)
            ),
            clause_breaks=frozenset(ctx.clause_breaks),
            negation_exceptions=frozenset(ctx.negation_exceptions),
            negation_window=ctx.negation_window,
            coverage=tuple(tuple(c.split()) for c in ctx.coverage_cues),
            coverage_window=ctx.coverage_window,
            consultation_targets=frozenset(ctx.consultation_targets),
            re_within_school=_cue_regex(ctx.within_school_cues),
            re_institution=_cue_regex(ctx.institution_cues),
            re_agency=_cue_regex(ctx.agency_cues),
            re_joint_working=_cue_regex(ctx.joint_working_cues),
            re_consultation=_cue_regex(ctx.consultation_cues),
            re_consultation_exempt=re.compile(
                r"(?<![a-z])(?:"
                + "|".join(re.escape(c) for c in ctx.consultation_exempt_cues)
                + ")"
            )
            if ctx.consultation_exempt_cues
            else None,
            re_local_area=_cue_regex(ctx.local_area_cues),
            re_school=_cue_regex(ctx.school_cues),
        )


def _has(regex: re.Pattern | None, text: str) -> bool:
    return regex is not None and regex.search(text) is not None


def blank_exclusions(text: str, dropped: list[Span]) -> str:
    """`text` with the matches dropped as non-target senses blanked out (same length).

    Non-target senses (codebook exclusions, e.g. "partnership with parents")
    must not trigger the cue tests of the rules below.
    """
    for span in dropped:
        if span.id_ == "exclusion":
            text = text[: span.start_char] + " " * len(span.text) + text[span.end_char :]
    return text


def is_negated(doc: Doc, start: int, cues: ContextCues) -> bool:
    """Negation and contrast rule: is the match at token `start` governed by a cue?

    Codebook `context.negation_cues` / `contrast_cues`: a partnership type
    preceded, within `negation_window` tokens and inside the clause, by a
    negation or contrast cue ("rather than a trust") is not coded; a cue
    followed by a `negation_exceptions` word ("not only") does not negate.
    Stance codes are never dropped by it (sceptical talk is still coded).
    """
    for i in range(start - 1, max(start - 1 - cues.negation_window, -1), -1):
        low = doc[i].lower_
        if low in cues.negation:
            nxt = doc[i + 1].lower_ if i + 1 < len(doc) else ""
            return nxt not in cues.negation_exceptions
        for cue in cues.contrast:
            n = len(cue)
            if i - n + 1 >= 0 and tuple(t.lower_ for t in doc[i - n + 1 : i + 1]) == cue:
                return True
        if low in cues.clause_breaks:
            return False
    return False


def is_agency_context(spans: list[Span], blanked: str, cues: ContextCues) -> bool:
    """Multi-agency rule, the test: is the sentence about the multi-agency partners?

    Codebook A, "Organisations other than schools", and the Conventions on
    "partners" in children's-services reports: collaboration (or a bare
    "partners") in a sentence with an agency cue (police, health, social
    care...), or "partners" with no school cue, is multi-agency working.
    """
    bare_partners = any(s.id_ == "partners" for s in spans)
    collaboration = any(s.label_ == "collaboration" for s in spans)
    return (collaboration or bare_partners) and (
        _has(cues.re_agency, blanked) or (bare_partners and not _has(cues.re_school, blanked))
    )


def is_within_one_school(
    spans: list[Span],
    blanked: str,
    cues: ContextCues,
    flags: dict[tuple[str, str], Pattern],
    agency_context: bool,
) -> bool:
    """Within-school rule: is the collaboration only inside one school or between individuals?

    Codebook A, COLLABORATION: "Not: collaboration inside one school only".
    True when a collaboration match marked `needs_institution` sits in a
    sentence with a classroom/individual cue and no institution cue (and the
    sentence is not about multi-agency partners); those matches are dropped.
    """
    collaboration = any(s.label_ == "collaboration" for s in spans)
    needs_institution = collaboration and any(
        getattr(flags.get((s.label_, s.id_)), "needs_institution", False) for s in spans
    )
    return (
        needs_institution
        and not agency_context
        and _has(cues.re_within_school, blanked)
        and not _has(cues.re_institution, blanked)
    )


def is_consultation_only(spans: list[Span], blanked: str, cues: ContextCues) -> bool:
    """Consultation rule: does the sentence only list who was met or consulted?

    Codebook A, "A sentence that only lists who was met or consulted
    ('inspectors spoke with partners') is not" collaboration: a consultation
    cue, no exempting cue, and a match of a `consultation_targets` pattern,
    which is then dropped.
    """
    return (
        bool({s.id_ for s in spans} & cues.consultation_targets)
        and _has(cues.re_consultation, blanked)
        and not _has(cues.re_consultation_exempt, blanked)
    )


def partners_work_together(
    spans: list[Span], blanked: str, cues: ContextCues, agency_context: bool
) -> bool:
    """Partners rule: are the multi-agency "partners" said to work together?

    Conventions: "partners" are COLLABORATION "when they are said to work
    together"; otherwise "partners" only names the other agencies and is dropped.
    """
    bare_partners = any(s.id_ == "partners" for s in spans)
    return bare_partners and agency_context and _has(cues.re_joint_working, blanked)


def spans_kept_in_context(
    spans: list[Span],
    flags: dict[tuple[str, str], Pattern],
    cues: ContextCues,
    *,
    in_school: bool,
    consultation: bool,
    agency_context: bool,
    joint_working: bool,
) -> list[Span]:
    """The matches the within-school, consultation and partners rules keep, in order."""
    kept = []
    for span in spans:
        pattern = flags.get((span.label_, span.id_))
        if in_school and span.label_ == "collaboration" and pattern and pattern.needs_institution:
            continue
        if consultation and span.id_ in cues.consultation_targets:
            continue
        if agency_context and span.id_ == "partners" and not joint_working:
            continue  # "partners" only names the other agencies
        kept.append(span)
    return kept


def multi_agency_cross_sector(
    spans: list[Span], blanked: str, original: str, cues: ContextCues
) -> tuple[int, int, str, str]:
    """Multi-agency rule, the code: evidence that collaboration here is also CROSS_SECTOR.

    Codebook B, CROSS_SECTOR covers "multi-agency partnerships around
    children"; the evidence is the agency cue, else the first "partners".
    Call it for a sentence with collaboration evidence and an agency context.
    """
    match = cues.re_agency.search(blanked) if cues.re_agency else None
    if match:
        start, end = match.start(), match.end()
    else:  # the other agencies are named only as "partners"
        first = next(s for s in spans if s.id_ == "partners")
        start, end = first.start_char, first.end_char
    return (start, end, original[start:end], "multi_agency")


def _is_grouping(span: Span, flags: dict[tuple[str, str], Pattern]) -> bool:
    pattern = flags.get((span.label_, span.id_))
    return bool(pattern and pattern.grouping)


def local_area_partnership(
    kept: list[Span],
    blanked: str,
    original: str,
    cues: ContextCues,
    flags: dict[tuple[str, str], Pattern],
    fallback: str | None,
) -> tuple[tuple[int, int, str, str] | None, set[tuple[int, int]]]:
    """Local-area rule: (LOCAL_PARTNERSHIP evidence or None, grouping matches it covers).

    Codebook B, LOCAL_PARTNERSHIP: "place-based partnerships ... clusters
    organised by an area". A grouping or partnership mention with a local-area
    cue is LOCAL_PARTNERSHIP; its grouping mentions are then covered by it
    (no NETWORK for them). Not applied in a multi-agency sentence.
    """
    if cues.re_local_area is None:
        return None, set()
    groupings = [
        s
        for s in kept
        if s.label_ in ("collaboration", fallback)
        and (_is_grouping(s, flags) or s.id_ == "partnership")
    ]
    match = cues.re_local_area.search(blanked) if groupings else None
    if not match:
        return None, set()
    found = (match.start(), match.end(), original[match.start() : match.end()], "local_area")
    return found, {(s.start, s.end) for s in groupings if _is_grouping(s, flags)}


def introduces_type(doc: Doc, span: Span, specific: list[Span], cues: ContextCues) -> bool:
    """True if a coverage cue follows the span and a specific type follows the cue."""
    window = cues.coverage_window
    stop = min(len(doc), span.end + window)
    for i in range(span.end, stop):
        for cue in cues.coverage:
            n = len(cue)
            if tuple(t.lower_ for t in doc[i : i + n]) == cue:
                after = i + n
                return any(after <= o.start < after + window for o in specific)
    return False


def fallback_covered(
    doc: Doc,
    fallback_spans: list[Span],
    specific: list[Span],
    covered: set[tuple[int, int]],
    cues: ContextCues,
) -> set[tuple[int, int]]:
    """NETWORK fallback rule: the fallback mentions a specific type covers (token offsets).

    Codebook B: "NETWORK is the fallback ... Do not add NETWORK to a sentence
    that is fully covered by a specific type." A fallback mention is covered
    when it overlaps a specific type or introduces one with a coverage cue
    ("partnerships, such as a federation"). `covered` are those already covered.
    """
    found = set()
    for span in fallback_spans:
        if (span.start, span.end) in covered:
            continue
        if any(o.start < span.end and span.start < o.end for o in specific) or introduces_type(
            doc, span, specific, cues
        ):
            found.add((span.start, span.end))
    return found


def codes_from_evidence(
    by_code: dict[str, list[tuple[int, int, str, str]]], code_columns: list[str]
) -> tuple[dict[str, int], dict[str, list[dict]]]:
    """(0/1 per code, evidence per coded code): each code is set by its own evidence only.

    This is the "structure merely named" rule (Conventions: "A body or
    arrangement merely named gets its type, not COLLABORATION"): a
    partnership type's match never sets a stance code; only collaboration
    patterns (or a context rule naming the code) do.
    """
    labels = {code: int(bool(by_code.get(code))) for code in code_columns}
    evidence = {
        code: [{"text": t, "start": s, "end": e, "rule": r} for s, e, t, r in sorted(by_code[code])]
        for code in code_columns
        if labels[code]
    }
    return labels, evidence


@Language.factory(
    "textmine_tagger",
    default_config={"codebook_path": None, "spans_key": SPANS_KEY},
)
def make_textmine_tagger(nlp: Language, name: str, codebook_path: str | None, spans_key: str):
    """Create the tagger; with `codebook_path` the patterns load now, else at initialize."""
    tagger = TextmineTagger(nlp, name, spans_key=spans_key)
    if codebook_path:
        tagger.set_codebook(load_codebook(codebook_path))
    return tagger
