"""Exchange with QDA tools as researchers met it: line-end offset conventions, the user of
blind exports, code colours in QualCoder's palette, short distinct document names."""

from __future__ import annotations

import re
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
    read_qdpx,
    validate_project_xml,
    write_qdpx,
)
from textmine.qda.read import CRLF_AS_TWO, LINE_BREAK_AS_ONE
from textmine.qda.schema import (
    FALLBACK_COLOURS,
    HUMAN_CODER_NAME,
    MACHINE_CODER_NAME,
    codebook_codes,
)
from textmine.qda.write import MAX_SOURCE_NAME, source_names

try:  # the seed-corpus builder is shared with the CSV/Parquet tests
    from test_export import seed_corpus
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.test_export import seed_corpus

REPO = Path(__file__).resolve().parent.parent
PALETTE_FILE = REPO / "tests" / "data" / "qualcoder_palette.txt"
Q = f"{{{PROJECT_NAMESPACE}}}"
CODE_COLUMNS = load_codebook().code_columns
RESEARCHER = "{6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f}"


@pytest.fixture(scope="module")
def corpus():
    return seed_corpus()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, corpus):
    documents, sentences, texts = corpus
    path = tmp_path_factory.mktemp("qdpx") / "corpus.qdpx"
    return write_qdpx(path, documents, sentences, texts, load_codebook())


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _as_a_crlf_tool(
    exported: Path, out: Path, *, count_crlf_as: int, name_by_text: bool, shift: int = 0
) -> Path:
    """Rewrite textmine's export as a Windows-minded QDA tool does: every source text stored
    with CRLF line ends, our GUIDs, variables and user replaced by the tool's own.

    REFI-QDA positions count characters (Unicode code points) of the source's plain text.
    With `count_crlf_as=1` the positions are those of the text before its line ends became
    CRLF (a line break counts as one character: QualCoder's export with "Add line ending
    character for MAXQDA"); with 2 they count the CRLF text's characters. `name_by_text`
    names each selection by its text, as QualCoder does; `shift` moves every position
    (a file whose positions fit neither convention).
    """
    members = _members(exported)
    root = ET.fromstring(members["project.qde"])
    users = root.find(f"{Q}Users")
    for user in list(users):
        users.remove(user)
    ET.SubElement(users, f"{Q}User", {"guid": RESEARCHER, "name": "Researcher A"})
    root.set("creatingUserGUID", RESEARCHER)
    rewritten = {}
    for index, source in enumerate(root.iter(f"{Q}TextSource")):
        member = "sources/" + source.get("plainTextPath").removeprefix("internal://")
        text = members.pop(member).decode("utf-8")
        assert "\n" in text and "\r" not in text
        new_name = f"Document {index}.txt"
        rewritten[f"sources/{new_name}"] = text.replace("\n", "\r\n").encode("utf-8")
        source.set("plainTextPath", f"internal://{new_name}")
        source.set("guid", str(uuid.uuid4()))
        source.set("name", new_name)
        for element in source.findall(f"{Q}VariableValue") + source.findall(f"{Q}Description"):
            source.remove(element)
        for selection in source.iter(f"{Q}PlainTextSelection"):
            start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
            if name_by_text:
                selection.set("name", text[start:end])
            else:
                selection.attrib.pop("name")
            extra = (
                (lambda p, text=text: text[:p].count("\n")) if count_crlf_as == 2 else (lambda p: 0)
            )
            selection.set("startPosition", str(start + extra(start) + shift))
            selection.set("endPosition", str(end + extra(end) + shift))
    for element in root.iter():
        for attr in ("creatingUser", "modifyingUser"):
            if element.get(attr):
                element.set(attr, RESEARCHER)
    members = {
        **members,
        **rewritten,
        "project.qde": ET.tostring(root, xml_declaration=True, encoding="utf-8"),
    }
    validate_project_xml(members["project.qde"])
    return _write(out, members)


def _codes(result) -> pd.DataFrame:
    return result.coded_set.set_index("id")[CODE_COLUMNS]


def _machine(sentences: pd.DataFrame) -> pd.DataFrame:
    return sentences.set_index("sentence_id")[CODE_COLUMNS]


# --------------------------------------------------------------------------- line ends


@pytest.mark.parametrize("name_by_text", [True, False], ids=["named-by-text", "unnamed"])
def test_crlf_text_with_positions_counting_a_line_break_as_one(
    tmp_path, exported, corpus, name_by_text
):
    _, sentences, texts = corpus
    path = _as_a_crlf_tool(
        exported, tmp_path / "qualcoder-maxqda.qdpx", count_crlf_as=1, name_by_text=name_by_text
    )
    result = read_qdpx(path, sentences, texts)
    pd.testing.assert_frame_equal(
        _codes(result).loc[_machine(sentences).index],
        _machine(sentences),
        check_names=False,
        check_dtype=False,
    )
    assert set(result.line_breaks.values()) == {LINE_BREAK_AS_ONE}
    assert result.n_selections_matched == result.n_selections > 20
    assert result.warnings == []
    assert set(result.codings_by_user) == {"Researcher A"}


