"""Topics of paragraph-sized chunks with BERTopic, offline and torch-free by default.

Steps: `build_chunks` (sentences -> paragraphs), `embed_chunks` (TF-IDF -> SVD ->
L2 normalisation, cached beside the model), then `run_topics` fits BERTopic
(exact k-nearest neighbours -> UMAP -> HDBSCAN, or PCA -> KMeans for small
corpora), reduces outliers, names topics, picks representative paragraphs and
computes topics over time. A fitted model is saved with safetensors and later
runs assign new chunks to its topics unless asked to refit.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from textmine import __version__
from textmine.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from textmine.trends import period_label, period_start

TFIDF_SVD = "tfidf-svd"

# Words that occur in nearly every paragraph of the corpus or are report
# boilerplate (publisher, licence and contact text). They are removed from the
# TF-IDF embedding and from topic words, on top of scikit-learn's English list.
# "children", "school(s)", "young people" and "care" are kept: in this corpus
# they carry meaning ("care leavers", "virtual school").
DOMAIN_STOP_WORDS = (
    "ofsted", "inspection", "inspections", "inspected", "inspector", "inspectors",
    "hmi", "majesty", "report", "reports", "local", "authority", "authorities",
    "gov", "uk", "www", "http", "https", "org", "com", "crown", "copyright",
    "licence", "license", "email", "telephone", "tel", "page", "pages", "paragraph",
    "ensure", "ensures", "including", "include", "includes", "also", "well",
    "use", "used", "make", "made", "able", "good",
)

REPORT_FILES = ("settings.json", "assignments.csv", "fitted.json")


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
    umap_components: int = 5
    umap_epochs: int | None = None  # None: 200 up to 10,000 chunks, else 100
    fallback_below: int = 150  # fewer chunks than this: PCA + KMeans instead of UMAP + HDBSCAN
    outlier_threshold: float = 0.1  # cosine similarity a chunk needs to join a topic
    top_n_words: int = 10
    n_representative: int = 3
    min_chunk_words: int = 25  # shorter paragraphs are merged with the next one

    def __post_init__(self) -> None:
        if self.by not in ("year", "quarter"):
            raise ValueError(f"by must be 'year' or 'quarter', not {self.by!r}")
        if self.nr_bins is not None and (not isinstance(self.nr_bins, int) or self.nr_bins < 1):
            raise ValueError(f"nr_bins must be a positive whole number, not {self.nr_bins!r}")
        n_topics = self.n_topics
        if isinstance(n_topics, str) and n_topics != "auto":
            if not n_topics.isdigit():
                raise ValueError(f"n_topics must be 'auto' or a number, not {n_topics!r}")
            object.__setattr__(self, "n_topics", int(n_topics))
        if isinstance(self.n_topics, int) and (isinstance(self.n_topics, bool) or self.n_topics < 2):
            raise ValueError(f"n_topics must be at least 2, not {self.n_topics!r}")
        for name in ("svd_components", "n_neighbors", "umap_components", "fallback_below",
                     "top_n_words", "n_representative"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, not {value!r}")
        if self.umap_epochs is not None and (not isinstance(self.umap_epochs, int) or self.umap_epochs < 10):
            raise ValueError(f"umap_epochs must be at least 10, not {self.umap_epochs!r}")
        if self.min_topic_size is not None and (
            not isinstance(self.min_topic_size, int) or self.min_topic_size < 2
        ):
            raise ValueError(f"min_topic_size must be at least 2, not {self.min_topic_size!r}")
        if not -1.0 <= self.outlier_threshold <= 1.0:
            raise ValueError("outlier_threshold is a cosine similarity between -1 and 1")
        if self.min_chunk_words < 0:
            raise ValueError("min_chunk_words cannot be negative")
        if self.embedding != TFIDF_SVD and importlib.util.find_spec("sentence_transformers") is None:
            raise ValueError(
                f"embedding {self.embedding!r} needs sentence-transformers: install the "
                f"[embeddings] extra, or use the default {TFIDF_SVD!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_dict(self) -> dict[str, Any]:
        """The settings that change the fitted model (not how periods are binned)."""
        data = self.to_dict()
        for key in ("by", "nr_bins", "n_representative"):
            data.pop(key)
        return data


@dataclass
class TopicOutputs:
    """Tables written as topics.csv, doc_topics.csv and topics_over_time.csv."""

    topics: pd.DataFrame
    doc_topics: pd.DataFrame
    topics_over_time: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    refitted: bool = True

    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write the three CSV files atomically into `out_dir`; return their paths."""
        out = Path(out_dir)
        paths = [out / "topics.csv", out / "doc_topics.csv", out / "topics_over_time.csv"]
        for path, frame in zip(paths, (self.topics, self.doc_topics, self.topics_over_time), strict=True):
            write_csv_atomic(path, frame)
        return paths


