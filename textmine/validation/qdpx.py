"""A blind REFI-QDA project of a sample, for coding in NVivo, ATLAS.ti, MAXQDA or QualCoder.

The project holds the codebook's codes, the full clean text of every document
with a sampled sentence (so positions, and with them sentence ids, survive the
round trip through `textmine import-qdpx`), and each sampled sentence as a
selection coded with one marker code, `SAMPLE_CODE` ("textmine sample: code
this sentence"), which is not a codebook code: open it in the QDA tool to go
through the sentences to code. There are no machine codes and the only user
is a neutral "human coder". Codings of the marker are ignored on import.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import pandas as pd

from textmine.atomic import atomic_open
from textmine.qda import build_qdpx, validate_project_xml
from textmine.qda.schema import (
    HUMAN_CODER_NAME,
    PROJECT_NAMESPACE,
    XSI,
    source_guid,
    stable_guid,
    user_guid,
)

SAMPLE_CODE = "textmine sample: code this sentence"
NEUTRAL_USER = HUMAN_CODER_NAME
PROJECT_NAME = "textmine validation sample"
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Children of a TextSource that must follow its PlainTextSelections (REFI-QDA schema order).
_AFTER_SELECTIONS = ("Coding", "NoteRef", "VariableValue")


def _tag(name: str) -> str:
    """Elements are handled without their namespace, which is declared once on the root."""
    return name


def _unqualified(root: ET.Element) -> ET.Element:
    """Drop the namespace from every tag and write the xsi attributes with their prefix again."""
    for element in root.iter():
        element.tag = element.tag.rsplit("}", 1)[-1]
        for key in [k for k in element.attrib if k.startswith(f"{{{XSI}}}")]:
            element.set(f"xsi:{key.rsplit('}', 1)[-1]}", element.attrib.pop(key))
    root.set("xmlns", PROJECT_NAMESPACE)
    root.set("xmlns:xsi", XSI)
    return root


def neutral_user_guid() -> str:
    """GUID of the neutral user who owns the sample project."""
    return user_guid(NEUTRAL_USER)


def sample_qdpx_members(
    sample: pd.DataFrame,
    documents: pd.DataFrame,
    sentences: pd.DataFrame,
    doc_texts: Mapping[str, str],
    codebook: object,
    *,
    created: datetime | None = None,
) -> dict[str, bytes]:
    """Members of the sample's `.qdpx` zip: {"project.qde": xml, "sources/<guid>.txt": text, ...}.

    `sample` has id (sentence_id) and doc_id; `sentences` the corpus's
    sentences with sentence_id, doc_id, start_char and end_char.
    """
    ids = sample["id"].astype(str).tolist()
    doc_ids = set(sample["doc_id"].astype(str))
    spans = sentences[sentences["sentence_id"].astype(str).isin(set(ids))].set_index("sentence_id")
    missing = [i for i in ids if i not in spans.index]
    if missing:
        raise ValueError(
            f"{len(missing)} sampled sentence(s) are not in the corpus, e.g. {missing[:3]}"
        )
    in_sample = sentences[sentences["doc_id"].astype(str).isin(doc_ids)]
    docs = documents[documents["doc_id"].astype(str).isin(doc_ids)]
    members = build_qdpx(
        docs,
        in_sample,
        doc_texts,
        codebook,
        include_codings=False,
        project_name=PROJECT_NAME,
        created=created,
        user_name=NEUTRAL_USER,
    )
    root = _unqualified(ET.fromstring(members["project.qde"]))
    marker = _add_marker_code(root)
    sources = {s.get("guid"): s for s in root.iter(_tag("TextSource"))}
    user = neutral_user_guid()
    for number, sentence_id in enumerate(ids, start=1):
        span = spans.loc[sentence_id]
        source = sources.get(source_guid(str(span["doc_id"])))
        if source is None:
            raise ValueError(
                f"sampled sentence {sentence_id}: its document {span['doc_id']} has no text"
            )
        selection = ET.Element(
            _tag("PlainTextSelection"),
            {
                "guid": stable_guid("sample-selection", sentence_id),
                "name": f"sample {number:04d}: {sentence_id}",
                "startPosition": str(int(span["start_char"])),
                "endPosition": str(int(span["end_char"])),
                "creatingUser": user,
            },
        )
        ET.SubElement(selection, _tag("Description")).text = (
            f"Sentence {number} of {len(ids)} to code (textmine sentence {sentence_id}). Apply every "
            "codebook code that fits this sentence read on its own; leave it uncoded if none fits."
        )
        coding = ET.SubElement(
            selection,
            _tag("Coding"),
            {"guid": stable_guid("sample-coding", sentence_id), "creatingUser": user},
        )
        ET.SubElement(coding, _tag("CodeRef"), {"targetGUID": marker})
        _insert_selection(source, selection)
    description = root.find(_tag("Description"))
    if description is None:
        description = ET.SubElement(root, _tag("Description"))
    description.text = (
        f"Validation sample of {len(ids)} sentences drawn by textmine. Open the code '{SAMPLE_CODE}' "
        "to go through them; code each with the codebook's codes (the codebook is included, no "
        "machine codes are). Export the project as REFI-QDA (.qdpx) and read it back with "
        "`textmine import-qdpx FILE.qdpx --sample FILE.sample.csv`."
    )
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    members["project.qde"] = ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode(
        "utf-8"
    )
    return members


def _add_marker_code(root: ET.Element) -> str:
    codes = root.find(f"{_tag('CodeBook')}/{_tag('Codes')}")
    if codes is None:
        raise ValueError("the project has no codebook to add the sample's marker code to")
    guid = stable_guid("code", "textmine-sample-marker")
    code = ET.SubElement(
        codes,
        _tag("Code"),
        {"guid": guid, "name": SAMPLE_CODE, "isCodable": "true", "color": "#FFD700"},
    )
    ET.SubElement(
        code, _tag("Description")
    ).text = (
        "Marks the sentences of the validation sample (not a codebook code; ignored on import)."
    )
    return guid


def _insert_selection(source: ET.Element, selection: ET.Element) -> None:
    children = list(source)
    position = len(children)
    for i, child in enumerate(children):
        if child.tag.rsplit("}", 1)[-1] in _AFTER_SELECTIONS:
            position = i
            break
    source.insert(position, selection)


def write_sample_qdpx(
    path: str | Path,
    sample: pd.DataFrame,
    documents: pd.DataFrame,
    sentences: pd.DataFrame,
    doc_texts: Mapping[str, str],
    codebook: object,
    *,
    validate: bool = True,
    created: datetime | None = None,
) -> Path:
    """Write the sample's blind `.qdpx`, validated against the REFI-QDA Project schema unless told not to."""
    path = Path(path)
    members = sample_qdpx_members(
        sample, documents, sentences, doc_texts, codebook, created=created
    )
    if validate:
        validate_project_xml(members["project.qde"], f"{path.name}/project.qde")
    with atomic_open(path, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return path
