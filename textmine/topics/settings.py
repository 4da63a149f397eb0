"""How topics are modelled: `TopicSettings` (validates itself) and the topic model's error.

Also the log levels of the modelling libraries, which are quietened while a
model is fitted, saved or loaded.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import asdict, dataclass
from typing import Any

TFIDF_SVD = "tfidf-svd"


class TopicModelError(RuntimeError):
    """A saved topic model is missing, damaged or cannot be used."""


@dataclass(frozen=True)
class TopicSettings:
    """How topics are modelled. Validates itself; `to_dict` is saved with the model."""

    by: str = "year"  # period of topics_over_time: "year" or "quarter"
    nr_bins: int | None = None  # instead of `by`, this many equal-width time bins
    n_topics: str | int = "auto"  # "auto" (HDBSCAN decides) or a number of topics
    seed_topics_from_codebook: bool = False  # guided topics seeded with codebook words
    random_state: int = 42
    min_topic_size: int | None = None  # None: max(10, chunks / 500)
    embedding: str = TFIDF_SVD  # or a locally installed sentence-transformers model
    svd_components: int = 100
    n_neighbors: int = 15
    approximate_neighbours_from: int = 20_000  # from this many chunks: approximate k-NN (IVF)
    umap_components: int = 5
    umap_epochs: int | None = None  # None: 200 up to 10,000 chunks, 100 below 20,000, then 50
    fallback_below: int = 150  # fewer chunks than this: PCA + KMeans instead of UMAP + HDBSCAN
    outlier_threshold: float = 0.1  # cosine similarity a chunk needs to join a topic
    top_n_words: int = 10
    n_representative: int = 3
    min_chunk_words: int = 25  # shorter paragraphs are merged with the next one

    def __post_init__(self) -> None:
        """Check every setting; ValueError names the setting and the value."""
        if self.by not in ("year", "quarter"):
            raise ValueError(f"by must be 'year' or 'quarter', not {self.by!r}")
        if self.nr_bins is not None and (not isinstance(self.nr_bins, int) or self.nr_bins < 1):
            raise ValueError(f"nr_bins must be a positive whole number, not {self.nr_bins!r}")
        n_topics = self.n_topics
        if isinstance(n_topics, str) and n_topics != "auto":
            if not n_topics.isdigit():
                raise ValueError(f"n_topics must be 'auto' or a number, not {n_topics!r}")
            object.__setattr__(self, "n_topics", int(n_topics))
        if isinstance(self.n_topics, int) and (
            isinstance(self.n_topics, bool) or self.n_topics < 2
        ):
            raise ValueError(f"n_topics must be at least 2, not {self.n_topics!r}")
        for name in (
            "svd_components",
            "n_neighbors",
            "approximate_neighbours_from",
            "umap_components",
            "fallback_below",
            "top_n_words",
            "n_representative",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, not {value!r}")
        if self.umap_epochs is not None and (
            not isinstance(self.umap_epochs, int) or self.umap_epochs < 10
        ):
            raise ValueError(f"umap_epochs must be at least 10, not {self.umap_epochs!r}")
        if self.min_topic_size is not None and (
            not isinstance(self.min_topic_size, int) or self.min_topic_size < 2
        ):
            raise ValueError(f"min_topic_size must be at least 2, not {self.min_topic_size!r}")
        if not -1.0 <= self.outlier_threshold <= 1.0:
            raise ValueError("outlier_threshold is a cosine similarity between -1 and 1")
        if self.min_chunk_words < 0:
            raise ValueError("min_chunk_words cannot be negative")
        if (
            self.embedding != TFIDF_SVD
            and importlib.util.find_spec("sentence_transformers") is None
        ):
            raise ValueError(
                f"embedding {self.embedding!r} needs sentence-transformers: install the "
                f"[embeddings] extra, or use the default {TFIDF_SVD!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every setting, as plain data."""
        return asdict(self)

    def model_dict(self) -> dict[str, Any]:
        """The settings that change the fitted model (not how periods are binned)."""
        data = self.to_dict()
        for key in ("by", "nr_bins", "n_representative"):
            data.pop(key)
        return data


def quiet_libraries() -> None:
    """Only errors from BERTopic, numba, UMAP and pynndescent reach the log."""
    for name in ("BERTopic", "numba", "umap", "pynndescent"):
        logging.getLogger(name).setLevel(logging.ERROR)
