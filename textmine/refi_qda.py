"""REFI-QDA exchange files: write `.qdpx` projects and `.qdc` codebooks, read human codings back.

The REFI-QDA standard (Rotterdam Exchange Format Initiative, www.qdasoftware.org,
MIT licence) is what NVivo, ATLAS.ti, MAXQDA and QualCoder import and export.
A `.qdpx` file is a zip holding `project.qde` (XML, namespace
``urn:QDA-XML:project:1.0``) and the source documents under `sources/`.

Export: the codebook becomes Codes (with colours and descriptions), every
document a TextSource whose plain text is the document's clean text, every
coded sentence a PlainTextSelection (Unicode code points, end exclusive) with
one Coding per code, made by the machine-coder User. GUIDs are UUID5 values of
stable keys (codebook version, code name, doc_id, sentence_id), so exporting the
same corpus twice gives byte-identical files.

Import (`read_qdpx`): selections made or kept by people in QDA software are
matched to textmine's sentences by offsets (see `selection_codes_sentence`) and
returned as a coded set in the codebook CSV format.
"""

from __future__ import annotations

import bisect
import functools
import posixpath
import re
import urllib.parse
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree as ET

import pandas as pd

from textmine import __version__
from textmine.atomic import atomic_open
from textmine.columns import (
    CODE_COLUMNS,
    CODEBOOK_VERSION,
    DOC_ID,
    EVIDENCE,
    PARTNERSHIP_CODES,
    STANCE_CODES,
)
from textmine.export import primary_documents

PROJECT_NAMESPACE = "urn:QDA-XML:project:1.0"
CODEBOOK_NAMESPACE = "urn:QDA-XML:codebook:1.0"
PROJECT_XSD_NAME = "Project-mrt2019.xsd"
PROJECT_SCHEMA_LOCATION = (
    f"{PROJECT_NAMESPACE} http://schema.qdasoftware.org/versions/Project/v1.0/Project.xsd"
)
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SOURCES_FOLDER = "sources"
INTERNAL_PREFIX = "internal://"
MACHINE_CODER_NAME = "textmine machine coder"
CODE_GROUPS = {"Stance": STANCE_CODES, "Partnership type": PARTNERSHIP_CODES}
# Colours used only when the codebook gives none (or an invalid one) for a code.
FALLBACK_COLOURS = [
    "#D62728",
    "#2CA02C",
    "#1F77B4",
    "#FF7F0E",
    "#9467BD",
    "#8C564B",
    "#E377C2",
    "#7F7F7F",
    "#BCBD22",
    "#17BECF",
]
_GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:textmine:refi-qda")
_RGB = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$")
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class RefiQdaError(ValueError):
    """A REFI-QDA file could not be written or read; the message names the file and reason."""


# --------------------------------------------------------------------------- codebook input


@dataclass(frozen=True)
class CodeSpec:
    """One code as written to QDA software: column name, description, #RRGGBB colour."""

    name: str
    description: str = ""
    colour: str = ""


def _field(item: object, *names: str) -> str:
    for name in names:
        value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
        if value not in (None, ""):
            return str(value)
    return ""


