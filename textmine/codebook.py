"""The codebook as data: load, validate and version the YAML coding scheme.

A codebook names each code (a stance or a partnership type), its patterns
(lemma phrases and spaCy token patterns), its exclusions (non-target senses)
and the vocabularies the tagger's context rules use. Its version is the first
12 hex digits of the SHA-256 of everything in the file that decides codes
(patterns, exclusions, kinds, context vocabularies...), so every coded row says
exactly which scheme produced it; comments, layout and what only people read
(names, descriptions, colours) leave the version, the stored codes and trained
models as they are.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from textmine.columns import CODE_COLUMNS

DEFAULT_CODEBOOK = "codebook.yml"
CODE_KINDS = ("stance", "partnership")
PATTERN_ATTRS = ("LEMMA", "LOWER")
# Token-pattern keys a codebook may use (spaCy Matcher keys; lemmas are lower-cased).
TOKEN_KEYS = {
    "LEMMA",
    "LOWER",
    "ORTH",
    "TEXT",
    "NORM",
    "IS_ALPHA",
    "IS_DIGIT",
    "IS_PUNCT",
    "IS_TITLE",
    "IS_UPPER",
    "IS_LOWER",
    "LIKE_NUM",
    "LENGTH",
    "OP",
}
_CODE_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_CODE_FIELDS = {"name", "kind", "colour", "description", "patterns", "exclusions", "fallback"}
_PATTERN_FIELDS = {
    "phrase",
    "tokens",
    "id",
    "attr",
    "needs_institution",
    "grouping",
    "prefilter",
    "requires",
}
_CONTEXT_LISTS = (
    "negation_cues",
    "negation_exceptions",
    "contrast_cues",
    "clause_breaks",
    "coverage_cues",
    "within_school_cues",
    "institution_cues",
    "agency_cues",
    "joint_working_cues",
    "consultation_cues",
    "consultation_targets",
    "consultation_exempt_cues",
    "local_area_cues",
    "school_cues",
    "prefilter_avoid",
)
_CONTEXT_INTS = ("negation_window", "coverage_window")


class CodebookError(ValueError):
    """A codebook file that cannot be used; the message names the entry and the problem."""


@dataclass(frozen=True)
class Pattern:
    """One pattern of a code: a lemma/lower-case phrase or a spaCy token pattern."""

    code: str
    id: str
    phrase: str | None = None
    tokens: tuple[dict, ...] | None = None
    attr: str = "LEMMA"
    needs_institution: bool = False
    grouping: bool = False
    prefilter: tuple[str, ...] = ()
    prefilter_regex: tuple[str, ...] = ()  # searched in the lower-case, space-normalised text
    requires: tuple[str, ...] = ()  # the sentence must contain one of these words
    exclusion: bool = False


@dataclass(frozen=True)
class Code:
    """One code: a column of the coded output."""

    key: str
    name: str
    kind: str  # "stance" or "partnership"
    colour: str
    description: str
    patterns: tuple[Pattern, ...]
    exclusions: tuple[Pattern, ...]
    fallback: bool = False


@dataclass(frozen=True)
class ContextRules:
    """Vocabularies and windows of the tagger's context rules (see tagger.py)."""

    negation_cues: tuple[str, ...] = ()
    negation_exceptions: tuple[str, ...] = ()
    contrast_cues: tuple[str, ...] = ()
    clause_breaks: tuple[str, ...] = ()
    coverage_cues: tuple[str, ...] = ()
    within_school_cues: tuple[str, ...] = ()
    institution_cues: tuple[str, ...] = ()
    agency_cues: tuple[str, ...] = ()
    joint_working_cues: tuple[str, ...] = ()
    consultation_cues: tuple[str, ...] = ()
    consultation_targets: tuple[str, ...] = ()
    consultation_exempt_cues: tuple[str, ...] = ()
    local_area_cues: tuple[str, ...] = ()
    school_cues: tuple[str, ...] = ()
    prefilter_avoid: tuple[str, ...] = ()
    negation_window: int = 4
    coverage_window: int = 8


