"""Write REFI-QDA files: `.qdpx` projects of the coded corpus and `.qdc` codebooks.

The codebook becomes Codes (with colours and descriptions, nested under one
group code per kind: stance, partnership type), every document a TextSource
whose plain text is the document's clean text, every coded sentence a
PlainTextSelection (Unicode code points, end exclusive) with one Coding per
code of the codebook it carries, made by the machine-coder User (a blind
export, without codings, names a neutral "human coder" instead). Sources get
short distinct names (`source_names`: a title shared prefix such as "Ofsted
inspection of local authority children's services: " dropped, the date added);
the full title stays in the `title` variable and the description. Any code the
codebook has, a researcher's added code included, is written.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree as ET

import pandas as pd

from textmine import __version__
from textmine.atomic import atomic_open
from textmine.columns import DOC_ID, EVIDENCE
from textmine.qda.schema import (
    CODEBOOK_NAMESPACE,
    FALLBACK_COLOURS,
    HUMAN_CODER_NAME,
    INTERNAL_PREFIX,
    KIND_GROUPS,
    MACHINE_CODER_NAME,
    PROJECT_NAMESPACE,
    PROJECT_SCHEMA_LOCATION,
    SOURCES_FOLDER,
    XSI,
    CodeSpec,
    RefiQdaError,
    code_guid,
    codebook_codes,
    codebook_version,
    selection_guid,
    source_guid,
    stable_guid,
    user_guid,
    validate_codebook_xml,
    validate_project_xml,
)
from textmine.tables import primary_documents

_RGB = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$")
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _colour(spec: CodeSpec, index: int) -> str:
    if _RGB.match(spec.colour or ""):
        return spec.colour.upper()
    return FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)]


def _codes_element(
    parent: ET.Element, ns: str, specs: list[CodeSpec], version: str
) -> dict[str, str]:
    """Append <Codes> to `parent`; codes of each kind nested under its group code (KIND_GROUPS)."""
    codes_el = ET.SubElement(parent, "Codes")
    guids: dict[str, str] = {}
    by_name = {spec.name: (i, spec) for i, spec in enumerate(specs)}

    def add(container: ET.Element, index: int, spec: CodeSpec) -> None:
        guid = code_guid(version, spec.name)
        guids[spec.name] = guid
        code_el = ET.SubElement(
            container,
            "Code",
            {"guid": guid, "name": spec.name, "isCodable": "true", "color": _colour(spec, index)},
        )
        if spec.description:
            ET.SubElement(code_el, "Description").text = spec.description

    grouped: set[str] = set()
    for kind, group in KIND_GROUPS.items():
        present = [spec.name for spec in specs if spec.kind == kind]
        if not present:
            continue
        group_el = ET.SubElement(
            codes_el,
            "Code",
            {
                "guid": stable_guid("code-group", version, group),
                "name": group,
                "isCodable": "false",
            },
        )
        for member in present:
            add(group_el, *by_name[member])
            grouped.add(member)
    for index, spec in enumerate(specs):
        if spec.name not in grouped:
            add(codes_el, index, spec)
    return guids


def _serialise(root: ET.Element, ns: str) -> bytes:
    """UTF-8 XML with `ns` as default namespace (elements are built unqualified)."""
    root.set("xmlns", ns)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")


def codebook_xml(codebook: object, *, version: str | None = None) -> bytes:
    """The `.qdc` XML of a codebook (namespace urn:QDA-XML:codebook:1.0)."""
    specs = codebook_codes(codebook)
    version = version or codebook_version(codebook)
    root = ET.Element("CodeBook")
    _codes_element(root, CODEBOOK_NAMESPACE, specs, version)
    return _serialise(root, CODEBOOK_NAMESPACE)


def _text_value(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def _is_one(value: object) -> bool:
    try:
        return value is not None and not pd.isna(value) and int(value) == 1  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value).strip().lower() in {"true", "yes"}


def _evidence_summary(evidence: object, codes: list[str]) -> str:
    """Short human-readable note of why the machine applied each code."""
    try:
        parsed = json.loads(evidence) if isinstance(evidence, str) and evidence else {}
    except json.JSONDecodeError:
        return ""
    if not isinstance(parsed, Mapping):
        return ""
    parts = []
    for code in codes:
        hits = parsed.get(code) or []
        snippets = [
            str(h.get("text", "")) for h in hits if isinstance(h, Mapping) and h.get("text")
        ]
        parts.append(f"{code}: " + ", ".join(f"“{s}”" for s in snippets[:3]) if snippets else code)
    return "textmine evidence: " + "; ".join(parts)


SOURCE_VARIABLES = [
    "doc_id",
    "title",
    "publisher",
    "doc_type",
    "published",
    "path",
    "source",
    "licence",
]


# A shared title prefix is dropped from source names only up to one of these separators
# ("Ofsted inspection of local authority children's services: Norfolk" -> "Norfolk").
_PREFIX_SEPARATORS = (": ", " - ", " – ", " — ", ", ")
_MIN_SHARED_PREFIX = 8
MAX_SOURCE_NAME = 60


def _common_start(a: str, b: str) -> str:
    """The characters `a` and `b` begin with in common."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def _shared_prefix(title: str, others: list[str]) -> str:
    """The longest prefix `title` shares with another title, cut back to a separator."""
    longest = max((_common_start(title, other) for other in others), key=len, default="")
    cut = max(
        (longest.rfind(sep) + len(sep) for sep in _PREFIX_SEPARATORS if sep in longest), default=0
    )
    return longest[:cut] if cut >= _MIN_SHARED_PREFIX else ""


