"""Topic files on disk: the saved model, the embedding cache and the three topic tables.

A saved model is a folder: `bertopic/` (BERTopic's safetensors format),
`embedding/` (the embedding model, saved by itself), `settings.json`,
`fitted.json` and `assignments.csv` (chunk_id -> topic). Folders are written
to a temporary sibling and swapped into place, so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from textmine import __version__
from textmine.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from textmine.topics.settings import TopicModelError, TopicSettings, quiet_libraries

REPORT_FILES = ("settings.json", "assignments.csv", "fitted.json")
TOPIC_TABLE_FILES = ("topics.csv", "doc_topics.csv", "topics_over_time.csv")


def replace_dir(new: Path, target: Path) -> None:
    """Swap a fully written directory into place (the old one is removed after)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_topic_tables(outputs, out_dir: str | os.PathLike) -> list[Path]:
    """Write a TopicOutputs' topics.csv, doc_topics.csv and topics_over_time.csv atomically.

    Returns the paths written, in that order.
    """
    out = Path(out_dir)
    paths = [out / name for name in TOPIC_TABLE_FILES]
    frames = (outputs.topics, outputs.doc_topics, outputs.topics_over_time)
    for path, frame in zip(paths, frames, strict=True):
        write_csv_atomic(path, frame)
    return paths


# embedding cache -------------------------------------------------------------------


def read_cached_embeddings(cache_dir: Path, key: str) -> np.ndarray | None:
    """The cached embeddings when the cache holds `key`, else None (also when unreadable)."""
    if not (cache_dir / "key.txt").is_file():
        return None
    with contextlib.suppress(OSError, ValueError):
        if (cache_dir / "key.txt").read_text().strip() == key:
            return np.load(cache_dir / "embeddings.npy", allow_pickle=False)
    return None


def write_embedding_cache(cache_dir: Path, embedder, embeddings: np.ndarray, key: str) -> None:
    """Replace the cache with the embedding model, its embeddings and their key."""
    tmp = Path(tempfile.mkdtemp(prefix=".embeddings.", dir=cache_dir.parent))
    try:
        embedder.save(tmp)
        np.save(tmp / "embeddings.npy", embeddings, allow_pickle=False)
        write_text_atomic(tmp / "key.txt", key + "\n")
        replace_dir(tmp, cache_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# saved model -----------------------------------------------------------------------


def save_model(
    model,
    embedder,
    chunks: pd.DataFrame,
    topics: np.ndarray,
    assigned_by: np.ndarray,
    settings: TopicSettings,
    model_dir: Path,
    method: str,
    model_id: str,
    notes: list[str],
) -> None:
    """Save a fitted BERTopic model, its embedding model and the chunks' topics to `model_dir`.

    Nothing is saved when `model` is None (a single chunk needs no model).
    """
    if model is None:
        return
    tmp = Path(tempfile.mkdtemp(prefix=".topic_model.", dir=model_dir))
    quiet_libraries()  # BERTopic warns that the embedding model is saved elsewhere: it is
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(
                tmp / "bertopic",
                serialization="safetensors",
                save_ctfidf=True,
                save_embedding_model=getattr(embedder, "name", False),
            )
        embedder.save(tmp / "embedding")
        write_json_atomic(tmp / "settings.json", settings.model_dict())
        write_json_atomic(
            tmp / "fitted.json",
            {
                "model_id": model_id,
                "method": method,
                "n_chunks": len(chunks),
                "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "textmine_version": __version__,
                "notes": notes,
            },
        )
        write_csv_atomic(
            tmp / "assignments.csv",
            pd.DataFrame(
                {
                    "chunk_id": chunks["chunk_id"],
                    "topic": topics,
                    "assigned_by": assigned_by,
                }
            ),
        )
        for name in ("bertopic", "embedding", *REPORT_FILES):
            replace_dir(tmp / name, model_dir / name) if (tmp / name).is_dir() else os.replace(
                tmp / name, model_dir / name
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def has_saved_model(model_dir: Path) -> bool:
    """True when `model_dir` holds a saved BERTopic model and its settings."""
    return (model_dir / "bertopic").is_dir() and (model_dir / "settings.json").is_file()


def read_model_records(model_dir: Path) -> tuple[dict, dict, pd.DataFrame]:
    """(settings, fitted, assignments) of a saved model; TopicModelError when unreadable."""
    try:
        saved_settings = json.loads((model_dir / "settings.json").read_text(encoding="utf-8"))
        fitted = json.loads((model_dir / "fitted.json").read_text(encoding="utf-8"))
        saved = pd.read_csv(model_dir / "assignments.csv", dtype={"chunk_id": str})
    except (OSError, ValueError) as exc:
        raise TopicModelError(str(exc)) from exc
    return saved_settings, fitted, saved


def load_bertopic(model_dir: Path, embedding_backend):
    """The saved BERTopic model, using `embedding_backend` to embed new texts."""
    from bertopic import BERTopic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return BERTopic.load(str(model_dir / "bertopic"), embedding_model=embedding_backend)
        except Exception as exc:  # damaged files surface as many error types
            raise TopicModelError(f"cannot load {model_dir / 'bertopic'}: {exc}") from exc


def write_assignments(model_dir: Path, assignments: pd.DataFrame) -> None:
    """Replace the saved model's assignments.csv (chunk_id, topic, assigned_by)."""
    write_csv_atomic(model_dir / "assignments.csv", assignments)
