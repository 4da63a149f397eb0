"""k nearest neighbours of the chunk embeddings, the graph UMAP is built on.

Below `TopicSettings.approximate_neighbours_from` chunks the search is exact
(brute force, as before, so small corpora keep their topics). From there on it
is approximate: an inverted-file index in NumPy (k-means cells; every cell's
chunks are compared exactly with the chunks of the `probe` cells nearest to
it). No JIT compilation (pynndescent's NN-descent compiles for ~30 s in every
new process), seeded k-means, one BLAS thread and stable sorts: the same
embeddings and settings give the same graph in any process.
"""

from __future__ import annotations

import math

import numpy as np

# Distances are computed in blocks of at most this many entries (float32: 32 MB).
BLOCK_ENTRIES = 8_000_000


def exact_neighbours(embeddings: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32, distances float32), each (n, n_neighbors): exact, by brute force.

    On L2-normalised vectors Euclidean order equals cosine order.
    """
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute", metric="euclidean")
    distances, indices = index.fit(embeddings).kneighbors(embeddings)
    return indices.astype(np.int32), distances.astype(np.float32)


def approximate_neighbours(
    embeddings: np.ndarray, n_neighbors: int, *, random_state: int, probe: int = 16,
    cells: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32, distances float32), each (n, n_neighbors): an inverted-file search.

    Chunks are split into about sqrt(n) k-means cells (k-means fitted on a
    seeded sample of at most 20,000 chunks); each cell's chunks are compared
    exactly with every chunk of the `probe` cells whose centres are nearest to
    the cell's centre (the cell itself first). Each row starts with the chunk
    itself (distance 0), as in the exact search. Time grows with
    n * probe * n / cells, i.e. n^1.5, instead of n^2.
    """
    from sklearn.cluster import KMeans

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = x.shape[0]
    k = min(n_neighbors, n)
    n_cells = max(1, min(cells or round(math.sqrt(n)), n))
    rng = np.random.default_rng(random_state)
    sample = x if n <= 20_000 else x[np.sort(rng.choice(n, 20_000, replace=False))]
    kmeans = KMeans(n_clusters=min(n_cells, len(sample)), init="random", n_init=1, max_iter=10,
                    random_state=random_state).fit(sample)
    centres = kmeans.cluster_centers_.astype(np.float32)
    cell_of = _nearest_centre(x, centres)
    members = [np.flatnonzero(cell_of == c) for c in range(len(centres))]
    probe = max(1, min(probe, len(centres)))
    centre_order = _nearest_centres_of_centres(centres, probe)
    squared = np.einsum("ij,ij->i", x, x)
    indices = np.empty((n, k), dtype=np.int32)
    distances = np.empty((n, k), dtype=np.float32)
    for cell, queries in enumerate(members):
        if len(queries) == 0:
            continue
        candidates = np.concatenate([members[c] for c in centre_order[cell]])
        if len(candidates) < k:  # tiny cells: widen to every chunk
            candidates = np.arange(n)
        rows = max(1, BLOCK_ENTRIES // len(candidates))
        for start in range(0, len(queries), rows):
            block = queries[start:start + rows]
            found, dist = _block_neighbours(x, squared, block, candidates, k)
            indices[block], distances[block] = found, dist
    return indices, distances


def _nearest_centre(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every row (in blocks, bounded memory)."""
    centre_sq = np.einsum("ij,ij->i", centres, centres)
    out = np.empty(x.shape[0], dtype=np.int64)
    rows = max(1, BLOCK_ENTRIES // max(1, len(centres)))
    for start in range(0, x.shape[0], rows):
        scores = x[start:start + rows] @ centres.T
        scores *= -2.0
        scores += centre_sq[None, :]
        out[start:start + rows] = np.argmin(scores, axis=1)
    return out


def _nearest_centres_of_centres(centres: np.ndarray, probe: int) -> np.ndarray:
    """For every centre, the `probe` nearest centres (itself first), ties broken by index."""
    sq = np.einsum("ij,ij->i", centres, centres)
    d = sq[:, None] + sq[None, :] - 2.0 * (centres @ centres.T)
    np.fill_diagonal(d, -np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :probe]


def _block_neighbours(x: np.ndarray, squared: np.ndarray, queries: np.ndarray,
                      candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest candidates of each query row: exact within the candidates."""
    d = x[queries] @ x[candidates].T
    d *= -2.0
    d += squared[queries][:, None]
    d += squared[candidates][None, :]
    np.maximum(d, 0.0, out=d)
    # the query itself is always nearest (rounding can leave it a hair above another chunk)
    is_self = candidates[None, :] == queries[:, None]
    d[is_self] = -1.0
    if d.shape[1] > k:
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(d.shape[1]), (d.shape[0], d.shape[1])).copy()
    chosen = np.take_along_axis(d, part, axis=1)
    # order by distance, then by chunk index (deterministic ties)
    ids = candidates[part]
    order = np.lexsort((ids, chosen), axis=1)
    ids = np.take_along_axis(ids, order, axis=1)
    chosen = np.take_along_axis(chosen, order, axis=1)
    np.maximum(chosen, 0.0, out=chosen)
    return ids.astype(np.int32), np.sqrt(chosen).astype(np.float32)
