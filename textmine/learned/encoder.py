"""A fine-tuned sentence encoder (ONNX) averaged with the linear model: inputs, folder, coder.

The encoder reads a text pair: (a) the sentence, preceded by "inspection
report:" when it comes from one (the genre human coders used), and (b) what
the codebook's rules found in it ("rules: collaboration, academy trust" or
"rules: none"), so the rules' hits, negations and non-target senses are
input, not only the words.

An encoder folder holds only data (no pickle):

* `encoder.json`: format, codebook name and version, codes, each code's
  threshold, `blend` (the encoder's weight; the linear model has 1 - blend),
  maximum tokens, where the weights came from and how they were trained;
* `model.onnx`: input_ids, attention_mask, token_type_ids [batch, tokens]
  -> logits [batch, codes], run with onnxruntime on the CPU;
* `tokenizer.json`: the encoder's tokenizer (`tokenizers`);
* `linear/`: a linear model folder (textmine.learned.model), whose
  probabilities are averaged in and whose rule spans and terms are the evidence;
* `metrics.*`: grouped cross-validation of the blend.

Coding needs the `encoder` extra (onnxruntime, tokenizers); fine-tuning
(textmine/learned/finetune.py) needs torch, best on a GPU.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textmine.codebook import Codebook
from textmine.learned.coder import (
    LearnedCoder,
    _assemble,
    refuse_other_codebook,
    rule_label_array,
)
from textmine.learned.features import analyse_rules, is_inspection
from textmine.learned.metrics import group_folds
from textmine.learned.model import ModelFolderError, load_model, model_version

INSPECTION_PREFIX = "inspection report: "
DEFAULT_FOLDS = 5
ENCODER_FORMAT = "textmine-encoder-coder/1"
ENCODER_JSON = "encoder.json"
ENCODER_ONNX = "model.onnx"
TOKENIZER_JSON = "tokenizer.json"
LINEAR_DIR = "linear"
ENCODER_FILES = (ENCODER_JSON, ENCODER_ONNX, TOKENIZER_JSON)
MAX_TOKENS = 128
BATCH_SIZE = 32
INSTALL_HINT = 'pip install "textmine[encoder]" (onnxruntime and tokenizers)'


def sentence_text(text: str, inspection: bool) -> str:
    """First segment of the encoder's input: the sentence, with its genre."""
    return f"{INSPECTION_PREFIX}{text}" if inspection else text


def rules_text(codes_found: Sequence[str]) -> str:
    """Second segment: the codes the rules found, in words."""
    names = [code.replace("_", " ") for code in codes_found]
    return "rules: " + (", ".join(names) if names else "none")


