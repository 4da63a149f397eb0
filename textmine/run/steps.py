"""The stage functions of a run: pure work on plain data, no store, no files written.

`extract_files` and `code_documents` run wherever the runner's batch mapper puts
them (this process, a process pool, Prefect's task runner); they never raise
for bad input and return plain records the runner commits to the store.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from textmine.run.plan import SourceFile

if TYPE_CHECKING:
    from spacy.language import Language

    from textmine.learned import SentenceCoder


@dataclass
class Extraction:
    """The outcome of reading one file: a document with sentences, or a failure."""

    file: SourceFile
    document: object | None = None  # textmine.types.Document
    sentences: pd.DataFrame | None = None
    reason: str | None = None
    message: str | None = None
    seconds: float = 0.0
    transient: bool = False  # a failure of the reading machinery, not of the file: retry later


@dataclass(frozen=True)
class CoderSpec:
    """Which coder codes the sentences; plain values, so it travels to worker processes."""

    coder: str = "learned"
    model_dir: str | None = None
    codebook_path: str | None = None


@functools.lru_cache(maxsize=2)
def sentence_splitter(model: str | None) -> Language:
    """The spaCy pipeline that splits sentences, built once per process."""
    from textmine.segment import build_nlp

    return build_nlp(model) if model else build_nlp()


def extract_files(
    files: list[SourceFile], password: str | None = None, spacy_model: str | None = None
) -> list[Extraction]:
    """Read and segment files. Never raises for a bad file, never touches the store."""
    from textmine.ingest import ReadLimits, read_bytes, read_file_bytes
    from textmine.segment import segment_document
    from textmine.types import IngestError

    limits = ReadLimits.from_env()
    results = []
    for file in files:
        started = time.perf_counter()
        try:
            # by absolute path (a worker's folder may differ), shown as the user gave it
            data = read_file_bytes(file.location, limits)
            document = read_bytes(
                data,
                Path(file.display_path),
                manifest_row=file.manifest_row,
                password=password,
                limits=limits,
            )
            sentences = segment_document(document, sentence_splitter(spacy_model))
            results.append(Extraction(file, document=document, sentences=sentences))
        except IngestError as exc:
            results.append(Extraction(file, reason=exc.reason, message=exc.message))
        except Exception as exc:  # a reader bug must not stop the run
            results.append(
                Extraction(
                    file,
                    reason="malformed",
                    message=f"textmine could not read it ({type(exc).__name__}: {exc})",
                )
            )
        results[-1].seconds = time.perf_counter() - started
    return results


@functools.lru_cache(maxsize=4)
def load_sentence_coder(spec: CoderSpec) -> SentenceCoder:
    """The coder of a spec, loaded once per process."""
    from textmine.codebook import load_codebook

    codebook = load_codebook(Path(spec.codebook_path)) if spec.codebook_path else load_codebook()
    from textmine.learned import load_coder

    model_dir = Path(spec.model_dir) if spec.model_dir else None
    return load_coder(spec.coder, model_dir, codebook)


def code_documents(sentences: pd.DataFrame, spec: CoderSpec) -> pd.DataFrame:
    """Code the sentences of whole documents: codes, `p_<code>`, evidence, versions."""
    return load_sentence_coder(spec).code_sentences(sentences)