def test_crlf_text_with_positions_counting_crlf_as_two(tmp_path, exported, corpus):
    _, sentences, texts = corpus
    path = _as_a_crlf_tool(exported, tmp_path / "crlf2.qdpx", count_crlf_as=2, name_by_text=True)
    result = read_qdpx(path, sentences, texts)
    pd.testing.assert_frame_equal(
        _codes(result).loc[_machine(sentences).index],
        _machine(sentences),
        check_names=False,
        check_dtype=False,
    )
    assert set(result.line_breaks.values()) == {CRLF_AS_TWO}
    assert result.warnings == []


def test_phrases_a_person_selected_decide_the_convention_without_names(tmp_path, corpus):
    """Selections of a few words, unnamed, inside sentences: they cut no word only when read
    with the right convention."""
    documents, sentences, texts = corpus
    doc_id = max(texts, key=lambda d: texts[d].count("\n"))
    text = texts[doc_id]
    mine = sentences[sentences.doc_id == doc_id].copy()
    mine[CODE_COLUMNS] = 0
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", text) if text[: m.start()].count("\n") > 2]
    picked = words[:: max(1, len(words) // 12)][:12]
    exported = write_qdpx(
        tmp_path / "one.qdpx",
        documents[documents.doc_id == doc_id],
        mine,
        {doc_id: text},
        load_codebook(),
    )
    members = _members(exported)
    root = ET.fromstring(members["project.qde"])
    competition = next(
        c.get("guid") for c in root.iter(f"{Q}Code") if c.get("name") == "competition"
    )
    source = root.find(f".//{Q}TextSource")
    for match in picked:  # positions with a line break counted as one character
        selection = ET.Element(
            f"{Q}PlainTextSelection",
            {
                "guid": str(uuid.uuid4()),
                "startPosition": str(match.start()),
                "endPosition": str(match.end()),
                "creatingUser": RESEARCHER,
            },
        )
        coding = ET.SubElement(selection, f"{Q}Coding", {"guid": str(uuid.uuid4())})
        ET.SubElement(coding, f"{Q}CodeRef", {"targetGUID": competition})
        source.insert(1, selection)
    member = "sources/" + source.get("plainTextPath").removeprefix("internal://")
    members[member] = text.replace("\n", "\r\n").encode("utf-8")
    members["project.qde"] = ET.tostring(root, encoding="utf-8")
    result = read_qdpx(_write(tmp_path / "phrases.qdpx", members), mine, {doc_id: text})
    assert set(result.line_breaks.values()) == {LINE_BREAK_AS_ONE}
    coded = set(result.coded_set.loc[result.coded_set.competition == 1, "id"])
    expected = {
        row.sentence_id
        for row in mine.itertuples()
        if any(row.start_char <= m.start() < row.end_char for m in picked)
    }
    assert coded == expected and len(expected) >= 3


def test_positions_that_fit_neither_convention_are_refused(tmp_path, exported, corpus):
    _, sentences, texts = corpus
    path = _as_a_crlf_tool(
        exported, tmp_path / "shifted.qdpx", count_crlf_as=1, name_by_text=True, shift=3
    )
    with pytest.raises(RefiQdaError, match=r"shifted\.qdpx.*neither with .* nor with"):
        read_qdpx(path, sentences, texts)


# --------------------------------------------------------------------------- users


def _users(path: Path) -> list[tuple[str, str]]:
    root = ET.fromstring(_members(path)["project.qde"])
    return [(u.get("guid"), u.get("name")) for u in root.iter(f"{Q}User")]


def test_blind_exports_name_a_neutral_user(tmp_path, corpus):
    documents, sentences, texts = corpus
    codebook = load_codebook()
    (blind,) = write_exports(
        documents,
        sentences,
        tmp_path,
        ["qdpx"],
        doc_texts=texts,
        codebook=codebook,
        include_codings=False,
    )
    ((guid, name),) = _users(blind)
    assert name == HUMAN_CODER_NAME
    root = ET.fromstring(_members(blind)["project.qde"])
    assert root.get("creatingUserGUID") == guid
    assert {s.get("creatingUser") for s in root.iter(f"{Q}TextSource")} == {guid}
    assert MACHINE_CODER_NAME not in _members(blind)["project.qde"].decode("utf-8")

    coded = write_qdpx(tmp_path / "coded.qdpx", documents, sentences, texts, codebook)
    assert _users(coded)[0][1].startswith(MACHINE_CODER_NAME)
    named = write_qdpx(
        tmp_path / "named.qdpx",
        documents,
        sentences,
        texts,
        codebook,
        include_codings=False,
        user_name="Coder B",
    )
    assert [name for _, name in _users(named)] == ["Coder B"]


# --------------------------------------------------------------------------- colours


def _palette() -> list[str]:
    lines = PALETTE_FILE.read_text(encoding="utf-8").splitlines()
    return [
        c for line in lines if not line.startswith("# ") for c in re.findall(r"#[0-9A-F]{6}", line)
    ]


# QualCoder's colour_ranges: name, first index, end index (exclusive, as QualCoder compares)
RANGES = [
    ("yellow", 0, 5),
    ("orange", 6, 30),
    ("red", 31, 45),
    ("pink", 46, 60),
    ("green", 61, 85),
    ("cyan", 86, 90),
    ("purple", 91, 100),
    ("blue", 101, 115),
    ("gray", 116, 120),
]


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _difference(a: str, b: str) -> float:
    return sum(abs(x - y) for x, y in zip(_rgb(a), _rgb(b), strict=True)) / 3


def _qualcoder_match(colour: str, palette: list[str]) -> str:
    """QualCoder's color_matcher: the first entry with the least mean absolute difference."""
    best, best_difference = "#D8D8D8", 255.0
    for entry in palette:
        difference = _difference(colour.upper(), entry)
        if difference < best_difference:
            best, best_difference = entry, difference
    return best


def _range(entry: str, palette: list[str]) -> str:
    index = palette.index(entry)
    return next((name for name, low, high in RANGES if low <= index < high), "none")


def _check_distinct_in_qualcoder(colours: list[str]) -> None:
    palette = _palette()
    matched = [_qualcoder_match(c, palette) for c in colours]
    assert len(set(matched)) == len(colours), matched
    ranges = [_range(m, palette) for m in matched]
    # nine colour ranges for ten codes: one range may hold two codes, light and dark
    assert len(set(ranges)) >= min(len(colours), len(RANGES)), ranges
    for i, a in enumerate(matched):
        for b in matched[i + 1 :]:
            same_range = _range(a, palette) == _range(b, palette)
            assert _difference(a, b) >= (80 if same_range else 40), (a, b)


def test_palette_is_qualcoders_twelve_rows_of_ten():
    palette = _palette()
    assert len(palette) == 120 == len(set(palette))
    assert palette[0] == "#F5F6CE" and palette[-1] == "#A8A8A8"


def test_default_qda_colours_stay_ten_distinct_colours_in_qualcoder():
    defaults = FALLBACK_COLOURS[: len(CODE_COLUMNS)]
    palette = _palette()
    assert all(c in palette for c in FALLBACK_COLOURS)  # QualCoder keeps them as they are
    _check_distinct_in_qualcoder(defaults)


def test_packaged_codebook_colours_stay_distinct_in_qualcoder():
    colours = [spec.colour for spec in codebook_codes(load_codebook())]
    assert colours == FALLBACK_COLOURS[: len(colours)]
    _check_distinct_in_qualcoder(colours)


def test_the_old_colours_collapsed_in_qualcoder():
    """The colours QualCoder users saw as two reds and two greens fail the same check."""
    tableau = [
        "#d62728",
        "#2ca02c",
        "#1f77b4",
        "#ff7f0e",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    with pytest.raises(AssertionError):
        _check_distinct_in_qualcoder(tableau)


# --------------------------------------------------------------------------- names


def test_documents_with_a_long_shared_title_prefix_get_short_distinct_names(tmp_path):
    manifest = pd.read_csv(REPO / "corpus" / "manifest.csv", dtype=str, keep_default_na=False)
    documents = manifest.assign(doc_id=[f"{i:016x}" for i in range(len(manifest))])
    prefix = "Ofsted inspection of local authority children's services: "
    series = documents[documents.title.str.startswith(prefix)]
    assert len(series) >= 20
    names = source_names(documents)
    assert len(set(names.values())) == len(documents)
    for row in series.itertuples():
        place = row.title.removeprefix(prefix)
        assert names[row.doc_id] == f"{place} ({row.published[:10]})"
    assert all(len(name) <= MAX_SOURCE_NAME + len(" (YYYY-MM-DD)") for name in names.values())

    # the full title stays with the source: as its `title` variable and in its description
    texts = {d: f"Text of {d}.\nSecond line." for d in documents.doc_id}
    path = write_qdpx(
        tmp_path / "names.qdpx",
        documents,
        pd.DataFrame(columns=["sentence_id", "doc_id", "start_char", "end_char", *CODE_COLUMNS]),
        texts,
        load_codebook(),
    )
    root = ET.fromstring(_members(path)["project.qde"])  # written only after XSD validation
    title_variable = next(
        v.get("guid") for v in root.iter(f"{Q}Variable") if v.get("name") == "title"
    )
    for source in root.iter(f"{Q}TextSource"):
        titles = [
            v.find(f"{Q}TextValue").text
            for v in source.iter(f"{Q}VariableValue")
            if v.find(f"{Q}VariableRef").get("targetGUID") == title_variable
        ]
        assert len(titles) == 1
        assert titles[0] in source.find(f"{Q}Description").text
        assert source.get("name") in set(names.values())
