"""A code a researcher adds to the codebook flows through every output.

The codebook is the packaged one plus the README's example code
(`accountability`, a stance code); the seed texts are coded with it by the
real tagger. Exports (CSV, Parquet, REFI-QDA codebook and codings, and back),
document counts, trends, figures, kwic and evaluation must all carry its column.
"""

from __future__ import annotations

import json
import zipfile
from xml.etree import ElementTree as ET

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import codebook_file_with_code
from tests.test_export import FrameStore, seed_corpus
from textmine.codebook import load_codebook
from textmine.coding import code_sentences
from textmine.columns import probability_column
from textmine.evaluate import agreement_table
from textmine.export import unescape_formula_cells, write_exports
from textmine.figures import write_figures
from textmine.kwic import kwic
from textmine.qda import read_qdpx
from textmine.tables import coded_sentences_table, documents_table
from textmine.trends import compute_trends

ADDED = "accountability"
# The README's example of adding a code ("Adding a code").
ADDED_ENTRY = {
    "name": "Accountability",
    "kind": "stance",
    "colour": "#9edae5",
    "description": "High-stakes accountability: inspection, floor standards, intervention.",
    "patterns": [
        {"tokens": [{"LEMMA": {"IN": ["inspect", "inspection"]}}], "id": "inspection"},
        "floor standard",
        {"phrase": "Ofsted", "attr": "LOWER"},
    ],
    "exclusions": [
        {
            "tokens": [{"LOWER": {"IN": ["self-inspection", "self-inspections"]}}],
            "id": "self_inspection",
        },
    ],
}
PROJECT = "{urn:QDA-XML:project:1.0}"
CODEBOOK_NS = "{urn:QDA-XML:codebook:1.0}"


def _codebook_with_added_code(folder, kind: str = "stance"):
    path = folder / f"codebook_{kind}.yml"
    return load_codebook(codebook_file_with_code(path, ADDED, dict(ADDED_ENTRY, kind=kind)))


@pytest.fixture(scope="module")
def codebook(tmp_path_factory):
    return _codebook_with_added_code(tmp_path_factory.mktemp("codebook"))


@pytest.fixture(scope="module")
def corpus(codebook):
    """Documents, the seed sentences coded with the extended codebook, clean texts."""
    documents, sentences, texts = seed_corpus()
    return documents, code_sentences(sentences, codebook), texts


@pytest.fixture(scope="module")
def positives(corpus):
    _, coded, _ = corpus
    ids = coded.loc[coded[ADDED] == 1, "sentence_id"].tolist()
    assert len(ids) >= 3  # the seed texts speak of inspection and Ofsted
    return ids


def test_the_added_code_is_a_column_after_the_standard_ones(codebook, corpus):
    _, coded, _ = corpus
    assert codebook.code_columns[-1] == ADDED and ADDED in codebook.stance_codes
    assert ADDED in coded.columns
    named = coded[coded["text"].str.contains(r"\binspect(?:ions?|ed|s)?\b|Ofsted", case=False)]
    assert len(named) >= 3 and (named[ADDED] == 1).all()
    assert coded.loc[coded[ADDED] == 1, "evidence"].map(lambda e: ADDED in json.loads(e)).all()


def test_csv_and_parquet_exports_carry_the_added_code(tmp_path, codebook, corpus, positives):
    documents, coded, texts = corpus
    write_exports(documents, coded, tmp_path, ["csv", "parquet"], texts, codebook)
    sentences_csv = pd.read_csv(tmp_path / "coded_sentences.csv", dtype={"sentence_id": str})
    header = list(sentences_csv.columns)
    assert header.index(ADDED) == header.index(codebook.code_columns[-2]) + 1
    assert sentences_csv.loc[sentences_csv[ADDED] == 1, "sentence_id"].tolist() == sorted(
        positives, key=sentences_csv["sentence_id"].tolist().index
    )
    documents_csv = pd.read_csv(tmp_path / "documents.csv")
    assert documents_csv[f"n_{ADDED}"].sum() == len(positives)
    with_sentences = documents_csv[documents_csv["n_sentences"] > 0]
    assert (
        with_sentences[f"share_{ADDED}"]
        == with_sentences[f"n_{ADDED}"] / with_sentences["n_sentences"]
    ).all()
    schema = pq.read_schema(tmp_path / "coded_sentences.parquet")
    assert str(schema.field(ADDED).type) == "int8"
    documents_schema = pq.read_schema(tmp_path / "documents.parquet")
    assert str(documents_schema.field(f"n_{ADDED}").type) == "int32"
    assert str(documents_schema.field(f"share_{ADDED}").type) == "double"
    parquet = pq.read_table(tmp_path / "coded_sentences.parquet").to_pandas()
    assert int(parquet[ADDED].sum()) == len(positives)