def _shorten(text: str, limit: int = MAX_SOURCE_NAME) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip(" ,;:-") + "…"


def source_names(documents: pd.DataFrame) -> dict[str, str]:
    """Short, distinct QDA source names by doc_id: "Norfolk (2013-08-16)".

    A title is named without the prefix it shares with another title of the
    project (up to a separator such as ": "), cut to MAX_SOURCE_NAME
    characters, followed by the publication date; the file name stands in for
    a missing title. Names that still coincide get " (2)", " (3)".
    """
    rows = documents.to_dict("records")
    titles = {
        str(row[DOC_ID]): _text_value(row.get("title")).strip()
        or PurePosixPath(_text_value(row.get("path"))).name
        or str(row[DOC_ID])
        for row in rows
    }
    ordered = sorted(set(titles.values()))
    neighbours: dict[str, list[str]] = {}
    for index, title in enumerate(ordered):
        neighbours[title] = ordered[max(0, index - 1) : index] + ordered[index + 1 : index + 2]
    used: Counter = Counter()
    names = {}
    for row in rows:
        doc_id = str(row[DOC_ID])
        title = titles[doc_id]
        prefix = _shared_prefix(title, neighbours[title])
        rest = title[len(prefix) :].strip(" :,;-–—") or title
        date = _text_value(row.get("published")).strip()[:10]
        name = _shorten(rest) + (f" ({date})" if date else "")
        used[name] += 1
        names[doc_id] = name if used[name] == 1 else f"{name} ({used[name]})"
    return names


def _add_selections(
    source_el: ET.Element,
    sentences: pd.DataFrame,
    text: str,
    doc_id: str,
    code_names: list[str],
    guids: Mapping[str, str],
    version: str,
    user: str,
) -> None:
    """One PlainTextSelection per coded sentence of a document, one Coding per code it carries."""
    for sentence in sentences.sort_values("start_char", kind="stable").to_dict("records"):
        codes = [c for c in code_names if _is_one(sentence.get(c))]
        if not codes:
            continue
        start, end = int(sentence["start_char"]), int(sentence["end_char"])
        if not 0 <= start < end <= len(text):
            raise RefiQdaError(
                f"sentence {sentence['sentence_id']}: offsets {start}:{end} outside the "
                f"text of document {doc_id} ({len(text)} characters)"
            )
        selection_el = ET.SubElement(
            source_el,
            "PlainTextSelection",
            {
                "guid": selection_guid(sentence["sentence_id"]),
                "name": sentence["sentence_id"],
                "startPosition": str(start),
                "endPosition": str(end),
                "creatingUser": user,
            },
        )
        note = _evidence_summary(sentence.get(EVIDENCE), codes)
        if note:
            ET.SubElement(selection_el, "Description").text = note
        for code in codes:
            coding_el = ET.SubElement(
                selection_el,
                "Coding",
                {
                    "guid": stable_guid("coding", version, sentence["sentence_id"], code),
                    "creatingUser": user,
                },
            )
            ET.SubElement(coding_el, "CodeRef", {"targetGUID": guids[code]})