@dataclass
class Codebook:
    """A validated codebook. `version` is the content hash of the file."""

    name: str
    codes: dict[str, Code]
    context: ContextRules
    version: str
    path: str | None = None
    # Built tagger pipelines keyed by purpose; filled by textmine.coding.
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def code_columns(self) -> list[str]:
        """Output columns: the ten standard codes, then any codes a researcher added."""
        return list(CODE_COLUMNS) + [k for k in self.codes if k not in CODE_COLUMNS]

    @property
    def stance_codes(self) -> list[str]:
        """The stance codes (kind: stance), in column order."""
        return [k for k in self.code_columns if self.codes[k].kind == "stance"]

    @property
    def partnership_codes(self) -> list[str]:
        """The partnership types (kind: partnership), in column order."""
        return [k for k in self.code_columns if self.codes[k].kind == "partnership"]

    @property
    def fallback_code(self) -> str | None:
        """The partnership type used when no more specific type applies; None if none is."""
        return next((k for k, c in self.codes.items() if c.fallback), None)

    def colours(self) -> dict[str, str]:
        """Hex colour of each code, by code name."""
        return {k: c.colour for k, c in self.codes.items()}

    def __getstate__(self) -> dict:
        # the cached pipeline is rebuilt where the codebook is unpickled (e.g. a worker)
        state = self.__dict__.copy()
        state["cache"] = {}
        return state