TOPIC_COLUMNS = [
    "topic", "name", "size", "share", "top_words", "representative_chunk_ids",
    "representative_texts", "model_id", "textmine_version",
]
DOC_TOPIC_COLUMNS = [
    "chunk_id", "doc_id", "path", "page", "paragraph_index", "start_char", "end_char",
    "published", "period", "topic", "topic_name", "similarity", "assigned_by",
    "model_id", "textmine_version",
]
TOPICS_OVER_TIME_COLUMNS = [
    "topic", "name", "period", "period_start", "n_chunks", "share_of_period",
    "period_chunks", "words",
]
CHUNK_COLUMNS = [
    "chunk_id", "doc_id", "path", "paragraph_index", "n_paragraphs", "page",
    "start_char", "end_char", "published", "n_sentences", "text",
]


# chunks -----------------------------------------------------------------------


def build_chunks(
    coded_sentences: pd.DataFrame, documents: pd.DataFrame, *, min_words: int = 25
) -> pd.DataFrame:
    """Paragraph-sized chunks: sentences grouped by doc_id + paragraph_index.

    Paragraphs under `min_words` words (headings, table cells) are merged with
    the paragraphs that follow them in the same document; a short last one joins
    the chunk before it. `chunk_id` is `<doc_id>-c<first paragraph_index:05d>`.
    `published` comes from `documents` (rows with `duplicate_of` set are ignored).
    """
    if coded_sentences.empty:
        return pd.DataFrame(columns=CHUNK_COLUMNS)
    sentences = coded_sentences.sort_values(["doc_id", "sentence_index"], kind="stable")
    published = _published_by_doc(documents)
    sentences = sentences.assign(text=sentences["text"].fillna("").astype(str).str.strip())
    grouped = sentences.groupby(["doc_id", "paragraph_index"], sort=True)
    paragraphs = grouped.agg(
        path=("path", "first"), page=("page", "first"), start_char=("start_char", "min"),
        end_char=("end_char", "max"), n_sentences=("text", "size"),
    ).reset_index()
    paragraphs["text"] = grouped["text"].agg(lambda t: " ".join(x for x in t if x)).to_numpy()
    paragraphs["path"] = paragraphs["path"].astype(str)
    rows = paragraphs.to_dict("records")
    chunks: list[dict] = []
    pending: dict | None = None
    previous_doc = None
    for row in rows:
        if row["doc_id"] != previous_doc:
            if pending is not None:
                _close_chunk(chunks, pending, min_words)
            pending, previous_doc = None, row["doc_id"]
        if pending is None:
            pending = dict(row, n_paragraphs=1, paragraph_index=int(row["paragraph_index"]),
                           page=int(row["page"]), start_char=int(row["start_char"]),
                           end_char=int(row["end_char"]), n_sentences=int(row["n_sentences"]))
        else:
            pending["text"] = f"{pending['text']} {row['text']}".strip()
            pending["end_char"] = int(row["end_char"])
            pending["n_sentences"] += int(row["n_sentences"])
            pending["n_paragraphs"] += 1
        if len(pending["text"].split()) >= min_words:
            chunks.append(pending)
            pending = None
    if pending is not None:
        _close_chunk(chunks, pending, min_words)
    frame = pd.DataFrame(chunks)
    if frame.empty:
        return pd.DataFrame(columns=CHUNK_COLUMNS)
    frame = frame[frame["text"].str.strip() != ""]
    frame["chunk_id"] = [f"{d}-c{p:05d}" for d, p in zip(frame["doc_id"], frame["paragraph_index"], strict=True)]
    frame["published"] = frame["doc_id"].map(published).fillna("").astype(str)
    return frame[CHUNK_COLUMNS].reset_index(drop=True)


def _close_chunk(chunks: list[dict], pending: dict, min_words: int) -> None:
    """A short tail joins the previous chunk of the same document, else stands alone."""
    if chunks and chunks[-1]["doc_id"] == pending["doc_id"] and len(pending["text"].split()) < min_words:
        last = chunks[-1]
        last["text"] = f"{last['text']} {pending['text']}".strip()
        last["end_char"] = pending["end_char"]
        last["n_sentences"] += pending["n_sentences"]
        last["n_paragraphs"] += pending["n_paragraphs"]
    else:
        chunks.append(pending)


def _published_by_doc(documents: pd.DataFrame) -> dict[str, str]:
    if documents is None or documents.empty:
        return {}
    docs = documents
    if "duplicate_of" in docs.columns:
        docs = docs[docs["duplicate_of"].fillna("").astype(str) == ""]
    if "published" not in docs.columns:
        return {}
    return dict(zip(docs["doc_id"], docs["published"].fillna("").astype(str), strict=True))


# embeddings --------------------------------------------------------------------


