"""REFI-QDA: .qdpx/.qdc validate against the schema, offsets slice the sources, human round trip."""

from __future__ import annotations

import copy
import uuid
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pandas as pd
import pytest

from textmine.codebook import load_codebook
from textmine.export import write_exports
from textmine.qda import (
    PROJECT_NAMESPACE,
    RefiQdaError,
    build_qdpx,
    codebook_schema,
    codebook_xml,
    parse_qdpx,
    project_schema,
    project_xsd_path,
    read_qdpx,
    schema_errors,
    selection_codes_sentence,
    validate_codebook_xml,
    validate_project_xml,
    write_qdc,
    write_qdpx,
)
from textmine.qda.write import source_names

try:  # the seed-corpus builder is shared with the CSV/Parquet tests
    from test_export import seed_corpus
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.test_export import seed_corpus

NS = {"q": PROJECT_NAMESPACE}
CODE_COLUMNS = load_codebook().code_columns


@pytest.fixture(scope="module")
def corpus():
    return seed_corpus()


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


@pytest.fixture
def qdpx(tmp_path, corpus, codebook):
    documents, sentences, texts = corpus
    return write_qdpx(tmp_path / "corpus.qdpx", documents, sentences, texts, codebook)


def _project(path: Path) -> ET.Element:
    with zipfile.ZipFile(path) as archive:
        return ET.fromstring(archive.read("project.qde"))


def _source_texts(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("project.qde"))
        texts = {}
        for source in root.iterfind(".//q:TextSource", NS):
            member = source.get("plainTextPath").removeprefix("internal://")
            texts[source.get("guid")] = archive.read(f"sources/{member}").decode("utf-8")
    return texts


# --------------------------------------------------------------------------- schema


def test_packaged_schema_is_the_refi_qda_project_schema():
    text = project_xsd_path().read_text(encoding="utf-8")
    assert 'targetNamespace="urn:QDA-XML:project:1.0"' in text
    assert "licensed under the MIT license" in text


@pytest.mark.shared
def test_packaged_schema_matches_shared_copy(shared_dir):
    shared = shared_dir / "refi-qda" / "Project-mrt2019.xsd"
    assert project_xsd_path().read_bytes() == shared.read_bytes()


def test_qdpx_validates_against_project_schema(qdpx):
    with zipfile.ZipFile(qdpx) as archive:
        names = archive.namelist()
        xml = archive.read("project.qde")
    assert names[0] == "project.qde"
    assert all(n == "project.qde" or n.startswith("sources/") for n in names)
    assert schema_errors(xml, project_schema()) == []


@pytest.mark.shared
def test_qdpx_validates_against_shared_schema(qdpx, shared_dir):
    import xmlschema

    schema = xmlschema.XMLSchema(str(shared_dir / "refi-qda" / "Project-mrt2019.xsd"))
    with zipfile.ZipFile(qdpx) as archive:
        schema.validate(archive.read("project.qde").decode("utf-8"))


def test_validation_rejects_broken_projects(corpus, codebook):
    documents, sentences, texts = corpus
    xml = build_qdpx(documents, sentences, texts, codebook)["project.qde"]
    root = ET.fromstring(xml)
    selection = root.find(".//q:PlainTextSelection", NS)
    del selection.attrib["startPosition"]
    broken = ET.tostring(root)
    with pytest.raises(RefiQdaError, match="startPosition"):
        validate_project_xml(broken)
    root = ET.fromstring(xml)
    root.find(".//q:Code[@isCodable='true']", NS).set("color", "red")
    with pytest.raises(RefiQdaError, match="color"):
        validate_project_xml(ET.tostring(root))


def test_qdc_validates_and_lists_the_codebook(tmp_path, codebook):
    path = write_qdc(tmp_path / "codebook.qdc", codebook)
    xml = path.read_bytes()
    assert schema_errors(xml, codebook_schema()) == []
    root = ET.fromstring(xml)
    assert root.tag == "{urn:QDA-XML:codebook:1.0}CodeBook"
    codes = {
        c.get("name"): c
        for c in root.iter("{urn:QDA-XML:codebook:1.0}Code")
        if c.get("isCodable") == "true"
    }
    assert list(codes) == CODE_COLUMNS
    for key, code in codebook.codes.items():
        assert codes[key].get("color").lower() == code.colour.lower()
        assert codes[key].findtext("{urn:QDA-XML:codebook:1.0}Description") == code.description
    broken = xml.replace(b' isCodable="true"', b"", 1)
    with pytest.raises(RefiQdaError, match="isCodable"):
        validate_codebook_xml(broken)
    # a project file is not a codebook
    with pytest.raises(RefiQdaError):
        validate_codebook_xml(codebook_xml(codebook).replace(b"codebook:1.0", b"project:1.0"))


