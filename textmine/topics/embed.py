"""Embeddings of chunk texts: TF-IDF -> SVD -> L2 normalisation, or a local sentence-transformers model.

`embed_chunks` fits the embedding model and caches it with the embeddings
(see `textmine.topics.persist`); an embedder saves and loads itself without
pickle, because BERTopic's safetensors format does not store it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from textmine.atomic import write_json_atomic
from textmine.topics.persist import read_cached_embeddings, write_embedding_cache
from textmine.topics.settings import TFIDF_SVD, TopicModelError, TopicSettings
from textmine.topics.tokens import token_pattern

# Words that occur in nearly every paragraph of the corpus or are report
# boilerplate (publisher, licence and contact text). They are removed from the
# TF-IDF embedding and from topic words, on top of scikit-learn's English list.
# "children", "school(s)", "young people" and "care" are kept: in this corpus
# they carry meaning ("care leavers", "virtual school").
DOMAIN_STOP_WORDS = (
    "ofsted",
    "inspection",
    "inspections",
    "inspected",
    "inspector",
    "inspectors",
    "hmi",
    "majesty",
    "report",
    "reports",
    "local",
    "authority",
    "authorities",
    "gov",
    "uk",
    "www",
    "http",
    "https",
    "org",
    "com",
    "crown",
    "copyright",
    "licence",
    "license",
    "email",
    "telephone",
    "tel",
    "page",
    "pages",
    "paragraph",
    "ensure",
    "ensures",
    "including",
    "include",
    "includes",
    "also",
    "well",
    "use",
    "used",
    "make",
    "made",
    "able",
    "good",
    # what is left of contractions once tokens split at apostrophes ("don't" -> "don")
    "don",
    "doesn",
    "didn",
    "isn",
    "aren",
    "wasn",
    "weren",
    "won",
    "wouldn",
    "couldn",
    "shouldn",
    "hasn",
    "haven",
    "hadn",
    "ll",
    "ve",
    "re",
)


def stop_words() -> list[str]:
    """scikit-learn's English stop words plus DOMAIN_STOP_WORDS, sorted."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(set(ENGLISH_STOP_WORDS) | set(DOMAIN_STOP_WORDS))


class TfidfSvdEmbedder:
    """TF-IDF -> TruncatedSVD -> L2 normalisation, saved without pickle.

    BERTopic's safetensors format does not store the embedding model, so this
    one saves itself: vocabulary and settings as JSON, idf and SVD components
    as safetensors. `BERTopic` uses it through `as_backend()`.
    """

    def __init__(self, n_components: int = 100, random_state: int = 42):
        """An unfitted embedder with `n_components` SVD dimensions."""
        self.n_components = n_components
        self.random_state = random_state
        self.pipeline: Any = None  # a fitted scikit-learn Pipeline

    def fit_transform(self, texts: list[str]) -> np.ndarray:
        """Fit TF-IDF and SVD on `texts`; return their L2-normalised embeddings."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import Normalizer

        from textmine.topics.counting import FastTfidfVectorizer

        n = len(texts)
        vectorizer = FastTfidfVectorizer(
            stop_words=stop_words(),
            token_pattern=token_pattern(),
            lowercase=True,
            min_df=2 if n >= 50 else 1,
            max_df=0.5 if n >= 50 else 1.0,
            sublinear_tf=True,
            dtype=np.float32,
        )
        tfidf = vectorizer.fit_transform(texts)
        components = max(1, min(self.n_components, tfidf.shape[1] - 1, n - 1))
        svd = TruncatedSVD(
            n_components=components, algorithm="randomized", random_state=self.random_state
        )
        with warnings.catch_warnings():  # explained-variance ratio of a tiny corpus divides by 0
            warnings.simplefilter("ignore", RuntimeWarning)
            reduced = svd.fit_transform(tfidf)
        self.pipeline = make_pipeline(vectorizer, svd, Normalizer())
        self.pipeline.steps[-1][1].fit(reduced)
        return Normalizer().fit_transform(reduced).astype(np.float32)

    def transform(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` with the fitted model."""
        if self.pipeline is None:
            raise TopicModelError("the embedding model is not fitted")
        return np.asarray(self.pipeline.transform(texts), dtype=np.float32)

    def as_backend(self):
        """The model as a BERTopic embedding backend."""
        from bertopic.backend._sklearn import SklearnEmbedder

        return SklearnEmbedder(self.pipeline)

    def save(self, directory: Path) -> None:
        """Write embedding.json (vocabulary, settings) and embedding.safetensors (idf, SVD)."""
        from safetensors.numpy import save_file

        vectorizer, svd = self.pipeline.steps[0][1], self.pipeline.steps[1][1]
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            # safetensors writes the raw buffer: arrays must be C-contiguous
            {
                "idf": np.ascontiguousarray(vectorizer.idf_, dtype=np.float32),
                "components": np.ascontiguousarray(svd.components_, dtype=np.float32),
            },
            str(directory / "embedding.safetensors"),
        )
        config = {
            "kind": TFIDF_SVD,
            "n_components": self.n_components,
            "random_state": self.random_state,
            "vectorizer": {
                k: v
                for k, v in vectorizer.get_params().items()
                if k in ("lowercase", "min_df", "max_df", "sublinear_tf", "token_pattern")
            },
            "stop_words": sorted(vectorizer.get_stop_words() or []),
            "vocabulary": {term: int(i) for term, i in vectorizer.vocabulary_.items()},
        }
        write_json_atomic(directory / "embedding.json", config)

    @classmethod
    def load(cls, directory: Path) -> TfidfSvdEmbedder:
        """The embedder saved in `directory` by `save`."""
        from safetensors.numpy import load_file
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import Normalizer

        try:
            config = json.loads((directory / "embedding.json").read_text(encoding="utf-8"))
            tensors = load_file(str(directory / "embedding.safetensors"))
        except (OSError, ValueError) as exc:
            raise TopicModelError(f"cannot read the embedding model in {directory}: {exc}") from exc
        vectorizer = TfidfVectorizer(
            vocabulary=config["vocabulary"],
            stop_words=config["stop_words"],
            dtype=np.float32,
            **config["vectorizer"],
        )
        vectorizer.idf_ = tensors["idf"].astype(np.float64)
        svd = TruncatedSVD(n_components=tensors["components"].shape[0])
        svd.components_ = tensors["components"]
        svd.n_features_in_ = tensors["components"].shape[1]
        normalizer = Normalizer().fit(np.zeros((1, svd.components_.shape[0])))
        embedder = cls(config["n_components"], config["random_state"])
        embedder.pipeline = make_pipeline(vectorizer, svd, normalizer)
        return embedder


