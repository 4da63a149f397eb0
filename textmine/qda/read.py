"""Read REFI-QDA projects: human codings from QDA software back as a coded set.

`parse_qdpx` reads any tool's `.qdpx` (or bare `project.qde`) into plain
records; `read_qdpx` matches its sources to textmine's documents and its
selections to textmine's sentences by offsets (see `selection_codes_sentence`)
and returns a coded set in the codebook CSV format, one 0/1 column per code.
"""

from __future__ import annotations

import bisect
import posixpath
import re
import urllib.parse
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree as ET

import pandas as pd

from textmine.codebook import load_codebook
from textmine.columns import DOC_ID
from textmine.qda.schema import (
    INTERNAL_PREFIX,
    SOURCES_FOLDER,
    RefiQdaError,
    normalise_code_name,
    normalise_guid,
    source_guid,
)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _attr(element: ET.Element, name: str) -> str | None:
    """Attribute by local name, case-insensitive (tools differ in both)."""
    wanted = name.lower()
    for key, value in element.attrib.items():
        if _local(key).lower() == wanted:
            return value
    return None


@dataclass
class QdaSelection:
    """A text selection in a QDA project with the names of the codes applied to it."""

    guid: str
    start: int
    end: int
    code_guids: list[str]
    coders: list[str]
    name: str = ""  # what the tool named it: often the selected text (QualCoder), or an id


@dataclass
class QdaSource:
    """A text source of a QDA project; `text` is None when the file could not be found."""

    guid: str
    name: str
    text: str | None
    variables: dict[str, str]
    selections: list[QdaSelection]
    whole_source_codings: int = 0


@dataclass
class QdaProject:
    """The parts of a `.qdpx` that carry text codings, independent of the tool that wrote it."""

    origin: str
    codes: dict[str, str]  # normalised GUID -> code name (nested codes flattened)
    users: dict[str, str]  # normalised GUID -> user name
    sources: list[QdaSource]
    notes: list[str] = field(default_factory=list)


def _read_member(archive: zipfile.ZipFile, path: str | None, notes: list[str]) -> str | None:
    """Text of a source file referenced as internal://..., relative or by bare name."""
    if not path:
        return None
    reference = urllib.parse.unquote(path)
    for prefix in (INTERNAL_PREFIX, "relative://", "absolute://", "file://"):
        if reference.lower().startswith(prefix):
            reference = reference[len(prefix) :]
            break
    reference = reference.replace("\\", "/").lstrip("/")
    names = {name.lower(): name for name in archive.namelist()}
    candidates = [
        f"{SOURCES_FOLDER}/{reference}",
        reference,
        f"{SOURCES_FOLDER}/{posixpath.basename(reference)}",
    ]
    for candidate in candidates:
        member = names.get(candidate.lower())
        if member:
            data = archive.read(member)
            for encoding in ("utf-8-sig", "utf-16"):
                try:
                    return data.decode(encoding)
                except UnicodeDecodeError:
                    continue
            notes.append(f"{member}: not UTF-8 or UTF-16 text")
            return None
    basename = posixpath.basename(reference).lower()
    matches = [n for low, n in names.items() if posixpath.basename(low) == basename]
    if len(matches) == 1:
        return archive.read(matches[0]).decode("utf-8-sig", errors="replace")
    notes.append(f"source file {path!r} is not inside the archive")
    return None


def _text_sources(root: ET.Element) -> Iterable[ET.Element]:
    """TextSource elements, and text Representations of PDF sources."""
    for element in root.iter():
        name = _local(element.tag)
        if name == "TextSource":
            yield element
        elif name == "PDFSource":
            yield from _children(element, "Representation")


def parse_qdpx(path: str | Path) -> QdaProject:
    """Read a `.qdpx` (or a bare `project.qde`) into a tool-independent QdaProject.

    Namespaces are ignored (tools and versions differ), GUIDs compared without
    braces and case, codes flattened from any nesting depth, source texts taken
    from `PlainTextContent` or the referenced file (internal://, relative or by name).
    """
    path = Path(path)
    notes: list[str] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                qde = [n for n in archive.namelist() if n.lower().endswith(".qde")]
                if not qde:
                    raise RefiQdaError(f"{path}: no project.qde inside the archive")
                qde.sort(key=lambda n: (n.count("/"), n.lower() != "project.qde"))
                root = ET.fromstring(archive.read(qde[0]))
                sources = _parse_sources(root, archive, notes)
        else:
            root = ET.fromstring(path.read_bytes())
            sources = _parse_sources(root, None, notes)
    except (zipfile.BadZipFile, ET.ParseError, OSError) as error:
        raise RefiQdaError(f"{path}: not a readable REFI-QDA project ({error})") from error
    if _local(root.tag) != "Project":
        raise RefiQdaError(f"{path}: root element is <{_local(root.tag)}>, not <Project>")
    codes = {}
    for element in root.iter():
        if _local(element.tag) == "Code" and _attr(element, "guid"):
            codes[normalise_guid(_attr(element, "guid"))] = _attr(element, "name") or ""
    users = {
        normalise_guid(_attr(u, "guid")): _attr(u, "name") or ""
        for u in root.iter()
        if _local(u.tag) == "User" and _attr(u, "guid")
    }
    return QdaProject(
        origin=_attr(root, "origin") or "", codes=codes, users=users, sources=sources, notes=notes
    )


