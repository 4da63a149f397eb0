"""Choose and load a sentence coder: the rules, a linear model folder, or an encoder folder."""

from __future__ import annotations

from pathlib import Path

from textmine.codebook import Codebook, load_codebook
from textmine.learned.coder import LearnedCoder, RulesCoder
from textmine.learned.encoder import EncoderCoder, is_encoder_folder, load_encoder_coder
from textmine.learned.model import default_model_dir, load_model, model_version

CODERS = ("learned", "rules")


def load_coder(
    coder: str = "learned", model_dir: Path | None = None, codebook: Codebook | None = None
) -> RulesCoder | LearnedCoder | EncoderCoder:
    """A SentenceCoder: "rules", or "learned" from `model_dir` (default: the packaged model).

    A model folder holding `encoder.json` (a fine-tuned encoder with its linear
    model, textmine.learned.encoder) gives an EncoderCoder. Raises
    ModelCodebookMismatch (a ValueError) when the model was trained with another
    codebook version, and ModelFolderError when the folder is unusable.
    """
    codebook = codebook if codebook is not None else load_codebook()
    if coder == "rules":
        return RulesCoder(codebook)
    if coder != "learned":
        raise ValueError(f"unknown coder {coder!r}; use 'learned' or 'rules'")
    folder = Path(model_dir) if model_dir is not None else default_model_dir()
    if is_encoder_folder(folder):
        return load_encoder_coder(folder, codebook)
    model = load_model(folder)
    return LearnedCoder(model, codebook, model_version(folder), folder)