def stop_words() -> list[str]:
    """scikit-learn's English stop words plus DOMAIN_STOP_WORDS, sorted."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(set(ENGLISH_STOP_WORDS) | set(DOMAIN_STOP_WORDS))


def _token_pattern() -> str:
    # words of 2+ letters (hyphens and apostrophes inside), no bare numbers
    return r"(?u)\b[^\W\d_][\w'’-]*[^\W_]\b"


class TfidfSvdEmbedder:
    """TF-IDF -> TruncatedSVD -> L2 normalisation, saved without pickle.

    BERTopic's safetensors format does not store the embedding model, so this
    one saves itself: vocabulary and settings as JSON, idf and SVD components
    as safetensors. `BERTopic` uses it through `as_backend()`.
    """

    def __init__(self, n_components: int = 100, random_state: int = 42):
        self.n_components = n_components
        self.random_state = random_state
        self.pipeline = None

    def fit_transform(self, texts: list[str]) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import Normalizer

        n = len(texts)
        vectorizer = TfidfVectorizer(
            stop_words=stop_words(), token_pattern=_token_pattern(), lowercase=True,
            min_df=2 if n >= 50 else 1, max_df=0.5 if n >= 50 else 1.0,
            sublinear_tf=True, dtype=np.float32,
        )
        tfidf = vectorizer.fit_transform(texts)
        components = max(1, min(self.n_components, tfidf.shape[1] - 1, n - 1))
        svd = TruncatedSVD(n_components=components, algorithm="randomized", random_state=self.random_state)
        with warnings.catch_warnings():  # explained-variance ratio of a tiny corpus divides by 0
            warnings.simplefilter("ignore", RuntimeWarning)
            reduced = svd.fit_transform(tfidf)
        self.pipeline = make_pipeline(vectorizer, svd, Normalizer())
        self.pipeline.steps[-1][1].fit(reduced)
        return Normalizer().fit_transform(reduced).astype(np.float32)

    def transform(self, texts: list[str]) -> np.ndarray:
        if self.pipeline is None:
            raise TopicModelError("the embedding model is not fitted")
        return np.asarray(self.pipeline.transform(texts), dtype=np.float32)

    def as_backend(self):
        from bertopic.backend._sklearn import SklearnEmbedder

        return SklearnEmbedder(self.pipeline)

    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        vectorizer, svd = self.pipeline.steps[0][1], self.pipeline.steps[1][1]
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            # safetensors writes the raw buffer: arrays must be C-contiguous
            {"idf": np.ascontiguousarray(vectorizer.idf_, dtype=np.float32),
             "components": np.ascontiguousarray(svd.components_, dtype=np.float32)},
            str(directory / "embedding.safetensors"),
        )
        config = {
            "kind": TFIDF_SVD,
            "n_components": self.n_components,
            "random_state": self.random_state,
            "vectorizer": {k: v for k, v in vectorizer.get_params().items()
                           if k in ("lowercase", "min_df", "max_df", "sublinear_tf", "token_pattern")},
            "stop_words": sorted(vectorizer.get_stop_words() or []),
            "vocabulary": {term: int(i) for term, i in vectorizer.vocabulary_.items()},
        }
        write_json_atomic(directory / "embedding.json", config)

    @classmethod
    def load(cls, directory: Path) -> TfidfSvdEmbedder:
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
            vocabulary=config["vocabulary"], stop_words=config["stop_words"], dtype=np.float32,
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
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.name = name
        try:
            self.model = SentenceTransformer(name, local_files_only=True)
        except Exception as exc:  # noqa: BLE001  (any loading failure means "not available here")
            raise TopicModelError(
                f"sentence-transformers model {name!r} is not available locally ({exc}); "
                f"textmine never downloads models: copy it into the cache or use {TFIDF_SVD!r}"
            ) from exc

    def fit_transform(self, texts: list[str]) -> np.ndarray:
        return self.transform(texts)

    def transform(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(texts, normalize_embeddings=True), dtype=np.float32)

    def as_backend(self):
        return self.model

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(directory / "embedding.json", {"kind": "sentence-transformers", "name": self.name})


def load_embedder(directory: Path):
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
        json.dumps([settings.embedding, settings.svd_components, settings.random_state,
                    list(DOMAIN_STOP_WORDS)]).encode()
        + b"\0".join(t.encode("utf-8") for t in texts)
    ).hexdigest()
    if cache_dir is not None and (cache_dir / "key.txt").is_file():
        with contextlib.suppress(OSError, ValueError, TopicModelError):
            if (cache_dir / "key.txt").read_text().strip() == key:
                embeddings = np.load(cache_dir / "embeddings.npy", allow_pickle=False)
                if embeddings.shape[0] == len(texts):
                    return load_embedder(cache_dir), embeddings, True
    if settings.embedding == TFIDF_SVD:
        embedder = TfidfSvdEmbedder(settings.svd_components, settings.random_state)
    else:
        embedder = SentenceTransformerEmbedder(settings.embedding)
    embeddings = embedder.fit_transform(texts)
    if cache_dir is not None:
        tmp = Path(tempfile.mkdtemp(prefix=".embeddings.", dir=cache_dir.parent))
        try:
            embedder.save(tmp)
            np.save(tmp / "embeddings.npy", embeddings, allow_pickle=False)
            write_text_atomic(tmp / "key.txt", key + "\n")
            _replace_dir(tmp, cache_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return embedder, embeddings, False


def _replace_dir(new: Path, target: Path) -> None:
    """Swap a fully written directory into place (the old one is removed after)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# seeds -------------------------------------------------------------------------


