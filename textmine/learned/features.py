"""Sentence features for the learned coder: what the rules found, the words, the genre, the neighbours.

Every sentence becomes a list of feature names (strings), later mapped to
columns through a Vocabulary built at training time:

* rule features (from the codebook's tagger, `textmine.coding.Coder`): the
  rules' 0/1 label per code (`r:code`), every kept pattern match
  (`p:code:pattern_id`), every dropped match with its reason (`d:code:reason`,
  e.g. a negation or a non-target sense), the context rule that set a code
  (`e:code:rule`, e.g. multi_agency) and the context cues present in the
  sentence (`c:agency`, `c:within_school`...);
* word features: lower-case words mapped to their lookup lemma, as unigrams
  and bigrams (`w:...`), kept with their character offsets so that the terms
  behind a decision can be shown as evidence;
* genre: `g:inspection` for sentences of inspection reports, and the rule
  features again prefixed with the genre, so a rule can weigh differently in
  a children's-services report;
* neighbours: the rules' labels and cues of the previous and next sentence of
  the same document (`prev:...`, `next:...`) where they are known;
* concept cues (`k:...`): broad word families named in the codebook's
  descriptions and conventions (parents' choice, places and rolls, pulling staff
  or pupils, promotion, rankings, threats to other schools, new providers,
  groupings of local authorities, area groupings, area programmes by their
  abbreviations, and organisations of other sectors: universities, businesses,
  independent schools, colleges, charities). They name no code: the model
  learns what each cue is worth for each code (`textmine.learned.train` averages
  the fit with and without them, which keeps the rules' weight);
* character n-grams (`ch:...`, 3 to 5 characters of each space-padded word,
  computed in `textmine.learned.model.FeatureSpace` from `SentenceFeatures.words`),
  which let spellings and word forms unseen in training share weight.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from textmine.coding import Coder
    from textmine.learned.model import FeatureSpace


INSPECTION_GENRE = "inspection_report"
_TOKEN = re.compile(r"[a-z0-9]+(?:['’\-][a-z0-9]+)*")
# cue vocabularies of the tagger's context rules, by feature name -> TextmineTagger attribute
CUE_ATTRIBUTES = {
    "agency": "re_agency",
    "within_school": "re_within_school",
    "institution": "re_institution",
    "joint_working": "re_joint_working",
    "consultation": "re_consultation",
    "local_area": "re_local_area",
    "school": "re_school",
}
# concept cues (feature `k:<name>`), from the codebook's descriptions and conventions
CONCEPT_CUE_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "choice",
        r"\b(?:choice|choices|choose|chose|chosen|choosing|preference|preferences|"
        r"shortlist\w*)\b",
    ),
    (
        "places",
        r"\b(?:surplus|spare|empty) places\b|\badmissions?\b|\boversubscri\w+|"
        r"\bfalling (?:rolls?|numbers|pupil numbers)\b|\b(?:pupil|student) numbers\b|"
        r"\bon roll\b|\brolls\b",
    ),
    (
        "pull",
        r"\b(?:recruit\w*|poach\w*|lure[sd]?|luring|headhunt\w*|retain|retention|"
        r"attract\w*|incentives?|bonus(?:es)?|persuaded)\b",
    ),
    (
        "promotion",
        r"\b(?:promot\w+|advertis\w+|marketing|marketers?|brand\w*|prospectus\w*|"
        r"open days?)\b",
    ),
    (
        "ranking",
        r"\b(?:league|rank\w*|tables|outperform\w*|top schools?|best schools?|"
        r"brightest|most able|more able)\b",
    ),
    (
        "threat",
        r"\b(?:viability|viable|undermin\w+|at the expense of|damag\w+|threat\w*|"
        r"unfair\w*|level playing field|cream\w*|selective|selection|game the system|"
        r"gaming)\b",
    ),
    (
        "new_provider",
        r"\bfree schools?\b|\bnew (?:sixth[- ]forms?|schools?|academy|academies)\b|"
        r"\b(?:neighbouring|existing|nearby|local|established) "
        r"(?:schools?|colleges?|comprehensives?)\b",
    ),
    (
        "authorities",
        r"\b(?:other|neighbouring|two|three|four|five|six|several|partner|"
        r"surrounding) (?:local )?(?:authorities|councils|boroughs|las)\b|"
        r"\bcross[- ]authority\b|\bregional\b|\bregions?\b|\bpan[- ]\w+|"
        r"\bsub[- ]regional\b|\bpartners? in practice\b|\bsector[- ]led\b",
    ),
    (
        "area_group",
        r"\bconsorti\w+|\bclusters?\b|\bfamil(?:y|ies) of schools\b|\barea[- ]based\b|"
        r"\blocal authority areas?\b|\bbroker\w*|\beducation partnerships?\b|"
        r"\bcollegiate\b|\bexcellence in cities\b|\beducation action zones?\b|"
        r"\bopportunity areas?\b|\b(?:london|city) challenge\b|\bplace[- ]based\b|"
        r"\bin (?:the|their|each|every) (?:area|locality|borough|district|county)\b",
    ),
    (
        "area_programme",
        r"\b(?:eazs?|eics?|oas?|action zones?|action forums?|bep)\b|\bcamden learning\b|"
        r"\bbirmingham education partnership\b",
    ),
    (
        "other_sector",
        r"\buniversit(?:y|ies)\b|\bheis?\b|\bhigher education\b|\bbusiness(?:es)?\b|"
        r"\bemployers?\b|\bfirms?\b|\bcompan(?:y|ies)\b|"
        r"\b(?:independent|private|fee[- ]paying) schools?\b|\bfurther education\b|"
        r"\bcolleges?\b|\bcharit(?:y|ies)\b|\bvoluntary sector\b",
    ),
)
# every match of a cue starts a word (or a part of a hyphenated word) with the first four
# letters of one of its keys: a cheap word-prefix lookup before the regex
CONCEPT_CUE_KEYS: dict[str, tuple[str, ...]] = {
    "choice": ("choice", "choos", "chose", "preferen", "shortlist"),
    "places": ("places", "admission", "oversubscri", "falling", "numbers", "roll"),
    "pull": (
        "recruit",
        "poach",
        "lure",
        "luring",
        "headhunt",
        "retain",
        "retention",
        "attract",
        "incentive",
        "bonus",
        "persuaded",
    ),
    "promotion": ("promot", "advertis", "marketing", "marketer", "brand", "prospectus", "open day"),
    "ranking": (
        "league",
        "rank",
        "tables",
        "outperform",
        "top school",
        "best school",
        "brightest",
        "most able",
        "more able",
    ),
    "threat": (
        "viab",
        "undermin",
        "expense",
        "damag",
        "threat",
        "unfair",
        "level playing",
        "cream",
        "selecti",
        "game the system",
        "gaming",
    ),
    "new_provider": (
        "free school",
        "new s",
        "new a",
        "neighbouring",
        "existing",
        "nearby",
        "local s",
        "local c",
        "established",
    ),
    "authorities": (
        "authorities",
        "councils",
        "boroughs",
        "las",
        "cross",
        "region",
        "pan",
        "practice",
        "sector",
    ),
    "area_group": (
        "consorti",
        "cluster",
        "famil",
        "area",
        "broker",
        "partnership",
        "collegiate",
        "excellence in cities",
        "zone",
        "challenge",
        "place",
        "locality",
        "borough",
        "district",
        "county",
    ),
    "area_programme": (
        "eaz",
        "eazs",
        "eic",
        "eics",
        "oa",
        "oas",
        "action",
        "bep",
        "camden learning",
        "birmingham",
    ),
    "other_sector": (
        "universit",
        "hei",
        "heis",
        "higher",
        "business",
        "employer",
        "firm",
        "compan",
        "independent",
        "private",
        "fee",
        "further",
        "college",
        "charit",
        "voluntary",
    ),
}
CONCEPT_CUES: dict[str, re.Pattern] = {
    name: re.compile(pattern) for name, pattern in CONCEPT_CUE_PATTERNS
}
_PREFIX = 4


def _cue_prefixes(keys: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Word prefix (first four letters of a key's first word) -> the cues worth testing."""
    table: dict[str, tuple[str, ...]] = {}
    for name, cue_keys in keys.items():
        for prefix in sorted({key.split()[0][:_PREFIX] for key in cue_keys}):
            table[prefix] = (*table.get(prefix, ()), name)
    return table


