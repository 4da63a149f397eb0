"""The textmine tagger: a spaCy component that finds codebook patterns, and the
sentence-level step that turns its spans into 0/1 codes with evidence.

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

`TextmineTagger.label(doc)` then applies the sentence-level context rules
(see `label`) and returns the codes and the evidence.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy
from spacy.attrs import LEMMA, LOWER, ORTH
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from textmine.codebook import Codebook, Pattern, load_codebook

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
    (attr, value), = tokens[0].items()
    if attr not in ("LOWER", "LEMMA", "ORTH"):
        return None
    if isinstance(value, str):
        return attr, [value]
    if isinstance(value, dict) and list(value) == ["IN"] and all(
            isinstance(v, str) for v in value["IN"]):
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
        return ([("explicit", p) for p in pattern.prefilter]
                + [("regex", r) for r in pattern.prefilter_regex])
    if pattern.phrase is not None:
        doc = lemma_doc(pattern.phrase)
        options = [[("lemma", t.lemma_)] if pattern.attr == "LEMMA" else [("lower", t.lower_)]
                   for t in doc if not t.is_punct]
    else:
        options = []
        for spec in pattern.tokens:
            op = str(spec.get("OP", ""))
            if op in _NEGATED_OPS or op.startswith("{0") or op.startswith("{,"):
                continue
            for key, kind in (("LEMMA", "lemma"), ("LOWER", "lower"), ("ORTH", "lower"),
                              ("TEXT", "lower")):
                value = spec.get(key)
                if isinstance(value, str):
                    options.append([(kind, value.lower())])
                elif isinstance(value, dict) and isinstance(value.get("IN"), list):
                    options.append([(kind, str(v).lower()) for v in value["IN"]])
    options = [o for o in options if o and all(v.strip() for _, v in o)]
    if not options:
        return None
    return min(options, key=lambda o: (sum(10 if v in STOP_WORDS else int(v in avoid)
                                           for _, v in o), -min(len(v) for _, v in o)))


class TextmineTagger:
    """Find codebook patterns in a Doc and write them to doc.spans[SPANS_KEY]."""

    def __init__(self, nlp: Language, name: str = "textmine_tagger", spans_key: str = SPANS_KEY):
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
                key = strings.add(form.lower())
                if form == form.lower() or key not in lemma_of:
                    lemma_of[key] = strings.add(lemma.lower())
            self.lemma_of_lower = lemma_of
        vocab = self.nlp.vocab
        avoid = set(codebook.context.prefilter_avoid) | set(STOP_WORDS)
        self.phrase_matchers = {"LEMMA": PhraseMatcher(vocab, attr="LEMMA"),
                                "LOWER": PhraseMatcher(vocab, attr="LOWER")}
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
            "LOWER": defaultdict(list), "LEMMA": defaultdict(list), "ORTH": defaultdict(list)}
        for code in codebook.codes.values():
            for i, pattern in enumerate(code.patterns + code.exclusions):
                key = f"textmine|{code.key}|{i}"
                match_id = vocab.strings.add(key)
                self.patterns[match_id] = pattern
                anchor = choose_anchor(pattern, self.lemma_doc, avoid)
                self.anchors[match_id] = anchor
                if pattern.tokens is None:
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
        # flags per (code, pattern id); patterns sharing an id share their flags
        self.flags: dict[tuple[str, str], Pattern] = {}
        for code in codebook.codes.values():
            for p in code.patterns:
                old = self.flags.get((p.code, p.id))
                if old is not None:
                    p = replace(p, needs_institution=p.needs_institution or old.needs_institution,
                                grouping=p.grouping or old.grouping)
                self.flags[(p.code, p.id)] = p
        self.requires = {p.requires: _cue_regex(p.requires) for p in self.patterns.values()
                         if p.requires}
        ctx = codebook.context
        self.negation = {c for c in ctx.negation_cues if " " not in c}
        self.contrast = [tuple(c.split()) for c in ctx.contrast_cues + tuple(
            c for c in ctx.negation_cues if " " in c)]
        self.clause_breaks = set(ctx.clause_breaks)
        self.negation_exceptions = set(ctx.negation_exceptions)
        self.coverage = [tuple(c.split()) for c in ctx.coverage_cues]
        self.re_within_school = _cue_regex(ctx.within_school_cues)
        self.re_institution = _cue_regex(ctx.institution_cues)
        self.re_agency = _cue_regex(ctx.agency_cues)
        self.re_joint_working = _cue_regex(ctx.joint_working_cues)
        self.re_consultation = _cue_regex(ctx.consultation_cues)
        self.re_consultation_exempt = re.compile(
            r"(?<![a-z])(?:" + "|".join(re.escape(c) for c in ctx.consultation_exempt_cues) + ")"
        ) if ctx.consultation_exempt_cues else None
        self.re_local_area = _cue_regex(ctx.local_area_cues)
        self.re_school = _cue_regex(ctx.school_cues)
        self.partnership_codes = set(codebook.partnership_codes)
        self.fallback = codebook.fallback_code

    def lemma_doc(self, text: str) -> Doc:
        """A tokenized, lemmatized Doc (no matching): how patterns and prefilter see text."""
        return self._lemmatize(self.nlp.make_doc(text))

    def _single_token_matches(self, values) -> list[tuple[int, int, int]]:
        """Matches of the one-token patterns, by dictionary lookup per token."""
        matches = []
        lower, lemma, orth = self.single["LOWER"], self.single["LEMMA"], self.single["ORTH"]
        for i, (low, lem, text) in enumerate(values.tolist()):
            for table, key in ((lower, low), (lemma, lem), (orth, text)):
                ids = table.get(key)
                if ids:
                    matches.extend((match_id, i, i + 1) for match_id in ids)
        return matches

    def _active_token_matchers(self, doc: Doc, lower_text: str, values=None) -> set[int]:
        active = set(self.always)
        if values is None:
            values = doc.to_array([LOWER, LEMMA, ORTH])
        by_lower, by_lemma = self.by_lower, self.by_lemma
        for key in set(values[:, 0].tolist()):
            hit = by_lower.get(key)
            if hit:
                active |= hit
        for key in set(values[:, 1].tolist()):
            hit = by_lemma.get(key)
            if hit:
                active |= hit
        if self.by_substring:
            for string, ids in self.by_substring.items():
                if string in lower_text:
                    active |= ids
        for regex, ids in self.by_regex.items():
            if not ids <= active and regex.search(lower_text):
                active |= ids
        return active

    def _lemmatize(self, doc: Doc) -> Doc:
        """Set every token's lemma to the lower-cased lookup lemma of its lower-case form."""
        if len(doc):
            lower = doc.to_array([LOWER])
            lemma_of = self.lemma_of_lower
            lemmas = numpy.fromiter((lemma_of.get(k, k) for k in lower.tolist()),
                                    dtype="uint64", count=len(lower))
            doc.from_array([LEMMA], lemmas.reshape(-1, 1))
        return doc

    # -- component -----------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        if self.codebook is None:
            raise ValueError("textmine_tagger has no codebook: call nlp.initialize() or "
                             "tagger.set_codebook(codebook) first")
        self._lemmatize(doc)
        text = doc.text  # built from the tokens on every access: read it once
        lower_text = text.lower()
        doc.user_data[TEXT_KEY] = text
        values = doc.to_array([LOWER, LEMMA, ORTH])
        raw = self._single_token_matches(values)
        active = [m for m in self._active_token_matchers(doc, lower_text, values)
                  if m in self.token_matchers]
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
                triggers[pattern.code].append(Span(doc, start, end, label=pattern.code,
                                                   span_id=pattern.id))
        kept: list[Span] = []
        dropped: list[Span] = []
        for code, spans in triggers.items():
            for span in filter_spans(spans):
                reason = None
                if any(s < span.end and span.start < e for s, e in exclusions.get(code, ())):
                    reason = "exclusion"
                elif code in self.partnership_codes and self._negated(doc, span.start):
                    reason = "negation"
                if reason:
                    dropped.append(Span(doc, span.start, span.end, label=code, span_id=reason))
                else:
                    kept.append(span)
        kept.sort(key=lambda s: (s.start, s.end))
        doc.spans[self.spans_key] = kept
        doc.spans[DROPPED_KEY] = dropped
        return doc

    def _negated(self, doc: Doc, start: int) -> bool:
        """True if a negation/contrast cue precedes `start` within the window and clause."""
        window = self.codebook.context.negation_window
        for i in range(start - 1, max(start - 1 - window, -1), -1):
            low = doc[i].lower_
            if low in self.negation:
                nxt = doc[i + 1].lower_ if i + 1 < len(doc) else ""
                return nxt not in self.negation_exceptions
            for cue in self.contrast:
                n = len(cue)
                if i - n + 1 >= 0 and tuple(t.lower_ for t in doc[i - n + 1:i + 1]) == cue:
                    return True
            if low in self.clause_breaks:
                return False
        return False

    # -- sentence-level step -------------------------------------------------
    def label(self, doc: Doc) -> tuple[dict[str, int], dict[str, list[dict]]]:
        """Turn the spans of a tagged sentence into 0/1 codes and evidence.

        Context rules, in order:
          * within one school / between individuals: collaboration matches
            marked `needs_institution` are dropped when the sentence has a
            classroom/individual cue and no institution cue;
          * consultation only: partner/agency matches in a sentence that just
            lists who was met or consulted (a consultation cue and no cue of
            working together) are dropped;
          * multi-agency: collaboration in a sentence with an agency cue
            (police, health, social care...) is also CROSS_SECTOR, and its
            partnership mentions are covered by that type;
          * local area: a grouping or partnership mention with a local-area cue
            is LOCAL_PARTNERSHIP; grouping mentions are then covered by it;
          * fallback: NETWORK only for partnership mentions that no specific
            type covers (overlapping it, or introducing it with "such as",
            "including", "as part of"...).
        Partnership types only named (academy chains, NLEs) get their type but
        not COLLABORATION: only collaboration patterns set that stance code.
        """
        cb = self.codebook
        spans = list(doc.spans[self.spans_key])
        original = doc.user_data.get(TEXT_KEY) or doc.text
        text = original.lower()
        blanked = text
        for span in doc.spans.get(DROPPED_KEY, []):
            if span.id_ == "exclusion":
                blanked = (blanked[:span.start_char] + " " * len(span.text)
                           + blanked[span.end_char:])

        def has(regex, where=blanked):
            return regex is not None and regex.search(where) is not None

        # each cue test runs only when a span it could affect is present
        if not spans:
            return dict.fromkeys(cb.code_columns, 0), {}
        targets = set(cb.context.consultation_targets)
        ids = {s.id_ for s in spans}
        bare_partners = "partners" in ids
        collaboration = any(s.label_ == "collaboration" for s in spans)
        agency_context = (collaboration or bare_partners) and (
            has(self.re_agency) or (bare_partners and not has(self.re_school)))
        needs_institution = collaboration and any(
            getattr(self.flags.get((s.label_, s.id_)), "needs_institution", False)
            for s in spans)
        in_school = needs_institution and not agency_context and \
            has(self.re_within_school) and not has(self.re_institution)
        joint_working = bare_partners and agency_context and has(self.re_joint_working)
        consultation = bool(ids & targets) and has(self.re_consultation) and \
            not has(self.re_consultation_exempt)
        kept: list[tuple[Span, str]] = []
        for span in spans:
            pattern = self.flags.get((span.label_, span.id_))
            if in_school and span.label_ == "collaboration" and pattern and \
                    pattern.needs_institution:
                continue
            if consultation and span.id_ in targets:
                continue
            if agency_context and span.id_ == "partners" and not joint_working:
                continue  # "partners" only names the other agencies
            kept.append((span, span.id_))

        by_code: dict[str, list[tuple[int, int, str, str]]] = defaultdict(list)
        for span, rule in kept:
            by_code[span.label_].append((span.start_char, span.end_char, span.text, rule))
        network_spans = [s for s, _ in kept if s.label_ == self.fallback]
        covered: set[tuple[int, int]] = set()

        if by_code.get("collaboration") and "cross_sector" in cb.codes and agency_context:
            match = self.re_agency.search(blanked) if self.re_agency else None
            if match:
                start, end = match.start(), match.end()
            else:  # the other agencies are named only as "partners"
                first = next(s for s in spans if s.id_ == "partners")
                start, end = first.start_char, first.end_char
            by_code["cross_sector"].append((start, end, original[start:end], "multi_agency"))
        multi_agency = agency_context or bool(by_code.get("cross_sector"))
        if multi_agency:  # partnership mentions here are the multi-agency partnership
            covered.update((s.start, s.end) for s in network_spans)

        if "local_partnership" in cb.codes and not multi_agency and self.re_local_area:
            groupings = [s for s, _ in kept if s.label_ in ("collaboration", self.fallback)
                         and (self._is_grouping(s) or s.id_ == "partnership")]
            match = self.re_local_area.search(blanked) if groupings else None
            if match:
                by_code["local_partnership"].append(
                    (match.start(), match.end(), original[match.start():match.end()],
                     "local_area"))
                covered.update((s.start, s.end) for s in groupings if self._is_grouping(s))

        if self.fallback:
            specific = [s for s, _ in kept
                        if s.label_ in self.partnership_codes and s.label_ != self.fallback]
            for span in network_spans:
                if (span.start, span.end) in covered:
                    continue
                if any(o.start < span.end and span.start < o.end for o in specific) or \
                        self._introduces_type(doc, span, specific):
                    covered.add((span.start, span.end))
            by_code[self.fallback] = [
                item for item, span in zip(by_code.get(self.fallback, []), network_spans, strict=True)
                if (span.start, span.end) not in covered
            ]

        labels = {code: int(bool(by_code.get(code))) for code in cb.code_columns}
        evidence = {
            code: [{"text": t, "start": s, "end": e, "rule": r}
                   for s, e, t, r in sorted(by_code[code])]
            for code in cb.code_columns if labels[code]
        }
        return labels, evidence

    def _is_grouping(self, span: Span) -> bool:
        pattern = self.flags.get((span.label_, span.id_))
        return bool(pattern and pattern.grouping)

    def _introduces_type(self, doc: Doc, span: Span, specific: list[Span]) -> bool:
        """True if a coverage cue follows the span and a specific type follows the cue."""
        window = self.codebook.context.coverage_window
        stop = min(len(doc), span.end + window)
        for i in range(span.end, stop):
            for cue in self.coverage:
                n = len(cue)
                if tuple(t.lower_ for t in doc[i:i + n]) == cue:
                    after = i + n
                    return any(after <= o.start < after + window for o in specific)
        return False


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