def test_refi_qda_codebook_codings_and_import_carry_the_added_code(
    tmp_path, codebook, corpus, positives
):
    documents, coded, texts = corpus
    qdpx, qdc = write_exports(documents, coded, tmp_path, ["qdpx", "qdc"], texts, codebook)
    stance_group = next(
        c for c in ET.parse(qdc).getroot().iter(f"{CODEBOOK_NS}Code") if c.get("name") == "Stance"
    )
    added = next(c for c in stance_group if c.get("name") == ADDED)
    assert added.get("color") == ADDED_ENTRY["colour"].upper()
    assert added.findtext(f"{CODEBOOK_NS}Description") == ADDED_ENTRY["description"]
    with zipfile.ZipFile(qdpx) as archive:
        project = ET.fromstring(archive.read("project.qde"))
    guid = next(c.get("guid") for c in project.iter(f"{PROJECT}Code") if c.get("name") == ADDED)
    coded_selections = [
        s.get("name")
        for s in project.iter(f"{PROJECT}PlainTextSelection")
        if any(ref.get("targetGUID") == guid for ref in s.iter(f"{PROJECT}CodeRef"))
    ]
    assert sorted(coded_selections) == sorted(positives)
    result = read_qdpx(qdpx, coded, texts, codes=codebook.code_columns)
    assert list(result.coded_set.columns)[-3:] == [ADDED, "doc_id", "source"]
    back = result.coded_set.set_index("id")[ADDED]
    assert len(back) == len(coded) and sorted(back[back == 1].index) == sorted(positives)


def test_document_counts_and_trends_carry_the_added_code(tmp_path, codebook, corpus, positives):
    documents, coded, _ = corpus
    counts = documents_table(documents, coded, codebook)
    assert counts[f"n_{ADDED}"].sum() == len(positives)
    trends = compute_trends(coded, documents, codebook=codebook)
    stance = trends["stance_trends"]
    whole = stance[(stance["dimension"] == "all") & (stance["period"] == "all")].iloc[0]
    assert whole[f"n_{ADDED}"] == len(positives)
    assert whole[f"share_{ADDED}"] == pytest.approx(len(positives) / len(coded), abs=1e-6)
    assert whole[f"{ADDED}_ci_low"] < whole[f"share_{ADDED}"] < whole[f"{ADDED}_ci_high"]
    assert f"share_{ADDED}" in trends["document_shares"].columns
    assert f"n_{ADDED}" not in trends["partnership_trends"].columns
    written = write_figures(trends, None, tmp_path, codebook=codebook)
    html = (tmp_path / "stance_over_time.html").read_text(encoding="utf-8")
    assert tmp_path / "stance_over_time.png" in written
    assert '"name":"Accountability"' in html.replace(": ", ":")


def test_an_added_partnership_type_gets_a_rate_per_1000(tmp_path, corpus, positives):
    documents, coded, _ = corpus
    codebook = _codebook_with_added_code(tmp_path, kind="partnership")
    trends = compute_trends(coded, documents, codebook=codebook)
    partnership = trends["partnership_trends"]
    whole = partnership[(partnership["dimension"] == "all") & (partnership["period"] == "all")]
    assert whole[f"n_{ADDED}"].item() == len(positives)
    assert whole[f"{ADDED}_per_1000"].item() == pytest.approx(
        1000 * len(positives) / len(coded), abs=1e-4
    )
    assert f"share_{ADDED}" not in trends["stance_trends"].columns