def seed_topics_from_codebook(codebook) -> list[list[str]]:
    """One seed list per code: its phrases, then its single-word pattern values, lower-cased.

    Regular expressions and multi-token patterns other than phrases are skipped;
    each list keeps at most 20 entries, in codebook order.
    """
    seeds: list[list[str]] = []
    for code in codebook.codes.values():
        words: list[str] = [str(p.phrase).lower() for p in code.patterns if getattr(p, "phrase", None)]
        for pattern in code.patterns:
            tokens = getattr(pattern, "tokens", None) or ()
            if len(tokens) == 1:
                for attr in ("LEMMA", "LOWER", "ORTH", "TEXT"):
                    value = tokens[0].get(attr)
                    if isinstance(value, str):
                        words.append(value.lower())
                    elif isinstance(value, dict) and isinstance(value.get("IN"), list):
                        words.extend(str(v).lower() for v in value["IN"])
        unique = list(dict.fromkeys(w.strip() for w in words if w.strip() and len(w) > 2))
        if unique:
            seeds.append(unique[:20])
    return seeds


# fitting -----------------------------------------------------------------------


def _enable_umap_disk_cache() -> None:
    """Let numba cache UMAP's compiled functions on disk (as pynndescent's already are).

    UMAP's numba functions are compiled in every new process (several seconds);
    with caching on, later processes load them from numba's cache directory
    (`NUMBA_CACHE_DIR` or `__pycache__`). Failing that, they are just compiled.
    """
    try:
        from numba.core.registry import CPUDispatcher
        from umap import layouts, umap_, utils
    except ImportError:
        return
    for module in (umap_, layouts, utils):
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher) and type(obj._cache).__name__ == "NullCache":
                with contextlib.suppress(Exception):
                    obj.enable_caching()


def _precomputed_knn(embeddings: np.ndarray, n_neighbors: int):
    """Exact nearest neighbours by brute force (memory bounded by scikit-learn's chunking).

    Replaces UMAP's NN-descent, whose numba compilation dominated fit time.
    On L2-normalised vectors Euclidean order equals cosine order.
    """
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute", metric="euclidean")
    distances, indices = index.fit(embeddings).kneighbors(embeddings)
    return indices.astype(np.int32), distances.astype(np.float32)


def _auto_kmeans_topics(n: int) -> int:
    return int(max(2, min(10, round(math.sqrt(n / 2)))))


