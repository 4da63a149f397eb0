"""Static word embeddings (model2vec-style): a sentence vector is a weighted mean of word vectors.

The vectors were distilled from a sentence encoder (see textmine/learned/distill.py):
each word of a vocabulary was run through the encoder on its own, the outputs
reduced by PCA, and each word weighted by SIF (a / (a + p(word))), so frequent
words count less. At run time this is a dictionary lookup per word and one
sparse-dense product: no encoder, no tokenizer, numpy only.

Files (in a model folder): `static_embeddings.safetensors` (tensors `vectors`
float16 [words, dims] and `weights` float32 [words]) and
`static_embeddings.json` (`words`, in row order, and where the vectors came from).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

VECTORS_FILE = "static_embeddings.safetensors"
WORDS_FILE = "static_embeddings.json"
_WORD = re.compile(r"[a-z0-9]+(?:['’\-][a-z0-9]+)*")


@dataclass
class StaticEmbeddings:
    """Word vectors with SIF weights; `embed` turns sentences into unit vectors."""

    words: list[str]
    vectors: np.ndarray  # float32 [len(words), dims]
    weights: np.ndarray  # float32 [len(words)]
    meta: dict

    def __post_init__(self) -> None:
        """Index the words."""
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def dims(self) -> int:
        """Vector dimensions."""
        return int(self.vectors.shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length sentence vectors [len(texts), dims]; zeros where no word is known."""
        rows: list[int] = []
        cols: list[int] = []
        index = self.index
        for r, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                j = index.get(word)
                if j is not None:
                    rows.append(r)
                    cols.append(j)
        counts = sp.csr_matrix(
            (self.weights[cols], (rows, cols)),
            shape=(len(texts), len(self.words)),
            dtype=np.float32,
        )
        out = np.asarray(counts @ self.vectors, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def save(self, folder: Path) -> None:
        """Write the two files into `folder`."""
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {
                "vectors": self.vectors.astype(np.float16),
                "weights": self.weights.astype(np.float32),
            },
            str(folder / VECTORS_FILE),
        )
        (folder / WORDS_FILE).write_text(
            json.dumps({"meta": self.meta, "words": self.words}, ensure_ascii=False),
            encoding="utf-8",
        )


def load_static_embeddings(folder: Path) -> StaticEmbeddings:
    """Read the embeddings of a model folder; ValueError naming the file if they are broken."""
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(folder / VECTORS_FILE))
        data = json.loads((folder / WORDS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"static embeddings in {folder}: cannot read ({error})") from error
    words = data.get("words")
    vectors, weights = tensors.get("vectors"), tensors.get("weights")
    if (
        not isinstance(words, list)
        or vectors is None
        or weights is None
        or len(words) != len(vectors)
        or len(words) != len(weights)
    ):
        raise ValueError(
            f"static embeddings in {folder}: {VECTORS_FILE} and {WORDS_FILE} "
            "do not match (words, vectors and weights must have one row per word)"
        )
    return StaticEmbeddings(
        words=words,
        vectors=vectors.astype(np.float32),
        weights=weights.astype(np.float32),
        meta=data.get("meta", {}),
    )


def default_embeddings_dir() -> Path:
    """The folder of the packaged static embeddings (used by `textmine train --embeddings`)."""
    from importlib import resources

    return Path(str(resources.files("textmine") / "data" / "static_embeddings"))