def _coding_refs(element: ET.Element) -> tuple[list[str], list[str]]:
    code_guids, coders = [], []
    for coding in _children(element, "Coding"):
        for ref in _children(coding, "CodeRef"):
            code_guids.append(normalise_guid(_attr(ref, "targetGUID")))
            coders.append(normalise_guid(_attr(coding, "creatingUser")))
    return code_guids, coders


def _parse_sources(
    root: ET.Element, archive: zipfile.ZipFile | None, notes: list[str]
) -> list[QdaSource]:
    variable_names = {
        normalise_guid(_attr(v, "guid")): (_attr(v, "name") or "")
        for v in root.iter()
        if _local(v.tag) == "Variable"
    }
    sources = []
    for element in _text_sources(root):
        content = _children(element, "PlainTextContent")
        text: str | None
        if content:
            text = content[0].text or ""
        elif archive is not None:
            text = _read_member(archive, _attr(element, "plainTextPath"), notes)
        else:
            text = None
        variables = {}
        for value_el in _children(element, "VariableValue"):
            refs = _children(value_el, "VariableRef")
            values = [c for c in value_el if _local(c.tag) != "VariableRef"]
            if refs and values:
                key = variable_names.get(normalise_guid(_attr(refs[0], "targetGUID")), "")
                variables[key.lower()] = (values[0].text or "").strip()
        selections = []
        for selection_el in _children(element, "PlainTextSelection"):
            try:
                start = int(_attr(selection_el, "startPosition") or "")
                end = int(_attr(selection_el, "endPosition") or "")
            except ValueError:
                notes.append(f"selection {_attr(selection_el, 'guid')}: positions are not integers")
                continue
            code_guids, coders = _coding_refs(selection_el)
            selections.append(
                QdaSelection(
                    normalise_guid(_attr(selection_el, "guid")),
                    start,
                    end,
                    code_guids,
                    coders,
                    name=_attr(selection_el, "name") or "",
                )
            )
        whole, _ = _coding_refs(element)
        sources.append(
            QdaSource(
                guid=normalise_guid(_attr(element, "guid")),
                name=_attr(element, "name") or "",
                text=text,
                variables=variables,
                selections=selections,
                whole_source_codings=len(whole),
            )
        )
    return sources


def selection_codes_sentence(sel_start: int, sel_end: int, sent_start: int, sent_end: int) -> bool:
    """The matching rule: does a selection [sel_start, sel_end) code a sentence [sent_start, sent_end)?

    Yes when the overlap covers more than half of the sentence (a selection of the
    whole sentence, or of several sentences, or one that trims a few characters),
    or more than half of the selection (a phrase highlighted inside the sentence).
    """
    overlap = min(sel_end, sent_end) - max(sel_start, sent_start)
    if overlap <= 0:
        return False
    return 2 * overlap > (sent_end - sent_start) or 2 * overlap > (sel_end - sel_start)


def _normalise_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


# How a QDA tool that stored a text with CRLF line ends counted its positions.
CRLF_AS_TWO = "a CRLF line break counted as 2 characters"
LINE_BREAK_AS_ONE = "a line break counted as 1 character"
_SPACE = re.compile(r"\s+")
_ID_TOKEN = re.compile(r"[0-9A-Za-z_.-]+")


