"""Load the topic libraries and compile their numba code while other stages run.

On a fresh install, importing UMAP compiles pynndescent's numba functions
(~15 s) and the first UMAP fit compiles UMAP's (~5 s); later processes load
both from numba's disk cache (~2 s). `start_warm_up` does that work in a
background thread (started while documents are read by worker processes), so
the topic stage finds the libraries imported and compiled. The warm-up fit
uses its own seeded generators (UMAP's and numba's streams are per object and
per thread), and `run_topics` seeds every generator itself before fitting.
"""

from __future__ import annotations

import threading
import time

import numpy as np


class TopicWarmUp:
    """A background thread importing BERTopic, UMAP, HDBSCAN and compiling UMAP's numba code."""

    def __init__(self) -> None:
        """An unstarted warm-up; `start` runs it."""
        self._thread = threading.Thread(
            target=self._run, name="textmine-topics-warm-up", daemon=True
        )
        self.seconds: float | None = None
        self.error: BaseException | None = None

    def start(self) -> TopicWarmUp:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the warm-up is still working."""
        return self._thread.is_alive()

    def wait(self) -> None:
        """Block until the warm-up is done (an error in it is kept in `error`, not raised)."""
        if self._thread.ident is not None:
            self._thread.join()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            warm_up_topic_libraries()
        except Exception as exc:  # the topic stage imports and compiles again itself
            self.error = exc
        self.seconds = time.perf_counter() - started


def start_warm_up() -> TopicWarmUp:
    """Start warming the topic libraries up in a background thread."""
    return TopicWarmUp().start()


def warm_up_topic_libraries() -> None:
    """Import the modelling libraries and run a tiny UMAP fit (compiles or loads numba code).

    The fit has the dtypes and settings of a real one (float32 embeddings,
    precomputed k-NN, Euclidean, PCA init), so the same compiled functions
    are used later.
    """
    from textmine.topics.fit import _numba_seeder, enable_umap_disk_cache, import_model_libraries
    from textmine.topics.neighbours import exact_neighbours
    from textmine.topics.settings import quiet_libraries

    import_model_libraries()
    quiet_libraries()
    enable_umap_disk_cache()
    _numba_seeder()(0)  # numba's generator is per thread: this seeds the warm-up thread's only
    from umap import UMAP

    data = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    knn = exact_neighbours(data, 10)
    UMAP(
        n_neighbors=10,
        n_components=5,
        min_dist=0.0,
        metric="euclidean",
        init="pca",
        random_state=0,
        precomputed_knn=(knn[0], knn[1], None),
        low_memory=True,
        n_jobs=1,
        n_epochs=10,
    ).fit_transform(data)