def codebook_codes(codebook: object) -> list[CodeSpec]:
    """Normalise a codebook to CodeSpecs.

    Accepts a `textmine.codebook.Codebook` (anything with `.codes`, a list or a
    name-keyed mapping of objects/dicts with name, description, colour/color),
    or a list of `CodeSpec` / (name, description, colour) tuples. Names that
    match a code column in another spelling ("ACADEMY_TRUST", "Academy trust")
    become that column's name.
    """
    items = getattr(codebook, "codes", codebook)
    if isinstance(items, Mapping) and isinstance(items.get("codes"), Mapping | list):
        items = items["codes"]  # a parsed codebook YAML
    if isinstance(items, Mapping):
        items = [(key, value) for key, value in items.items()]
    else:
        items = [(None, item) for item in (items or [])]
    columns = {normalise_code_name(c): c for c in CODE_COLUMNS}
    specs: list[CodeSpec] = []
    for key, item in items:
        if isinstance(item, CodeSpec):
            spec = item
        elif isinstance(item, tuple | list):
            name, description, colour = (list(item) + ["", ""])[:3]
            spec = CodeSpec(str(name), str(description or ""), str(colour or ""))
        else:
            keys = [key, *(_field(item, f) for f in ("column", "code", "id", "key", "name"))]
            in_columns = [k for k in keys if k and normalise_code_name(str(k)) in columns]
            present = [str(k) for k in keys if k]
            name = str(in_columns[0]) if in_columns else present[0] if present else ""
            if not name:
                raise RefiQdaError(f"codebook entry without a name: {item!r}")
            spec = CodeSpec(
                name=name,
                description=_field(item, "description", "definition", "covers"),
                colour=_field(item, "colour", "color"),
            )
        name = columns.get(normalise_code_name(spec.name), spec.name)
        specs.append(CodeSpec(name, spec.description.strip(), spec.colour.strip()))
    if not specs:
        raise RefiQdaError("the codebook has no codes")
    return specs


def codebook_version(codebook: object, coded_sentences: pd.DataFrame | None = None) -> str:
    """The codebook's version hash (`.version`), else the one recorded on the coded sentences."""
    version = getattr(codebook, "version", None)
    if version:
        return str(version)
    if coded_sentences is not None and CODEBOOK_VERSION in coded_sentences:
        values = sorted({str(v) for v in coded_sentences[CODEBOOK_VERSION].dropna() if str(v)})
        if values:
            return ",".join(values)
    return "unversioned"


# --------------------------------------------------------------------------- GUIDs


def stable_guid(*key: str) -> str:
    """Deterministic upper-case GUID (UUID5) for a key, e.g. ("code", version, name)."""
    return str(uuid.uuid5(_GUID_NAMESPACE, "\x1f".join(key))).upper()


def source_guid(doc_id: str) -> str:
    return stable_guid("source", doc_id)


def selection_guid(sentence_id: str) -> str:
    return stable_guid("selection", sentence_id)


def code_guid(version: str, name: str) -> str:
    return stable_guid("code", version, name)


def machine_user_guid() -> str:
    return stable_guid("user", MACHINE_CODER_NAME)


def normalise_guid(value: str | None) -> str:
    """Upper case, without braces: GUIDs compare equal however a tool wrote them."""
    return (value or "").strip().strip("{}").upper()


# --------------------------------------------------------------------------- schemas


def project_xsd_path() -> Path:
    """The packaged REFI-QDA Project schema (QDA-XML 1.0, March 2019, MIT licence)."""
    return Path(str(resources.files("textmine") / "data" / PROJECT_XSD_NAME))


@functools.lru_cache(maxsize=1)
def project_schema():
    import xmlschema

    return xmlschema.XMLSchema(str(project_xsd_path()))


@functools.lru_cache(maxsize=1)
def codebook_schema():
    """Schema for `.qdc` files: the Project schema's CodeBookType under the codebook namespace.

    The REFI-QDA Codebook.xsd is not shipped here; its CodeBook/Codes/Code part is
    the same as the Project schema's, so textmine re-targets that part to
    ``urn:QDA-XML:codebook:1.0`` with `CodeBook` as root element.
    """
    import xmlschema

    text = project_xsd_path().read_text(encoding="utf-8")
    anchor = '<xsd:element name="Project" type="ProjectType">'
    if anchor not in text:
        raise RefiQdaError(f"{project_xsd_path()}: unexpected schema layout (no Project element)")
    text = text.replace(PROJECT_NAMESPACE, CODEBOOK_NAMESPACE)
    text = text.replace(
        anchor, '<xsd:element name="CodeBook" type="CodeBookType"/>\n\t' + anchor, 1
    )
    return xmlschema.XMLSchema(text)


