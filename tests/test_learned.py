"""The learned coder: training, saving and loading, codebook checks, folds, the shipped model, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import SHARED, TEST_DATA, codebook_file_with_code
from tests.test_added_code import ADDED, ADDED_ENTRY
from textmine.cli import app
from textmine.codebook import load_codebook, parse_codebook
from textmine.columns import MODEL_VERSION, probability_column
from textmine.learned import (
    ModelCodebookMismatch,
    ModelFolderError,
    default_model_dir,
    load_coder,
    model_version,
)
from textmine.learned.coder import LearnedCoder
from textmine.learned.features import (
    FeatureConfig,
    SentenceFeatures,
    char_ngrams,
    concept_feature_names,
    neighbour_indices,
)
from textmine.learned.metrics import group_folds
from textmine.learned.model import FeatureSpace, load_model
from textmine.learned.train import CodedSetError, cross_validate, fit_weights, train_model

TINY = TEST_DATA / "learned" / "tiny_coded.csv"
SENTENCES = pd.DataFrame(
    {
        "sentence_id": ["d1-00000", "d1-00001", "d1-00002", "d2-00000"],
        "doc_id": ["d1", "d1", "d1", "d2"],
        "sentence_index": [0, 1, 2, 0],
        "text": [
            "Schools in the area compete for pupils and staff.",
            "Two schools work together and share staff.",
            "The canteen serves hot meals at lunchtime.",
            "Leaders work well with the police and health partners to protect children.",
        ],
        "doc_type": ["news_article", "news_article", "news_article", "inspection_report"],
    },
    index=[5, 6, 7, 9],
)


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


@pytest.fixture(scope="module")
def tiny_model(codebook, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_model")
    model, table, summary = train_model([TINY], folder, codebook, folds=3, resamples=200)
    return folder, model, table, summary


def test_tiny_set_trains_and_reloads_with_identical_predictions(codebook, tiny_model):
    folder, model, table, _ = tiny_model
    in_memory = LearnedCoder(model, codebook, model_version(folder), folder)
    reloaded = load_coder("learned", folder, codebook)
    first = in_memory.code_sentences(SENTENCES)
    again = reloaded.code_sentences(SENTENCES)
    pd.testing.assert_frame_equal(first, again)
    assert again.index.tolist() == SENTENCES.index.tolist()
    codes = codebook.code_columns
    assert list(again.columns) == [
        *SENTENCES.columns,
        *codes,
        *[probability_column(c) for c in codes],
        "evidence",
        "codebook_version",
        MODEL_VERSION,
        "textmine_version",
    ]
    assert set(again[MODEL_VERSION]) == {reloaded.version} and len(reloaded.version) == 12
    assert all(again[c].isin([0, 1]).all() for c in codes)
    assert all(again[probability_column(c)].between(0, 1).all() for c in codes)
    # the training report: every code with an interval, written to the folder
    assert set(codes) <= set(table["code"])
    assert {"metrics.json", "metrics.md", "metrics.csv"} <= {p.name for p in folder.iterdir()}
    report = json.loads((folder / "metrics.json").read_text())
    assert report["sentences"] == 48 and report["groups"] == 12
    assert {row["code"] for row in report["per_code"]} >= set(codes)


def test_evidence_is_rule_spans_or_model_terms(codebook, tiny_model):
    folder, *_ = tiny_model
    coded = load_coder("learned", folder, codebook).code_sentences(SENTENCES)
    for text, evidence_json, *labels in coded[
        ["text", "evidence", *codebook.code_columns]
    ].itertuples(index=False):
        evidence = json.loads(evidence_json)
        set_codes = {c for c, v in zip(codebook.code_columns, labels, strict=True) if v}
        assert set(evidence) == set_codes
        for items in evidence.values():
            assert items
            for item in items:
                assert text[item["start"] : item["end"]] == item["text"]


def _edited_codebook(codebook, path: Path) -> Path:
    """The codebook with one more pattern on its first code (a change that decides codes)."""
    data = yaml.safe_load(Path(codebook.path).read_text(encoding="utf-8"))
    data["codes"][codebook.code_columns[0]]["patterns"].append("edited pattern phrase")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def test_codebook_mismatch_is_refused_with_both_versions(codebook, tiny_model, tmp_path):
    folder, *_ = tiny_model
    changed = _edited_codebook(codebook, tmp_path / "codebook.yml")
    other = load_codebook(changed)
    assert other.version != codebook.version
    with pytest.raises(ModelCodebookMismatch) as caught:
        load_coder("learned", folder, other)
    message = str(caught.value)
    assert str(folder) in message and codebook.version in message and other.version in message
    assert "textmine train" in message and "--coder rules" in message
    assert isinstance(caught.value, ValueError)


def _codebook_with_accountability(folder: Path):
    path = codebook_file_with_code(folder / "codebook_accountability.yml", ADDED, ADDED_ENTRY)
    return parse_codebook(path.read_bytes(), source=str(path))


def test_a_code_added_to_the_codebook_is_learned(codebook, tmp_path):
    extended = _codebook_with_accountability(tmp_path)
    assert extended.code_columns[-1] == "accountability"
    folder = tmp_path / "model"
    model, table, _ = train_model([TINY], folder, extended, folds=3, resamples=100)
    assert model.codes == extended.code_columns
    assert "accountability" in set(table["code"])
    coder = load_coder("learned", folder, extended)
    coded = coder.code_sentences(
        pd.DataFrame(
            {
                "text": [
                    "Ofsted inspectors visited the school in May.",
                    "Pupils planted trees along the fence.",
                ]
            }
        )
    )
    assert coded["accountability"].tolist() == [1, 0]
    assert coded[probability_column("accountability")].iloc[0] > 0.5
    # the default codebook's model does not know the new code
    with pytest.raises(ModelCodebookMismatch):
        load_coder("learned", folder, codebook)


def test_a_coded_set_without_the_added_code_is_refused(codebook, tmp_path):
    extended = _codebook_with_accountability(tmp_path)
    frame = pd.read_csv(TINY).drop(columns=["accountability"])
    path = tmp_path / "no_accountability.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(CodedSetError, match=r"no_accountability\.csv.*accountability"):
        train_model([path], tmp_path / "model", extended, folds=0)


def test_model_folder_holds_no_pickle(tiny_model):
    folder, *_ = tiny_model
    for path in folder.iterdir():
        assert path.suffix in {".json", ".safetensors", ".md", ".csv"}, path.name
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"


def test_cross_validation_folds_never_share_a_source(codebook):
    frame = pd.read_csv(TINY)
    folds = group_folds(frame["source"], 5)
    for source, rows in frame.groupby("source").groups.items():
        assert len(set(folds[list(rows)])) == 1, source
    assert len(set(folds)) == 5
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 40, size=500)
    folds = group_folds(groups, 5)
    assert all(len(set(folds[groups == g])) == 1 for g in np.unique(groups))
    assert max(np.bincount(folds)) - min(np.bincount(folds)) < 40


def test_cross_validation_holds_out_whole_sources(codebook):
    from textmine.learned.features import FeatureConfig
    from textmine.learned.train import read_coded_sets, training_features

    training = read_coded_sets([TINY], codebook)
    features = training_features(training, codebook, FeatureConfig())
    cv = cross_validate(
        features,
        training.frame["sentence"].tolist(),
        training.labels,
        training.groups,
        FeatureConfig(),
        10.0,
        4,
    )
    for fold in np.unique(cv.folds):
        held = set(training.groups[cv.folds == fold])
        kept = set(training.groups[cv.folds != fold])
        assert held and not held & kept


def test_one_source_in_two_coded_sets_is_one_group(codebook, tmp_path):
    from textmine.learned.train import read_coded_sets

    frame = pd.read_csv(TINY)
    first, second = frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2 :].copy()
    shared_source = first["source"].iloc[0]
    second.loc[second.index[0], "source"] = shared_source
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    first.to_csv(a, index=False)
    second.to_csv(b, index=False)
    training = read_coded_sets([a, b], codebook)
    sources = pd.concat([first["source"], second["source"]]).to_numpy()
    groups = training.groups
    assert len(set(groups[sources == shared_source])) == 1
    assert len(set(groups)) == len(set(sources))
    no_source = first.drop(columns="source")
    c, d = tmp_path / "c.csv", tmp_path / "d.csv"
    no_source.to_csv(c, index=False)
    no_source.to_csv(d, index=False)
    ids = read_coded_sets([c, d], codebook).groups
    assert len(set(ids)) == 2 * len(no_source)  # ids are groups per file when there is no source


def test_training_on_two_files_scores_each_file_and_genre_alone(codebook, tmp_path):
    frame = pd.read_csv(TINY)
    first, second = frame.iloc[::2], frame.iloc[1::2].copy()
    second["source_kind"] = "inspection_report"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    first.to_csv(a, index=False)
    second.to_csv(b, index=False)
    _, table, summary = train_model([a, b], tmp_path / "model", codebook, folds=3, resamples=50)
    parts = summary["by_file"]
    assert set(parts) == {
        "a.csv",
        "b.csv",
        "inspection-report sentences",
        "sentences of other genres",
    }
    pooled = table.set_index("code")["positives"]
    for code in codebook.code_columns:
        assert parts["a.csv"].set_index("code").loc[code, "positives"] == first[code].sum()
        both = sum(parts[n].set_index("code").loc[code, "positives"] for n in ("a.csv", "b.csv"))
        assert both == pooled[code]
    report = (tmp_path / "model" / "metrics.md").read_text()
    assert "## Rows of b.csv only" in report
    saved = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert set(saved["by_file"]) == set(parts)
    result = CliRunner().invoke(
        app, ["train", str(a), str(b), "--out", str(tmp_path / "cli"), "--folds", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "rows of b.csv only" in result.output
    assert "rows of inspection-report sentences only" in result.output


def test_neighbours_are_adjacent_sentences_of_one_document():
    assert neighbour_indices(["a", "a", "b", "a", ""], [0, 1, 0, 3, 0]) == [
        (-1, 1),
        (0, -1),
        (-1, -1),
        (-1, -1),
        (-1, -1),
    ]


def test_concept_cues_name_word_families_not_codes():
    found = concept_feature_names(
        "Parents choose popular schools, so falling rolls hit "
        "neighbouring schools in the Regional Adoption Agency area."
    )
    assert {"k:choice", "k:places", "k:new_provider", "k:authorities"} <= set(found)
    assert concept_feature_names("Pupils enjoy their lessons.") == []
    # a cue inside a hyphenated word, and the same result with the tokens given
    assert concept_feature_names("The Pan-Cheshire panel met.") == ["k:authorities"]
    assert concept_feature_names(
        "The Pan-Cheshire panel met.", ["the", "pan-cheshire", "panel", "met"]
    ) == ["k:authorities"]
    assert all(name.removeprefix("k:") not in load_codebook().code_columns for name in found)


def test_area_programme_and_other_sector_cues():
    # area programmes by their abbreviations (codebook: LOCAL_PARTNERSHIP's area programmes)
    assert concept_feature_names("Two EAZs and the EiC partnership met.") == ["k:area_programme"]
    assert "k:area_programme" in concept_feature_names("Derby was one of the first six OAs.")
    # organisations of other sectors (codebook: CROSS_SECTOR), also inside hyphenated words
    assert concept_feature_names("A school-university partnership began.") == ["k:other_sector"]
    assert concept_feature_names("Fee-paying schools share facilities.") == ["k:other_sector"]
    assert concept_feature_names("Local businesses sponsor the academy.") == ["k:other_sector"]
    # no cue from words that only share a prefix with a key
    assert concept_feature_names("Oak trees and firmly held actions.") == []


def test_character_ngrams_are_unit_length_and_shared_by_word_forms():
    assert char_ngrams("ab") == ["ch: ab", "ch: ab ", "ch:ab "]
    assert char_ngrams("a") == ["ch: a "]
    train = [SentenceFeatures(names=["w:x"], words=["partnership", "school"]) for _ in range(3)]
    space = FeatureSpace.build(train)
    assert space.is_char.sum() == len({*char_ngrams("partnership"), *char_ngrams("school")})
    x = space.matrix(
        [
            SentenceFeatures(names=["w:x"], words=["partnerships"]),
            SentenceFeatures(names=["w:x"], words=[]),
            SentenceFeatures(names=[], words=None),
        ]
    ).toarray()
    char_block = x[:, space.is_char]
    assert np.isclose(np.linalg.norm(char_block[0]), 1.0)  # an unseen form shares n-grams
    assert not char_block[1:].any()
    assert np.isclose(x[0, space.index["w:x"]], 1.0)


def test_a_model_folder_without_the_newer_feature_groups_keeps_them_off(codebook, tmp_path):
    folder = tmp_path / "older"
    old = FeatureConfig(concepts=False, chars=False)
    train_model([TINY], folder, codebook, config=old, folds=0)
    before = load_coder("learned", folder, codebook).code_sentences(SENTENCES)
    meta = json.loads((folder / "model.json").read_text())
    for group in ("concepts", "chars"):  # as written before these groups existed
        del meta["features"][group]
    (folder / "model.json").write_text(json.dumps(meta))
    reloaded = load_model(folder)
    assert reloaded.config == old and not reloaded.space.is_char.any()
    after = load_coder("learned", folder, codebook).code_sentences(SENTENCES)
    codes = codebook.code_columns
    pd.testing.assert_frame_equal(before[codes], after[codes])
    assert FeatureConfig().concepts and not FeatureConfig().chars  # what new training uses


def test_a_cue_family_added_after_a_model_was_trained_leaves_its_codes_unchanged(
    codebook, tmp_path, monkeypatch
):
    import textmine.learned.features as features

    every_family = dict(features.CONCEPT_CUES)
    older = {name: regex for name, regex in every_family.items() if name != "other_sector"}
    sentences = pd.DataFrame(
        {
            "text": [
                "Universities and local businesses work with the schools in partnership.",
                "Schools compete for pupils in a market.",
            ]
        }
    )
    monkeypatch.setattr(features, "CONCEPT_CUES", older)
    folder = tmp_path / "older"
    train_model([TINY], folder, codebook, folds=0)
    assert "k:other_sector" not in load_model(folder).space.index
    before = load_coder("learned", folder, codebook).code_sentences(sentences)
    monkeypatch.setattr(features, "CONCEPT_CUES", every_family)
    assert "k:other_sector" in features.concept_feature_names(sentences["text"][0])
    after = load_coder("learned", folder, codebook).code_sentences(sentences)
    columns = [probability_column(c) for c in codebook.code_columns]
    pd.testing.assert_frame_equal(before[columns], after[columns])


def test_averaged_columns_give_the_mean_of_the_fits_with_and_without_them():
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    x = sp.csr_matrix(rng.integers(0, 2, size=(60, 5)).astype(np.float32))
    labels = np.column_stack(
        [(x[:, 0].toarray().ravel() + x[:, 4].toarray().ravel()) > 0, rng.integers(0, 2, 60)]
    ).astype(int)
    averaged = np.array([False, False, False, False, True])
    weights, intercepts = fit_weights(x, labels, 10.0, averaged)
    w_all, b_all = fit_weights(x, labels, 10.0)
    w_without, b_without = fit_weights(sp.csr_matrix(x.multiply(~averaged)), labels, 10.0)
    assert np.allclose(weights, (w_all + w_without) / 2, atol=1e-6)
    assert np.allclose(intercepts, (b_all + b_without) / 2, atol=1e-6)
    assert w_without[0, 4] == 0 and weights[0, 4] == pytest.approx(w_all[0, 4] / 2)


def test_shipped_default_model_loads_and_codes(codebook):
    folder = default_model_dir()
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 20 * 1024 * 1024
    model = load_model(folder)
    assert model.codes == codebook.code_columns
    coder = load_coder()
    assert coder.version == model_version(folder) == model_version()
    coded = coder.code_sentences(SENTENCES)
    first, second, third, fourth = (coded.loc[i] for i in SENTENCES.index)
    stance = codebook.stance_codes
    assert first[stance[0]] == 1 and second[stance[1]] == 1
    assert not any(third[c] for c in codebook.code_columns)
    assert fourth[stance[1]] == 1
    assert json.loads(third["evidence"]) == {}


def test_rules_coder_behind_the_same_interface(codebook):
    coded = load_coder("rules", codebook=codebook).code_sentences(SENTENCES)
    assert set(coded[MODEL_VERSION]) == {"rules"}
    assert all(c in coded.columns for c in codebook.code_columns)
    assert not any(probability_column(c) in coded.columns for c in codebook.code_columns)


def test_unusable_model_folders_are_refused(codebook, tmp_path):
    with pytest.raises(ModelFolderError, match=r"missing model\.json"):
        load_coder("learned", tmp_path, codebook)
    with pytest.raises(ValueError, match="unknown coder"):
        load_coder("neural", None, codebook)


def test_cli_train_code_and_evaluate(codebook, tmp_path):
    runner = CliRunner()
    folder = tmp_path / "model"
    result = runner.invoke(app, ["train", str(TINY), "--out", str(folder), "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert (folder / "metrics.md").exists() and (folder / "weights.safetensors").exists()
    sentences = tmp_path / "sentences.csv"
    pd.DataFrame({"id": ["a", "b"], "sentence": SENTENCES["text"].tolist()[:2]}).to_csv(
        sentences, index=False
    )
    for options in (["--model", str(folder)], ["--coder", "rules"], []):
        out = tmp_path / f"coded_{len(options)}.csv"
        result = runner.invoke(app, ["code", str(sentences), "--out", str(out), *options])
        assert result.exit_code == 0, result.output
        coded = pd.read_csv(out)
        assert coded["id"].tolist() == ["a", "b"]
        # the rules give no probabilities; the learned coders do
        assert (probability_column(codebook.code_columns[0]) in coded.columns) == (
            "--coder" not in options
        )
    result = runner.invoke(
        app, ["evaluate", str(TINY), "--model", str(folder), "--out", str(tmp_path / "evaluation")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "evaluation" / "tiny_coded_agreement.csv").exists()
    changed = _edited_codebook(codebook, tmp_path / "codebook.yml")
    result = runner.invoke(
        app,
        [
            "code",
            str(sentences),
            "--out",
            str(tmp_path / "x.csv"),
            "--model",
            str(folder),
            "--codebook",
            str(changed),
        ],
    )
    assert result.exit_code == 2 and "textmine train" in result.output


@pytest.mark.shared
@pytest.mark.slow
def test_grouped_cv_on_the_shared_training_set(codebook, tmp_path):
    """Regression guard on the default's recipe and figures (README, Validity)."""
    train = SHARED / "gold" / "train.csv"
    extra = Path(__file__).resolve().parents[1] / "training" / "ofsted_childrens_services.csv"
    dev = SHARED / "gold" / "dev.csv"
    _, _, summary = train_model(
        [train, extra, dev], tmp_path / "model", codebook, folds=5, resamples=200
    )
    inspection = summary["by_file"]["inspection-report sentences"].set_index("code")
    assert inspection.loc["collaboration", "kappa"] >= 0.74
    by_code = summary["by_file"]["train.csv"].set_index("code")
    assert by_code.loc[codebook.stance_codes[0], "kappa"] >= 0.62
    assert by_code.loc[codebook.stance_codes[1], "kappa"] >= 0.72
    assert by_code.loc["micro_f1_types", "f1"] >= 0.80
    assert (by_code["kappa_low"].dropna() <= by_code["kappa"].dropna()).all()
    assert summary["seconds"] < 1200


