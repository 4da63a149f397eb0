"""Paragraph-sized chunks of the coded sentences: the units topics are modelled on."""

from __future__ import annotations

import pandas as pd

CHUNK_COLUMNS = [
    "chunk_id", "doc_id", "path", "paragraph_index", "n_paragraphs", "page",
    "start_char", "end_char", "published", "n_sentences", "text",
]


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