def schema_errors(xml: bytes, schema) -> list[str]:
    """Validation errors of an XML document against a schema (empty list when valid)."""
    return [f"{e.path}: {e.reason}" for e in schema.iter_errors(xml.decode("utf-8"))]


def validate_project_xml(xml: bytes, label: str = "project.qde") -> None:
    """Raise RefiQdaError unless `xml` validates against the REFI-QDA Project schema."""
    errors = schema_errors(xml, project_schema())
    if errors:
        raise RefiQdaError(
            f"{label} does not validate against {PROJECT_XSD_NAME}: " + "; ".join(errors[:5])
        )


def validate_codebook_xml(xml: bytes, label: str = "codebook.qdc") -> None:
    """Raise RefiQdaError unless `xml` validates as a REFI-QDA codebook."""
    errors = schema_errors(xml, codebook_schema())
    if errors:
        raise RefiQdaError(
            f"{label} does not validate as a REFI-QDA codebook: " + "; ".join(errors[:5])
        )


# --------------------------------------------------------------------------- writing


def _colour(spec: CodeSpec, index: int) -> str:
    if _RGB.match(spec.colour or ""):
        return spec.colour.upper()
    return FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)]


def _codes_element(
    parent: ET.Element, ns: str, specs: list[CodeSpec], version: str
) -> dict[str, str]:
    """Append <Codes> to `parent`; stance and partnership codes nested under group codes."""
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
    for group, members in CODE_GROUPS.items():
        present = [m for m in members if m in by_name]
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
        return value is not None and not pd.isna(value) and int(value) == 1
    except (TypeError, ValueError):
        return str(value).strip().lower() in {"true", "yes"}


def _evidence_summary(evidence: object, codes: list[str]) -> str:
    """Short human-readable note of why the machine applied each code."""
    import json

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


def _source_name(row: Mapping, used: Counter) -> str:
    name = (
        _text_value(row.get("title"))
        or PurePosixPath(_text_value(row.get("path"))).name
        or row[DOC_ID]
    )
    used[name] += 1
    return name if used[name] == 1 else f"{name} ({used[name]})"


