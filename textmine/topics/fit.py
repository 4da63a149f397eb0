"""Fitting topics: BERTopic on the chunk embeddings, or assigning new chunks to a saved model.

`run_topics` is the entry point: chunks -> embeddings -> BERTopic (exact
k-nearest neighbours -> UMAP -> HDBSCAN, or PCA -> KMeans for small corpora)
-> outlier reduction -> topic tables, with the model saved for later runs.
One BLAS thread and seeded generators keep a fit reproducible.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import math
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from textmine.codebook import Codebook, load_codebook
from textmine.topics.chunks import build_chunks
from textmine.topics.embed import embed_chunks, load_embedder, stop_words, token_pattern
from textmine.topics.neighbours import approximate_neighbours, exact_neighbours
from textmine.topics.persist import (
    has_saved_model,
    load_bertopic,
    read_model_records,
    save_model,
    write_assignments,
)
from textmine.topics.settings import TopicModelError, TopicSettings, quiet_libraries
from textmine.topics.tables import (
    DOC_TOPIC_COLUMNS,
    TOPIC_COLUMNS,
    TOPICS_OVER_TIME_COLUMNS,
    TopicOutputs,
    empty_table,
    topic_tables,
    topic_words,
)


def seed_topics_from_codebook(codebook: Codebook) -> list[list[str]]:
    """One seed list per code: its phrases, then its single-word pattern values, lower-cased.

    Regular expressions and multi-token patterns other than phrases are skipped;
    each list keeps at most 20 entries, in codebook order.
    """
    seeds: list[list[str]] = []
    for code in codebook.codes.values():
        words: list[str] = [
            str(p.phrase).lower() for p in code.patterns if getattr(p, "phrase", None)
        ]
        for pattern in code.patterns:
            tokens: tuple[dict, ...] = getattr(pattern, "tokens", None) or ()
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


def enable_umap_disk_cache() -> None:
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
            if isinstance(obj, CPUDispatcher) and type(obj._cache).__name__ == "NullCache":  # type: ignore[attr-defined]
                with contextlib.suppress(Exception):
                    obj.enable_caching()


def _precomputed_knn(
    embeddings: np.ndarray, n_neighbors: int, settings: TopicSettings, notes: list[str]
):
    """The k-NN graph UMAP is built on: exact below `approximate_neighbours_from` chunks, else IVF.

    Replaces UMAP's NN-descent, whose numba compilation (~20 s, not cacheable)
    dominated fit time. On L2-normalised vectors Euclidean order equals cosine order.
    """
    n = embeddings.shape[0]
    if n < settings.approximate_neighbours_from:
        return exact_neighbours(embeddings, n_neighbors)
    notes.append(
        f"approximate nearest neighbours ({n} chunks, at least {settings.approximate_neighbours_from})"
    )
    return approximate_neighbours(embeddings, n_neighbors, random_state=settings.random_state)


def umap_epochs(n: int, settings: TopicSettings) -> int:
    """UMAP's epochs for `n` chunks: the setting, else 200 up to 10,000, 100 below 20,000, then 50.

    Fewer epochs cost coherence below 10,000 chunks; on 40,000 and 100,000
    chunks 50 epochs gave the NPMI and diversity of 100 within the spread of
    seeds and saved ~20 % of the fit (README, Topics).
    """
    if settings.umap_epochs:
        return settings.umap_epochs
    if n <= 10_000:
        return 200
    return 100 if n < 20_000 else 50


def _auto_kmeans_topics(n: int) -> int:
    return int(max(2, min(10, round(math.sqrt(n / 2)))))


def _build_models(
    n: int,
    settings: TopicSettings,
    embeddings: np.ndarray,
    notes: list[str],
    force_fallback: bool = False,
    say: Callable[[str], None] = lambda text: None,
):
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

    enable_umap_disk_cache()
    n_neighbors = max(2, min(settings.n_neighbors, n - 1))
    approximate = n >= settings.approximate_neighbours_from
    say(f"{'approximate' if approximate else 'exact'} nearest neighbours of {n:,} chunks")
    knn = _precomputed_knn(embeddings, n_neighbors, settings, notes)
    min_size = settings.min_topic_size or max(10, round(n / 500))
    reducer = UMAP(
        n_neighbors=n_neighbors,
        n_components=settings.umap_components,
        min_dist=0.0,
        metric="euclidean",
        init="pca",
        random_state=settings.random_state,
        precomputed_knn=(knn[0], knn[1], None),
        low_memory=True,
        n_jobs=1,
        n_epochs=umap_epochs(n, settings),
    )
    clusterer = HDBSCAN(
        min_cluster_size=min_size,
        min_samples=max(1, min(min_size, 10)),
        metric="euclidean",
        cluster_selection_method="eom",
        prediction_data=False,
        core_dist_n_jobs=1,
    )
    nr_topics = settings.n_topics if isinstance(settings.n_topics, int) else None
    return reducer, clusterer, nr_topics, "umap+hdbscan"


def _vectorizer(n: int):
    """BERTopic's vectorizer of topic words (scikit-learn's, with faster equal counting)."""
    from textmine.topics.counting import FastCountVectorizer

    return FastCountVectorizer(
        stop_words=stop_words(),
        token_pattern=token_pattern(),
        ngram_range=(1, 2),
        min_df=2 if n >= 50 else 1,
    )


def _fit_bertopic(
    texts, embeddings, embedder, settings, notes, seeds, force_fallback=False, say=lambda text: None
):
    from bertopic import BERTopic
    from bertopic.vectorizers import ClassTfidfTransformer

    n = len(texts)
    reducer, clusterer, nr_topics, method = _build_models(
        n, settings, embeddings, notes, force_fallback, say=say
    )
    say(
        f"reducing {n:,} chunks ({'UMAP' if method == 'umap+hdbscan' else 'PCA'}), clustering "
        f"({'HDBSCAN' if method == 'umap+hdbscan' else 'KMeans'}), topic words"
    )
    model = BERTopic(
        embedding_model=embedder.as_backend(),
        umap_model=reducer,
        hdbscan_model=clusterer,
        vectorizer_model=_vectorizer(n),
        ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
        nr_topics=nr_topics,
        top_n_words=settings.top_n_words,
        seed_topic_list=seeds,
        calculate_probabilities=False,
        verbose=False,
    )
    quiet_libraries()  # BERTopic(verbose=False) resets its logger to WARNING
    # textmine picks representative chunks itself (closest to the topic's mean
    # embedding); BERTopic's own pass re-vectorises up to 500 chunks per topic.
    if hasattr(model, "_save_representative_docs"):
        model._save_representative_docs = lambda documents: None
    if hasattr(model, "_extract_topics") and hasattr(model, "_create_topic_vectors"):
        model._extract_topics = _topic_vectors_only_with_outliers(model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            topics, _ = model.fit_transform(texts, embeddings=embeddings.copy())
    finally:
        vars(model).pop("_extract_topics", None)
    return model, np.asarray(topics, dtype=int), method


def _topic_vectors_only_with_outliers(model) -> Callable:
    """BERTopic's `_extract_topics` for the fit in `_fit_bertopic`, without topic words when there are outliers.

    With outlier chunks (and no topic reduction, which reads the topic words),
    `_fit_and_save` reduces the outliers and `update_topics` recomputes the topic
    words from scratch: a new vectorizer and c-TF-IDF model, the c-TF-IDF matrix
    and the topic representations. The fit's own would never be read, so only
    the topic embeddings (the chunks' mean, which outlier reduction reads) are
    made. Without outliers the fit extracts its topics as always.
    """
    extract_topics = model._extract_topics
    signature = inspect.signature(extract_topics)

    def extract(*args, **kwargs):
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        documents = call.arguments["documents"]
        if model.nr_topics or not (documents["Topic"] == -1).any():
            return extract_topics(*args, **kwargs)
        model._create_topic_vectors(
            documents=documents,
            embeddings=call.arguments["embeddings"],
            mappings=call.arguments["mappings"],
        )
        return None

    return extract


def run_topics(
    coded_sentences: pd.DataFrame,
    documents: pd.DataFrame,
    settings: TopicSettings | None = None,
    model_dir: str | os.PathLike = "outputs/topic_model",
    refit: bool = False,
    codebook: Codebook | None = None,
    status: Callable[[str], None] | None = None,
) -> TopicOutputs:
    """Topics of the corpus's paragraph chunks, and topics over time.

    With a saved model in `model_dir` and `refit` False, chunks seen before keep
    their topic and new chunks are assigned to the saved topics (no refitting).
    Otherwise BERTopic is fitted and saved (safetensors) to `model_dir`.
    `status`, when given, is called with a short line saying what is being done.
    """
    settings = settings or TopicSettings()
    say = status or (lambda text: None)
    model_dir = Path(model_dir)
    say("building paragraph chunks")
    chunks = build_chunks(coded_sentences, documents, min_words=settings.min_chunk_words)
    notes: list[str] = []
    if chunks.empty:
        notes.append("no text to model: the processed corpus has no coded sentences")
        return TopicOutputs(
            empty_table(TOPIC_COLUMNS),
            empty_table(DOC_TOPIC_COLUMNS),
            empty_table(TOPICS_OVER_TIME_COLUMNS),
            notes,
            refitted=False,
        )
    quiet_libraries()
    # One BLAS thread: floating-point sums then do not depend on the machine's
    # thread count (or on OMP/OPENBLAS_NUM_THREADS set by e.g. Dask), so the
    # same corpus and settings give the same topics everywhere.
    say("loading the topic libraries (compiling numba code on a first run)")
    import_model_libraries()  # load every BLAS/OpenMP library first, so the limit reaches it
    with threadpool_limits(limits=1):
        seed_random_generators(settings.random_state)
        if not refit and has_saved_model(model_dir):
            try:
                say(f"assigning {len(chunks):,} chunks to the saved model")
                return _assign_with_saved_model(chunks, settings, model_dir, notes)
            except TopicModelError as exc:
                notes.append(f"the saved topic model could not be used ({exc}); refitted")
        return _fit_and_save(chunks, settings, model_dir, codebook, notes, say)


def import_model_libraries() -> None:
    """Import the modelling libraries (and the BLAS/OpenMP runtimes they load).

    pynndescent (imported by UMAP) is imported first with its numba functions
    compiled when first called rather than at import (see `lazy_numba_signatures`).
    """
    if "pynndescent" not in sys.modules:
        with lazy_numba_signatures():
            import pynndescent  # noqa: F401
    import bertopic  # noqa: F401
    import hdbscan  # noqa: F401
    import scipy.sparse.linalg  # noqa: F401
    import sklearn.cluster
    import sklearn.decomposition  # noqa: F401
    import umap  # noqa: F401


@contextlib.contextmanager
def lazy_numba_signatures() -> Iterator[None]:
    """While the block runs, `numba.njit` / `numba.jit` ignore eager signatures.

    pynndescent declares signatures for ~140 functions, so importing it compiles
    them all (~12 s on a fresh install, before numba's disk cache has them),
    though UMAP on a precomputed neighbour graph calls few of them. Without the
    signatures each function is compiled (and cached) when first called, with
    the same code. The decorators are reset to numba's own when the block ends.
    """
    import numba
    from numba.core import decorators

    def lazy(decorator: Callable) -> Callable:
        def without_signature(*args, **kwargs):
            if args and not isinstance(args[0], types.FunctionType):
                args = args[1:]  # a signature or a list of them
            kwargs.pop("signature_or_function", None)
            return decorator(*args, **kwargs)

        return without_signature

    numba.njit, numba.jit = lazy(decorators.njit), lazy(decorators.jit)  # type: ignore[assignment]
    try:
        yield
    finally:
        numba.njit, numba.jit = decorators.njit, decorators.jit  # type: ignore[assignment]


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


def _fit_and_save(chunks, settings, model_dir, codebook, notes, say) -> TopicOutputs:
    texts = chunks["text"].tolist()
    n = len(texts)
    model_dir.mkdir(parents=True, exist_ok=True)
    say(f"embedding {n:,} chunks")
    embedder, embeddings, cached = embed_chunks(texts, settings, model_dir / "embeddings")
    if cached:
        notes.append("reused cached embeddings (same chunks and embedding settings)")
    seeds = None
    if settings.seed_topics_from_codebook:
        if codebook is None:
            codebook = load_codebook()
        seeds = seed_topics_from_codebook(codebook) or None
        notes.append(f"guided topics seeded with {len(seeds or [])} codebook code word lists")
    if n == 1:
        topics = np.zeros(1, dtype=int)
        notes.append("only one chunk: it is its own topic")
        model, method = None, "single"
    else:
        model, topics, method = _fit_bertopic(
            texts, embeddings, embedder, settings, notes, seeds, say=say
        )
        if method == "umap+hdbscan" and len(set(topics.tolist()) - {-1}) < 2:
            notes.append(
                f"UMAP + HDBSCAN found {len(set(topics.tolist()) - {-1})} topic(s) in {n} chunks; "
                "fell back to PCA + KMeans"
            )
            model, topics, method = _fit_bertopic(
                texts, embeddings, embedder, settings, notes, seeds, force_fallback=True, say=say
            )
    assigned_by = np.array(["fit"] * n, dtype=object)
    before = float(np.mean(topics == -1))
    if model is not None and before > 0:
        say(f"reassigning {int(before * n):,} outlier chunks and renaming topics")
        reduced = np.asarray(
            model.reduce_outliers(
                texts,
                topics.tolist(),
                strategy="embeddings",
                embeddings=embeddings,
                threshold=settings.outlier_threshold,
            ),
            dtype=int,
        )
        if (reduced == -1).all():  # nothing above the threshold: keep HDBSCAN's result
            reduced = topics
        assigned_by[(topics == -1) & (reduced != -1)] = "outlier_reduction"
        topics = reduced
        quiet_libraries()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.update_topics(
                texts,
                topics=topics.tolist(),
                top_n_words=settings.top_n_words,
                vectorizer_model=_vectorizer(n),
            )
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
    words = topic_words(model, topics, settings.top_n_words)
    say("topic tables and topics over time")
    outputs = topic_tables(
        chunks, topics, assigned_by, embeddings, words, settings, model_id, model, notes
    )
    say("saving the topic model")
    save_model(
        model, embedder, chunks, topics, assigned_by, settings, model_dir, method, model_id, notes
    )
    return outputs


def _assign_with_saved_model(chunks, settings, model_dir, notes) -> TopicOutputs:
    """Chunks seen before keep their topic; new chunks are assigned to the saved model's topics."""
    saved_settings, fitted, saved = read_model_records(model_dir)
    # a setting added after the model was saved counts as its default
    defaults = TopicSettings().model_dict()
    changed = sorted(
        k for k, v in settings.model_dict().items() if saved_settings.get(k, defaults[k]) != v
    )
    if changed:
        notes.append(
            "the saved model was fitted with other settings ("
            + ", ".join(changed)
            + "); kept it — use --refit to fit again with the new settings"
        )
    embedder = load_embedder(model_dir / "embedding")
    model = load_bertopic(model_dir, embedder.as_backend())
    known = dict(
        zip(
            saved["chunk_id"],
            zip(saved["topic"].astype(int), saved["assigned_by"], strict=True),
            strict=True,
        )
    )
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
    words = topic_words(model, topics, settings.top_n_words)
    outputs = topic_tables(
        chunks,
        topics,
        assigned_by,
        embeddings,
        words,
        settings,
        fitted.get("model_id", ""),
        model,
        notes,
    )
    outputs.refitted = False
    if new:
        merged = pd.concat(
            [
                saved,
                pd.DataFrame(
                    {
                        "chunk_id": chunks["chunk_id"].iloc[new].to_numpy(),
                        "topic": topics[new],
                        "assigned_by": "transform",
                    }
                ),
            ],
            ignore_index=True,
        )
        write_assignments(model_dir, merged)
    return outputs
