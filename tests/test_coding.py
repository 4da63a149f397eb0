"""code_texts / code_sentences, the prefilter, and the `code` and `evaluate` commands."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import textmine
from textmine.cli import app
from textmine.codebook import load_codebook
from textmine.coding import code_sentences, code_texts, get_coder
from textmine.columns import CODE_COLUMNS, CODEBOOK_VERSION, EVIDENCE, TEXTMINE_VERSION
from textmine.evaluate import MICRO_TYPES

SENTENCES = [
    "Pupils' attendance has improved since the last inspection.",
    "Quasi-markets are predicated on competition between providers.",
    "The school has been supported by a national leader of education from a nearby "
    "teaching school.",
    "",
    "We recommend that Ofsted is provided with the powers it needs to inspect academy chains.",
]


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


def test_code_texts_columns_and_values(codebook):
    coded = code_texts(SENTENCES, codebook)
    assert list(coded.columns) == [*CODE_COLUMNS, EVIDENCE]
    assert all(str(coded[c].dtype) == "int64" for c in CODE_COLUMNS)
    labels = [{c for c in CODE_COLUMNS if row[c]} for _, row in coded.iterrows()]
    assert labels == [
        set(),
        {"competition"},
        {"collaboration", "system_leader", "teaching_school"},
        set(),
        {"academy_trust"},
    ]
    assert json.loads(coded[EVIDENCE][0]) == {}


def test_code_sentences_keeps_rows_order_and_adds_provenance(codebook):
    frame = pd.DataFrame(
        {
            "sentence_id": [f"s{i}" for i in range(len(SENTENCES))],
            "text": SENTENCES,
            "page": range(len(SENTENCES)),
        },
        index=[10, 11, 12, 13, 14],
    )
    coded = code_sentences(frame, codebook)
    assert list(coded.columns) == [
        "sentence_id",
        "text",
        "page",
        *CODE_COLUMNS,
        EVIDENCE,
        CODEBOOK_VERSION,
        TEXTMINE_VERSION,
    ]
    assert coded.index.tolist() == [10, 11, 12, 13, 14]
    assert coded["sentence_id"].tolist() == frame["sentence_id"].tolist()
    assert set(coded[CODEBOOK_VERSION]) == {codebook.version}
    assert set(coded[TEXTMINE_VERSION]) == {textmine.__version__}
    # coding again replaces the code columns instead of duplicating them
    again = code_sentences(coded, codebook)
    assert list(again.columns) == list(coded.columns)
    with pytest.raises(KeyError, match="no column 'sentence'"):
        code_sentences(frame, codebook, text_column="sentence")


def test_pipeline_is_built_once_per_codebook(codebook):
    import pickle

    assert get_coder(codebook) is get_coder(codebook)
    assert get_coder(load_codebook()) is not get_coder(codebook)
    # a codebook travels to workers without its pipeline and codes the same there
    copy = pickle.loads(pickle.dumps(codebook))
    assert copy.cache == {} and copy.version == codebook.version
    assert code_texts(SENTENCES, copy).equals(code_texts(SENTENCES, codebook))


def test_prefilter_never_hides_a_match(codebook):
    """Coding with the prefilter equals running the tagger on every sentence."""
    coder = get_coder(codebook)
    words = [
        "schools",
        "compete",
        "Competitive",
        "market",
        "partners",
        "trust",
        "MATs",
        "federated",
        "diocese",
        "network",
        "league",
        "tables",
        "NLE",
        "multi-agency",
        "police",
        "work",
        "together",
        "with",
        "other",
        "the",
        "children",
        "rather",
        "than",
        "a",
        "federation",
        "not",
        "parents",
        "in",
        "partnership",
        "local",
        "area",
        "LSCB",
        "school-to-school",
        "support",
        "teaching",
        "school",
        "alliances",
    ]
    import random

    rng = random.Random(7)
    texts = [
        " ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) + "." for _ in range(300)
    ]
    texts += ["The weather was fine.", "Inspectors visited lessons."]
    coded = code_texts(texts, codebook)
    for text, (_, row) in zip(texts, coded.iterrows(), strict=True):
        labels, _ = coder.tagger.label(coder.nlp(text))
        assert labels == {c: int(row[c]) for c in CODE_COLUMNS}, text
    assert not coder.is_candidate("Pupils' attendance has improved this year.")


def test_cli_code_writes_same_rows_in_order(tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame(
        {"id": ["x2", "x1", "x3"], "sentence": SENTENCES[1:4], "note": ["007", "", "keep"]}
    ).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["code", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    coded = pd.read_csv(out, dtype={"note": str}, keep_default_na=False)
    assert coded["id"].tolist() == ["x2", "x1", "x3"]
    assert coded["note"].tolist() == ["007", "", "keep"]
    for column in [*CODE_COLUMNS, EVIDENCE, CODEBOOK_VERSION]:
        assert column in coded.columns
    assert coded["competition"].tolist() == [1, 0, 0]


def test_cli_code_reports_a_broken_codebook(tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a"], "sentence": ["Schools compete."]}).to_csv(source, index=False)
    bad = tmp_path / "bad.yml"
    bad.write_text("codes: {}\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["code", str(source), "--out", str(tmp_path / "o.csv"), "--codebook", str(bad)]
    )
    assert result.exit_code == 2
    assert "codes" in result.output and "bad.yml" in " ".join(result.output.split())


def test_cli_evaluate_with_predictions_matched_by_sentence_id(tmp_path):
    gold = pd.DataFrame(
        {"id": ["a", "b", "c"], "sentence": SENTENCES[1:4], **{c: [0, 0, 0] for c in CODE_COLUMNS}}
    )
    gold.loc[0, "competition"] = 1
    gold.loc[1, ["collaboration", "system_leader", "teaching_school"]] = 1
    gold_path = tmp_path / "gold.csv"
    gold.to_csv(gold_path, index=False)
    pred = gold.rename(columns={"id": "sentence_id"}).iloc[::-1].copy()
    pred.loc[pred.sentence_id == "c", "network"] = 1
    pred_path = tmp_path / "pred.csv"
    pred.to_csv(pred_path, index=False)
    result = CliRunner().invoke(
        app, ["evaluate", str(gold_path), "--pred", str(pred_path), "--out", str(tmp_path / "eval")]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "eval" / "gold_agreement.csv").set_index("code")
    assert table.loc["competition", "kappa"] == 1.0
    assert table.loc["network", "fp"] == 1
    diffs = pd.read_csv(tmp_path / "eval" / "gold_disagreements.csv")
    assert diffs[["id", "code", "gold", "predicted"]].values.tolist() == [["c", "network", 0, 1]]


@pytest.mark.shared
def test_dev_set_targets(shared_dir, tmp_path):
    """The rule tagger: kappa >= 0.95 per stance code, micro F1 >= 0.95 over partnership types."""
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(shared_dir / "gold" / "dev.csv"),
            "--coder",
            "rules",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "dev_agreement.csv").set_index("code")
    assert table.loc["competition", "kappa"] >= 0.95
    assert table.loc["collaboration", "kappa"] >= 0.95
    assert table.loc[MICRO_TYPES, "f1"] >= 0.95


def test_bundled_ofsted_set_is_a_coded_set():
    from tests.conftest import TEST_DATA

    gold = pd.read_csv(TEST_DATA / "ofsted_gold.csv")
    assert len(gold) == 200 and gold["id"].is_unique
    assert set(gold.stratum) == {"random", "vocabulary"}
    assert gold[CODE_COLUMNS].isin([0, 1]).all().all()


def test_prefilter_never_hides_a_match_on_real_reports(codebook):
    """On real bundled text (an Ofsted report per era and the seed texts), prefilter == no prefilter."""
    from tests.conftest import CORPUS
    from textmine.ingest import read_document
    from textmine.segment import build_nlp, segment_document

    nlp = build_nlp()
    paths = sorted(CORPUS.glob("seeds/*.txt"))
    paths += sorted(CORPUS.glob("ofsted/childrens-services/*.pdf"))[::9]
    texts = []
    for path in paths:
        texts += segment_document(read_document(path), nlp)["text"].tolist()
    coder = get_coder(codebook)
    coded = code_texts(texts, codebook)
    assert 0 < sum(map(coder.is_candidate, texts)) < len(texts)
    for text, (_, row) in zip(texts, coded.iterrows(), strict=True):
        labels, _ = coder.tagger.label(coder.nlp(text))
        assert labels == {c: int(row[c]) for c in CODE_COLUMNS}, text