def encoder_pairs(
    texts: Sequence[str], inspection: Sequence[bool], rule_labels: np.ndarray, codes: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(sentence segment, rules segment) of each text."""
    first = [sentence_text(t, g) for t, g in zip(texts, inspection, strict=True)]
    second = [
        rules_text([c for c, hit in zip(codes, row, strict=True) if hit]) for row in rule_labels
    ]
    return first, second


def rule_label_matrix(codebook: Codebook, texts: Sequence[str]) -> np.ndarray:
    """0/1 rule codes [texts, codes] in the codebook's column order."""
    from textmine.coding import get_coder

    return rule_label_array(analyse_rules(get_coder(codebook), list(texts)), codebook.code_columns)


def finetune_table(
    codebook: Codebook,
    train: pd.DataFrame,
    evaluation: dict[str, pd.DataFrame],
    unlabelled: pd.DataFrame,
    folds: int = DEFAULT_FOLDS,
) -> pd.DataFrame:
    """The table `textmine/learned/finetune.py` reads.

    `train` and each evaluation frame: sentence, genre, the code columns (and
    group for train, as `read_coded_sets` gives); `unlabelled`: sentence, genre.
    Train rows get the grouped folds `textmine train` uses.
    """
    codes = codebook.code_columns
    parts = []
    for split, frame in [("train", train), *evaluation.items(), ("unlabelled", unlabelled)]:
        part = pd.DataFrame(
            {
                "split": split,
                "id": frame["id"].astype(str).to_numpy()
                if "id" in frame.columns
                else np.arange(len(frame)).astype(str),
                "sentence": frame["sentence"].astype(str).to_numpy(),
                "inspection": is_inspection(frame["genre"].tolist()),
            }
        )
        for code in codes:
            part[code] = frame[code].astype(np.int64).to_numpy() if code in frame.columns else -1
        part["fold"] = group_folds(frame["group"], folds) if split == "train" else -1
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    rules = rule_label_matrix(codebook, table["sentence"].tolist())
    for j, code in enumerate(codes):
        table[f"rule_{code}"] = rules[:, j]
    table["text_a"], table["text_b"] = encoder_pairs(
        table["sentence"].tolist(), table["inspection"].tolist(), rules, codes
    )
    return table


def write_finetune_table(table: pd.DataFrame, codebook: Codebook, folder: Path) -> Path:
    """table.parquet + table.json (codes, codebook version) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "table.parquet"
    table.to_parquet(path, index=False)
    meta = {"codes": codebook.code_columns, "codebook_version": codebook.version}
    (folder / "table.json").write_text(json.dumps(meta, indent=1))
    return path


# -- the encoder folder and its coder ---------------------------------------------------


def is_encoder_folder(folder: Path) -> bool:
    """True when `folder` is an encoder folder (it holds encoder.json)."""
    return (Path(folder) / ENCODER_JSON).is_file()


def encoder_version(folder: Path) -> str:
    """First 12 hex digits of the SHA-256 over the encoder's files and its linear model's."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in ENCODER_FILES:
        digest.update(name.encode())
        digest.update((folder / name).read_bytes())
    digest.update(model_version(folder / LINEAR_DIR).encode())
    return digest.hexdigest()[:12]


@dataclass
class EncoderModel:
    """The ONNX encoder, its tokenizer and the blend's decision rule."""

    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer
    codes: list[str]
    codebook_version: str
    thresholds: np.ndarray  # [codes], applied to the blend
    blend: float  # weight of the encoder's probabilities (the linear model: 1 - blend)
    meta: dict = field(default_factory=dict)

    def probabilities(self, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
        """P(code) [texts, codes] of each (sentence segment, rules segment) pair."""
        out = np.zeros((len(first), len(self.codes)), dtype=np.float64)
        if not len(first):
            return out
        encodings = self.tokenizer.encode_batch(list(zip(first, second, strict=True)))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            width = max(len(encodings[r].ids) for r in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros_like(ids)
            mask = np.zeros_like(ids)
            for j, r in enumerate(rows):
                e = encodings[r]
                ids[j, : len(e.ids)] = e.ids
                types[j, : len(e.type_ids)] = e.type_ids
                mask[j, : len(e.ids)] = 1
            logits = self.session.run(
                ["logits"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )[0]
            out[rows] = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        return out


def load_encoder(folder: Path) -> EncoderModel:
    """Read an encoder folder's encoder; ModelFolderError names the folder and the reason."""
    folder = Path(folder)
    missing = [name for name in ENCODER_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(f"encoder folder {folder}: missing {', '.join(missing)}")
    try:
        import onnxruntime
        from tokenizers import Tokenizer
    except ImportError as error:
        raise ModelFolderError(
            f"encoder folder {folder}: coding with an encoder needs {INSTALL_HINT} ({error})"
        ) from error
    try:
        meta = json.loads((folder / ENCODER_JSON).read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_JSON))
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(folder / ENCODER_ONNX), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own exception types
        raise ModelFolderError(f"encoder folder {folder}: cannot read it ({error})") from error
    if meta.get("format") != ENCODER_FORMAT:
        raise ModelFolderError(
            f"encoder folder {folder}: format {meta.get('format')!r} is not {ENCODER_FORMAT!r}"
        )
    codes = list(meta["codes"])
    inputs = {i.name for i in session.get_inputs()}
    if inputs != {"input_ids", "attention_mask", "token_type_ids"}:
        raise ModelFolderError(f"encoder folder {folder}: {ENCODER_ONNX} has inputs {inputs}")
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(meta.get("max_tokens", MAX_TOKENS)))
    return EncoderModel(
        session=session,
        tokenizer=tokenizer,
        codes=codes,
        codebook_version=str(meta["codebook_version"]),
        thresholds=np.array([float(meta["thresholds"][c]) for c in codes]),
        blend=float(meta["blend"]),
        meta=meta,
    )


class EncoderCoder:
    """The fine-tuned encoder's probabilities averaged with the linear model's."""

    def __init__(
        self,
        encoder: EncoderModel,
        linear: LearnedCoder,
        codebook: Codebook,
        version: str,
        folder: Path | None = None,
    ):
        """Wrap an encoder and its linear model; ModelCodebookMismatch if either is off."""
        refuse_other_codebook(
            f"encoder folder {folder}: the encoder was fine-tuned",
            encoder.codebook_version,
            encoder.codes,
            codebook,
            "fine-tune one for this codebook (README: Fine-tuned encoder), or use the "
            "default model or `--coder rules`",
        )
        self.encoder = encoder
        self.linear = linear
        self.codebook = codebook
        self.version = version
        self.folder = folder

    def probabilities(self, sentences: pd.DataFrame, text_column: str = "text"):
        """(linear pass, blended probabilities [rows, codes])."""
        linear = self.linear.linear_pass(sentences, text_column)
        codes = self.codebook.code_columns
        first, second = encoder_pairs(
            linear.texts, linear.inspection, linear.rule_labels(codes), codes
        )
        encoded = self.encoder.probabilities(first, second)
        blend = self.encoder.blend
        return linear, blend * encoded + (1.0 - blend) * linear.probabilities

    def code_sentences(self, sentences: pd.DataFrame, *, text_column: str = "text") -> pd.DataFrame:
        """Codes, p_<code> (the blend), evidence (rule spans, else linear terms) and versions."""
        linear, probabilities = self.probabilities(sentences, text_column)
        labels = (probabilities >= self.encoder.thresholds).astype(np.int64)
        evidence = self.linear.evidence(linear, labels)
        return _assemble(sentences, self.codebook, labels, probabilities, evidence, self.version)


def load_encoder_coder(folder: Path, codebook: Codebook) -> EncoderCoder:
    """The EncoderCoder of an encoder folder (its linear model from `linear/`)."""
    folder = Path(folder)
    linear_dir = folder / LINEAR_DIR
    linear = LearnedCoder(load_model(linear_dir), codebook, model_version(linear_dir), linear_dir)
    return EncoderCoder(load_encoder(folder), linear, codebook, encoder_version(folder), folder)


def write_encoder_folder(
    out: Path,
    *,
    onnx_file: Path,
    tokenizer_file: Path,
    linear_dir: Path,
    codebook: Codebook,
    thresholds: dict[str, float],
    blend: float,
    details: dict,
) -> Path:
    """Copy the encoder, tokenizer and linear model into `out` and write encoder.json."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_file, out / ENCODER_ONNX)
    shutil.copyfile(tokenizer_file, out / TOKENIZER_JSON)
    target = out / LINEAR_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(linear_dir, target)
    meta = {
        "format": ENCODER_FORMAT,
        "codebook_version": codebook.version,
        "codebook_name": codebook.name,
        "codes": codebook.code_columns,
        "thresholds": {c: round(float(thresholds[c]), 4) for c in codebook.code_columns},
        "blend": blend,
        "max_tokens": MAX_TOKENS,
        **details,
    }
    (out / ENCODER_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out