CONCEPT_CUE_PREFIXES = _cue_prefixes(CONCEPT_CUE_KEYS)
CHAR_NGRAM_SIZES = (3, 4, 5)


@dataclass(frozen=True)
class FeatureConfig:
    """Which feature groups a model uses (saved with the model)."""

    words: bool = True
    bigrams: bool = True
    rules: bool = True
    genre: bool = True
    neighbours: bool = True
    embeddings: bool = False
    concepts: bool = True
    chars: bool = False  # measured: better types, but too slow for the default

    def to_dict(self) -> dict:
        """Plain dict for model.json."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        """From model.json (unknown keys ignored; a group the file does not name is off).

        Groups added after a model was written (concepts, chars) stay off for
        that model, so an older model folder codes exactly as it was trained.
        """
        known = {k: bool(data.get(k, False)) for k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class RuleView:
    """What the rule tagger found in one sentence."""

    labels: dict[str, int]
    evidence: dict[str, list[dict]]
    kept: list[tuple[str, str]] = field(default_factory=list)  # (code, pattern id)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (code, reason)
    cues: list[str] = field(default_factory=list)


@dataclass
class SentenceFeatures:
    """Feature names of one sentence."""

    names: list[str]
    words: list[str] | None = None  # lower-case words, for character n-grams


def analyse_rules(coder: Coder, texts: Sequence[str]) -> list[RuleView]:
    """The rule tagger's labels, evidence, kept and dropped matches and cues per text."""
    from textmine.tagger import DROPPED_KEY, SPANS_KEY

    columns = coder.codebook.code_columns
    tagger = coder.tagger
    cue_regexes = [(name, getattr(tagger, attr, None)) for name, attr in CUE_ATTRIBUTES.items()]
    cue_regexes = [(name, regex) for name, regex in cue_regexes if regex is not None]
    views: list[RuleView] = []
    candidates: list[int] = []
    for i, text in enumerate(texts):
        views.append(RuleView(labels=dict.fromkeys(columns, 0), evidence={}))
        if text and coder.is_candidate(text):
            candidates.append(i)
    docs = coder.tag(texts[i] for i in candidates)
    for i, doc in zip(candidates, docs, strict=True):
        labels, evidence = tagger.label(doc)
        view = views[i]
        view.labels, view.evidence = labels, evidence
        view.kept = [(s.label_, s.id_) for s in doc.spans[SPANS_KEY]]
        view.dropped = [(s.label_, s.id_) for s in doc.spans.get(DROPPED_KEY, [])]
        low = texts[i].lower()
        view.cues = [name for name, regex in cue_regexes if regex is not None and regex.search(low)]
    return views


