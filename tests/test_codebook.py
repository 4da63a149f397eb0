"""The codebook as data: default file, version hash, and clear errors for broken files."""

import pytest
import yaml

from textmine.codebook import (
    CodebookError,
    codebook_file_version,
    default_codebook_path,
    load_codebook,
    parse_codebook,
)
from textmine.coding import code_texts
from textmine.columns import CODE_COLUMNS


@pytest.fixture
def default_yaml() -> dict:
    return yaml.safe_load(default_codebook_path().read_text(encoding="utf-8"))


def write(tmp_path, data) -> str:
    path = tmp_path / "codebook.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_default_codebook_has_the_ten_codes_and_a_content_hash_version():
    codebook = load_codebook()
    assert codebook.code_columns == CODE_COLUMNS
    assert codebook.version == codebook_file_version(default_codebook_path())
    assert len(codebook.version) == 12 and int(codebook.version, 16) >= 0
    assert codebook.fallback_code == "network"
    assert codebook.stance_codes == ["competition", "collaboration"]
    for code in codebook.codes.values():
        assert code.name and code.description and code.patterns
        assert code.colour.startswith("#")


def test_version_changes_with_what_decides_the_codes(tmp_path, default_yaml):
    default_yaml["codes"]["faith"]["patterns"].append("parish school")
    assert load_codebook(write(tmp_path, default_yaml)).version != load_codebook().version


def test_version_ignores_what_only_people_read(tmp_path, default_yaml):
    default_yaml["codes"]["faith"]["description"] += " Edited."
    default_yaml["codes"]["faith"]["colour"] = "#000000"
    default_yaml["codes"]["faith"]["name"] = "Faith groupings"
    default_yaml["name"] = "renamed"
    edited = write(tmp_path, default_yaml)  # also: re-dumped, so no comments, other layout
    assert load_codebook(edited).version == load_codebook().version


def test_added_code_becomes_an_extra_column(tmp_path, default_yaml):
    default_yaml["codes"]["inspection"] = {
        "name": "Inspection",
        "kind": "stance",
        "colour": "#123456",
        "description": "Talk of inspection.",
        "patterns": [{"tokens": [{"LEMMA": "inspect"}], "id": "inspect"}, "Ofsted inspection"],
    }
    codebook = load_codebook(write(tmp_path, default_yaml))
    assert codebook.code_columns == [*CODE_COLUMNS, "inspection"]
    coded = code_texts(
        ["Inspectors inspected the school.", "Schools compete for pupils."], codebook
    )
    assert coded["inspection"].tolist() == [1, 0]
    assert coded["competition"].tolist() == [0, 1]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["codes"].pop("faith"), "missing code(s) faith"),
        (lambda d: d["codes"]["faith"].pop("colour"), "codes.faith: missing field `colour`"),
        (lambda d: d["codes"]["faith"].update(colour="blue"), "codes.faith.colour"),
        (lambda d: d["codes"]["faith"].update(kind="type"), "codes.faith.kind"),
        (lambda d: d["codes"]["faith"].update(patern=[]), "unknown field(s) patern"),
        (lambda d: d["codes"].update({"Bad Code": d["codes"]["faith"]}), "codes.Bad Code"),
        (
            lambda d: d["codes"]["faith"]["patterns"].append({"tokens": [{"LEMA": "x"}]}),
            "codes.faith.patterns[4].tokens[0]: unknown token attribute 'LEMA'",
        ),
        (
            lambda d: d["codes"]["faith"]["patterns"].append({"tokens": [{"LEMMA": "Diocese"}]}),
            "LEMMA values must be lower case",
        ),
        (
            lambda d: d["codes"]["faith"]["patterns"].append(
                {"tokens": [{"LOWER": "x", "OP": "%"}]}
            ),
            "OP '%'",
        ),
        (
            lambda d: d["codes"]["faith"]["patterns"].append({"phrase": "x", "tokens": []}),
            "exactly one of `phrase` or `tokens`",
        ),
        (
            lambda d: d["codes"]["faith"]["patterns"].append(
                {"tokens": [{"LOWER": {"REGEX": "("}}]}
            ),
            "bad REGEX",
        ),
        (
            lambda d: d["codes"]["faith"]["patterns"].append(
                {"tokens": [{"LOWER": {"NOT_AN_OP": ["a"]}}]}
            ),
            "unknown operator(s) NOT_AN_OP",
        ),
        (
            lambda d: d["codes"]["faith"]["patterns"].append({"tokens": [{"LENGTH": "long"}]}),
            "invalid token pattern",
        ),
        (
            lambda d: d["codes"]["faith"]["patterns"].append(
                {"phrase": "x", "prefilter": [{"regex": "(unclosed"}]}
            ),
            "codes.faith.patterns[4].prefilter[0]: bad regex",
        ),
        (
            lambda d: d["codes"]["faith"]["patterns"].append(
                {"phrase": "x", "prefilter": [{"regx": "a"}]}
            ),
            "prefilter[0]: a prefilter item",
        ),
        (lambda d: d["codes"]["faith"].update(fallback=True), "only one code may be the fallback"),
        (lambda d: d["context"].update(negation_window="four"), "context.negation_window"),
        (lambda d: d["context"].update(surprise=[]), "unknown entry(ies) surprise"),
        (
            lambda d: d["context"].update(consultation_targets=["nope"]),
            "unknown pattern id(s) nope",
        ),
        (lambda d: d.pop("codes"), "codes: missing or empty"),
    ],
)
def test_broken_codebook_names_the_entry_and_the_problem(tmp_path, default_yaml, edit, message):
    edit(default_yaml)
    path = write(tmp_path, default_yaml)
    with pytest.raises(CodebookError) as info:
        load_codebook(path)
    assert message in str(info.value)
    assert path in str(info.value)


def test_invalid_yaml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(CodebookError, match="not valid YAML"):
        parse_codebook("codes: [unclosed", source="bad.yml")
    with pytest.raises(CodebookError, match="cannot read the file"):
        load_codebook(tmp_path / "absent.yml")


def test_readme_example_of_adding_a_code_works(tmp_path, default_yaml):
    import re

    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"```yaml\ncodes:\n  # \.\.\. the ten standard codes \.\.\.\n(.*?)```", readme, re.S
    )
    assert block, "README lost its example of adding a code"
    default_yaml["codes"].update(yaml.safe_load("codes:\n" + block.group(1))["codes"])
    codebook = load_codebook(write(tmp_path, default_yaml))
    added = [c for c in codebook.code_columns if c not in CODE_COLUMNS]
    assert len(added) == 1
    coded = code_texts(
        ["Ofsted inspected the school against floor standards.", "Pupils enjoy reading."], codebook
    )
    assert coded[added[0]].tolist() == [1, 0]