def build_qdpx(
    documents: pd.DataFrame,
    coded_sentences: pd.DataFrame,
    doc_texts: Mapping[str, str],
    codebook: object,
    *,
    include_codings: bool = True,
    project_name: str = "textmine coded corpus",
    created: datetime | None = None,
    user_name: str | None = None,
) -> dict[str, bytes]:
    """Members of a `.qdpx` zip: {"project.qde": xml, "sources/<guid>.txt": text, ...}.

    Documents without text and without sentences (e.g. duplicates) are left out.
    With `include_codings=False` the project holds the documents and codebook
    only, for blind human coding. `user_name` is the project's one User, who
    makes the codings: default the machine coder ("textmine machine coder
    <version>") with codings, the neutral "human coder" without, so people
    coding a blind project in a QDA tool do not code under the machine's name.
    """
    specs = codebook_codes(codebook)
    version = codebook_version(codebook, coded_sentences)
    code_names = [s.name for s in specs]
    ns = PROJECT_NAMESPACE
    if user_name is None:
        user_name = MACHINE_CODER_NAME if include_codings else HUMAN_CODER_NAME
    user = user_guid(user_name)
    shown_user = f"{user_name} {__version__}" if user_name == MACHINE_CODER_NAME else user_name
    attrs = {"name": project_name, "origin": f"textmine {__version__}", "creatingUserGUID": user}
    if created is not None:
        stamp = created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        attrs["creationDateTime"] = stamp
    root = ET.Element("Project", attrs)
    root.set("xmlns:xsi", XSI)
    root.set("xsi:schemaLocation", PROJECT_SCHEMA_LOCATION)
    users = ET.SubElement(root, "Users")
    ET.SubElement(users, "User", {"guid": user, "name": shown_user})
    codebook_el = ET.SubElement(root, "CodeBook")
    guids = _codes_element(codebook_el, ns, specs, version)

    variables_el = ET.SubElement(root, "Variables")
    variable_guids = {}
    for name in SOURCE_VARIABLES:
        variable_guids[name] = stable_guid("variable", name)
        ET.SubElement(
            variables_el,
            "Variable",
            {"guid": variable_guids[name], "name": name, "typeOfVariable": "Text"},
        )

    sentences = coded_sentences.copy()
    by_doc = {doc_id: group for doc_id, group in sentences.groupby(DOC_ID, sort=False)}
    missing = sorted(set(by_doc) - set(doc_texts))
    if missing:
        raise RefiQdaError(f"no clean text for document(s) {missing[:5]} that have sentences")
    docs = primary_documents(documents).sort_values(["path", DOC_ID], kind="stable")
    members: dict[str, bytes] = {}
    sources_el = ET.SubElement(root, "Sources")
    names = source_names(docs)
    for row in docs.to_dict("records"):
        doc_id = row[DOC_ID]
        text = doc_texts.get(doc_id)
        if text is None:
            if doc_id in by_doc:
                raise RefiQdaError(f"no clean text for document {doc_id}")
            continue
        guid = source_guid(doc_id)
        file_name = f"{guid}.txt"
        members[f"{SOURCES_FOLDER}/{file_name}"] = text.encode("utf-8")
        source_el = ET.SubElement(
            sources_el,
            "TextSource",
            {
                "guid": guid,
                "name": names[str(doc_id)],
                "plainTextPath": INTERNAL_PREFIX + file_name,
                "creatingUser": user,
            },
        )
        ET.SubElement(source_el, "Description").text = (
            f"textmine document {doc_id}; source file {_text_value(row.get('path'))}"
            + (f"; title: {_text_value(row.get('title'))}" if _text_value(row.get("title")) else "")
        )
        group = by_doc.get(doc_id)
        if include_codings and group is not None:
            _add_selections(source_el, group, text, doc_id, code_names, guids, version, user)
        for name in SOURCE_VARIABLES:
            value = _text_value(row.get(name))
            if not value:
                continue
            value_el = ET.SubElement(source_el, "VariableValue")
            ET.SubElement(value_el, "VariableRef", {"targetGUID": variable_guids[name]})
            ET.SubElement(value_el, "TextValue").text = value
    if not len(sources_el):
        root.remove(sources_el)
    ET.SubElement(root, "Description").text = (
        f"Coded corpus exported by textmine {__version__}; codebook version {version}. "
        "Selections are textmine sentences (name = sentence_id); positions are Unicode "
        "code points into the source text, end exclusive."
    )
    return {"project.qde": _serialise(root, ns), **dict(sorted(members.items()))}


def _write_zip(path: Path, members: Mapping[str, bytes]) -> None:
    with atomic_open(path, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def write_qdpx(
    path: str | Path,
    documents: pd.DataFrame,
    coded_sentences: pd.DataFrame,
    doc_texts: Mapping[str, str],
    codebook: object,
    *,
    include_codings: bool = True,
    validate: bool = True,
    created: datetime | None = None,
    user_name: str | None = None,
) -> Path:
    """Write a `.qdpx` project (validated against the REFI-QDA Project XSD unless told not to).

    `user_name`: the project's User (see `build_qdpx`).
    """
    path = Path(path)
    members = build_qdpx(
        documents,
        coded_sentences,
        doc_texts,
        codebook,
        include_codings=include_codings,
        created=created,
        user_name=user_name,
    )
    if validate:
        validate_project_xml(members["project.qde"], f"{path.name}/project.qde")
    _write_zip(path, members)
    return path


def write_qdc(path: str | Path, codebook: object, *, validate: bool = True) -> Path:
    """Write a `.qdc` codebook file (REFI-QDA codebook exchange)."""
    path = Path(path)
    xml = codebook_xml(codebook)
    if validate:
        validate_codebook_xml(xml, path.name)
    with atomic_open(path, "wb") as handle:
        handle.write(xml)
    return path