def word_tokens(text: str, lemmas: dict[str, str]) -> list[tuple[str, int, int]]:
    """(lemma, start, end) of each word of the text, lower-cased and lemmatised."""
    low = text.lower()
    return [(lemmas.get(m.group(), m.group()), m.start(), m.end()) for m in _TOKEN.finditer(low)]


def word_spans(
    text: str, lemmas: dict[str, str], bigrams: bool = True
) -> dict[str, list[tuple[int, int]]]:
    """Word feature name -> its (start, end) spans in the text (for evidence)."""
    tokens = word_tokens(text, lemmas)
    spans: dict[str, list[tuple[int, int]]] = {}
    for lemma, start, end in tokens:
        spans.setdefault(f"w:{lemma}", []).append((start, end))
    if bigrams:
        for (a, s, _), (b, _, e) in itertools.pairwise(tokens):
            spans.setdefault(f"w:{a} {b}", []).append((s, e))
    return spans


def word_feature_names(
    text: str, lemmas: dict[str, str], bigrams: bool = True, tokens: Sequence[str] | None = None
) -> list[str]:
    """The word features of a text: lemma unigrams and bigrams (the keys of word_spans).

    `tokens`: the text's lower-case tokens when already known.
    """
    if tokens is None:
        tokens = _TOKEN.findall(text.lower())
    words: list[str] = list(map(lemmas.get, tokens, tokens))  # type: ignore[arg-type]  # the lemma, else the token
    names = ["w:" + w for w in words]
    if bigrams:
        names += ["w:" + a + " " + b for a, b in itertools.pairwise(words)]
    return names


