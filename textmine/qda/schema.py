"""REFI-QDA vocabulary: namespaces, schemas, stable GUIDs and the codebook as QDA codes.

The REFI-QDA standard (Rotterdam Exchange Format Initiative, www.qdasoftware.org,
MIT licence) is what NVivo, ATLAS.ti, MAXQDA and QualCoder import and export.
A `.qdpx` file is a zip holding `project.qde` (XML, namespace
``urn:QDA-XML:project:1.0``) and the source documents under `sources/`.
GUIDs are UUID5 values of stable keys (codebook version, code name, doc_id,
sentence_id), so exporting the same corpus twice gives byte-identical files.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from textmine.columns import CODEBOOK_VERSION

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
# QDA group code for each codebook kind; codes of a kind are nested under it.
KIND_GROUPS = {"stance": "Stance", "partnership": "Partnership type"}
HUMAN_CODER_NAME = "human coder"  # the neutral user of blind exports and samples
# Colours used only when the codebook gives none (or an invalid one) for a code. Each is an
# entry of QualCoder's palette (the `colors` list of its color_selector.py), onto which
# QualCoder maps imported colours, and the first ten fall in nine different colour ranges
# of that palette (blue twice, dark and light), so codes stay apart when imported there.
FALLBACK_COLOURS = [
    "#B71C1C",
    "#1B5E20",
    "#0D47A1",
    "#FF6F00",
    "#7D26CD",
    "#FA58F4",
    "#00F0F0",
    "#A8A8A8",
    "#DDE600",
    "#81BEF7",
    "#E65100",
    "#5E9179",
    "#F7819F",
    "#9090E3",
    "#9F3E72",
    "#FACC2E",
    "#769E78",
    "#CB5E3C",
    "#58FAAC",
    "#6D91C6",
]
_GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:textmine:refi-qda")


class RefiQdaError(ValueError):
    """A REFI-QDA file could not be written or read; the message names the file and reason."""


# --------------------------------------------------------------------------- codebook input


@dataclass(frozen=True)
class CodeSpec:
    """One code as written to QDA software: column name, description, #RRGGBB colour, kind."""

    name: str
    description: str = ""
    colour: str = ""

    kind: str = ""  # the codebook's kind ("stance" or "partnership"); "" for none


def _field(item: object, *names: str) -> str:
    for name in names:
        value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
        if value not in (None, ""):
            return str(value)
    return ""


def codebook_codes(codebook: object, code_columns: Sequence[str] | None = None) -> list[CodeSpec]:
    """Normalise a codebook to CodeSpecs.

    Accepts a `textmine.codebook.Codebook` (anything with `.codes`, a list or a
    name-keyed mapping of objects/dicts with name, description, colour/color,
    kind), or a list of `CodeSpec` / (name, description, colour[, kind]) tuples.
    Names that match one of `code_columns` (default: the codebook's
    `code_columns`, else its keys) in another spelling ("ACADEMY_TRUST",
    "Academy trust") become that column's name.
    """
    items: Any = getattr(codebook, "codes", codebook)
    if isinstance(items, Mapping) and isinstance(items.get("codes"), Mapping | list):
        items = items["codes"]  # a parsed codebook YAML
    if code_columns is None:
        code_columns = getattr(codebook, "code_columns", None)
    if code_columns is None and isinstance(items, Mapping):
        code_columns = [str(key) for key in items]
    if isinstance(items, Mapping):
        items = [(key, value) for key, value in items.items()]
    else:
        items = [(None, item) for item in (items or [])]
    columns = {normalise_code_name(c): c for c in code_columns or ()}
    specs: list[CodeSpec] = []
    for key, item in items:
        if isinstance(item, CodeSpec):
            spec = item
        elif isinstance(item, tuple | list):
            name, description, colour, kind = [*item, "", "", ""][:4]
            spec = CodeSpec(str(name), str(description or ""), str(colour or ""), str(kind or ""))
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
                kind=_field(item, "kind"),
            )
        name = columns.get(normalise_code_name(spec.name), spec.name)
        specs.append(
            CodeSpec(name, spec.description.strip(), spec.colour.strip(), spec.kind.strip())
        )
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


def normalise_code_name(name: str) -> str:
    """Normalise a code name: "Academy Trust" and "ACADEMY-TRUST" give "academy_trust"."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


# --------------------------------------------------------------------------- GUIDs


def stable_guid(*key: str) -> str:
    """Deterministic upper-case GUID (UUID5) for a key, e.g. ("code", version, name)."""
    return str(uuid.uuid5(_GUID_NAMESPACE, "\x1f".join(key))).upper()


def source_guid(doc_id: str) -> str:
    """GUID of a document's TextSource."""
    return stable_guid("source", doc_id)


def selection_guid(sentence_id: str) -> str:
    """GUID of a sentence's PlainTextSelection."""
    return stable_guid("selection", sentence_id)


def code_guid(version: str, name: str) -> str:
    """GUID of a code of a codebook version."""
    return stable_guid("code", version, name)


def machine_user_guid() -> str:
    """GUID of the machine-coder User."""
    return stable_guid("user", MACHINE_CODER_NAME)


def user_guid(name: str) -> str:
    """GUID of a named User ("human coder" gives the same GUID in every export)."""
    return machine_user_guid() if name == MACHINE_CODER_NAME else stable_guid("user", name)


def normalise_guid(value: str | None) -> str:
    """Upper case, without braces: GUIDs compare equal however a tool wrote them."""
    return (value or "").strip().strip("{}").upper()


# --------------------------------------------------------------------------- schemas


def project_xsd_path() -> Path:
    """The packaged REFI-QDA Project schema (QDA-XML 1.0, March 2019, MIT licence)."""
    return Path(str(resources.files("textmine") / "data" / PROJECT_XSD_NAME))


@functools.lru_cache(maxsize=1)
def project_schema():
    """The REFI-QDA Project schema (xmlschema), loaded once."""
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
