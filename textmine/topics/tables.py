"""Topic tables: topics, doc_topics (one row per chunk) and topics over time.

Pure functions from the chunks, their topics and embeddings (and the fitted
model's topic words) to DataFrames with the column lists below.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress, islice, repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from textmine import __version__
from textmine.periods import period_label, period_start
from textmine.topics.persist import write_topic_tables
from textmine.topics.settings import TopicSettings
from textmine.topics.tokens import PieceTokens, token_pattern


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
        return write_topic_tables(self, out_dir)


TOPIC_COLUMNS = [
    "topic",
    "name",
    "size",
    "share",
    "top_words",
    "representative_chunk_ids",
    "representative_texts",
    "model_id",
    "textmine_version",
]
DOC_TOPIC_COLUMNS = [
    "chunk_id",
    "doc_id",
    "path",
    "page",
    "paragraph_index",
    "start_char",
    "end_char",
    "published",
    "period",
    "topic",
    "topic_name",
    "similarity",
    "assigned_by",
    "model_id",
    "textmine_version",
]
TOPICS_OVER_TIME_COLUMNS = [
    "topic",
    "name",
    "period",
    "period_start",
    "n_chunks",
    "share_of_period",
    "period_chunks",
    "words",
]


def topic_words(model, topics: np.ndarray, top_n: int) -> dict[int, list[tuple[str, float]]]:
    """{topic: its top (word, weight) pairs} from a fitted BERTopic model (empty lists without one)."""
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


def topic_tables(
    chunks: pd.DataFrame,
    topics: np.ndarray,
    assigned_by: np.ndarray,
    embeddings: np.ndarray,
    words: dict[int, list[tuple[str, float]]],
    settings: TopicSettings,
    model_id: str,
    model,
    notes: list[str],
) -> TopicOutputs:
    """The three topic tables for chunks with their topics (notes about them go to `notes`).

    Each chunk's similarity is the cosine to its topic's mean embedding; a
    topic's representatives are its `n_representative` most similar chunks.
    """
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
        topic_rows.append(
            {
                "topic": topic,
                "name": names.get(topic, f"Topic {topic}"),
                "size": int(np.sum(topics == topic)),
                "share": round(float(np.mean(topics == topic)), 6),
                "top_words": "; ".join(f"{w} ({s:.4f})" for w, s in words.get(topic, [])),
                "representative_chunk_ids": "; ".join(chunks["chunk_id"].iloc[reps]),
                "representative_texts": "\n\n".join(chunks["text"].iloc[reps]),
                "model_id": model_id,
                "textmine_version": __version__,
            }
        )
    doc_topics = chunks[DOC_TOPIC_COLUMNS[: DOC_TOPIC_COLUMNS.index("published") + 1]].copy()
    by = settings.by
    doc_topics["period"] = _each(lambda p: period_label(p, by) or "", doc_topics["published"])
    doc_topics["topic"] = topics
    doc_topics["topic_name"] = [names.get(t, "") for t in topics]
    doc_topics["similarity"] = np.round(similarity, 6)
    doc_topics["assigned_by"] = assigned_by
    doc_topics["model_id"] = model_id
    doc_topics["textmine_version"] = __version__
    notes.extend(degenerate_notes(topics, names, settings.n_topics))
    over_time = topics_over_time_table(chunks, topics, names, settings, model, notes)
    return TopicOutputs(
        pd.DataFrame(topic_rows, columns=TOPIC_COLUMNS),
        doc_topics[DOC_TOPIC_COLUMNS],
        over_time,
        notes,
    )


# One topic holding more than this share of the paragraphs is a degenerate result.
DOMINANT_TOPIC_SHARE = 0.5


def degenerate_notes(topics: np.ndarray, names: dict[int, str], n_topics: str | int) -> list[str]:
    """Notes for a result to distrust: fewer topics than asked, or one topic holding most paragraphs.

    Outliers (topic -1) are not a topic here.
    """
    notes = []
    found = sorted(set(topics.tolist()) - {-1})
    if isinstance(n_topics, int) and len(found) < n_topics:
        notes.append(
            f"asked for {n_topics} topics but the model found {len(found)}: the paragraphs do not "
            "separate into that many groups (try fewer, or --n-topics auto)"
        )
    if len(topics) and found:
        sizes = {t: int(np.sum(topics == t)) for t in found}
        largest = max(found, key=lambda t: (sizes[t], -t))
        if sizes[largest] > DOMINANT_TOPIC_SHARE * len(topics):
            notes.append(
                f"degenerate topics: topic {largest} ({names.get(largest, '')}) holds {sizes[largest]:,} of "
                f"{len(topics):,} paragraphs ({sizes[largest] / len(topics):.0%}); read the other topics "
                "as its fringes, or refit with --n-topics auto or a smaller --min-topic-size"
            )
    return notes


def topics_over_time_table(chunks, topics, names, settings, model, notes) -> pd.DataFrame:
    """Chunks per topic and period, with each topic's share of the period's chunks.

    Periods are years or quarters of `published` (`settings.by`), or `nr_bins`
    equal-width bins over the dates. `words` lists the topic's own top words
    ordered by how often its chunks of that period use them (five at most).
    """
    starts = _each(lambda p: period_start(p, settings.by), chunks["published"])
    known = np.array([s is not None for s in starts])
    if not known.all():
        what = "a month" if settings.by == "quarter" else "a year"
        notes.append(
            f"{int((~known).sum())} chunks have no date with {what} and are left out of topics over time"
        )
    if not known.any():
        return empty_table(TOPICS_OVER_TIME_COLUMNS)
    frame = pd.DataFrame(
        {
            "topic": topics[known],
            "start": pd.to_datetime([s for s in starts if s is not None]),
            "text": chunks["text"].to_numpy()[known],
        }
    )
    if settings.nr_bins:
        # equal-width bins over the dates; a bin is named by the day it starts
        ns = frame["start"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        edges = np.linspace(ns.min(), ns.max(), settings.nr_bins + 1)
        index = np.clip(np.searchsorted(edges, ns, side="right") - 1, 0, settings.nr_bins - 1)
        frame["start"] = pd.to_datetime(edges[index].astype(np.int64)).normalize()
        frame["period"] = frame["start"].dt.strftime("%Y-%m-%d")
    else:
        frame["period"] = _each(
            lambda s: period_label(s.strftime("%Y-%m-%d"), settings.by), frame["start"]
        )
    words = _period_words(frame, model, settings.top_n_words)
    counts = frame.groupby(["topic", "period", "start"]).size().rename("n_chunks").reset_index()
    totals = frame.groupby("period").size()
    counts["period_chunks"] = counts["period"].map(totals).astype(int)
    counts["share_of_period"] = (counts["n_chunks"] / counts["period_chunks"]).round(6)
    counts["name"] = counts["topic"].map(names).fillna("")
    counts["period_start"] = counts["start"].dt.strftime("%Y-%m-%d")
    counts["words"] = [
        words.get((t, p), "") for t, p in zip(counts["topic"], counts["period"], strict=True)
    ]
    counts = counts.sort_values(["start", "topic"], kind="stable").reset_index(drop=True)
    return counts[TOPICS_OVER_TIME_COLUMNS]


def _each(function: Callable[[Any], Any], values: pd.Series) -> list:
    """`[function(v) for v in values]`, with `function` (a pure one) called once per distinct value."""
    items = values.tolist()
    results = {value: function(value) for value in dict.fromkeys(items)}
    return [results[value] for value in items]


def _period_words(frame: pd.DataFrame, model, top_n: int) -> dict[tuple[int, str], str]:
    """{(topic, period): its top words most used in that period}, one pass over the texts.

    A cheap stand-in for BERTopic's `topics_over_time`, which recomputes c-TF-IDF
    per period (12 s of a 20,000-chunk fit); here only the topics' own top words
    are counted.
    """
    if model is None:
        return {}
    topic_words = {
        t: [w for w, _ in (model.get_topic(t) or [])[:top_n] if w]
        for t in sorted(set(frame["topic"].tolist()))
    }
    vocabulary = sorted({w for words in topic_words.values() for w in words})
    if not vocabulary:
        return {}
    counts = count_vocabulary(frame["text"].tolist(), vocabulary)
    index = {w: i for i, w in enumerate(vocabulary)}
    result: dict[tuple[int, str], str] = {}
    keys = frame[["topic", "period"]].to_numpy()
    groups = (
        pd.DataFrame({"topic": keys[:, 0], "period": keys[:, 1]})
        .groupby(["topic", "period"])
        .indices
    )
    for (topic, period), rows in groups.items():
        words = topic_words.get(topic, [])
        if not words:
            continue
        totals = np.asarray(counts[rows][:, [index[w] for w in words]].sum(axis=0)).ravel()
        order = sorted(range(len(words)), key=lambda i: (-totals[i], i))
        result[(int(topic), str(period))] = ", ".join(words[i] for i in order[:5] if totals[i] > 0)
    return result


def count_vocabulary(texts: list[str], vocabulary: list[str]) -> sparse.csr_matrix:
    """How often each text uses each vocabulary word or two-word phrase (texts x vocabulary).

    The counts of `CountVectorizer(vocabulary=vocabulary, ngram_range=(1, 2),
    token_pattern=token_pattern(), lowercase=True).transform(texts)`, without
    building every two-word phrase of every text: a phrase is made only
    when its first word starts a phrase of the vocabulary.
    """
    pieces = PieceTokens(re.compile(token_pattern()).findall, None)
    index = {word: i for i, word in enumerate(vocabulary)}
    phrase_starts = {word.split(" ", 1)[0] for word in vocabulary if " " in word}
    known = index.__contains__
    rows: list[int] = []
    columns: list[int] = []
    for row, text in enumerate(texts):
        tokens = pieces.tokens(text.lower())
        found = list(filter(known, tokens))
        if phrase_starts:  # the pairs of words whose first word starts a phrase
            firsts = map(phrase_starts.__contains__, tokens)
            pairs = compress(zip(tokens, islice(tokens, 1, None)), firsts)  # noqa: B905
            found.extend(filter(known, map(" ".join, pairs)))
        columns.extend(map(index.__getitem__, found))
        rows.extend(repeat(row, len(found)))
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int64), (rows, columns)),
        shape=(len(texts), len(vocabulary)),
        dtype=np.int64,
    )
    matrix.sum_duplicates()
    return matrix


def empty_table(columns: list[str]) -> pd.DataFrame:
    """A table with these columns and no rows."""
    return pd.DataFrame(columns=columns)