def default_codebook_path() -> Path:
    """Path of the packaged default codebook."""
    return Path(str(resources.files("textmine") / "data" / DEFAULT_CODEBOOK))


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Read and validate a codebook YAML file (default: the packaged one).

    Raises CodebookError naming the file, the entry and what is wrong.
    """
    file = Path(path) if path is not None else default_codebook_path()
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise CodebookError(f"codebook {file}: cannot read the file ({exc.strerror})") from exc
    return parse_codebook(raw, source=str(file))


PRESENTATION_KEYS = ("name", "description", "colour")  # per code: read by people only


def coding_version(data: object) -> str:
    """The version of parsed codebook YAML: a hash of what decides the codes.

    The top-level `name` and each code's `name`, `description` and `colour` are
    left out, and so are comments and layout (the YAML is hashed as data).
    """
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "name"}
        codes = data.get("codes")
        if isinstance(codes, dict):
            data["codes"] = {
                key: (
                    {k: v for k, v in entry.items() if k not in PRESENTATION_KEYS}
                    if isinstance(entry, dict)
                    else entry
                )
                for key, entry in codes.items()
            }
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def codebook_file_version(path: str | Path | None = None) -> str:
    """The version of a codebook file without validating it (cheap; see coding_version)."""
    file = Path(path) if path is not None else default_codebook_path()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return coding_version(yaml.load(file.read_text(encoding="utf-8"), Loader=loader))


def parse_codebook(raw: bytes | str, *, source: str = "<string>") -> Codebook:
    """Validate codebook YAML given as bytes or text; see load_codebook."""
    data_bytes = raw.encode("utf-8") if isinstance(raw, str) else raw
    try:
        # libyaml's loader when present: the same data, about 7x faster (CLI start-up)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(data_bytes.decode("utf-8"), Loader=loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CodebookError(f"codebook {source}: not valid YAML ({exc})") from exc

    def fail(where: str, problem: str) -> CodebookError:
        return CodebookError(f"codebook {source}: {where}: {problem}")

    if not isinstance(data, dict):
        raise fail("top level", "must be a mapping with a `codes` entry")
    version = coding_version(data)
    codes_raw = data.get("codes")
    if not isinstance(codes_raw, dict) or not codes_raw:
        raise fail("codes", "missing or empty; expected a mapping of code name to entry")
    missing = [c for c in CODE_COLUMNS if c not in codes_raw]
    if missing:
        raise fail(
            "codes",
            f"missing code(s) {', '.join(missing)}; the output needs all of "
            f"{', '.join(CODE_COLUMNS)} (add new codes after them)",
        )
    codes: dict[str, Code] = {}
    for key, entry in codes_raw.items():
        codes[key] = _parse_code(key, entry, fail)
    fallbacks = [k for k, c in codes.items() if c.fallback]
    if len(fallbacks) > 1:
        raise fail("codes", f"only one code may be the fallback, found {', '.join(fallbacks)}")
    if any(codes[k].kind != "stance" for k in ("competition", "collaboration")):
        raise fail("codes", "competition and collaboration must have kind: stance")
    context = _parse_context(data.get("context") or {}, fail, codes)
    _check_patterns_compile(codes, fail)
    return Codebook(
        name=str(data.get("name") or source),
        codes=codes,
        context=context,
        version=version,
        path=source,
    )


def _reject_unknown(raw: dict, allowed: set[str], noun: str, where: str, fail) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise fail(
            where,
            f"unknown {noun} {', '.join(sorted(map(str, unknown)))}; "
            f"allowed: {', '.join(sorted(allowed))}",
        )


def _parse_code(key: Any, entry: Any, fail) -> Code:
    where = f"codes.{key}"
    if not isinstance(key, str) or not _CODE_KEY.match(key):
        raise fail(where, "a code name must be lower-case letters, digits and underscores")
    if not isinstance(entry, dict):
        raise fail(where, "must be a mapping with name, kind, colour, description, patterns")
    _reject_unknown(entry, _CODE_FIELDS, "field(s)", where, fail)
    for name in ("name", "kind", "colour", "description", "patterns"):
        if name not in entry or entry[name] in (None, "", []):
            raise fail(where, f"missing field `{name}`")
    if entry["kind"] not in CODE_KINDS:
        raise fail(f"{where}.kind", f"{entry['kind']!r} is not one of {', '.join(CODE_KINDS)}")
    colour = str(entry["colour"])
    if not _COLOUR.match(colour):
        raise fail(f"{where}.colour", f"{colour!r} is not a hex colour like '#1f77b4'")
    if not isinstance(entry["patterns"], list):
        raise fail(f"{where}.patterns", "must be a list")
    exclusions_raw = entry.get("exclusions") or []
    if not isinstance(exclusions_raw, list):
        raise fail(f"{where}.exclusions", "must be a list")
    patterns = tuple(
        _parse_pattern(key, p, f"{where}.patterns[{i}]", fail, exclusion=False)
        for i, p in enumerate(entry["patterns"])
    )
    exclusions = tuple(
        _parse_pattern(key, p, f"{where}.exclusions[{i}]", fail, exclusion=True)
        for i, p in enumerate(exclusions_raw)
    )
    fallback = entry.get("fallback", False)
    if not isinstance(fallback, bool):
        raise fail(f"{where}.fallback", "must be true or false")
    if fallback and entry["kind"] != "partnership":
        raise fail(f"{where}.fallback", "only a partnership type can be the fallback")
    return Code(
        key=key,
        name=str(entry["name"]),
        kind=entry["kind"],
        colour=colour,
        description=" ".join(str(entry["description"]).split()),
        patterns=patterns,
        exclusions=exclusions,
        fallback=fallback,
    )


def _parse_pattern(code: str, raw: Any, where: str, fail, *, exclusion: bool) -> Pattern:
    if isinstance(raw, str):
        raw = {"phrase": raw}
    if not isinstance(raw, dict):
        raise fail(where, "a pattern is a phrase string or a mapping with `phrase` or `tokens`")
    _reject_unknown(raw, _PATTERN_FIELDS, "key(s)", where, fail)
    if ("phrase" in raw) == ("tokens" in raw):
        raise fail(where, "give exactly one of `phrase` or `tokens`")
    attr = raw.get("attr", "LEMMA")
    if attr not in PATTERN_ATTRS:
        raise fail(where, f"attr {attr!r} is not one of {', '.join(PATTERN_ATTRS)}")
    prefilter, prefilter_regex = _parse_prefilter(raw.get("prefilter", []), where, fail)
    requires = raw.get("requires", [])
    if isinstance(requires, str):
        requires = [requires]
    if not isinstance(requires, list) or not all(isinstance(p, str) and p for p in requires):
        raise fail(where, "requires must be a list of words or phrases")
    pid = str(raw.get("id") or (raw.get("phrase") or f"{code}_{where.rsplit('[', 1)[-1][:-1]}"))
    phrase = tokens = None
    if "phrase" in raw:
        phrase = raw["phrase"]
        if not isinstance(phrase, str) or not phrase.strip():
            raise fail(where, "phrase must be a non-empty string")
    else:
        tokens = raw["tokens"]
        if not isinstance(tokens, list) or not tokens:
            raise fail(where, "tokens must be a non-empty list of token specs")
        for j, spec in enumerate(tokens):
            _check_token_spec(spec, f"{where}.tokens[{j}]", fail)
        tokens = tuple(tokens)
    return Pattern(
        code=code,
        id=pid,
        phrase=phrase,
        tokens=tokens,
        attr=attr,
        needs_institution=bool(raw.get("needs_institution", False)),
        grouping=bool(raw.get("grouping", False)),
        prefilter=prefilter,
        prefilter_regex=prefilter_regex,
        requires=tuple(p.lower() for p in requires),
        exclusion=exclusion,
    )


def _parse_prefilter(prefilter: Any, where: str, fail) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A pattern's `prefilter` entry as (lower-case strings, regexes); each regex must compile."""
    if isinstance(prefilter, (str, dict)):
        prefilter = [prefilter]
    if not isinstance(prefilter, list):
        raise fail(where, "prefilter must be a list of strings or {regex: ...} mappings")
    regexes = []
    for k, item in enumerate(prefilter):
        if isinstance(item, dict) and set(item) == {"regex"} and isinstance(item["regex"], str):
            try:
                re.compile(item["regex"])
            except re.error as exc:
                raise fail(f"{where}.prefilter[{k}]", f"bad regex: {exc}") from None
            regexes.append(item["regex"])
        elif not (isinstance(item, str) and item):
            raise fail(
                f"{where}.prefilter[{k}]",
                "a prefilter item is a non-empty string or a {regex: ...} mapping",
            )
    strings = tuple(p.lower() for p in prefilter if isinstance(p, str))
    return strings, tuple(regexes)


