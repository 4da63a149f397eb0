"""The learned coder's model: one logistic regression per code over sparse features.

A model folder holds only data, never code (no pickle):

* `model.json`: format, codebook name and version, the codes in column order,
  the feature configuration, each code's decision threshold and how the model
  was trained;
* `vocabulary.json`: the feature names, in column order;
* `weights.safetensors`: `weights` float32 [codes, features], `intercepts`
  float32 [codes], `idf` float32 [features] (word features and character
  n-grams are idf-weighted, each block scaled to unit length; rule, concept,
  genre and neighbour features are 0/1);
* optionally `static_embeddings.*` (textmine.learned.embeddings), whose
  dimensions follow the vocabulary's columns;
* `metrics.json`, `metrics.md`, `metrics.csv`: the grouped cross-validation
  report of `textmine train` (not read when coding).

`model_version` is the first 12 hex digits of the SHA-256 over the files
that decide the predictions (MODEL_FILES and the embeddings when present).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from textmine.learned.embeddings import (
    VECTORS_FILE,
    WORDS_FILE,
    StaticEmbeddings,
    load_static_embeddings,
)
from textmine.learned.features import FeatureConfig, SentenceFeatures, char_ngrams

MODEL_FORMAT = "textmine-learned-coder/1"
MODEL_JSON = "model.json"
VOCABULARY_JSON = "vocabulary.json"
WEIGHTS_FILE = "weights.safetensors"
MODEL_FILES = (MODEL_JSON, VOCABULARY_JSON, WEIGHTS_FILE)
EVIDENCE_TERMS = 3  # terms shown as evidence for a code the rules did not set


class ModelFolderError(ValueError):
    """A model folder that cannot be used; the message names the folder and the reason."""


@dataclass
class FeatureSpace:
    """Feature names -> columns, and how feature values are computed.

    Three blocks: word features (`w:`, idf-weighted, unit length), character
    n-grams (`ch:`, from `SentenceFeatures.words`, idf-weighted, unit length)
    and the rest (0/1).
    """

    names: list[str]
    idf: np.ndarray  # float32 [features]; 1.0 for 0/1 features

    def __post_init__(self) -> None:
        """Index the names; mark the word and character n-gram features."""
        self.index = {name: i for i, name in enumerate(self.names)}
        self.is_word = np.array([n.startswith("w:") for n in self.names], dtype=bool)
        self.is_char = np.array([n.startswith("ch:") for n in self.names], dtype=bool)

    @classmethod
    def build(
        cls, features: Sequence[SentenceFeatures], min_count: int = 2, char_min_count: int = 3
    ) -> FeatureSpace:
        """Names seen in at least `min_count` sentences (`char_min_count` for n-grams).

        idf = ln((1+N)/(1+df)) + 1 for word and n-gram features.
        """
        df: dict[str, int] = {}
        grams_of: dict[str, list[str]] = {}
        for f in features:
            present = set(f.names)
            if f.words:
                for word in set(f.words):
                    grams = grams_of.get(word)
                    if grams is None:
                        grams = grams_of[word] = char_ngrams(word)
                    present.update(grams)
            for name in present:
                df[name] = df.get(name, 0) + 1
        names = sorted(
            n for n, c in df.items() if c >= (char_min_count if n.startswith("ch:") else min_count)
        )
        n = len(features)
        idf = np.array(
            [
                np.log((1 + n) / (1 + df[name])) + 1 if name.startswith(("w:", "ch:")) else 1.0
                for name in names
            ],
            dtype=np.float32,
        )
        return cls(names=names, idf=idf)

    @functools.cached_property
    def word_columns(self) -> dict[str, int]:
        """Column of the word feature `w:<text>`, by its text (unigram or bigram)."""
        return {name[2:]: i for name, i in self.index.items() if name.startswith("w:")}

    @functools.cached_property
    def bigram_columns(self) -> dict[tuple[str, str], int]:
        """Column of `w:<a> <b>` by (a, b), for every split of a word feature at a space."""
        pairs: dict[tuple[str, str], int] = {}
        for text, i in self.word_columns.items():
            at = text.find(" ")
            while at >= 0:
                pairs[(text[:at], text[at + 1 :])] = i
                at = text.find(" ", at + 1)
        return pairs

    def matrix(self, features: Sequence[SentenceFeatures]) -> sp.csr_matrix:
        """CSR [sentences, features]: word and n-gram blocks idf-weighted and unit length."""
        lookup = self.index.get
        rows: list[list[int]] = []
        for f in features:
            columns = set(map(lookup, f.names))
            columns.discard(None)
            rows.append(sorted(columns))  # type: ignore[type-var,arg-type]  # None discarded
        x = self.matrix_of_columns(rows)
        if self.is_char.any():
            x = x + self.char_matrix(features)
        return x

    def matrix_of_columns(self, rows: Sequence[Sequence[int]]) -> sp.csr_matrix:
        """CSR [rows, features] of each row's present columns (ascending, no repeats).

        Word features idf-weighted and unit length; the character n-gram block is not added.
        """
        ptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)), out=ptr[1:])
        cols = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(ptr[-1]))
        values = self.idf[cols].astype(np.float32) if len(cols) else np.zeros(0, np.float32)
        word = self.is_word[cols] if len(cols) else np.zeros(0, bool)
        squares = np.where(word, values * values, 0.0)
        row_of = np.repeat(np.arange(len(rows)), np.diff(ptr))
        norms = np.sqrt(np.bincount(row_of, weights=squares, minlength=len(rows)))
        norms[norms == 0] = 1.0
        values = np.where(word, values / norms[row_of], values).astype(np.float32)
        return sp.csr_matrix((values, cols, ptr), shape=(len(rows), len(self.names)))

    def char_matrix(self, features: Sequence[SentenceFeatures]) -> sp.csr_matrix:
        """The character n-gram block: n-grams present in a sentence's words, idf, unit length."""
        word_ids: dict[str, int] = {}
        rows: list[int] = []
        ids: list[int] = []
        for i, f in enumerate(features):
            for word in set(f.words or ()):
                rows.append(i)
                ids.append(word_ids.setdefault(word, len(word_ids)))
        sentence_words = sp.csr_matrix(
            (
                np.ones(len(ids), np.float32),
                (np.asarray(rows, np.int64), np.asarray(ids, np.int64)),
            ),
            shape=(len(features), len(word_ids)),
        )
        index = self.index
        w_ptr = [0]
        w_cols: list[int] = []
        for word in word_ids:  # insertion order = id order
            w_cols.extend(index[g] for g in char_ngrams(word) if g in index)
            w_ptr.append(len(w_cols))
        word_grams = sp.csr_matrix(
            (np.ones(len(w_cols), np.float32), np.asarray(w_cols, np.int64), np.asarray(w_ptr)),
            shape=(len(word_ids), len(self.names)),
        )
        x = (sentence_words @ word_grams).tocsr()
        x.data = self.idf[x.indices].astype(np.float32)  # presence, idf-weighted
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ x)