class SentenceTransformerEmbedder:
    """A locally installed sentence-transformers model; never downloads."""

    def __init__(self, name: str):
        """Load the locally installed model `name`; TopicModelError when it is not there."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.name = name
        try:
            self.model = SentenceTransformer(name, local_files_only=True)
        except Exception as exc:  # any loading failure means "not available here"
            raise TopicModelError(
                f"sentence-transformers model {name!r} is not available locally ({exc}); "
                f"textmine never downloads models: copy it into the cache or use {TFIDF_SVD!r}"
            ) from exc

    def fit_transform(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` (the model is pretrained: nothing to fit)."""
        return self.transform(texts)

    def transform(self, texts: list[str]) -> np.ndarray:
        """Embed `texts`, L2-normalised."""
        return np.asarray(self.model.encode(texts, normalize_embeddings=True), dtype=np.float32)

    def as_backend(self):
        """The model itself (BERTopic takes sentence-transformers models as they are)."""
        return self.model

    def save(self, directory: Path) -> None:
        """Write embedding.json naming the model (the model stays where it is installed)."""
        directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            directory / "embedding.json", {"kind": "sentence-transformers", "name": self.name}
        )


def load_embedder(directory: Path):
    """The embedding model saved in `directory` (TF-IDF/SVD or a local sentence-transformers one)."""
    try:
        config = json.loads((directory / "embedding.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TopicModelError(f"cannot read the embedding model in {directory}: {exc}") from exc
    if config.get("kind") == "sentence-transformers":
        return SentenceTransformerEmbedder(config["name"])
    return TfidfSvdEmbedder.load(directory)


def embed_chunks(texts: list[str], settings: TopicSettings, cache_dir: Path | None = None):
    """Fit the embedding model on `texts` and embed them; reuse the cache when texts match.

    Returns (embedder, embeddings, from_cache). The cache holds one entry, keyed
    by a hash of the texts and the embedding settings.
    """
    key = hashlib.sha256(
        json.dumps(
            [
                settings.embedding,
                settings.svd_components,
                settings.random_state,
                list(DOMAIN_STOP_WORDS),
                token_pattern(),
            ]
        ).encode()
        + b"\0".join(t.encode("utf-8") for t in texts)
    ).hexdigest()
    cached = read_cached_embeddings(cache_dir, key) if cache_dir is not None else None
    if cache_dir is not None and cached is not None and cached.shape[0] == len(texts):
        with contextlib.suppress(OSError, ValueError, TopicModelError):
            return load_embedder(cache_dir), cached, True
    embedder: TfidfSvdEmbedder | SentenceTransformerEmbedder
    if settings.embedding == TFIDF_SVD:
        embedder = TfidfSvdEmbedder(settings.svd_components, settings.random_state)
    else:
        embedder = SentenceTransformerEmbedder(settings.embedding)
    embeddings = embedder.fit_transform(texts)
    if cache_dir is not None:
        write_embedding_cache(cache_dir, embedder, embeddings, key)
    return embedder, embeddings, False
