"""The learned sentence coder: a model trained on human-coded sentences, over the rules' findings.

Public API (what the pipeline plugs in):

    coder = load_coder("learned")            # or "rules", or model_dir=Path(...)
                                             # (a linear model folder or an encoder folder)
    coded = coder.code_sentences(sentences)  # sentence_id, doc_id, sentence_index, text

`textmine train` (textmine.learned.train) builds a model folder; the packaged
default lives in textmine/data/model/.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from textmine.codebook import Codebook
from textmine.learned.coder import (
    MODEL_VERSION,
    RULES_VERSION,
    LearnedCoder,
    ModelCodebookMismatch,
    RulesCoder,
    probability_columns,
)
from textmine.learned.encoder import EncoderCoder
from textmine.learned.loading import load_coder
from textmine.learned.model import ModelFolderError, default_model_dir, model_version


class SentenceCoder(Protocol):
    """Codes whole documents' sentences.

    Input: columns sentence_id, doc_id, sentence_index, text (+ optional
    doc_type). Output: the input columns + one int 0/1 column per codebook code
    + p_<code> floats + evidence (JSON) + codebook_version + model_version +
    textmine_version, same row order and index as the input.
    """

    version: str  # "rules" for the rule tagger, else the model's hash
    codebook: Codebook

    def code_sentences(self, sentences: pd.DataFrame) -> pd.DataFrame:
        """Coded rows: the input columns + codes, p_<code>, evidence, versions."""
        ...


__all__ = [
    "MODEL_VERSION",
    "RULES_VERSION",
    "EncoderCoder",
    "LearnedCoder",
    "ModelCodebookMismatch",
    "ModelFolderError",
    "RulesCoder",
    "SentenceCoder",
    "default_model_dir",
    "load_coder",
    "model_version",
    "probability_columns",
]