def _check_token_spec(spec: Any, where: str, fail) -> None:
    if not isinstance(spec, dict) or not spec:
        raise fail(where, "a token spec must be a non-empty mapping like {LEMMA: compete}")
    for key, value in spec.items():
        if key not in TOKEN_KEYS:
            raise fail(
                where,
                f"unknown token attribute {key!r}; use one of {', '.join(sorted(TOKEN_KEYS))}",
            )
        if key == "LEMMA":
            values = value.get("IN", []) if isinstance(value, dict) else [value]
            bad = [v for v in values if isinstance(v, str) and v != v.lower()]
            if bad:
                raise fail(
                    where,
                    f"LEMMA values must be lower case (lemmas are lower-cased): "
                    f"{', '.join(map(repr, bad))}",
                )
        if key == "LOWER":
            values = value.get("IN", []) if isinstance(value, dict) else [value]
            bad = [v for v in values if isinstance(v, str) and v != v.lower()]
            if bad:
                raise fail(where, f"LOWER values must be lower case: {', '.join(map(repr, bad))}")
        if key == "OP" and not (
            value in ("?", "*", "+", "!") or re.fullmatch(r"\{\d*,?\d*\}", str(value))
        ):
            raise fail(where, f"OP {value!r} is not one of ?, *, +, ! or {{n,m}}")
        if isinstance(value, dict) and set(value) - {"IN", "NOT_IN", "REGEX"}:
            raise fail(
                where,
                f"unknown operator(s) {', '.join(sorted(set(value) - {'IN', 'NOT_IN', 'REGEX'}))} "
                f"for {key}; use IN, NOT_IN or REGEX",
            )
        if isinstance(value, dict) and "REGEX" in value:
            try:
                re.compile(value["REGEX"])
            except re.error as exc:
                raise fail(where, f"bad REGEX {value['REGEX']!r}: {exc}") from exc


def _parse_context(raw: Any, fail, codes: dict[str, Code]) -> ContextRules:
    if not isinstance(raw, dict):
        raise fail("context", "must be a mapping")
    known = set(_CONTEXT_LISTS) | set(_CONTEXT_INTS)
    unknown = set(raw) - known
    if unknown:
        raise fail(
            "context",
            f"unknown entry(ies) {', '.join(sorted(map(str, unknown)))}; "
            f"allowed: {', '.join(sorted(known))}",
        )
    values: dict[str, Any] = {}
    for name in _CONTEXT_LISTS:
        items = raw.get(name, [])
        if not isinstance(items, list) or not all(isinstance(x, (str, int)) for x in items):
            raise fail(f"context.{name}", "must be a list of words or phrases")
        values[name] = tuple(str(x).lower() for x in items)
    for name in _CONTEXT_INTS:
        if name in raw:
            if not isinstance(raw[name], int) or raw[name] < 1:
                raise fail(f"context.{name}", "must be a positive whole number")
            values[name] = raw[name]
    pattern_ids = {p.id for c in codes.values() for p in c.patterns}
    unknown_ids = [t for t in values["consultation_targets"] if t not in pattern_ids]
    if unknown_ids:
        raise fail(
            "context.consultation_targets", f"unknown pattern id(s) {', '.join(unknown_ids)}"
        )
    return ContextRules(**values)


def _check_patterns_compile(codes: dict[str, Code], fail) -> None:
    """Let spaCy's Matcher validate every token pattern (catches bad operators and values)."""
    from spacy.errors import MatchPatternError
    from spacy.matcher import Matcher
    from spacy.vocab import Vocab

    matcher = Matcher(Vocab(), validate=True)
    for code in codes.values():
        for kind, patterns in (("patterns", code.patterns), ("exclusions", code.exclusions)):
            for i, pattern in enumerate(patterns):
                if pattern.tokens is None:
                    continue
                try:
                    matcher.add(f"{code.key}:{i}", [list(pattern.tokens)])
                except (MatchPatternError, ValueError, TypeError) as exc:
                    detail = " ".join(str(exc).split())
                    raise fail(
                        f"codes.{code.key}.{kind}[{i}]", f"invalid token pattern: {detail}"
                    ) from exc