def concept_feature_names(text: str, words: Sequence[str] | None = None) -> list[str]:
    """The concept cues (`k:<name>`) present in a text (`words`: its lower-case tokens)."""
    low = text.lower()
    if words is None:
        words = _TOKEN.findall(low)
    prefixes = CONCEPT_CUE_PREFIXES
    heads = {word[:_PREFIX] for word in words}
    if "-" in low:  # "pan-cheshire", "sub-regional": every part starts a word
        for word in words:
            if "-" in word:
                heads.update(part[:_PREFIX] for part in word.split("-"))
    candidates: set[str] = set()
    for head in heads:
        found = prefixes.get(head)
        if found:
            candidates.update(found)
    if not candidates:
        return []
    return [
        f"k:{name}"
        for name, regex in CONCEPT_CUES.items()
        if name in candidates and regex.search(low)
    ]


def char_ngrams(word: str) -> list[str]:
    """Character n-gram features (`ch:...`) of one word, padded with a space each side."""
    padded = f" {word} "
    grams = {padded[i : i + n] for n in CHAR_NGRAM_SIZES for i in range(len(padded) - n + 1)}
    if len(padded) < CHAR_NGRAM_SIZES[0]:
        grams.add(padded)
    return ["ch:" + g for g in sorted(grams)]


def rule_feature_names(view: RuleView) -> list[str]:
    """The rule feature names of one sentence (without genre or neighbour prefixes)."""
    names = [f"r:{code}" for code, value in view.labels.items() if value]
    names += [f"p:{code}:{pid}" for code, pid in view.kept]
    names += [f"d:{code}:{reason}" for code, reason in view.dropped]
    for code, items in view.evidence.items():
        names += [
            f"e:{code}:{item.get('rule', '')}"
            for item in items
            if item.get("rule") in ("multi_agency", "local_area")
        ]
    names += [f"c:{cue}" for cue in view.cues]
    return sorted(set(names))


def sentence_features(
    texts: Sequence[str],
    views: Sequence[RuleView],
    genres: Sequence[bool],
    neighbours: Sequence[tuple[int, int]],
    lemmas: dict[str, str],
    config: FeatureConfig,
) -> list[SentenceFeatures]:
    """Feature names for each sentence.

    `genres[i]` is True for a sentence of an inspection report; `neighbours[i]`
    is (index of the previous sentence, index of the next sentence) in the same
    lists, -1 where there is none.
    """
    rule_names = [rule_feature_names(v) for v in views] if config.rules else [[] for _ in views]
    out: list[SentenceFeatures] = []
    for i, text in enumerate(texts):
        words = _TOKEN.findall(text.lower())
        names = word_feature_names(text, lemmas, config.bigrams, words) if config.words else []
        names += _rule_and_context_names(i, text, words, rule_names, genres, neighbours, config)
        out.append(SentenceFeatures(names=names, words=words if config.chars else None))
    return out


def _rule_and_context_names(
    i: int,
    text: str,
    words: list[str],
    rule_names: Sequence[list[str]],
    genres: Sequence[bool],
    neighbours: Sequence[tuple[int, int]],
    config: FeatureConfig,
) -> list[str]:
    """Sentence i's rule and concept names, their genre copies and its neighbours' rule names."""
    own = rule_names[i] + concept_feature_names(text, words) if config.concepts else rule_names[i]
    names = list(own)
    if config.genre and genres[i]:
        names.append("g:inspection")
        names.extend(f"g:{n}" for n in own)
    if config.neighbours and config.rules:
        before, after = neighbours[i]
        if before >= 0:
            names.extend(f"prev:{n}" for n in rule_names[before] if n[0] in "rc")
        if after >= 0:
            names.extend(f"next:{n}" for n in rule_names[after] if n[0] in "rc")
    return names