def build_qdpx(
    documents: pd.DataFrame,
    coded_sentences: pd.DataFrame,
    doc_texts: Mapping[str, str],
    codebook: object,
    *,
    include_codings: bool = True,
    project_name: str = "textmine coded corpus",
    created: datetime | None = None,
) -> dict[str, bytes]:
    """Members of a `.qdpx` zip: {"project.qde": xml, "sources/<guid>.txt": text, ...}.

    Documents without text and without sentences (e.g. duplicates) are left out.
    With `include_codings=False` the project holds the documents and codebook
    only, for blind human coding.
    """
    specs = codebook_codes(codebook)
    version = codebook_version(codebook, coded_sentences)
    code_names = [s.name for s in specs]
    unknown = [c for c in CODE_COLUMNS if c in coded_sentences and c not in code_names]
    if unknown and include_codings:
        raise RefiQdaError(f"coded sentences carry codes missing from the codebook: {unknown}")
    ns = PROJECT_NAMESPACE
    user = machine_user_guid()
    attrs = {"name": project_name, "origin": f"textmine {__version__}", "creatingUserGUID": user}
    if created is not None:
        stamp = created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        attrs["creationDateTime"] = stamp
    root = ET.Element("Project", attrs)
    root.set("xmlns:xsi", XSI)
    root.set("xsi:schemaLocation", PROJECT_SCHEMA_LOCATION)
    users = ET.SubElement(root, "Users")
    ET.SubElement(users, "User", {"guid": user, "name": f"{MACHINE_CODER_NAME} {__version__}"})
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
    used_names: Counter = Counter()
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
                "name": _source_name(row, used_names),
                "plainTextPath": INTERNAL_PREFIX + file_name,
                "creatingUser": user,
            },
        )
        ET.SubElement(
            source_el, "Description"
        ).text = f"textmine document {doc_id}; source file {_text_value(row.get('path'))}"
        group = by_doc.get(doc_id)
        if include_codings and group is not None:
            for sentence in group.sort_values("start_char", kind="stable").to_dict("records"):
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
) -> Path:
    """Write a `.qdpx` project (validated against the REFI-QDA Project XSD unless told not to)."""
    path = Path(path)
    members = build_qdpx(
        documents,
        coded_sentences,
        doc_texts,
        codebook,
        include_codings=include_codings,
        created=created,
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


# --------------------------------------------------------------------------- reading


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
                    normalise_guid(_attr(selection_el, "guid")), start, end, code_guids, coders
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


def normalise_code_name(name: str) -> str:
    """ "Academy Trust", "ACADEMY-TRUST" and "academy_trust" all give "academy_trust"."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


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


def _offset_mapper(qda_text: str | None, corpus_text: str | None):
    """Map positions in the QDA tool's copy of a text to positions in textmine's text.

    Identity when the texts agree; when the tool only changed line endings
    (CRLF) or added a byte-order mark, positions are shifted accordingly.
    Returns (mapper, note) where note is "" or a warning.
    """
    if qda_text is None or corpus_text is None or qda_text == corpus_text:
        return (lambda p: p), ""
    same_apart_from_line_ends = _normalise_text(qda_text) == _normalise_text(corpus_text)
    if same_apart_from_line_ends and "\r" not in corpus_text:
        removed = [0] if qda_text.startswith("\ufeff") else []
        removed += [m.start() for m in re.finditer("\r\n", qda_text)]
        return (lambda p: p - bisect.bisect_left(removed, p)), ""
    note = "its text differs from textmine's clean text; positions were used as they are"
    return (lambda p: p), note


@dataclass
class ImportedCoding:
    """Result of `read_qdpx`: the human coded set and what happened while matching."""

    coded_set: pd.DataFrame  # id, sentence, ten codes (0/1), doc_id, source
    sources_matched: dict[str, str]  # QDA source name -> doc_id
    n_selections: int
    n_selections_matched: int
    codings_by_user: dict[str, int]
    warnings: list[str]


def _match_sources(
    project: QdaProject, sentences: pd.DataFrame, doc_texts: Mapping[str, str] | None
) -> tuple[dict[int, str], list[str]]:
    """Index of each project source -> textmine doc_id, by doc_id variable, GUID, text or name."""
    doc_ids = list(dict.fromkeys(sentences[DOC_ID].astype(str)))
    by_guid = {source_guid(d): d for d in doc_ids}
    by_text = {}
    for doc_id, text in (doc_texts or {}).items():
        if doc_id in set(doc_ids):
            by_text.setdefault(_normalise_text(text), doc_id)
    by_name: dict[str, list[str]] = {}
    if "path" in sentences:
        for doc_id, path in sentences.drop_duplicates(DOC_ID)[[DOC_ID, "path"]].itertuples(
            index=False
        ):
            for key in {
                PurePosixPath(str(path)).name.lower(),
                PurePosixPath(str(path)).stem.lower(),
            }:
                by_name.setdefault(key, []).append(doc_id)
    matched, warnings = {}, []
    for index, source in enumerate(project.sources):
        doc_id = source.variables.get("doc_id")
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


def read_qdpx(
    path: str | Path,
    sentences: pd.DataFrame,
    doc_texts: Mapping[str, str] | None = None,
) -> ImportedCoding:
    """Read human codings from a `.qdpx` as a coded set over textmine's sentences.

    `sentences` are the processed corpus' sentences (sentence_id, doc_id, path,
    start_char, end_char, text; `Store.coded_sentences()` will do) and `doc_texts`
    the clean texts (doc_id -> text, used to match sources and line endings).
    Each project source is matched to a document (doc_id variable, textmine
    GUID, identical text, or file name), each selection to the sentences it codes
    (`selection_codes_sentence`), each coding to a code column by name
    (`normalise_code_name`). Every sentence of a matched document appears in the
    coded set, with 1 for the codes people applied and 0 otherwise.
    """
    path = Path(path)
    project = parse_qdpx(path)
    warnings = [f"{path.name}: {note}" for note in project.notes]
    matched, source_warnings = _match_sources(project, sentences, doc_texts)
    warnings += [f"{path.name}: {w}" for w in source_warnings]
    code_columns = {normalise_code_name(c): c for c in CODE_COLUMNS}
    sentences = sentences.copy()
    sentences["start_char"] = sentences["start_char"].astype("int64")
    sentences["end_char"] = sentences["end_char"].astype("int64")
    by_doc = {d: g.sort_values("start_char") for d, g in sentences.groupby(DOC_ID, sort=False)}
    applied: dict[str, set[str]] = {}
    unknown_codes: Counter = Counter()
    codings_by_user: Counter = Counter()
    n_selections = n_matched = 0
    unmatched_examples = []
    source_names = {}
    for index, doc_id in matched.items():
        source = project.sources[index]
        source_names[source.name] = doc_id
        if source.whole_source_codings:
            warnings.append(
                f"{path.name}: source {source.name!r} has {source.whole_source_codings} coding(s) of the "
                "whole document; only text selections are imported"
            )
        mapper, note = _offset_mapper(source.text, (doc_texts or {}).get(doc_id))
        if note:
            warnings.append(f"{path.name}: source {source.name!r}: {note}")
        group = by_doc[doc_id]
        starts = group["start_char"].tolist()
        ends = group["end_char"].tolist()
        ids = group["sentence_id"].tolist()
        for selection in source.selections:
            codes = []
            for guid, coder in zip(selection.code_guids, selection.coders, strict=True):
                name = project.codes.get(guid)
                column = code_columns.get(normalise_code_name(name)) if name else None
                if column is None:
                    unknown_codes[name or guid] += 1
                    continue
                codes.append(column)
                codings_by_user[project.users.get(coder, coder or "unknown user")] += 1
            if not codes:
                continue
            n_selections += 1
            start, end = mapper(selection.start), mapper(selection.end)
            if end <= start:
                warnings.append(f"{path.name}: empty selection {selection.guid} in {source.name!r}")
                continue
            hit = False
            first = max(0, bisect.bisect_right(ends, start) - 1)
            for i in range(first, len(ids)):
                if starts[i] >= end:
                    break
                if selection_codes_sentence(start, end, starts[i], ends[i]):
                    applied.setdefault(ids[i], set()).update(codes)
                    hit = True
            if hit:
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
    doc_order = list(dict.fromkeys(matched.values()))
    names_by_doc = {doc_id: name for name, doc_id in source_names.items()}
    rows = []
    for doc_id in doc_order:
        for sentence in by_doc[doc_id].sort_values("start_char").to_dict("records"):
            codes = applied.get(sentence["sentence_id"], set())
            rows.append(
                {
                    "id": sentence["sentence_id"],
                    "sentence": sentence.get("text", ""),
                    **{code: int(code in codes) for code in CODE_COLUMNS},
                    DOC_ID: doc_id,
                    "source": names_by_doc.get(doc_id, ""),
                }
            )
    coded_set = pd.DataFrame(rows, columns=["id", "sentence", *CODE_COLUMNS, DOC_ID, "source"])
    for code in CODE_COLUMNS:
        coded_set[code] = coded_set[code].astype("int64")
    return ImportedCoding(
        coded_set=coded_set,
        sources_matched=source_names,
        n_selections=n_selections,
        n_selections_matched=n_matched,
        codings_by_user=dict(codings_by_user),
        warnings=warnings,
    )
