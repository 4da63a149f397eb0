"""k nearest neighbours of the chunk embeddings, the graph UMAP is built on.

Below `TopicSettings.approximate_neighbours_from` chunks the search is exact
(brute force, as before, so small corpora keep their topics). From there on it
is approximate: an inverted-file index in NumPy (k-means cells; every chunk is
compared exactly with the chunks of the `probe` cells nearest to it). On 20,000
real paragraphs it finds 95% of the exact neighbours in a third of the time;
at 100,000 chunks it takes ~14 s where the exact search takes minutes.

No JIT compilation: pynndescent's NN-descent finds about 92% but compiles for
~20 s in every new process (its main loop cannot be cached). Seeded k-means,
one BLAS thread and stable sorts: the same embeddings and settings give the
same graph in any process.
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
    embeddings: np.ndarray,
    n_neighbors: int,
    *,
    random_state: int,
    probe: int = 16,
    cells: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32, distances float32), each (n, n_neighbors): an inverted-file search.

    Chunks are split into about sqrt(n) k-means cells (k-means fitted on a
    seeded sample of at most 20,000 chunks); every chunk is compared exactly
    with the chunks of the `probe` cells whose centres are nearest to it. Each
    row starts with the chunk itself (distance 0), as in the exact search; ties
    are broken by chunk index. Time grows with n * probe * n / cells, i.e.
    n^1.5, instead of n^2.
    """
    from sklearn.cluster import KMeans

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = x.shape[0]
    k = min(n_neighbors, n)
    n_cells = max(1, min(cells or round(math.sqrt(n)), n))
    rng = np.random.default_rng(random_state)
    sample = x if n <= 20_000 else x[np.sort(rng.choice(n, 20_000, replace=False))]
    kmeans = KMeans(
        n_clusters=min(n_cells, len(sample)),
        init="random",
        n_init=1,
        max_iter=10,
        random_state=random_state,
    ).fit(sample)
    centres = kmeans.cluster_centers_.astype(np.float32)
    probe = max(1, min(probe, len(centres)))
    probes = _nearest_centres(x, centres, probe)  # (n, probe), the chunk's own cell first
    cell_of = probes[:, 0]
    squared = np.einsum("ij,ij->i", x, x)
    best_d = np.full((n, k), np.inf, dtype=np.float32)
    best_i = np.full((n, k), -1, dtype=np.int64)
    members_order = np.argsort(cell_of, kind="stable")
    member_bounds = np.searchsorted(cell_of[members_order], np.arange(len(centres) + 1))
    # nearest cells first, so that each chunk's k-th best distance soon prunes the rest
    for rank in range(probe):
        column = probes[:, rank]
        asking = np.argsort(column, kind="stable")
        bounds = np.searchsorted(column[asking], np.arange(len(centres) + 1))
        for cell in range(len(centres)):
            members = members_order[member_bounds[cell] : member_bounds[cell + 1]]
            queries = asking[bounds[cell] : bounds[cell + 1]]
            if len(members) == 0 or len(queries) == 0:
                continue
            rows = max(1, BLOCK_ENTRIES // len(members))
            for start in range(0, len(queries), rows):
                block = queries[start : start + rows]
                d = _squared_distances(x, squared, block, members)
                _merge(best_d, best_i, block, d, members, k)
    missing = np.flatnonzero((best_i < 0).any(axis=1))
    if len(missing):  # fewer than k chunks in the probed cells: compare with every chunk
        everything = np.arange(n)
        d = _squared_distances(x, squared, missing, everything)
        best_d[missing], best_i[missing] = np.inf, -1
        _merge(best_d, best_i, missing, d, everything, k)
    order = np.lexsort((best_i, best_d), axis=1)
    best_i = np.take_along_axis(best_i, order, axis=1)
    best_d = np.take_along_axis(best_d, order, axis=1)
    return best_i.astype(np.int32), np.sqrt(np.maximum(best_d, 0.0)).astype(np.float32)


def _nearest_centres(x: np.ndarray, centres: np.ndarray, probe: int) -> np.ndarray:
    """The `probe` nearest centres of every row, nearest first (ties by index), in blocks."""
    centre_sq = np.einsum("ij,ij->i", centres, centres)
    out = np.empty((x.shape[0], probe), dtype=np.int64)
    rows = max(1, BLOCK_ENTRIES // max(1, len(centres)))
    for start in range(0, x.shape[0], rows):
        scores = x[start : start + rows] @ centres.T
        scores *= -2.0
        scores += centre_sq[None, :]
        if probe < len(centres):
            part = np.argpartition(scores, probe - 1, axis=1)[:, :probe]
        else:
            part = np.broadcast_to(np.arange(len(centres)), scores.shape).copy()
        chosen = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, chosen), axis=1)
        out[start : start + rows] = np.take_along_axis(part, order, axis=1)
    return out


def _squared_distances(
    x: np.ndarray, squared: np.ndarray, queries: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """Squared Euclidean distances (queries x candidates); a chunk's distance to itself is -1."""
    d = x[queries] @ x[candidates].T
    d *= -2.0
    d += squared[queries][:, None]
    d += squared[candidates][None, :]
    np.maximum(d, 0.0, out=d)
    # the chunk itself always comes first (rounding can leave it a hair above a duplicate)
    d[candidates[None, :] == queries[:, None]] = -1.0
    return d


def _merge(
    best_d: np.ndarray,
    best_i: np.ndarray,
    queries: np.ndarray,
    d: np.ndarray,
    candidates: np.ndarray,
    k: int,
) -> None:
    """Keep, for each query row, the k nearest of its current best and the new candidates.

    Only candidates nearer than a row's current k-th best are looked at.
    """
    kth = best_d[queries].max(axis=1)
    rows, cols = np.nonzero(d < kth[:, None])
    if len(rows) == 0:
        return
    touched, first, count = np.unique(rows, return_index=True, return_counts=True)
    slot = np.arange(len(rows)) - np.repeat(first, count)
    which = np.repeat(np.arange(len(touched)), count)
    new_d = np.full((len(touched), int(count.max())), np.inf, dtype=best_d.dtype)
    new_i = np.full(new_d.shape, -1, dtype=best_i.dtype)
    new_d[which, slot] = d[rows, cols]
    new_i[which, slot] = candidates[cols]
    target = queries[touched]
    all_d = np.concatenate([best_d[target], new_d], axis=1)
    all_i = np.concatenate([best_i[target], new_i], axis=1)
    keep = np.argpartition(all_d, k - 1, axis=1)[:, :k]
    best_d[target] = np.take_along_axis(all_d, keep, axis=1)
    best_i[target] = np.take_along_axis(all_i, keep, axis=1)