def test_exports_are_reproducible(tmp_path, corpus, codebook):
    documents, sentences, texts = corpus
    first = write_exports(documents, sentences, tmp_path / "a", ["qdpx", "qdc"], texts, codebook)
    second = write_exports(documents, sentences, tmp_path / "b", ["qdpx", "qdc"], texts, codebook)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    root = _project(first[0])
    guids = [e.get("guid") for e in root.iter() if e.get("guid")]
    assert len(guids) == len(set(guids))


# --------------------------------------------------------------------------- content


def test_codebook_sources_users_and_codings(qdpx, corpus, codebook):
    documents, sentences, _texts = corpus
    root = _project(qdpx)
    users = root.findall("q:Users/q:User", NS)
    assert len(users) == 1 and "machine coder" in users[0].get("name")
    codes = {
        c.get("guid"): c.get("name")
        for c in root.iterfind(".//q:CodeBook//q:Code", NS)
        if c.get("isCodable") == "true"
    }
    assert sorted(codes.values()) == sorted(CODE_COLUMNS)
    sources = root.findall("q:Sources/q:TextSource", NS)
    assert len(sources) == len(documents)
    names = [s.get("name") for s in sources]
    assert sorted(names) == sorted(source_names(documents).values())
    assert len(set(names)) == len(names)
    coded = sentences[sentences[CODE_COLUMNS].sum(axis=1) > 0]
    selections = root.findall(".//q:PlainTextSelection", NS)
    assert len(selections) == len(coded)
    by_id = sentences.set_index("sentence_id")
    for selection in selections:
        applied = sorted(
            codes[c.get("targetGUID")] for c in selection.iterfind("q:Coding/q:CodeRef", NS)
        )
        row = by_id.loc[selection.get("name")]
        assert applied == sorted(c for c in CODE_COLUMNS if row[c] == 1)
        assert selection.get("creatingUser") == users[0].get("guid")


def test_selection_offsets_slice_the_source_text(qdpx, corpus):
    _, sentences, _ = corpus
    texts = _source_texts(qdpx)
    by_id = sentences.set_index("sentence_id")
    checked = 0
    for source in _project(qdpx).iterfind(".//q:TextSource", NS):
        text = texts[source.get("guid")]
        for selection in source.iterfind("q:PlainTextSelection", NS):
            start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
            assert text[start:end] == by_id.loc[selection.get("name"), "text"]
            checked += 1
    assert checked > 20


def test_offsets_count_code_points_not_bytes(tmp_path, codebook):
    text = "Café schools compete — “fiercely”. Académies collaborate in a trust 🤝 across towns."
    doc_id = "a" * 16
    first_end = text.index(".") + 1
    second_start = first_end + 1
    documents = pd.DataFrame([{"doc_id": doc_id, "path": "x.txt", "title": "Unicode"}])
    rows = []
    for index, (start, end, codes) in enumerate(
        [
            (0, first_end, {"competition": 1}),
            (second_start, len(text), {"collaboration": 1, "academy_trust": 1}),
        ]
    ):
        rows.append(
            {
                "sentence_id": f"{doc_id}-{index:05d}",
                "doc_id": doc_id,
                "start_char": start,
                "end_char": end,
                "text": text[start:end],
                **{c: codes.get(c, 0) for c in CODE_COLUMNS},
            }
        )
    sentences = pd.DataFrame(rows)
    path = write_qdpx(tmp_path / "u.qdpx", documents, sentences, {doc_id: text}, codebook)
    (source_text,) = _source_texts(path).values()
    selections = _project(path).findall(".//q:PlainTextSelection", NS)
    assert [
        source_text[int(s.get("startPosition")) : int(s.get("endPosition"))] for s in selections
    ] == [r["text"] for r in rows]
    assert int(selections[1].get("endPosition")) == len(text) < len(text.encode("utf-8"))


def test_blind_export_has_documents_but_no_codings(tmp_path, corpus, codebook):
    documents, sentences, texts = corpus
    path = write_qdpx(
        tmp_path / "blind.qdpx", documents, sentences, texts, codebook, include_codings=False
    )
    root = _project(path)
    assert root.findall(".//q:PlainTextSelection", NS) == []
    assert len(root.findall(".//q:TextSource", NS)) == len(documents)