_WORDS = [
    "schools",
    "work",
    "together",
    "with",
    "the",
    "police",
    "and",
    "health",
    "partners",
    "in",
    "the",
    "local",
    "area",
    "compete",
    "for",
    "pupils",
    "collaboration",
    "federation",
    "trust",
    "academy",
    "multi-agency",
    "cluster",
    "children's",
    "services",
    "staff",
    "admissions",
    "league",
    "tables",
    "pupil's",
    "co-operation",
    "-",
    ".",
    ",",
    "'",
    "Schools",
    "PARTNERSHIP",
    "partnerships",
    "worked",
    "competing",
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(_WORDS), min_size=0, max_size=25).map(" ".join),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_feature_columns_give_the_matrix_of_the_feature_names(codebook, texts, inspection):
    """The fast path (columns from the words) builds the same design matrix as the names."""
    from textmine.coding import get_coder
    from textmine.learned.features import (
        analyse_rules,
        feature_columns,
        featurize,
        lower_lemmas,
    )

    coder = get_coder(codebook)
    model = load_model(default_model_dir())
    genres = inspection[: len(texts)]
    neighbours = neighbour_indices(["d"] * len(texts))
    # a vocabulary where some word features hold spaces inside a lemma
    names = sorted({*model.space.names[:3000], "w:work together with", "w:the police and"})
    spaces = (model.space, FeatureSpace(names=names, idf=np.linspace(1, 3, len(names))))
    for config in (model.config, FeatureConfig(bigrams=False, genre=False, concepts=False)):
        _, features = featurize(coder, texts, genres, neighbours, config)
        views = analyse_rules(coder, texts)
        for space in spaces:
            plain = space.matrix(features)
            rows = feature_columns(
                texts, views, genres, neighbours, lower_lemmas(coder), config, space
            )
            fast = space.matrix_of_columns(rows)
            assert (plain.indptr == fast.indptr).all()
            assert (plain.indices == fast.indices).all()
            assert (plain.data == fast.data).all()