@dataclass
class LearnedModel:
    """Per-code logistic regressions, thresholds and the feature space they read."""

    codes: list[str]
    codebook_version: str
    codebook_name: str
    config: FeatureConfig
    space: FeatureSpace
    weights: np.ndarray  # float32 [codes, features (+ embedding dims)]
    intercepts: np.ndarray  # float32 [codes]
    thresholds: dict[str, float]
    training: dict = field(default_factory=dict)
    embeddings: StaticEmbeddings | None = None

    def design(self, features: Sequence[SentenceFeatures], texts: Sequence[str]):
        """The model's input matrix: sparse features (+ static embeddings when used)."""
        x = self.space.matrix(features)
        if self.config.embeddings and self.embeddings is not None:
            x = sp.hstack([x, sp.csr_matrix(self.embeddings.embed(texts))], format="csr")
        return x

    def design_of_columns(self, rows: Sequence[Sequence[int]], texts: Sequence[str]):
        """`design` from each row's columns (`features.feature_columns`); no character n-grams."""
        if self.config.chars:
            raise ValueError("a model with character n-grams needs design(features, texts)")
        x = self.space.matrix_of_columns(rows)
        if self.config.embeddings and self.embeddings is not None:
            x = sp.hstack([x, sp.csr_matrix(self.embeddings.embed(texts))], format="csr")
        return x

    def probabilities(self, x) -> np.ndarray:
        """P(code) for each row of a design matrix: [rows, codes]."""
        scores = np.asarray(x @ self.weights.T) + self.intercepts
        return 1.0 / (1.0 + np.exp(-np.clip(scores, -50, 50)))

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """0/1 codes from probabilities and the per-code thresholds."""
        limits = np.array([self.thresholds.get(c, 0.5) for c in self.codes])
        return (probabilities >= limits).astype(np.int64)

    def term_evidence(
        self, x_row, spans: dict[str, list[tuple[int, int]]], code_index: int, text: str
    ) -> list[dict]:
        """The word features that pushed one sentence towards one code (spans: word_spans)."""
        row = x_row.tocsr()
        weights = self.weights[code_index]
        found = []
        for col, value in zip(row.indices, row.data, strict=True):
            if col >= len(self.space.names):
                continue
            name = self.space.names[col]
            contribution = float(value * weights[col])
            if name.startswith("w:") and contribution > 0 and name in spans:
                found.append((contribution, name))
        found.sort(reverse=True)
        items = []
        for contribution, name in found[:EVIDENCE_TERMS]:
            start, end = spans[name][0]
            items.append(
                {
                    "text": text[start:end],
                    "start": start,
                    "end": end,
                    "rule": "model",
                    "weight": round(contribution, 4),
                }
            )
        return sorted(items, key=lambda i: (i["start"], i["end"]))

    # -- files -----------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the model files into `folder` (created if needed)."""
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": MODEL_FORMAT,
            "codebook_version": self.codebook_version,
            "codebook_name": self.codebook_name,
            "codes": self.codes,
            "features": self.config.to_dict(),
            "thresholds": {c: round(float(self.thresholds[c]), 4) for c in self.codes},
            "training": self.training,
        }
        (folder / MODEL_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (folder / VOCABULARY_JSON).write_text(
            json.dumps(self.space.names, ensure_ascii=False), encoding="utf-8"
        )
        save_file(
            {
                "weights": self.weights.astype(np.float32),
                "intercepts": self.intercepts.astype(np.float32),
                "idf": self.space.idf.astype(np.float32),
            },
            str(folder / WEIGHTS_FILE),
        )
        if self.config.embeddings and self.embeddings is not None:
            self.embeddings.save(folder)
        for stale in (VECTORS_FILE, WORDS_FILE):
            if not self.config.embeddings and (folder / stale).exists():
                (folder / stale).unlink()


def default_model_dir() -> Path:
    """The packaged default model (trained on the project's coded training set)."""
    from importlib import resources

    return Path(str(resources.files("textmine") / "data" / "model"))


def model_version(folder: Path | None = None) -> str:
    """First 12 hex digits of the SHA-256 over the prediction files of a model folder.

    None: the packaged default model.
    """
    folder = default_model_dir() if folder is None else Path(folder)
    digest = hashlib.sha256()
    for name in (*MODEL_FILES, VECTORS_FILE, WORDS_FILE):
        path = folder / name
        if path.exists():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def load_model(folder: Path) -> LearnedModel:
    """Read a model folder written by LearnedModel.save; ModelFolderError if it is unusable."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(
            f"model folder {folder}: missing {', '.join(missing)} (train one with `textmine train`)"
        )
    try:
        meta = json.loads((folder / MODEL_JSON).read_text(encoding="utf-8"))
        names = json.loads((folder / VOCABULARY_JSON).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / WEIGHTS_FILE))
    except (OSError, ValueError) as error:
        raise ModelFolderError(f"model folder {folder}: cannot read the model ({error})") from error
    if meta.get("format") != MODEL_FORMAT:
        raise ModelFolderError(
            f"model folder {folder}: format {meta.get('format')!r} is not {MODEL_FORMAT!r}"
        )
    config = FeatureConfig.from_dict(meta.get("features", {}))
    embeddings = load_static_embeddings(folder) if config.embeddings else None
    codes = list(meta["codes"])
    weights, intercepts, idf = tensors["weights"], tensors["intercepts"], tensors["idf"]
    width = len(names) + (embeddings.dims if embeddings is not None else 0)
    if (
        weights.shape != (len(codes), width)
        or intercepts.shape != (len(codes),)
        or idf.shape != (len(names),)
    ):
        raise ModelFolderError(
            f"model folder {folder}: {WEIGHTS_FILE} does not match "
            f"{VOCABULARY_JSON} and {MODEL_JSON} (shapes {weights.shape}, "
            f"{len(codes)} codes, {len(names)} features)"
        )
    return LearnedModel(
        codes=codes,
        codebook_version=str(meta["codebook_version"]),
        codebook_name=str(meta.get("codebook_name", "")),
        config=config,
        space=FeatureSpace(names=list(names), idf=idf.astype(np.float32)),
        weights=weights.astype(np.float32),
        intercepts=intercepts.astype(np.float32),
        thresholds={c: float(meta["thresholds"][c]) for c in codes},
        training=meta.get("training", {}),
        embeddings=embeddings,
    )