def feature_columns(
    texts: Sequence[str],
    views: Sequence[RuleView],
    genres: Sequence[bool],
    neighbours: Sequence[tuple[int, int]],
    lemmas: dict[str, str],
    config: FeatureConfig,
    space: FeatureSpace,
) -> list[list[int]]:
    """The columns of `space` that each sentence's feature names fill, ascending.

    The same as looking up the names of `sentence_features` in `space.index`
    (names outside the vocabulary dropped), without writing out the word features:
    unigrams and bigrams go straight to their columns. Character n-grams are not
    included (`config.chars` needs `sentence_features`).
    """
    column = space.index.get
    word_column = space.word_columns.get
    bigram_column = space.bigram_columns.get
    rule_names = [rule_feature_names(v) for v in views] if config.rules else [[] for _ in views]
    out: list[list[int]] = []
    for i, text in enumerate(texts):
        tokens = _TOKEN.findall(text.lower())
        found: set[int | None] = set()
        if config.words:
            words = list(map(lemmas.get, tokens, tokens))
            found.update(map(word_column, words))  # type: ignore[arg-type]  # the lemma, else the token
            if config.bigrams:
                found.update(map(bigram_column, itertools.pairwise(words)))  # type: ignore[arg-type]
        context = _rule_and_context_names(i, text, tokens, rule_names, genres, neighbours, config)
        found.update(map(column, context))
        found.discard(None)
        out.append(sorted(found))  # type: ignore[type-var,arg-type]  # None discarded
    return out


def neighbour_indices(
    doc_ids: Sequence, order: Sequence[int] | None = None
) -> list[tuple[int, int]]:
    """(previous, next) row index of each row within its document; -1 where none.

    Rows of one document are ordered by `order` (e.g. sentence_index) when given,
    else by their position. Rows with an empty doc id have no neighbours.
    """
    n = len(doc_ids)
    result = [(-1, -1)] * n
    positions = np.arange(n) if order is None else np.asarray(order)
    by_doc: dict = {}
    for i, doc in enumerate(doc_ids):
        if doc is None or doc == "" or (isinstance(doc, float) and np.isnan(doc)):
            continue
        by_doc.setdefault(doc, []).append(i)
    for rows in by_doc.values():
        rows.sort(key=lambda r: positions[r])
        for k, row in enumerate(rows):
            before = rows[k - 1] if k > 0 and positions[rows[k - 1]] == positions[row] - 1 else -1
            after = (
                rows[k + 1]
                if k + 1 < len(rows) and positions[rows[k + 1]] == positions[row] + 1
                else -1
            )
            result[row] = (before, after)
    return result


def is_inspection(values: Sequence) -> list[bool]:
    """True where a genre value (doc_type or source_kind) is an inspection report."""
    return [isinstance(v, str) and v.strip().lower() == INSPECTION_GENRE for v in values]


def lower_lemmas(coder: Coder) -> dict[str, str]:
    """The tagger's lookup lemma table, lower-case form -> lower-case lemma (cached)."""
    cache = coder.codebook.cache
    table = cache.get("learned_lemmas")
    if table is None:
        table = {}
        for form, lemma in coder.tagger.lemmas.items():
            low = form.lower()
            if form == low or low not in table:
                table[low] = lemma.lower()
        cache["learned_lemmas"] = table
    return table


def featurize(
    coder: Coder,
    texts: Sequence[str],
    genres: Sequence[bool],
    neighbours: Sequence[tuple[int, int]],
    config: FeatureConfig,
) -> tuple[list[RuleView], list[SentenceFeatures]]:
    """Rule views and feature names of sentences (one call = the rules run once)."""
    views = analyse_rules(coder, texts)
    return views, sentence_features(texts, views, genres, neighbours, lower_lemmas(coder), config)
