"""Sentence coders behind one interface: the learned model, or the codebook's rules alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import textmine
from textmine.codebook import Codebook, load_codebook
from textmine.columns import (
    CODEBOOK_VERSION,
    EVIDENCE,
    MODEL_VERSION,
    TEXTMINE_VERSION,
    probability_column,
)
from textmine.learned.features import (
    featurize,
    is_inspection,
    lower_lemmas,
    neighbour_indices,
    word_spans,
)
from textmine.learned.model import LearnedModel, default_model_dir, load_model, model_version

RULES_VERSION = "rules"
GENRE_COLUMNS = ("doc_type", "source_kind")


class ModelCodebookMismatch(ValueError):
    """A model trained with another codebook version than the one in use."""


def probability_columns(codebook: Codebook) -> list[str]:
    """`p_<code>` for each code of the codebook, in column order."""
    return [probability_column(code) for code in codebook.code_columns]


def _texts(sentences: pd.DataFrame, text_column: str) -> list[str]:
    if text_column not in sentences.columns:
        raise KeyError(
            f"no column {text_column!r} to code; columns are "
            f"{', '.join(map(str, sentences.columns))}"
        )
    return ["" if pd.isna(t) else str(t) for t in sentences[text_column]]


def _assemble(
    sentences: pd.DataFrame,
    codebook: Codebook,
    labels: np.ndarray,
    probabilities: np.ndarray | None,
    evidence: list[str],
    version: str,
) -> pd.DataFrame:
    """Input columns + codes + p_<code> (when given) + evidence + versions, same index and order."""
    codes = codebook.code_columns
    generated = [
        *codes,
        *probability_columns(codebook),
        EVIDENCE,
        CODEBOOK_VERSION,
        MODEL_VERSION,
        TEXTMINE_VERSION,
    ]
    out = sentences.drop(columns=[c for c in generated if c in sentences.columns])
    block = pd.DataFrame(labels.astype(np.int64), columns=codes, index=sentences.index)
    if probabilities is not None:
        for j, code in enumerate(codes):
            block[probability_column(code)] = probabilities[:, j].astype(float)
    block[EVIDENCE] = evidence
    block[CODEBOOK_VERSION] = codebook.version
    block[MODEL_VERSION] = version
    block[TEXTMINE_VERSION] = textmine.__version__
    return pd.concat([out, block], axis=1)


class RulesCoder:
    """The codebook's rule tagger (textmine.coding) behind the SentenceCoder interface."""

    version = RULES_VERSION

    def __init__(self, codebook: Codebook):
        """Code with this codebook's rules."""
        self.codebook = codebook

    def code_sentences(self, sentences: pd.DataFrame, *, text_column: str = "text") -> pd.DataFrame:
        """Rule codes and evidence; the rules give no probabilities (no p_<code> columns)."""
        from textmine.coding import code_texts

        coded = code_texts(_texts(sentences, text_column), self.codebook)
        labels = coded[self.codebook.code_columns].to_numpy()
        return _assemble(
            sentences, self.codebook, labels, None, coded[EVIDENCE].tolist(), self.version
        )


class LearnedCoder:
    """A trained model (textmine.learned.model) over the rules' findings and the words."""

    def __init__(
        self, model: LearnedModel, codebook: Codebook, version: str, folder: Path | None = None
    ):
        """Wrap a model; ModelCodebookMismatch if it was trained with another codebook."""
        if model.codebook_version != codebook.version:
            raise ModelCodebookMismatch(
                f"model folder {folder}: the model was trained with codebook version "
                f"{model.codebook_version}, but the codebook in use ({codebook.path}) is "
                f"version {codebook.version}; train a model for this codebook with "
                "`textmine train CODED.csv --out MODEL_DIR --codebook FILE` and pass "
                "`--model MODEL_DIR`, or use `--coder rules`"
            )
        if model.codes != codebook.code_columns:
            raise ModelCodebookMismatch(
                f"model folder {folder}: the model codes {', '.join(model.codes)} differ from "
                f"the codebook's {', '.join(codebook.code_columns)}"
            )
        self.model = model
        self.codebook = codebook
        self.version = version
        self.folder = folder

    def code_sentences(self, sentences: pd.DataFrame, *, text_column: str = "text") -> pd.DataFrame:
        """Codes, p_<code>, evidence and versions for each row (same index and order).

        Genre comes from `doc_type` (or `source_kind`); neighbours from rows of
        the same `doc_id` whose `sentence_index` differs by one.
        """
        from textmine.coding import get_coder

        texts = _texts(sentences, text_column)
        genre_column = next((c for c in GENRE_COLUMNS if c in sentences.columns), None)
        genres = (
            is_inspection(sentences[genre_column].tolist())
            if genre_column
            else [False] * len(texts)
        )
        if "doc_id" in sentences.columns:
            order = (
                pd.to_numeric(sentences["sentence_index"], errors="coerce")
                .fillna(-10)
                .astype(int)
                .to_numpy()
                if "sentence_index" in sentences.columns
                else None
            )
            neighbours = neighbour_indices(sentences["doc_id"].tolist(), order)
        else:
            neighbours = [(-1, -1)] * len(texts)
        views, features = featurize(
            get_coder(self.codebook), texts, genres, neighbours, self.model.config
        )
        x = self.model.design(features, texts)
        probabilities = self.model.probabilities(x)
        labels = self.model.decide(probabilities)
        evidence = ["{}"] * len(texts)
        lemmas = lower_lemmas(get_coder(self.codebook))
        for i in np.flatnonzero(labels.any(axis=1)):
            view = views[i]
            chosen: dict[str, list[dict]] = {}
            spans = None
            for j in np.flatnonzero(labels[i]):
                code = self.model.codes[j]
                if code in view.evidence:
                    chosen[code] = view.evidence[code]
                else:
                    if spans is None:
                        spans = word_spans(texts[i], lemmas, self.model.config.bigrams)
                    chosen[code] = self.model.term_evidence(x[i], spans, int(j), texts[i])
            evidence[i] = json.dumps(chosen, ensure_ascii=False)
        return _assemble(sentences, self.codebook, labels, probabilities, evidence, self.version)


def load_coder(
    coder: str = "learned", model_dir: Path | None = None, codebook: Codebook | None = None
):
    """A SentenceCoder: "rules", or "learned" from `model_dir` (default: the packaged model).

    Raises ModelCodebookMismatch (a ValueError) when the model was trained with
    another codebook version, and ModelFolderError when the folder is unusable.
    """
    codebook = codebook if codebook is not None else load_codebook()
    if coder == "rules":
        return RulesCoder(codebook)
    if coder != "learned":
        raise ValueError(f"unknown coder {coder!r}; use 'learned' or 'rules'")
    folder = Path(model_dir) if model_dir is not None else default_model_dir()
    model = load_model(folder)
    return LearnedCoder(model, codebook, model_version(folder), folder)