def test_kwic_and_evaluation_carry_the_added_code(codebook, corpus, positives):
    _, coded, _ = corpus
    hits = kwic(coded, "inspect*", codes=codebook.code_columns)
    assert len(hits) >= 1 and list(hits.columns)[-1] == ADDED
    own = coded.set_index("sentence_id").loc[hits["sentence_id"], ADDED]
    assert hits[ADDED].tolist() == own.tolist()  # each hit carries its sentence's code
    assert hits[ADDED].sum() >= 3 and set(hits.loc[hits[ADDED] == 1, "sentence_id"]) <= set(
        positives
    )
    human = coded.rename(columns={"sentence_id": "id"})
    machine = human.copy()
    machine.loc[machine["id"] == positives[0], ADDED] = 0  # the machine misses one
    table = agreement_table(
        human,
        machine,
        codebook.code_columns,
        stance_codes=codebook.stance_codes,
        partnership_codes=codebook.partnership_codes,
    ).set_index("code")
    assert table.loc[ADDED, "kind"] == "stance"
    assert (table.loc[ADDED, "fn"], table.loc[ADDED, "tp"]) == (1, len(positives) - 1)
    stance_f1 = table.loc[codebook.stance_codes, "f1"].mean()
    assert table.loc["macro_f1_stance", "f1"] == pytest.approx(stance_f1)


def test_export_and_import_commands_take_the_codebook(
    tmp_path, codebook, corpus, positives, monkeypatch
):
    from typer.testing import CliRunner

    import textmine.store
    from textmine.cli import app

    monkeypatch.setattr(textmine.store, "open_store", lambda out_dir, **_: FrameStore(corpus))
    codebook_file = codebook.path
    runner = CliRunner()
    out = tmp_path / "processed"
    result = runner.invoke(
        app,
        [
            "export",
            "-f",
            "csv",
            "-f",
            "qdpx",
            "--corpus-dir",
            str(out),
            "--codebook",
            codebook_file,
        ],
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out / "coded_sentences.csv")[ADDED].sum() == len(positives)
    human = tmp_path / "human.csv"
    result = runner.invoke(
        app,
        [
            "import-qdpx",
            str(out / "coded_corpus.qdpx"),
            "--out",
            str(human),
            "--corpus-dir",
            str(out),
            "--codebook",
            codebook_file,
            "--evaluate",
        ],
    )
    assert result.exit_code == 0, result.output
    imported = unescape_formula_cells(pd.read_csv(human, dtype={"id": str}, keep_default_na=False))
    assert sorted(imported.loc[imported[ADDED] == 1, "id"]) == sorted(positives)
    agreement = pd.read_csv(tmp_path / "human_agreement.csv").set_index("code")
    assert agreement.loc[ADDED, "f1"] == 1.0


def test_learned_coder_columns_pass_through_the_exports(tmp_path, codebook, corpus):
    documents, coded, texts = corpus
    learned = coded.copy()
    for i, code in enumerate(codebook.code_columns):
        learned[probability_column(code)] = (learned[code] * 0.5 + 0.01 * i).astype(float)
    learned.loc[learned.index[0], probability_column(ADDED)] = float("nan")  # a rule-coded row
    learned["model_version"] = "learned-1a2b3c"
    table = coded_sentences_table(documents, learned, codebook)
    probabilities = [probability_column(c) for c in codebook.code_columns]
    columns = list(table.columns)
    assert (
        columns[columns.index(ADDED) + 1 : columns.index(ADDED) + 1 + len(probabilities)]
        == probabilities
    )
    assert "model_version" in columns
    write_exports(documents, learned, tmp_path, ["csv", "parquet"], texts, codebook)
    read_back = pd.read_csv(tmp_path / "coded_sentences.csv")
    assert set(read_back["model_version"]) == {"learned-1a2b3c"}
    assert read_back[probability_column(ADDED)].isna().sum() == 1
    parquet = pq.read_table(tmp_path / "coded_sentences.parquet")
    assert str(parquet.schema.field(probability_column(ADDED)).type) == "double"
    assert str(parquet.schema.field("model_version").type) == "string"
    expected = learned.set_index("sentence_id")[probability_column("competition")]
    got = parquet.to_pandas().set_index("sentence_id")[probability_column("competition")]
    pd.testing.assert_series_equal(got.loc[expected.index], expected, check_names=False)
    evidence = json.loads(read_back.loc[read_back[ADDED] == 1, "evidence"].iloc[0])
    assert ADDED in evidence