def test_bad_offsets_are_reported(corpus, codebook):
    documents, sentences, texts = corpus
    broken = sentences.copy()
    row = broken.index[broken.competition == 1][0]
    broken.loc[row, "end_char"] = len(texts[broken.loc[row, "doc_id"]]) + 5
    with pytest.raises(RefiQdaError, match=broken.loc[row, "sentence_id"]):
        build_qdpx(documents, broken, texts, codebook)


# --------------------------------------------------------------------------- matching rule


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ((100, 200), True),  # exactly the sentence
        ((95, 205), True),  # a little more
        ((105, 195), True),  # trimmed ends
        ((140, 150), True),  # a phrase inside the sentence
        ((0, 130), False),  # mostly the previous sentence, a third of this one
        ((170, 400), False),  # mostly the next sentences
        ((50, 160), True),  # covers 60 % of the sentence
        ((200, 260), False),  # touches the end only
    ],
)
def test_selection_codes_sentence(selection, expected):
    assert selection_codes_sentence(*selection, 100, 200) is expected


# --------------------------------------------------------------------------- round trip


HUMAN_GUID = "{7e0c9a4b-3f1d-4c1e-9a55-1d2a8c0e4b11}"  # braces and lower case, as some tools write


def _edit_as_a_human(qdpx: Path, out: Path, sentences: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Remove and add codings in a .qdpx as a person in QDA software would.

    Returns the expected changes: sentence_id -> {code: 0 or 1}.
    """
    ET.register_namespace("", PROJECT_NAMESPACE)
    with zipfile.ZipFile(qdpx) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    root = ET.fromstring(members["project.qde"])
    q = f"{{{PROJECT_NAMESPACE}}}"
    codes = {c.get("name"): c.get("guid") for c in root.iter(f"{q}Code")}
    ET.SubElement(root.find(f"{q}Users"), f"{q}User", {"guid": HUMAN_GUID, "name": "Researcher A"})
    # the researcher files two codes under her own parent code, with her own names
    parent = ET.SubElement(
        root.find(f"{q}CodeBook/{q}Codes"),
        f"{q}Code",
        {
            "guid": "{1a2b3c4d-0000-4000-8000-000000000001}",
            "name": "My codes",
            "isCodable": "false",
        },
    )
    ET.SubElement(
        parent,
        f"{q}Code",
        {"guid": "{1a2b3c4d-0000-4000-8000-000000000002}", "name": "Faith", "isCodable": "true"},
    )
    ET.SubElement(
        parent,
        f"{q}Code",
        {
            "guid": "{1a2b3c4d-0000-4000-8000-000000000003}",
            "name": "Memo-worthy",
            "isCodable": "true",
        },
    )
    faith_guid = "{1a2b3c4d-0000-4000-8000-000000000002}"
    memo_guid = "{1a2b3c4d-0000-4000-8000-000000000003}"
    name_of = {v: k for k, v in codes.items()}
    expected: dict[str, dict[str, int]] = {}
    sources = root.findall(f".//{q}TextSource")
    by_doc = {d: g.sort_values("start_char") for d, g in sentences.groupby("doc_id")}

    def doc_of(source):
        return source.find(f"{q}Description").text.split()[2].rstrip(";")

    # 1. first document: delete every collaboration coding, and one selection entirely
    first = sources[0]
    selections = first.findall(f"{q}PlainTextSelection")
    for selection in selections:
        for coding in selection.findall(f"{q}Coding"):
            if name_of[coding.find(f"{q}CodeRef").get("targetGUID")] == "collaboration":
                selection.remove(coding)
                expected.setdefault(selection.get("name"), {})["collaboration"] = 0
    dropped = selections[-1]
    for coding in dropped.findall(f"{q}Coding"):
        expected.setdefault(dropped.get("name"), {})[
            name_of[coding.find(f"{q}CodeRef").get("targetGUID")]
        ] = 0
    first.remove(dropped)

    def add_selection(source, start, end, code_guids):
        element = ET.Element(
            f"{q}PlainTextSelection",
            {
                "guid": str(uuid.uuid4()),
                "name": "quote",
                "startPosition": str(start),
                "endPosition": str(end),
                "creatingUser": HUMAN_GUID,
            },
        )
        for guid in code_guids:
            coding = ET.SubElement(
                element, f"{q}Coding", {"guid": str(uuid.uuid4()), "creatingUser": HUMAN_GUID}
            )
            ET.SubElement(coding, f"{q}CodeRef", {"targetGUID": guid})
        position = len(source.findall(f"{q}Description")) + len(
            source.findall(f"{q}PlainTextSelection")
        )
        source.insert(position, element)

    # 2. second document: code an uncoded sentence as competition, selecting it with a
    #    trailing space; a phrase inside another as faith (own code name); a memo code
    second = sources[1]
    sentences2 = by_doc[doc_of(second)]
    uncoded = sentences2[sentences2[CODE_COLUMNS].sum(axis=1) == 0]
    target = uncoded.iloc[0]
    add_selection(
        second, int(target.start_char), int(target.end_char) + 1, [codes["competition"].lower()]
    )
    expected.setdefault(target.sentence_id, {})["competition"] = 1
    phrase = uncoded[(uncoded.end_char - uncoded.start_char) > 40].iloc[1]
    add_selection(
        second, int(phrase.start_char) + 3, int(phrase.start_char) + 12, [faith_guid, memo_guid]
    )
    expected.setdefault(phrase.sentence_id, {})["faith"] = 1

    # 3. third document: one selection over two whole consecutive sentences, as network
    third = sources[2]
    sentences3 = by_doc[doc_of(third)]
    pair = sentences3.iloc[3:5]
    add_selection(
        third, int(pair.start_char.iloc[0]), int(pair.end_char.iloc[1]), [codes["network"]]
    )
    for sentence_id in pair.sentence_id:
        expected.setdefault(sentence_id, {})["network"] = 1

    members["project.qde"] = ET.tostring(root, xml_declaration=True, encoding="utf-8")
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return expected


def test_round_trip_reflects_exactly_the_human_edits(tmp_path, qdpx, corpus):
    documents, sentences, texts = corpus
    edited = tmp_path / "edited.qdpx"
    changes = _edit_as_a_human(qdpx, edited, sentences)
    validate_project_xml(_zip_member(edited, "project.qde"))

    result = read_qdpx(edited, sentences, texts)
    coded = result.coded_set
    assert list(coded.columns) == ["id", "sentence", *CODE_COLUMNS, "doc_id", "source"]
    assert len(coded) == len(sentences)
    assert set(result.sources_matched.values()) == set(documents.doc_id)

    expected = sentences.set_index("sentence_id")[CODE_COLUMNS].copy()
    for sentence_id, codes in changes.items():
        for code, value in codes.items():
            expected.loc[sentence_id, code] = value
    got = coded.set_index("id")[CODE_COLUMNS]
    pd.testing.assert_frame_equal(
        got.loc[expected.index], expected, check_names=False, check_dtype=False
    )
    assert (
        coded.set_index("id").loc[sentences.sentence_id, "sentence"].tolist()
        == sentences.text.tolist()
    )
    assert any("Memo-worthy" in w for w in result.warnings)
    assert result.codings_by_user["Researcher A"] == 3
    assert result.n_selections_matched == result.n_selections


def test_round_trip_without_edits_gives_the_machine_codes(qdpx, corpus):
    _, sentences, texts = corpus
    result = read_qdpx(qdpx, sentences, texts)
    got = result.coded_set.set_index("id")[CODE_COLUMNS]
    want = sentences.set_index("sentence_id")[CODE_COLUMNS]
    pd.testing.assert_frame_equal(got.loc[want.index], want, check_names=False, check_dtype=False)
    assert result.warnings == []


def _zip_member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def test_reader_copes_with_tool_rewrites(tmp_path, qdpx, corpus):
    """A tool that renames sources, stores them with CRLF line ends, drops our variables
    and GUIDs, and writes GUIDs in lower case in braces still maps back by text and offsets."""
    _, sentences, texts = corpus
    with zipfile.ZipFile(qdpx) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    root = ET.fromstring(members["project.qde"])
    q = f"{{{PROJECT_NAMESPACE}}}"
    rewritten = {"project.qde": b""}
    for index, source in enumerate(root.iter(f"{q}TextSource")):
        old = source.get("plainTextPath").removeprefix("internal://")
        text = members[f"sources/{old}"].decode("utf-8")
        crlf = text.replace("\n", "\r\n")
        new_name = f"Document {index}.txt"
        rewritten[f"Sources/{new_name}"] = crlf.encode("utf-8")
        source.set("plainTextPath", f"internal://{new_name.replace(' ', '%20')}")
        source.set("guid", "{" + str(uuid.uuid4()) + "}")
        source.set("name", new_name)
        for value in source.findall(f"{q}VariableValue"):
            source.remove(value)
        for selection in source.iter(f"{q}PlainTextSelection"):
            for attr in ("startPosition", "endPosition"):
                position = int(selection.get(attr))
                selection.set(attr, str(position + text[:position].count("\n")))
    for element in root.iter():
        for attr in ("guid", "targetGUID", "creatingUser"):
            if element.get(attr):
                element.set(attr, "{" + element.get(attr).lower().strip("{}") + "}")
    rewritten["project.qde"] = ET.tostring(root, encoding="utf-8")
    edited = tmp_path / "rewritten.qdpx"
    with zipfile.ZipFile(edited, "w") as archive:
        for name, data in rewritten.items():
            archive.writestr(name, data)

    result = read_qdpx(edited, sentences, texts)
    got = result.coded_set.set_index("id")[CODE_COLUMNS]
    want = sentences.set_index("sentence_id")[CODE_COLUMNS]
    pd.testing.assert_frame_equal(got.loc[want.index], want, check_names=False, check_dtype=False)
    assert result.warnings == []


def test_unknown_sources_and_garbage_are_reported(tmp_path, qdpx, corpus):
    _, sentences, texts = corpus
    other = sentences[sentences.doc_id == sentences.doc_id.iloc[0]]
    result = read_qdpx(qdpx, other, {d: texts[d] for d in other.doc_id.unique()})
    assert len(result.coded_set) == len(other)
    assert sum("matches no document" in w for w in result.warnings) == len(texts) - 1
    garbage = tmp_path / "garbage.qdpx"
    garbage.write_bytes(b"not a zip and not xml")
    with pytest.raises(RefiQdaError, match=r"garbage\.qdpx"):
        read_qdpx(garbage, sentences, texts)
    empty_zip = tmp_path / "empty.qdpx"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("readme.txt", "nothing")
    with pytest.raises(RefiQdaError, match=r"no project\.qde"):
        read_qdpx(empty_zip, sentences, texts)


@pytest.mark.shared
def test_reads_the_real_atlas_ti_export(shared_dir, corpus):
    _, sentences, texts = corpus
    path = shared_dir / "refi-qda" / "sample-atlas-export.qdpx"
    project = parse_qdpx(path)
    assert project.origin.startswith("ATLAS.ti")
    assert sorted(project.codes.values()) == sorted(
        ["Commits", "2022-05-10T02:05:59Z 19e4dce", "2022-02-11T10:39:25Z cdbfd92"]
    )
    assert "088B08AC-D5CD-4ADB-8B71-B4F3459C177F" in project.users
    result = read_qdpx(path, sentences, texts)
    assert result.coded_set.empty and result.n_selections == 0
    # the sample's project.qde is itself valid against the packaged schema
    with zipfile.ZipFile(path) as archive:
        assert schema_errors(archive.read("project.qde"), project_schema()) == []


def test_reads_a_bare_project_qde(tmp_path, qdpx, corpus):
    """Sources given inline as PlainTextContent, in a project.qde outside any zip."""
    _, sentences, texts = corpus
    root = _project(qdpx)
    q = f"{{{PROJECT_NAMESPACE}}}"
    source_texts = _source_texts(qdpx)
    for source in root.iter(f"{q}TextSource"):
        content = ET.Element(f"{q}PlainTextContent")
        content.text = source_texts[source.get("guid")]
        del source.attrib["plainTextPath"]
        source.insert(1, content)
    qde = tmp_path / "project.qde"
    qde.write_bytes(ET.tostring(copy.deepcopy(root), encoding="utf-8"))
    validate_project_xml(qde.read_bytes())
    result = read_qdpx(qde, sentences, texts)
    got = result.coded_set.set_index("id")[CODE_COLUMNS]
    want = sentences.set_index("sentence_id")[CODE_COLUMNS]
    pd.testing.assert_frame_equal(got.loc[want.index], want, check_names=False, check_dtype=False)


def test_changed_source_text_is_reported(tmp_path, qdpx, corpus):
    _, sentences, texts = corpus
    with zipfile.ZipFile(qdpx) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    first_source = sorted(n for n in members if n.startswith("sources/"))[0]
    members[first_source] = b"Preface added in the QDA tool.\n" + members[first_source]
    changed = tmp_path / "changed.qdpx"
    with zipfile.ZipFile(changed, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    result = read_qdpx(changed, sentences, texts)
    assert sum("differs from textmine's clean text" in w for w in result.warnings) == 1