def _build_models(n: int, settings: TopicSettings, embeddings: np.ndarray, notes: list[str],
                  force_fallback: bool = False):
    """(reducer, clusterer, nr_topics, method) for `n` chunks."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    if force_fallback or n < settings.fallback_below:
        k = settings.n_topics if isinstance(settings.n_topics, int) else _auto_kmeans_topics(n)
        k = max(1, min(k, n))
        components = max(1, min(settings.umap_components, n - 1, embeddings.shape[1]))
        reducer = PCA(n_components=components, random_state=settings.random_state)
        clusterer = KMeans(n_clusters=k, random_state=settings.random_state, n_init=10)
        if not force_fallback:
            notes.append(
                f"small corpus ({n} chunks, fewer than {settings.fallback_below}): used PCA + KMeans "
                f"with {k} topics instead of UMAP + HDBSCAN"
            )
        return reducer, clusterer, None, "pca+kmeans"
    from hdbscan import HDBSCAN
    from umap import UMAP

    _enable_umap_disk_cache()
    n_neighbors = max(2, min(settings.n_neighbors, n - 1))
    knn = _precomputed_knn(embeddings, n_neighbors)
    min_size = settings.min_topic_size or max(10, round(n / 500))
    reducer = UMAP(
        n_neighbors=n_neighbors, n_components=settings.umap_components, min_dist=0.0,
        metric="euclidean", init="pca", random_state=settings.random_state,
        precomputed_knn=(knn[0], knn[1], None), low_memory=True, n_jobs=1,
        n_epochs=settings.umap_epochs or (200 if n <= 10_000 else 100),
    )
    clusterer = HDBSCAN(
        min_cluster_size=min_size, min_samples=max(1, min(min_size, 10)), metric="euclidean",
        cluster_selection_method="eom", prediction_data=False, core_dist_n_jobs=1,
    )
    nr_topics = settings.n_topics if isinstance(settings.n_topics, int) else None
    return reducer, clusterer, nr_topics, "umap+hdbscan"


def _vectorizer(n: int):
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(
        stop_words=stop_words(), token_pattern=_token_pattern(), ngram_range=(1, 2),
        min_df=2 if n >= 50 else 1,
    )


def _fit_bertopic(texts, embeddings, embedder, settings, notes, seeds, force_fallback=False):
    from bertopic import BERTopic
    from bertopic.vectorizers import ClassTfidfTransformer

    n = len(texts)
    reducer, clusterer, nr_topics, method = _build_models(n, settings, embeddings, notes, force_fallback)
    model = BERTopic(
        embedding_model=embedder.as_backend(), umap_model=reducer, hdbscan_model=clusterer,
        vectorizer_model=_vectorizer(n), ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
        nr_topics=nr_topics, top_n_words=settings.top_n_words, seed_topic_list=seeds,
        calculate_probabilities=False, verbose=False,
    )
    _quiet_libraries()  # BERTopic(verbose=False) resets its logger to WARNING
    # textmine picks representative chunks itself (closest to the topic's mean
    # embedding); BERTopic's own pass re-vectorises up to 500 chunks per topic.
    if hasattr(model, "_save_representative_docs"):
        model._save_representative_docs = lambda documents: None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        topics, _ = model.fit_transform(texts, embeddings=embeddings.copy())
    return model, np.asarray(topics, dtype=int), method


def run_topics(
    coded_sentences: pd.DataFrame,
    documents: pd.DataFrame,
    settings: TopicSettings | None = None,
    model_dir: str | os.PathLike = "outputs/topic_model",
    refit: bool = False,
    codebook=None,
) -> TopicOutputs:
    """Topics of the corpus's paragraph chunks, and topics over time.

    With a saved model in `model_dir` and `refit` False, chunks seen before keep
    their topic and new chunks are assigned to the saved topics (no refitting).
    Otherwise BERTopic is fitted and saved (safetensors) to `model_dir`.
    """
    settings = settings or TopicSettings()
    model_dir = Path(model_dir)
    chunks = build_chunks(coded_sentences, documents, min_words=settings.min_chunk_words)
    notes: list[str] = []
    if chunks.empty:
        notes.append("no text to model: the processed corpus has no coded sentences")
        return TopicOutputs(_empty(TOPIC_COLUMNS), _empty(DOC_TOPIC_COLUMNS),
                            _empty(TOPICS_OVER_TIME_COLUMNS), notes, refitted=False)
    _quiet_libraries()
    # One BLAS thread: floating-point sums then do not depend on the machine's
    # thread count (or on OMP/OPENBLAS_NUM_THREADS set by e.g. Dask), so the
    # same corpus and settings give the same topics everywhere.
    _import_model_libraries()  # load every BLAS/OpenMP library first, so the limit reaches it
    with threadpool_limits(limits=1):
        seed_random_generators(settings.random_state)
        if not refit and (model_dir / "bertopic").is_dir() and (model_dir / "settings.json").is_file():
            try:
                return _assign_with_saved_model(chunks, settings, model_dir, notes)
            except TopicModelError as exc:
                notes.append(f"the saved topic model could not be used ({exc}); refitted")
        return _fit_and_save(chunks, settings, model_dir, codebook, notes)


def _import_model_libraries() -> None:
    """Import the modelling libraries (and the BLAS/OpenMP runtimes they load)."""
    import bertopic  # noqa: F401
    import hdbscan  # noqa: F401
    import scipy.sparse.linalg  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import umap  # noqa: F401


def seed_random_generators(seed: int) -> None:
    """Seed NumPy's global generator and numba's own (used inside UMAP's compiled code).

    Without this a second fit in the same process continues numba's random stream
    and can give other topics than the same fit in a fresh process.
    """
    _numba_seeder()(seed)
    np.random.seed(seed)


@functools.lru_cache(maxsize=1)
def _numba_seeder():
    """A compiled function seeding numba's generator (compiled once per process, ~0.5 s)."""
    import numba

    @numba.njit(cache=False)
    def seed_numba(value):
        np.random.seed(value)

    return seed_numba


def _quiet_libraries() -> None:
    for name in ("BERTopic", "numba", "umap", "pynndescent"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _fit_and_save(chunks, settings, model_dir, codebook, notes) -> TopicOutputs:
    texts = chunks["text"].tolist()
    n = len(texts)
    model_dir.mkdir(parents=True, exist_ok=True)
    embedder, embeddings, cached = embed_chunks(texts, settings, model_dir / "embeddings")
    if cached:
        notes.append("reused cached embeddings (same chunks and embedding settings)")
    seeds = None
    if settings.seed_topics_from_codebook:
        if codebook is None:
            from textmine.codebook import load_codebook

            codebook = load_codebook()
        seeds = seed_topics_from_codebook(codebook) or None
        notes.append(f"guided topics seeded with {len(seeds or [])} codebook code word lists")
    if n == 1:
        topics = np.zeros(1, dtype=int)
        notes.append("only one chunk: it is its own topic")
        model, method = None, "single"
    else:
        model, topics, method = _fit_bertopic(texts, embeddings, embedder, settings, notes, seeds)
        if method == "umap+hdbscan" and len(set(topics.tolist()) - {-1}) < 2:
            notes.append(
                f"UMAP + HDBSCAN found {len(set(topics.tolist()) - {-1})} topic(s) in {n} chunks; "
                "fell back to PCA + KMeans"
            )
            model, topics, method = _fit_bertopic(texts, embeddings, embedder, settings, notes,
                                                  seeds, force_fallback=True)
    assigned_by = np.array(["fit"] * n, dtype=object)
    before = float(np.mean(topics == -1))
    if model is not None and before > 0:
        reduced = np.asarray(model.reduce_outliers(
            texts, topics.tolist(), strategy="embeddings", embeddings=embeddings,
            threshold=settings.outlier_threshold,
        ), dtype=int)
        if (reduced == -1).all():  # nothing above the threshold: keep HDBSCAN's result
            reduced = topics
        assigned_by[(topics == -1) & (reduced != -1)] = "outlier_reduction"
        topics = reduced
        _quiet_libraries()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.update_topics(texts, topics=topics.tolist(), top_n_words=settings.top_n_words,
                                vectorizer_model=_vectorizer(n))
        # topic embeddings follow the new assignments, so later transforms agree with them
        centroids = []
        for topic in sorted(set(topics.tolist())):
            centroids.append(embeddings[topics == topic].mean(axis=0))
        if sorted(set(topics.tolist())) == sorted(model.topic_representations_):
            model.topic_embeddings_ = np.vstack(centroids)
    after = float(np.mean(topics == -1))
    notes.append(
        f"{method}: {len(set(topics.tolist()) - {-1})} topics from {n} chunks; outliers "
        f"{before:.1%} before reduction, {after:.1%} after (threshold {settings.outlier_threshold})"
    )
    model_id = hashlib.sha256(
        (json.dumps(settings.model_dict(), sort_keys=True) + "\0".join(chunks["chunk_id"])).encode()
    ).hexdigest()[:12]
    words = _topic_words(model, topics, settings.top_n_words)
    outputs = _outputs(chunks, topics, assigned_by, embeddings, words, settings, model_id, model, notes)
    _save_model(model, embedder, chunks, topics, assigned_by, settings, model_dir, method, model_id, notes)
    return outputs


def _topic_words(model, topics: np.ndarray, top_n: int) -> dict[int, list[tuple[str, float]]]:
    if model is None:
        return {int(t): [] for t in set(topics.tolist())}
    words = {}
    for topic in sorted(set(topics.tolist())):
        pairs = model.get_topic(topic) or []
        words[int(topic)] = [(str(w), float(s)) for w, s in pairs[:top_n] if w]
    return words


def topic_name(topic: int, words: list[tuple[str, float]], n_words: int = 4) -> str:
    """A readable name: the top words, skipping words already inside a chosen phrase."""
    if topic == -1:
        return "Outliers (no clear topic)"
    chosen: list[str] = []
    for word, _ in words:
        parts = set(word.split())
        if any(parts <= set(c.split()) or set(c.split()) <= parts for c in chosen):
            if len(word.split()) > 1:  # prefer the phrase over its single word
                chosen = [c for c in chosen if not set(c.split()) <= parts]
                chosen.append(word)
            continue
        chosen.append(word)
        if len(chosen) == n_words:
            break
    return ", ".join(chosen[:n_words]) if chosen else f"Topic {topic}"


def _outputs(chunks, topics, assigned_by, embeddings, words, settings, model_id, model, notes):
    names = {t: topic_name(t, w) for t, w in words.items()}
    similarity = np.full(len(topics), np.nan)
    representatives: dict[int, list[int]] = {}
    for topic in sorted(set(topics.tolist())):
        members = np.flatnonzero(topics == topic)
        centroid = embeddings[members].mean(axis=0)
        norm = np.linalg.norm(centroid)
        sims = embeddings[members] @ (centroid / norm if norm else centroid)
        similarity[members] = sims
        order = np.lexsort((members, -sims))  # most similar first, ties by position
        representatives[topic] = members[order[: settings.n_representative]].tolist()
    topic_rows = []
    for topic in sorted(set(topics.tolist()), key=lambda t: (t == -1, t)):
        reps = representatives[topic]
        topic_rows.append({
            "topic": topic,
            "name": names.get(topic, f"Topic {topic}"),
            "size": int(np.sum(topics == topic)),
            "share": round(float(np.mean(topics == topic)), 6),
            "top_words": "; ".join(f"{w} ({s:.4f})" for w, s in words.get(topic, [])),
            "representative_chunk_ids": "; ".join(chunks["chunk_id"].iloc[reps]),
            "representative_texts": "\n\n".join(chunks["text"].iloc[reps]),
            "model_id": model_id,
            "textmine_version": __version__,
        })
    doc_topics = chunks[["chunk_id", "doc_id", "path", "page", "paragraph_index", "start_char",
                         "end_char", "published"]].copy()
    by = settings.by
    doc_topics["period"] = [period_label(p, by) or "" for p in doc_topics["published"]]
    doc_topics["topic"] = topics
    doc_topics["topic_name"] = [names.get(t, "") for t in topics]
    doc_topics["similarity"] = np.round(similarity, 6)
    doc_topics["assigned_by"] = assigned_by
    doc_topics["model_id"] = model_id
    doc_topics["textmine_version"] = __version__
    over_time = topics_over_time_table(chunks, topics, names, settings, model, notes)
    return TopicOutputs(pd.DataFrame(topic_rows, columns=TOPIC_COLUMNS), doc_topics[DOC_TOPIC_COLUMNS],
                        over_time, notes)


def topics_over_time_table(chunks, topics, names, settings, model, notes) -> pd.DataFrame:
    """Chunks per topic and period, with each topic's share of the period's chunks.

    Periods are years or quarters of `published` (`settings.by`), or `nr_bins`
    equal-width bins over the dates. `words` lists the topic's own top words
    ordered by how often its chunks of that period use them (five at most).
    """
    starts = [period_start(p, settings.by) for p in chunks["published"]]
    known = np.array([s is not None for s in starts])
    if not known.all():
        what = "a month" if settings.by == "quarter" else "a year"
        notes.append(f"{int((~known).sum())} chunks have no date with {what} and are left out of topics over time")
    if not known.any():
        return _empty(TOPICS_OVER_TIME_COLUMNS)
    frame = pd.DataFrame({
        "topic": topics[known],
        "start": pd.to_datetime([s for s in starts if s is not None]),
        "text": chunks["text"].to_numpy()[known],
    })
    if settings.nr_bins:
        # equal-width bins over the dates; a bin is named by the day it starts
        ns = frame["start"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        edges = np.linspace(ns.min(), ns.max(), settings.nr_bins + 1)
        index = np.clip(np.searchsorted(edges, ns, side="right") - 1, 0, settings.nr_bins - 1)
        frame["start"] = pd.to_datetime(edges[index].astype(np.int64)).normalize()
        frame["period"] = frame["start"].dt.strftime("%Y-%m-%d")
    else:
        frame["period"] = [period_label(s.strftime("%Y-%m-%d"), settings.by) for s in frame["start"]]
    words = _period_words(frame, model, settings.top_n_words)
    counts = frame.groupby(["topic", "period", "start"]).size().rename("n_chunks").reset_index()
    totals = frame.groupby("period").size()
    counts["period_chunks"] = counts["period"].map(totals).astype(int)
    counts["share_of_period"] = (counts["n_chunks"] / counts["period_chunks"]).round(6)
    counts["name"] = counts["topic"].map(names).fillna("")
    counts["period_start"] = counts["start"].dt.strftime("%Y-%m-%d")
    counts["words"] = [words.get((t, p), "") for t, p in zip(counts["topic"], counts["period"], strict=True)]
    counts = counts.sort_values(["start", "topic"], kind="stable").reset_index(drop=True)
    return counts[TOPICS_OVER_TIME_COLUMNS]


def _period_words(frame: pd.DataFrame, model, top_n: int) -> dict[tuple[int, str], str]:
    """{(topic, period): its top words most used in that period}, one pass over the texts.

    A cheap stand-in for BERTopic's `topics_over_time`, which recomputes c-TF-IDF
    per period (12 s of a 20,000-chunk fit); here only the topics' own top words
    are counted.
    """
    if model is None:
        return {}
    from sklearn.feature_extraction.text import CountVectorizer

    topic_words = {t: [w for w, _ in (model.get_topic(t) or [])[:top_n] if w]
                   for t in sorted(set(frame["topic"].tolist()))}
    vocabulary = sorted({w for words in topic_words.values() for w in words})
    if not vocabulary:
        return {}
    counter = CountVectorizer(vocabulary=vocabulary, ngram_range=(1, 2), token_pattern=_token_pattern(),
                              lowercase=True)
    counts = counter.transform(frame["text"].tolist()).tocsr()
    index = {w: i for i, w in enumerate(vocabulary)}
    result: dict[tuple[int, str], str] = {}
    keys = frame[["topic", "period"]].to_numpy()
    groups = pd.DataFrame({"topic": keys[:, 0], "period": keys[:, 1]}).groupby(["topic", "period"]).indices
    for (topic, period), rows in groups.items():
        words = topic_words.get(topic, [])
        if not words:
            continue
        totals = np.asarray(counts[rows][:, [index[w] for w in words]].sum(axis=0)).ravel()
        order = sorted(range(len(words)), key=lambda i: (-totals[i], i))
        result[(int(topic), str(period))] = ", ".join(words[i] for i in order[:5] if totals[i] > 0)
    return result


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)


# saving and assigning -------------------------------------------------------------


def _save_model(model, embedder, chunks, topics, assigned_by, settings, model_dir, method, model_id, notes):
    if model is None:
        return
    tmp = Path(tempfile.mkdtemp(prefix=".topic_model.", dir=model_dir))
    _quiet_libraries()  # BERTopic warns that the embedding model is saved elsewhere: it is
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(tmp / "bertopic", serialization="safetensors", save_ctfidf=True,
                       save_embedding_model=getattr(embedder, "name", False))
        embedder.save(tmp / "embedding")
        write_json_atomic(tmp / "settings.json", settings.model_dict())
        write_json_atomic(tmp / "fitted.json", {
            "model_id": model_id, "method": method, "n_chunks": len(chunks),
            "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "textmine_version": __version__, "notes": notes,
        })
        write_csv_atomic(tmp / "assignments.csv", pd.DataFrame({
            "chunk_id": chunks["chunk_id"], "topic": topics, "assigned_by": assigned_by,
        }))
        for name in ("bertopic", "embedding", *REPORT_FILES):
            _replace_dir(tmp / name, model_dir / name) if (tmp / name).is_dir() else os.replace(
                tmp / name, model_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _assign_with_saved_model(chunks, settings, model_dir, notes) -> TopicOutputs:
    from bertopic import BERTopic

    try:
        saved_settings = json.loads((model_dir / "settings.json").read_text(encoding="utf-8"))
        fitted = json.loads((model_dir / "fitted.json").read_text(encoding="utf-8"))
        saved = pd.read_csv(model_dir / "assignments.csv", dtype={"chunk_id": str})
    except (OSError, ValueError) as exc:
        raise TopicModelError(str(exc)) from exc
    changed = sorted(k for k, v in settings.model_dict().items() if saved_settings.get(k) != v)
    if changed:
        notes.append(
            "the saved model was fitted with other settings (" + ", ".join(changed)
            + "); kept it — use --refit to fit again with the new settings"
        )
    embedder = load_embedder(model_dir / "embedding")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = BERTopic.load(str(model_dir / "bertopic"), embedding_model=embedder.as_backend())
        except Exception as exc:  # noqa: BLE001  (damaged files surface as many error types)
            raise TopicModelError(f"cannot load {model_dir / 'bertopic'}: {exc}") from exc
    known = dict(zip(saved["chunk_id"], zip(saved["topic"].astype(int), saved["assigned_by"], strict=True), strict=True))
    texts = chunks["text"].tolist()
    embeddings = embedder.transform(texts)
    topics = np.zeros(len(chunks), dtype=int)
    assigned_by = np.empty(len(chunks), dtype=object)
    new = []
    for i, chunk_id in enumerate(chunks["chunk_id"]):
        if chunk_id in known:
            topics[i], assigned_by[i] = known[chunk_id]
        else:
            new.append(i)
    if new:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predicted, _ = model.transform([texts[i] for i in new], embeddings=embeddings[new])
        topics[new] = np.asarray(predicted, dtype=int)
        assigned_by[new] = "transform"
    notes.append(
        f"used the saved topic model {fitted.get('model_id')} (fitted {fitted.get('fitted_at')} "
        f"on {fitted.get('n_chunks')} chunks): {len(new)} new chunks assigned to its "
        f"{len(set(saved['topic'].tolist()) - {-1})} topics without refitting"
    )
    words = _topic_words(model, topics, settings.top_n_words)
    outputs = _outputs(chunks, topics, assigned_by, embeddings, words, settings,
                       fitted.get("model_id", ""), model, notes)
    outputs.refitted = False
    if new:
        merged = pd.concat([saved, pd.DataFrame({
            "chunk_id": chunks["chunk_id"].iloc[new].to_numpy(), "topic": topics[new],
            "assigned_by": "transform"})], ignore_index=True)
        write_csv_atomic(model_dir / "assignments.csv", merged)
    return outputs


# stage -------------------------------------------------------------------------


def topics_stage(
    coded_sentences: pd.DataFrame,
    documents: pd.DataFrame,
    out_dir: str | os.PathLike,
    settings: TopicSettings | None = None,
    refit: bool = False,
    codebook=None,
) -> tuple[TopicOutputs, list[Path]]:
    """Run topics and write topics.csv, doc_topics.csv, topics_over_time.csv and the figure.

    The model lives in `<out_dir>/topic_model`, figures in `<out_dir>/figures`.
    Returns the outputs and the files written.
    """
    from textmine.figures import write_figures

    settings = settings or TopicSettings()
    out = Path(out_dir)
    outputs = run_topics(coded_sentences, documents, settings, out / "topic_model",
                         refit=refit, codebook=codebook)
    written = outputs.write(out)
    written += write_figures({}, outputs, out / "figures", by=settings.by)
    return outputs, written