def _squash(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class _Sentences:
    """One document's sentences, sorted by start: what selections are checked against."""

    starts: list[int]
    ends: list[int]
    ids: list[str]

    def spans(self) -> dict[str, tuple[int, int]]:
        return {i: (s, e) for i, s, e in zip(self.ids, self.starts, self.ends, strict=True)}


def _splits_no_word(text: str, position: int) -> bool:
    """True when `position` is not inside a word (a selection edge a person would make)."""
    if position <= 0 or position >= len(text):
        return True
    return not (text[position - 1].isalnum() and text[position].isalnum())


def _evidence(
    selection: QdaSelection,
    start: int,
    end: int,
    text: str,
    sentences: _Sentences,
    spans: Mapping[str, tuple[int, int]],
) -> tuple[bool, bool]:
    """(strong, weak): does the selection, read at [start, end) of `text`, fit the text?

    Strong: its name is the selected text (QualCoder and others name selections
    by their text), or names a sentence whose span it is (textmine's exports),
    or it runs exactly from a sentence start to a sentence end. Weak: it cuts
    no word at either end.
    """
    if not 0 <= start < end <= len(text):
        return False, False
    name = _squash(_normalise_text(selection.name or ""))
    piece = _squash(text[start:end])
    strong = bool(name) and (
        name == piece
        or (
            name.endswith(("…", "..."))
            and len(name.rstrip(".… ")) >= 10
            and piece.startswith(name.rstrip(".… "))
        )
        or any(spans.get(token) == (start, end) for token in _ID_TOKEN.findall(name))
    )
    i = bisect.bisect_left(sentences.starts, start)
    strong = strong or (
        i < len(sentences.starts)
        and sentences.starts[i] == start
        and end in set(sentences.ends[i:])
    )
    return strong, _splits_no_word(text, start) and _splits_no_word(text, end)


def _offset_mapper(
    qda_text: str | None,
    corpus_text: str | None,
    selections: Sequence[QdaSelection] = (),
    sentences: _Sentences | None = None,
    label: str = "source",
):
    """Map positions in the QDA tool's copy of a text to positions in textmine's text.

    Identity when the texts agree. When the tool only changed line endings
    (CRLF) or added a byte-order mark, tools differ in how they count: some
    count each CRLF as two characters (positions into the CRLF text), others
    (QualCoder's "line ending for MAXQDA" export, for one) keep positions that
    count a line break as one. The convention is decided from the selections
    that the two readings place differently (`_evidence`): the one whose
    readings fit the text clearly better wins; RefiQdaError when neither does.
    Returns (mapper, convention, note): convention is "" when the texts agree,
    note is "" or a warning.
    """
    identity = lambda p: p  # noqa: E731
    if qda_text is None or corpus_text is None or qda_text == corpus_text:
        return identity, "", ""
    same_apart_from_line_ends = _normalise_text(qda_text) == _normalise_text(corpus_text)
    if not (same_apart_from_line_ends and "\r" not in corpus_text):
        note = "its text differs from textmine's clean text; positions were used as they are"
        return identity, "", note
    removed = [0] if qda_text.startswith("\ufeff") else []
    removed += [m.start() for m in re.finditer("\r\n", qda_text)]

    def crlf_as_two(p: int) -> int:
        return p - bisect.bisect_left(removed, p)

    readings = {CRLF_AS_TWO: crlf_as_two, LINE_BREAK_AS_ONE: identity}
    differing = [
        s for s in selections if crlf_as_two(s.start) != s.start or crlf_as_two(s.end) != s.end
    ]
    if not differing:
        return crlf_as_two, "", ""
    sentences = sentences or _Sentences([], [], [])
    spans = sentences.spans()
    strong = dict.fromkeys(readings, 0)
    fits = dict.fromkeys(readings, 0)
    for selection in differing:
        for convention, mapper in readings.items():
            is_strong, is_weak = _evidence(
                selection,
                mapper(selection.start),
                mapper(selection.end),
                corpus_text,
                sentences,
                spans,
            )
            strong[convention] += is_strong
            fits[convention] += is_strong or is_weak
    n = len(differing)
    scores = strong if any(strong.values()) else fits
    best, other = sorted(readings, key=lambda c: scores[c], reverse=True)
    enough = fits[best] >= (0.5 if scores is strong else 0.6) * n
    if scores[best] >= max(1, 2 * scores[other]) and enough:
        return readings[best], best, ""
    raise RefiQdaError(
        f"{label}: its text has other line ends than textmine's (CRLF) and the positions of its "
        f"{n} selection(s) after a line break fit the text neither with {CRLF_AS_TWO} "
        f"({strong[CRLF_AS_TWO]} match their text or a sentence, {fits[CRLF_AS_TWO]} cut no word) "
        f"nor with {LINE_BREAK_AS_ONE} ({strong[LINE_BREAK_AS_ONE]} and "
        f"{fits[LINE_BREAK_AS_ONE]}); nothing was imported. Export the project again (in "
        'QualCoder without "Add line ending character for MAXQDA") or report the tool and '
        "version to textmine's maintainers"
    )


@dataclass
class ImportedCoding:
    """Result of `read_qdpx`: the human coded set and what happened while matching."""

    coded_set: pd.DataFrame  # id, sentence, one 0/1 column per code, doc_id, source
    sources_matched: dict[str, str]  # QDA source name -> doc_id
    n_selections: int
    n_selections_matched: int
    codings_by_user: dict[str, int]
    warnings: list[str]
    # QDA source name -> how its positions count line breaks, for sources stored with CRLF
    line_breaks: dict[str, str] = field(default_factory=dict)


def _match_sources(
    project: QdaProject, sentences: pd.DataFrame, doc_texts: Mapping[str, str] | None
) -> tuple[dict[int, str], list[str]]:
    """Index of each project source -> textmine doc_id, by doc_id variable, GUID, text or name."""
    doc_ids = list(dict.fromkeys(sentences[DOC_ID].astype(str)))
    by_guid = {source_guid(d): d for d in doc_ids}
    by_text: dict[str, str] = {}
    for text_doc_id, text in (doc_texts or {}).items():
        if text_doc_id in set(doc_ids):
            by_text.setdefault(_normalise_text(text), text_doc_id)
    by_name: dict[str, list[str]] = {}
    if "path" in sentences:
        for path_doc_id, path in sentences.drop_duplicates(DOC_ID)[[DOC_ID, "path"]].itertuples(
            index=False
        ):
            for key in {
                PurePosixPath(str(path)).name.lower(),
                PurePosixPath(str(path)).stem.lower(),
            }:
                by_name.setdefault(key, []).append(path_doc_id)
    matched: dict[int, str] = {}
    warnings: list[str] = []
    for index, source in enumerate(project.sources):
        doc_id: str | None = source.variables.get("doc_id")
        if doc_id not in doc_ids:
            doc_id = by_guid.get(source.guid)
        if doc_id is None and source.text is not None:
            doc_id = by_text.get(_normalise_text(source.text))
        if doc_id is None:
            names = by_name.get(source.name.lower()) or by_name.get(
                PurePosixPath(source.name).stem.lower()
            )
            doc_id = names[0] if names and len(names) == 1 else None
        if doc_id is None:
            warnings.append(
                f"source {source.name!r} matches no document of the processed corpus; skipped"
            )
            continue
        matched[index] = doc_id
    return matched, warnings


def _selection_columns(
    selection: QdaSelection,
    project: QdaProject,
    code_columns: Mapping[str, str],
    unknown_codes: Counter,
    codings_by_user: Counter,
) -> list[str]:
    """The code columns a selection's codings name; unknown codes and coders are counted."""
    columns = []
    for guid, coder in zip(selection.code_guids, selection.coders, strict=True):
        name = project.codes.get(guid)
        column = code_columns.get(normalise_code_name(name)) if name else None
        if column is None:
            unknown_codes[name or guid] += 1
            continue
        columns.append(column)
        codings_by_user[project.users.get(coder, coder or "unknown user")] += 1
    return columns


def _sentences_coded_by(
    start: int, end: int, starts: list[int], ends: list[int], ids: list[str]
) -> list[str]:
    """Ids of the sentences (sorted by start) that the selection [start, end) codes."""
    hits = []
    first = max(0, bisect.bisect_right(ends, start) - 1)
    for i in range(first, len(ids)):
        if starts[i] >= end:
            break
        if selection_codes_sentence(start, end, starts[i], ends[i]):
            hits.append(ids[i])
    return hits


def _coded_set(
    by_doc: Mapping[str, pd.DataFrame],
    matched: Mapping[int, str],
    source_names: Mapping[str, str],
    applied: Mapping[str, set[str]],
    codes: Sequence[str],
) -> pd.DataFrame:
    """Every sentence of the matched documents: id, sentence, 0/1 per code, doc_id, source."""
    doc_order = list(dict.fromkeys(matched.values()))
    names_by_doc = {doc_id: name for name, doc_id in source_names.items()}
    rows = []
    for doc_id in doc_order:
        for sentence in by_doc[doc_id].sort_values("start_char").to_dict("records"):
            sentence_codes = applied.get(sentence["sentence_id"], set())
            rows.append(
                {
                    "id": sentence["sentence_id"],
                    "sentence": sentence.get("text", ""),
                    **{code: int(code in sentence_codes) for code in codes},
                    DOC_ID: doc_id,
                    "source": names_by_doc.get(doc_id, ""),
                }
            )
    coded_set = pd.DataFrame(rows, columns=["id", "sentence", *codes, DOC_ID, "source"])
    for code in codes:
        coded_set[code] = coded_set[code].astype("int64")
    return coded_set


def read_qdpx(
    path: str | Path,
    sentences: pd.DataFrame,
    doc_texts: Mapping[str, str] | None = None,
    codes: Sequence[str] | None = None,
) -> ImportedCoding:
    """Read human codings from a `.qdpx` as a coded set over textmine's sentences.

    `sentences` are the processed corpus' sentences (sentence_id, doc_id, path,
    start_char, end_char, text; `Store.coded_sentences()` will do) and `doc_texts`
    the clean texts (doc_id -> text, used to match sources and line endings).
    Each project source is matched to a document (doc_id variable, textmine
    GUID, identical text, or file name), each selection to the sentences it codes
    (`selection_codes_sentence`), each coding to a code column by name
    (`normalise_code_name`). `codes` are the code columns (default: the packaged
    codebook's `code_columns`; pass your codebook's so an added code comes back).
    Every sentence of a matched document appears in the coded set, with 1 for
    the codes people applied and 0 otherwise.
    """
    codes = list(codes) if codes is not None else load_codebook().code_columns
    path = Path(path)
    project = parse_qdpx(path)
    warnings = [f"{path.name}: {note}" for note in project.notes]
    matched, source_warnings = _match_sources(project, sentences, doc_texts)
    warnings += [f"{path.name}: {w}" for w in source_warnings]
    code_columns = {normalise_code_name(c): c for c in codes}
    sentences = sentences.copy()
    sentences["start_char"] = sentences["start_char"].astype("int64")
    sentences["end_char"] = sentences["end_char"].astype("int64")
    by_doc = {d: g.sort_values("start_char") for d, g in sentences.groupby(DOC_ID, sort=False)}
    applied: dict[str, set[str]] = {}
    unknown_codes: Counter = Counter()
    codings_by_user: Counter = Counter()
    n_selections = n_matched = 0
    unmatched_examples: list[str] = []
    source_names = {}
    line_breaks: dict[str, str] = {}
    for index, doc_id in matched.items():
        source = project.sources[index]
        source_names[source.name] = doc_id
        if source.whole_source_codings:
            warnings.append(
                f"{path.name}: source {source.name!r} has {source.whole_source_codings} coding(s) of the "
                "whole document; only text selections are imported"
            )
        group = by_doc[doc_id]
        starts = group["start_char"].tolist()
        ends = group["end_char"].tolist()
        ids = group["sentence_id"].astype(str).tolist()
        mapper, convention, note = _offset_mapper(
            source.text,
            (doc_texts or {}).get(doc_id),
            source.selections,
            _Sentences(starts, ends, ids),
            f"{path}: source {source.name!r}",
        )
        if note:
            warnings.append(f"{path.name}: source {source.name!r}: {note}")
        if convention:
            line_breaks[source.name] = convention
        for selection in source.selections:
            applied_codes = _selection_columns(
                selection, project, code_columns, unknown_codes, codings_by_user
            )
            if not applied_codes:
                continue
            n_selections += 1
            start, end = mapper(selection.start), mapper(selection.end)
            if end <= start:
                warnings.append(f"{path.name}: empty selection {selection.guid} in {source.name!r}")
                continue
            hits = _sentences_coded_by(start, end, starts, ends, ids)
            for sentence_id in hits:
                applied.setdefault(sentence_id, set()).update(applied_codes)
            if hits:
                n_matched += 1
            elif len(unmatched_examples) < 5:
                unmatched_examples.append(f"{source.name!r} {selection.start}:{selection.end}")
    if n_selections > n_matched:
        warnings.append(
            f"{path.name}: {n_selections - n_matched} coded selection(s) match no sentence, e.g. "
            + ", ".join(unmatched_examples)
        )
    if unknown_codes:
        warnings.append(
            f"{path.name}: codings with codes not in the codebook were ignored: "
            + ", ".join(f"{name} ({n})" for name, n in sorted(unknown_codes.items()))
        )
    return ImportedCoding(
        coded_set=_coded_set(by_doc, matched, source_names, applied, codes),
        sources_matched=source_names,
        n_selections=n_selections,
        n_selections_matched=n_matched,
        codings_by_user=dict(codings_by_user),
        warnings=warnings,
        line_breaks=line_breaks,
    )
