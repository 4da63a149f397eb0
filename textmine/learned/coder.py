"""Sentence coders behind one interface: the learned model, or the codebook's rules alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import textmine
from textmine.codebook import Codebook
from textmine.columns import (
    CODEBOOK_VERSION,
    EVIDENCE,
    MODEL_VERSION,
    TEXTMINE_VERSION,
    probability_column,
)
from textmine.learned.features import (
    RuleView,
    analyse_rules,
    feature_columns,
    featurize,
    is_inspection,
    lower_lemmas,
    neighbour_indices,
    word_spans,
)
from textmine.learned.model import LearnedModel

RULES_VERSION = "rules"
GENRE_COLUMNS = ("doc_type", "source_kind")


def get_rule_coder(codebook: Codebook):
    """The codebook's (cached) rule coder."""
    from textmine.coding import get_coder

    return get_coder(codebook)


def rule_label_array(views: list[RuleView], codes: list[str]) -> np.ndarray:
    """The rules' 0/1 codes [views, codes] in the order of `codes`."""
    return np.array(
        [[view.labels.get(c, 0) for c in codes] for view in views], dtype=np.int64
    ).reshape(len(views), len(codes))


@dataclass
class LinearPass:
    """One pass of the linear model over some sentences."""

    texts: list[str]
    inspection: list[bool]
    views: list[RuleView]
    x: Any  # sparse design matrix [rows, features]
    probabilities: np.ndarray  # [rows, codes]

    def rule_labels(self, codes: list[str]) -> np.ndarray:
        """The rules' 0/1 codes [rows, codes]."""
        return rule_label_array(self.views, codes)


class ModelCodebookMismatch(ValueError):
    """A model trained with another codebook version than the one in use."""


def refuse_other_codebook(
    what: str, version: str, codes: list[str], codebook: Codebook, remedy: str
) -> None:
    """ModelCodebookMismatch unless a model's codebook version and codes are the codebook's."""
    if version != codebook.version:
        raise ModelCodebookMismatch(
            f"{what} with codebook version {version}, but the codebook in use "
            f"({codebook.path}) is version {codebook.version}; {remedy}"
        )
    if codes != codebook.code_columns:
        raise ModelCodebookMismatch(
            f"{what} for the codes {', '.join(codes)}, which differ from the codebook's "
            f"{', '.join(codebook.code_columns)}"
        )


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
    columns: dict[str, object] = {
        code: labels[:, j].astype(np.int64) for j, code in enumerate(codes)
    }
    if probabilities is not None:
        for j, code in enumerate(codes):
            columns[probability_column(code)] = probabilities[:, j].astype(float)
    columns[EVIDENCE] = evidence
    columns[CODEBOOK_VERSION] = codebook.version
    columns[MODEL_VERSION] = version
    columns[TEXTMINE_VERSION] = textmine.__version__
    block = pd.DataFrame(columns, index=sentences.index)  # one frame: no column-by-column inserts
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
        refuse_other_codebook(
            f"model folder {folder}: the model was trained",
            model.codebook_version,
            model.codes,
            codebook,
            "train a model for this codebook with `textmine train CODED.csv --out MODEL_DIR "
            "--codebook FILE` and pass `--model MODEL_DIR`, or use `--coder rules`",
        )
        self.model = model
        self.codebook = codebook
        self.version = version
        self.folder = folder

    def linear_pass(self, sentences: pd.DataFrame, text_column: str = "text") -> LinearPass:
        """The rules' findings, the design matrix and the model's probabilities of each row.

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
        coder, config = get_coder(self.codebook), self.model.config
        if config.chars:
            views, features = featurize(coder, texts, genres, neighbours, config)
            x = self.model.design(features, texts)
        else:  # straight to the columns, without writing out the word features
            views = analyse_rules(coder, texts)
            columns = feature_columns(
                texts, views, genres, neighbours, lower_lemmas(coder), config, self.model.space
            )
            x = self.model.design_of_columns(columns, texts)
        return LinearPass(texts, genres, views, x, self.model.probabilities(x))

    def evidence(self, linear: LinearPass, labels: np.ndarray) -> list[str]:
        """JSON evidence per row: the rule spans of each code set, else the terms that drove it."""
        evidence = ["{}"] * len(linear.texts)
        lemmas = lower_lemmas(get_rule_coder(self.codebook))
        for i in np.flatnonzero(labels.any(axis=1)):
            view = linear.views[i]
            chosen: dict[str, list[dict]] = {}
            spans = None
            for j in np.flatnonzero(labels[i]):
                code = self.model.codes[j]
                if code in view.evidence:
                    chosen[code] = view.evidence[code]
                else:
                    if spans is None:
                        spans = word_spans(linear.texts[i], lemmas, self.model.config.bigrams)
                    chosen[code] = self.model.term_evidence(
                        linear.x[i], spans, int(j), linear.texts[i]
                    )
            evidence[i] = json.dumps(chosen, ensure_ascii=False)
        return evidence

    def code_sentences(self, sentences: pd.DataFrame, *, text_column: str = "text") -> pd.DataFrame:
        """Codes, p_<code>, evidence and versions for each row (same index and order)."""
        linear = self.linear_pass(sentences, text_column)
        labels = self.model.decide(linear.probabilities)
        return _assemble(
            sentences,
            self.codebook,
            labels,
            linear.probabilities,
            self.evidence(linear, labels),
            self.version,
        )
