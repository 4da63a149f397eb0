"""Paragraph-sized chunks of the coded sentences: the units topics are modelled on.

Inspection-report front matter (cover details, the inspection team, the
judgement table, the legal basis of the report) and the templated sentences of
its context sections (area statistics, previous inspections, who is in post)
are left out: the same sentences in every report would otherwise make topics
of their own.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

# Sentences of inspection-report front matter, left out of topic chunks. Only
# sentences of at most FRONT_MATTER_MAX_WORDS words are tested. Alternatives that
# must start the sentence are kept apart from those found anywhere in it, so the
# first are tried at the start only (`re.match`), not at every character.
FRONT_MATTER_AT_START = (
    r"^(?:inspection dates?|(?:deputy )?lead inspector|reporting inspector|team inspectors?|"
    r"(?:senior )?data analyst|quality assurance manager|shadow inspector|judgement grade|"
    r"age group|website|reference no)\b|^(?:report )?published\s*:"
    r"|^(?:his|her) majesty['\u2019]s inspectors?$"
    r"|^ofsted produces this report\b|^this report includes the report of\b"
    # report titles: "Inspection of Leeds City local authority children's services", "Inspection of services for ..."
    r"|^(?:[A-Z][\w ,&'\u2019-]{0,60} )?inspection of (?:services for children|local authority children|"
    r"looked after children services|children['\u2019]s social care services|.{0,60}local authority children['\u2019]s services)"
    r"(?!.*[.!?]$)"
)
FRONT_MATTER_ANYWHERE = r"\bthe inspection team consisted of\b|\bcarried out under section \d+"
FRONT_MATTER = re.compile(f"{FRONT_MATTER_AT_START}|{FRONT_MATTER_ANYWHERE}", re.I)
# The templated sentences of an inspection report's context sections: area
# statistics, previous inspections, who is in post, what a judgement means.
REPORT_TEMPLATE_AT_START = (
    r"^(?:in a local authority that [\w ]+, )?there are no widespread or serious failures\b"
    r"|^the welfare of looked after children is safeguarded and promoted"
    r"|^it is ofsted['\u2019]s expectation that\b"
    r"|^(?:children living in this area )?approximately [\d,.]+(?:%| children and young people)"
    r"|^this is [\d.]+% of the total population\b"
    r"|^the proportion of children (?:entitled to free school meals|and young people with english as an additional)"
    r"|^in (?:primary|secondary) schools is [\d.]+%"
    r"|^children and young people from minority ethnic groups account for\b"
    r"|^the largest minority ethnic groups? of children\b"
    r"|^(?:children looked after in this area |child protection in this area )?at \d{1,2} \w+ \d{4}, [\d,]+ children\b"
    r"|^this is an? (?:increase|decrease|reduction) from [\d,]+"
    r"|^the local authority was given the opportunity to review this section\b"
    r"|^the [\w ]{0,40}(?:operates|does not operate) (?:any |\d+ )?children['\u2019]s homes"
    r"|^the previous inspection of\b"
)
REPORT_TEMPLATE_ANYWHERE = (
    r"\bceased to be looked after and (?:moved on|are now living)\b|\bhas been in post since\b"
)
REPORT_TEMPLATE = re.compile(f"{REPORT_TEMPLATE_AT_START}|{REPORT_TEMPLATE_ANYWHERE}", re.I)
_AT_START = re.compile(f"{FRONT_MATTER_AT_START}|{REPORT_TEMPLATE_AT_START}", re.I)
_ANYWHERE = re.compile(f"{FRONT_MATTER_ANYWHERE}|{REPORT_TEMPLATE_ANYWHERE}", re.I)
# A line of a judgement table: a short line ending in a grade, without a full stop
# ("Adoption performance Outstanding", "Children's services in Wigan are good").
JUDGEMENT_LINE = re.compile(
    r"(?:^|\s|:)(?:outstanding|good|requires improvement(?: to be good)?|inadequate)$", re.I
)
FRONT_MATTER_MAX_WORDS = 60
JUDGEMENT_LINE_MAX_WORDS = 30
# The most characters a JUDGEMENT_LINE match holds (a test checks it). As the
# match ends the text (or comes before its final newline), it is searched for
# in the text's last JUDGEMENT_LINE_LONGEST + 1 characters only.
JUDGEMENT_LINE_LONGEST = 32

CHUNK_COLUMNS = [
    "chunk_id",
    "doc_id",
    "path",
    "paragraph_index",
    "n_paragraphs",
    "page",
    "start_char",
    "end_char",
    "published",
    "n_sentences",
    "text",
]


def build_chunks(
    coded_sentences: pd.DataFrame, documents: pd.DataFrame, *, min_words: int = 25
) -> pd.DataFrame:
    """Paragraph-sized chunks: sentences grouped by doc_id + paragraph_index.

    Paragraphs under `min_words` words (headings, table cells) are merged with
    the paragraphs that follow them in the same document; a short last one joins
    the chunk before it. Sentences of report front matter (`is_front_matter`)
    are left out. `chunk_id` is `<doc_id>-c<first paragraph_index:05d>`.
    `published` comes from `documents` (rows with `duplicate_of` set are ignored).
    """
    if coded_sentences.empty:
        return pd.DataFrame(columns=CHUNK_COLUMNS)
    sentences = coded_sentences.sort_values(["doc_id", "sentence_index"], kind="stable")
    published = _published_by_doc(documents)
    sentences = sentences.assign(text=sentences["text"].fillna("").astype(str).str.strip())
    sentences = sentences[~is_front_matter(sentences["text"])]
    if sentences.empty:
        return pd.DataFrame(columns=CHUNK_COLUMNS)
    grouped = sentences.groupby(["doc_id", "paragraph_index"], sort=True)
    paragraphs = grouped.agg(
        path=("path", "first"),
        page=("page", "first"),
        start_char=("start_char", "min"),
        end_char=("end_char", "max"),
        n_sentences=("text", "size"),
    ).reset_index()
    paragraphs["text"] = _joined_texts(sentences["text"], grouped.ngroup(), len(paragraphs))
    paragraphs["path"] = paragraphs["path"].astype(str)
    columns = list(paragraphs.columns)
    rows = [
        dict(zip(columns, values, strict=True))
        for values in zip(*(paragraphs[c].tolist() for c in columns), strict=True)
    ]
    chunks: list[dict] = []
    pending: dict | None = None
    previous_doc = None
    for row in rows:
        if row["doc_id"] != previous_doc:
            if pending is not None:
                _close_chunk(chunks, pending, min_words)
            pending, previous_doc = None, row["doc_id"]
        if pending is None:
            pending = dict(
                row,
                n_paragraphs=1,
                paragraph_index=int(row["paragraph_index"]),
                page=int(row["page"]),
                start_char=int(row["start_char"]),
                end_char=int(row["end_char"]),
                n_sentences=int(row["n_sentences"]),
            )
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
    frame["chunk_id"] = [
        f"{d}-c{p:05d}" for d, p in zip(frame["doc_id"], frame["paragraph_index"], strict=True)
    ]
    frame["published"] = frame["doc_id"].map(published).fillna("").astype(str)
    return frame[CHUNK_COLUMNS].reset_index(drop=True)


def is_front_matter(texts: pd.Series) -> pd.Series:
    """True for sentences of inspection-report front matter (FRONT_MATTER, REPORT_TEMPLATE, JUDGEMENT_LINE).

    The same as `texts.str.contains(FRONT_MATTER) | texts.str.contains(REPORT_TEMPLATE)` for
    sentences of at most FRONT_MATTER_MAX_WORDS words, or `texts.str.contains(JUDGEMENT_LINE)`
    for sentences of at most JUDGEMENT_LINE_MAX_WORDS words; missing texts are not front matter.
    """
    at_start, anywhere, judgement = _AT_START.match, _ANYWHERE.search, JUDGEMENT_LINE.search
    # `search(text, pos)` sees the text before `pos` (`^` still means its start)
    tail = JUDGEMENT_LINE_LONGEST + 1

    def front(text: object) -> bool:
        if not isinstance(text, str):
            return False
        words = len(text.split())
        if words > FRONT_MATTER_MAX_WORDS:
            return False
        if at_start(text) is not None or anywhere(text) is not None:
            return True
        return (
            words <= JUDGEMENT_LINE_MAX_WORDS
            and judgement(text, max(0, len(text) - tail)) is not None
        )

    return pd.Series([front(t) for t in texts], index=texts.index, dtype=bool)


def _joined_texts(texts: pd.Series, group: pd.Series, n_groups: int) -> list[str]:
    """The non-empty `texts` of each group joined by spaces, in their order; groups numbered 0..n-1.

    `group` is each text's group number (`GroupBy.ngroup`; rows of no group are left out).
    """
    numbers = group.to_numpy(dtype=float, na_value=-1.0).astype(np.int64)
    kept = np.flatnonzero(numbers >= 0)
    order = kept[np.argsort(numbers[kept], kind="stable")]
    values = texts.to_numpy(dtype=object)[order].tolist()
    bounds = np.searchsorted(numbers[order], np.arange(n_groups + 1)).tolist()
    return [" ".join(filter(None, values[a:b])) for a, b in itertools.pairwise(bounds)]


def _close_chunk(chunks: list[dict], pending: dict, min_words: int) -> None:
    """A short tail joins the previous chunk of the same document, else stands alone."""
    if (
        chunks
        and chunks[-1]["doc_id"] == pending["doc_id"]
        and len(pending["text"].split()) < min_words
    ):
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
