"""Everything the run report shows, read in one place from the store and the run folder.

`gather_report_data` is the only function that reads: the store (documents,
coded sentences, failures, runs, result tables), the folder's `run.json` and
any validity files (a learned model's `metrics.json`, `textmine evaluate`
agreement tables). It returns a `ReportData` of plain DataFrames and dicts;
`textmine.report.html.render_report` turns it into a page without any I/O.

Codes come from the codebook (`code_columns`, `stance_codes`,
`partnership_codes`), so a code a researcher adds gets its own section.
Optional inputs (probability columns `p_<code>`, `model_version`, corrected
trend columns, metrics files) are used when present and reported as absent
otherwise.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

import textmine
from textmine.codebook import Codebook
from textmine.columns import DOCUMENT_COLUMNS
from textmine.trends import ALL, UNDATED, UNDATED_IN_QUARTER, wilson_interval

REPORT_FILENAME = "report.html"
RUN_FILENAME = "run.json"
N_EXAMPLES = 5  # example sentences per code
N_LEAST_SURE = 5  # sentences per code where the coder was least sure
N_TOPICS_SHOWN = 12  # topics in the small multiples
MIN_TOPIC_SENTENCES = 30  # a topic needs this many sentences to be ranked by stance language
MIN_TOPIC_CODED = 3  # ... and this many of them coded with the stance
N_TOPICS_PER_STANCE = 5
MAX_DOCUMENT_ROWS = 2000  # the full document list is left out above this
# A period with fewer documents or sentences than this is marked "little data".
FEW_DOCUMENTS = 3
FEW_SENTENCES = 200
MAX_EXAMPLE_CHARS = 400  # prefer examples shorter than this
METRIC_NAMES = (
    "n",
    "support",
    "gold_pos",
    "pred_pos",
    "human_share",
    "machine_share",
    "bias",
    "precision",
    "recall",
    "f1",
    "kappa",
    "alpha",
    "accuracy",
)

# the report's document table: documents.csv's columns but how the date was found and
# the licence (then year and href, added from them)
REPORT_DOCUMENT_COLUMNS = [c for c in DOCUMENT_COLUMNS if c not in ("date_source", "licence")]


@dataclass(frozen=True)
class CodeInfo:
    """One code of the codebook as the report shows it."""

    key: str
    name: str
    kind: str  # stance | partnership
    colour: str
    description: str


@dataclass
class ValiditySource:
    """One set of agreement figures found in a file.

    `table` has a `code` column and, per metric found, `<metric>` and (when
    the file gives or allows an interval) `<metric>_low` / `<metric>_high`.
    """

    title: str
    source: str
    table: pd.DataFrame
    details: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class ReportData:
    """What the run report shows: plain tables and values, no open handles."""

    title: str
    generated_at: str
    out_dir: str
    codes: list[CodeInfo]
    by: str
    counts: dict[str, int]
    changes: dict[str, Any]
    documents: pd.DataFrame  # one row per document file, with `year` and `href`
    corpus_table: pd.DataFrame  # year, doc_type, publisher, documents, pages, sentences
    failures: pd.DataFrame  # path, reason, meaning, message
    duplicates: pd.DataFrame  # path, duplicate_of (path of the file kept)
    stance_over_time: pd.DataFrame | None  # dimension "all", dated periods, + little_data
    partnership_over_time: pd.DataFrame | None
    stance_by_group: pd.DataFrame | None  # period "all", dimensions doc_type and publisher
    partnership_by_group: pd.DataFrame | None
    undated: dict[
        str, int
    ]  # documents and sentences without a usable date (year_only_*: no quarter)
    corrected: bool  # stance tables carry corrected shares (a validation sample exists)
    code_summary: pd.DataFrame  # code, n_sentences, n_documents, share
    examples: dict[str, pd.DataFrame]  # code -> text, spans, title, path, page, href, p
    least_sure: dict[str, pd.DataFrame]  # code -> the same, closest to p = 0.5
    has_probabilities: bool
    topics: pd.DataFrame | None  # topic, name, size, share, words, passage
    topics_over_time: pd.DataFrame | None  # topic, period, period_start, share_of_period
    topic_stance: dict[str, pd.DataFrame]  # stance code -> topics ranked by that language
    validity: list[ValiditySource]
    reproducibility: dict[str, str]
    settings: dict[str, Any]
    timings: dict[str, float]
    runs: pd.DataFrame
    notes: list[str]
    coding_failures: pd.DataFrame = field(  # path, doc_id, message: documents not coded
        default_factory=lambda: pd.DataFrame(columns=["path", "doc_id", "message"])
    )


def gather_report_data(
    store,
    out_dir: str | os.PathLike,
    codebook: Codebook,
    *,
    run_record: Mapping[str, Any] | None = None,
    model_dirs: list[str | os.PathLike] | None = None,
    coded_sentences: pd.DataFrame | None = None,
) -> ReportData:
    """Read everything the report shows from `store` and the run folder `out_dir`.

    Args:
        store: an open `textmine.store.Store`.
        out_dir: the output folder (holds `run.json`; `report.html` goes there).
        codebook: the codebook the corpus was coded with (names, colours, kinds).
        run_record: this run's record (`{"settings": ..., **RunReport.to_dict()}`);
            default: `out_dir/run.json`, which a run in progress has not yet written.
        model_dirs: extra folders that may hold a learned model's `metrics.json`.
        coded_sentences: `store.coded_sentences()` when the caller has read it already
            (a run has); default: read from the store. It is not changed.

    Returns:
        A ReportData; nothing in it refers back to the store.
    """
    out = Path(out_dir).resolve()
    notes: list[str] = []
    record = dict(run_record) if run_record is not None else _read_run_json(out, notes)
    settings = dict(record.get("settings") or {})
    by = str(settings.get("by") or "year")
    codes = [_code_info(codebook, key) for key in codebook.code_columns]

    documents = _documents(store, out)
    coded = store.coded_sentences() if coded_sentences is None else coded_sentences
    missing_codes = [c.key for c in codes if c.key not in coded.columns]
    if missing_codes and len(coded):
        notes.append(
            f"code(s) {', '.join(missing_codes)} of codebook {codebook.version} are not in the "
            f"store's coding (codebook {_store_codebook_version(store) or 'unknown'}): "
            "run `textmine run` with this codebook to code them"
        )
    if _store_codebook_version(store) not in (None, codebook.version):
        notes.append(
            f"the store was coded with codebook {_store_codebook_version(store)}; names and "
            f"colours here come from codebook {codebook.version}"
        )
    present = [c.key for c in codes if c.key in coded.columns]
    coded = _slim_coded(coded, present, documents)
    probability_codes = [c for c in present if f"p_{c}" in coded.columns]

    stance = _result_table(store, "trend_stance_trends", "trend_stance")
    partnership = _result_table(store, "trend_partnership_trends", "trend_partnership")
    topics = _result_table(store, "topics")
    doc_topics = _result_table(store, "doc_topics")
    topics_over_time = _result_table(store, "topics_over_time")

    return ReportData(
        title=f"textmine run report: {out.name}",
        generated_at=time.strftime("%Y-%m-%d %H:%M:%S %z"),
        out_dir=str(out),
        codes=codes,
        by=by,
        counts=_counts(store),
        changes=_changes(record),
        documents=documents,
        corpus_table=_corpus_table(documents),
        failures=_failures(store),
        duplicates=_duplicates(documents),
        stance_over_time=_over_time(stance),
        partnership_over_time=_over_time(partnership),
        stance_by_group=_by_group(stance),
        partnership_by_group=_by_group(partnership),
        undated=_undated(stance),
        corrected=stance is not None
        and any(c.startswith("share_corrected_") for c in stance.columns),
        code_summary=_code_summary(coded, [c.key for c in codes]),
        examples={c: _examples(coded, c) for c in present},
        least_sure={c: _least_sure(coded, c) for c in probability_codes},
        has_probabilities=bool(probability_codes),
        topics=_topics(topics),
        topics_over_time=_topics_over_time(topics_over_time),
        topic_stance=_topic_stance(coded, doc_topics, topics, codebook.stance_codes),
        validity=_validity(out, codebook, settings, model_dirs or []),
        reproducibility=_reproducibility(store, codebook, coded, documents, record),
        settings=settings,
        timings={
            str(k): float(v)
            for k, v in (record.get("timings") or {}).items()
            if isinstance(v, (int, float))
        },
        runs=_runs(store),
        notes=notes + [str(n) for n in record.get("notes") or []],
        coding_failures=_coding_failures(record),
    )


# -- the corpus ----------------------------------------------------------------------


def _read_run_json(out: Path, notes: list[str]) -> dict:
    path = out / RUN_FILENAME
    if not path.is_file():
        notes.append(f"{path} is missing: settings, timings and changes are not shown")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"{path} cannot be read ({exc}): settings, timings and changes are not shown")
        return {}
    return data if isinstance(data, dict) else {}


def _code_info(codebook: Codebook, key: str) -> CodeInfo:
    code = codebook.codes.get(key)
    if code is None:
        return CodeInfo(key, key.replace("_", " ").capitalize(), "partnership", "#777777", "")
    return CodeInfo(key, code.name, code.kind, code.colour, code.description)


def _store_codebook_version(store) -> str | None:
    try:
        return store.codebook_version
    except (AttributeError, ValueError, KeyError):
        return None


def _file_locations(store) -> dict[str, str]:
    """{doc_id: absolute path of the file kept for it}, when the store knows it."""
    known = getattr(store, "known_files", None)
    if known is None:
        return {}
    locations: dict[str, str] = {}
    for path, stored in sorted(known().items()):
        if getattr(stored, "status", "") == "document":
            locations.setdefault(stored.doc_id, path)
    return locations


def _documents(store, out: Path) -> pd.DataFrame:
    frame = store.documents(include_duplicates=True).copy()
    columns = REPORT_DOCUMENT_COLUMNS
    for column in columns:
        if column not in frame.columns:
            frame[column] = ""
    frame = frame[columns].reset_index(drop=True)
    for column in (c for c in columns if c not in ("doc_id", "pages", "n_sentences")):
        frame[column] = frame[column].fillna("").astype(str)
    frame["publisher"] = frame["publisher"].replace("", "unknown")
    frame["doc_type"] = frame["doc_type"].replace("", "unknown")
    frame["year"] = [_year(p) for p in frame["published"]]
    locations = _file_locations(store)
    frame["href"] = [
        _href(locations.get(d) if not dup else None, p, out)
        for d, p, dup in zip(frame["doc_id"], frame["path"], frame["duplicate_of"], strict=True)
    ]
    return frame


def _year(published: str) -> str:
    text = str(published or "").strip()
    return text[:4] if len(text) >= 4 and text[:4].isdigit() else UNDATED


def _href(absolute: str | None, display: str, out: Path) -> str:
    """A link to a document file, relative to the report when both are on one drive."""
    candidate = Path(absolute) if absolute else Path(display)
    if not candidate.is_absolute():
        candidate = Path.cwd() / candidate
    if not candidate.exists():
        return ""
    try:
        relative = os.path.relpath(candidate, out)
    except ValueError:  # another drive (Windows)
        return candidate.as_uri()
    return quote(Path(relative).as_posix())


def _corpus_table(documents: pd.DataFrame) -> pd.DataFrame:
    columns = ["year", "doc_type", "publisher", "documents", "pages", "sentences"]
    kept = documents[documents["duplicate_of"] == ""]
    if kept.empty:
        return pd.DataFrame(columns=columns)
    table = (
        kept.groupby(["year", "doc_type", "publisher"], sort=True)
        .agg(documents=("doc_id", "size"), pages=("pages", "sum"), sentences=("n_sentences", "sum"))
        .reset_index()
    )
    table["_undated"] = table["year"] == UNDATED
    table = table.sort_values(["_undated", "year", "doc_type", "publisher"], kind="stable")
    return table[columns].reset_index(drop=True)


def _failures(store) -> pd.DataFrame:
    from textmine.columns import FAILURE_REASONS

    frame = store.failures().copy()
    for column in ("path", "reason", "message"):
        if column not in frame.columns:
            frame[column] = ""
    frame["meaning"] = [FAILURE_REASONS.get(str(r), "") for r in frame["reason"]]
    return frame[["path", "reason", "meaning", "message"]].reset_index(drop=True)


def _coding_failures(record: Mapping[str, Any]) -> pd.DataFrame:
    """The run's documents the coder failed on (failures of stage "coding" in its record)."""
    rows = [
        {key: str(f.get(key, "")) for key in ("path", "doc_id", "message")}
        for f in record.get("failures") or []
        if isinstance(f, Mapping) and f.get("stage") == "coding"
    ]
    return pd.DataFrame(rows, columns=["path", "doc_id", "message"])


def _duplicates(documents: pd.DataFrame) -> pd.DataFrame:
    kept = documents[documents["duplicate_of"] == ""].drop_duplicates("doc_id")
    paths = dict(zip(kept["doc_id"], kept["path"], strict=True))
    dups = documents[documents["duplicate_of"] != ""]
    return pd.DataFrame(
        {
            "path": dups["path"].tolist(),
            "duplicate_of": [paths.get(d, d) for d in dups["duplicate_of"]],
        }
    )


def _counts(store) -> dict[str, int]:
    return {str(k): int(v) for k, v in store.counts().items()}


_CHANGE_KEYS = (
    ("files_found", "files found"),
    ("documents_read", "documents read (new or changed)"),
    ("documents_changed", "of which changed (known path, new bytes)"),
    ("documents_unchanged", "documents unchanged (not read again)"),
    ("missing", "files gone since the last run"),
    ("documents_retired", "documents retired from the outputs"),
    ("duplicates", "duplicate files"),
    ("failed", "files that failed this run"),
    ("known_failures_skipped", "known failures skipped"),
    ("pages_read", "pages read"),
    ("sentences_new", "new sentences"),
    ("sentences_coded", "sentences coded this run"),
    ("coding_failed", "documents the coder failed on this run"),
)


def _changes(record: Mapping[str, Any]) -> dict[str, Any]:
    counts = record.get("counts") or {}
    changes: dict[str, Any] = {label: counts[key] for key, label in _CHANGE_KEYS if key in counts}
    if "topics_refit" in record:
        changes["topic model refitted"] = "yes" if record.get("topics_refit") else "no"
    if "status" in record:
        changes["run status"] = record["status"]
    return changes


# -- coded sentences ---------------------------------------------------------------------


def _slim_coded(coded: pd.DataFrame, codes: list[str], documents: pd.DataFrame) -> pd.DataFrame:
    """Only the columns the report uses, with each sentence's document title, format and link."""
    keep = [
        "sentence_id",
        "doc_id",
        "path",
        "page",
        "paragraph_index",
        "start_char",
        "text",
        "evidence",
        *codes,
        *[f"p_{c}" for c in codes if f"p_{c}" in coded.columns],
    ]
    if "model_version" in coded.columns:
        keep.append("model_version")
    frame = coded[[c for c in keep if c in coded.columns]].copy()
    for code in codes:
        frame[code] = (pd.to_numeric(frame[code], errors="coerce").fillna(0) > 0).astype("int64")
    docs = documents[documents["duplicate_of"] == ""].drop_duplicates("doc_id")
    meta = docs.set_index("doc_id")
    frame["title"] = frame["doc_id"].map(meta["title"]).fillna("").astype(str)
    frame["format"] = frame["doc_id"].map(meta["format"]).fillna("").astype(str)
    frame["href"] = frame["doc_id"].map(meta["href"]).fillna("").astype(str)
    frame["year"] = frame["doc_id"].map(meta["year"]).fillna(UNDATED).astype(str)
    return frame.reset_index(drop=True)


def _code_summary(coded: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    total = len(coded)
    rows: list[dict[str, Any]] = []
    for code in codes:
        if code not in coded.columns:
            rows.append({"code": code, "n_sentences": None, "n_documents": None, "share": None})
            continue
        positive = coded[coded[code] == 1]
        rows.append(
            {
                "code": code,
                "n_sentences": len(positive),
                "n_documents": int(positive["doc_id"].nunique()),
                "share": len(positive) / total if total else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=["code", "n_sentences", "n_documents", "share"])


def evidence_spans(text: str, evidence: object, code: str) -> list[tuple[int, int]]:
    """Character spans of `code`'s evidence within a sentence, merged and in order.

    `evidence` is the JSON column ({code: [{"text", "start", "end", ...}]}, offsets
    within the sentence, end exclusive). A span whose offsets do not hold its text
    is looked up by its text instead; one that cannot be found is left out.
    """
    if not isinstance(evidence, (str, dict)) or not text:
        return []
    try:
        data = json.loads(evidence) if isinstance(evidence, str) else evidence
    except ValueError:
        return []
    items = data.get(code) if isinstance(data, dict) else None
    spans: list[tuple[int, int]] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        start, end, words = item.get("start"), item.get("end"), str(item.get("text") or "")
        if (
            isinstance(start, int)
            and isinstance(end, int)
            and 0 <= start < end <= len(text)
            and (not words or text[start:end] == words)
        ):
            spans.append((start, end))
        elif words and words in text:
            found = text.index(words)
            spans.append((found, found + len(words)))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


SENTENCE_VIEW_COLUMNS = [
    "sentence_id",
    "doc_id",
    "title",
    "path",
    "page",
    "year",
    "href",
    "text",
    "spans",
    "coded",
    "p",
]


def _sentence_view(rows: pd.DataFrame, code: str) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame(columns=SENTENCE_VIEW_COLUMNS)
    view = rows.copy()
    view["text"] = view["text"].fillna("").astype(str)
    view["spans"] = [
        evidence_spans(t, e, code) for t, e in zip(view["text"], view["evidence"], strict=True)
    ]
    view["coded"] = view[code].astype(int)
    view["p"] = view[f"p_{code}"].astype(float) if f"p_{code}" in view.columns else math.nan
    view["page"] = pd.to_numeric(view["page"], errors="coerce").fillna(0).astype(int)
    view["href"] = [
        _page_href(h, f, p)
        for h, f, p in zip(view["href"], view["format"], view["page"], strict=True)
    ]
    return view[SENTENCE_VIEW_COLUMNS].reset_index(drop=True)


def _page_href(href: str, fmt: str, page: int) -> str:
    if href and fmt == "pdf" and page > 0:
        return f"{href}#page={page}"
    return href


def _examples(coded: pd.DataFrame, code: str) -> pd.DataFrame:
    """Up to N_EXAMPLES sentences coded `code`: one per document first, short ones first.

    The draw is random but fixed per code (seeded by the code's name), so a
    report rebuilt from the same store shows the same sentences.
    """
    positive = coded[coded[code] == 1]
    if positive.empty:
        return _sentence_view(positive, code)
    seed = zlib.crc32(code.encode())
    shuffled = positive.sample(frac=1.0, random_state=seed)
    short = shuffled[shuffled["text"].fillna("").str.len() <= MAX_EXAMPLE_CHARS]
    pool = pd.concat([short, shuffled.drop(short.index)])
    first = pool.drop_duplicates("doc_id")
    chosen = pd.concat([first, pool.drop(first.index)]).head(N_EXAMPLES)
    return _sentence_view(chosen, code)


def _least_sure(coded: pd.DataFrame, code: str) -> pd.DataFrame:
    column = f"p_{code}"
    scored = coded[coded[column].notna()]
    distance = (scored[column].astype(float) - 0.5).abs()
    order = distance.sort_values(kind="stable").index[:N_LEAST_SURE]
    return _sentence_view(scored.loc[order], code)


# -- trends -----------------------------------------------------------------------------


def _result_table(store, *names: str) -> pd.DataFrame | None:
    for name in names:
        try:
            frame = store.read_table(name)
        except ValueError:
            continue
        if frame is not None and not frame.empty:
            return frame
    return None


def _little_data(table: pd.DataFrame) -> pd.Series:
    documents = pd.to_numeric(table.get("n_documents"), errors="coerce").fillna(0)
    sentences = pd.to_numeric(table.get("n_sentences"), errors="coerce").fillna(0)
    return (documents < FEW_DOCUMENTS) | (sentences < FEW_SENTENCES)


def complete_periods(labels: list[str]) -> list[str]:
    """Every year ('2016') or quarter ('2016-Q3') from the first label to the last.

    Periods without documents are kept as gaps, so a chart does not join 2007 to
    2013 as if they were neighbours. Labels of another form are returned sorted.
    """
    labels = sorted(set(labels))
    if not labels:
        return []
    if all(re.fullmatch(r"\d{4}", p) for p in labels):
        return [str(y) for y in range(int(labels[0]), int(labels[-1]) + 1)]
    quarters = [m for p in labels if (m := re.fullmatch(r"(\d{4})-Q([1-4])", p))]
    if len(quarters) == len(labels):
        first = int(quarters[0].group(1)) * 4 + int(quarters[0].group(2)) - 1
        last = int(quarters[-1].group(1)) * 4 + int(quarters[-1].group(2)) - 1
        return [f"{i // 4}-Q{i % 4 + 1}" for i in range(first, last + 1)]
    return labels


def _over_time(table: pd.DataFrame | None) -> pd.DataFrame | None:
    """Dated rows of dimension "all", one per period from the first to the last.

    Periods without documents get a row with n_documents = 0 and no shares;
    `little_data` marks periods with few documents or sentences (not empty ones).
    """
    if table is None or not {"dimension", "period"} <= set(table.columns):
        return None
    rows = table[
        (table["dimension"] == ALL)
        & ~table["period"].astype(str).isin([ALL, UNDATED, UNDATED_IN_QUARTER])
    ]
    if rows.empty:
        return None
    rows = rows.copy()
    rows["period"] = rows["period"].astype(str)
    rows = rows.drop_duplicates("period").set_index("period")
    rows = rows.reindex(complete_periods(rows.index.tolist()))
    rows.index.name = "period"
    rows = rows.reset_index()
    for column in ("n_documents", "n_sentences"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce").fillna(0).astype("int64")
    rows["no_data"] = rows["n_documents"] == 0
    rows["little_data"] = _little_data(rows) & ~rows["no_data"]
    return rows


def _by_group(table: pd.DataFrame | None) -> pd.DataFrame | None:
    if table is None or not {"dimension", "period"} <= set(table.columns):
        return None
    rows = table[(table["dimension"] != ALL) & (table["period"].astype(str) == ALL)].copy()
    sizes = rows.groupby("dimension")["group"].nunique()
    rows = rows[rows["dimension"].map(sizes).fillna(0) > 1]  # only where there are several
    if rows.empty:
        return None
    rows["little_data"] = _little_data(rows)
    return rows.reset_index(drop=True)


def _undated(table: pd.DataFrame | None) -> dict[str, int]:
    """Documents and sentences off the time axis: undated, and (by quarter) dated only to the year."""
    if table is None or "period" not in table.columns:
        return {}
    counts = {}
    for period, prefix in ((UNDATED, ""), (UNDATED_IN_QUARTER, "year_only_")):
        rows = table[(table["dimension"] == ALL) & (table["period"].astype(str) == period)]
        if not rows.empty:
            row = rows.iloc[0]
            counts[f"{prefix}documents"] = int(row.get("n_documents", 0))
            counts[f"{prefix}sentences"] = int(row.get("n_sentences", 0))
    return counts


# -- topics ------------------------------------------------------------------------------


def _topics(topics: pd.DataFrame | None) -> pd.DataFrame | None:
    if topics is None or "topic" not in topics.columns:
        return None
    frame = topics.copy()
    frame["topic"] = pd.to_numeric(frame["topic"], errors="coerce")
    frame = frame[frame["topic"].notna() & (frame["topic"] >= 0)]
    frame["topic"] = frame["topic"].astype(int)
    frame["size"] = pd.to_numeric(frame.get("size", 0), errors="coerce").fillna(0).astype(int)
    frame["share"] = pd.to_numeric(frame.get("share", math.nan), errors="coerce")
    frame["name"] = frame.get("name", "").fillna("").astype(str)
    frame["words"] = [_topic_words(w) for w in frame.get("top_words", "")]
    frame["passage"] = [
        str(t or "").split("\n\n")[0].strip() for t in frame.get("representative_texts", "")
    ]
    frame = frame.sort_values(["size", "topic"], ascending=[False, True], kind="stable")
    return frame[["topic", "name", "size", "share", "words", "passage"]].reset_index(drop=True)


def _topic_words(top_words: object) -> str:
    """'carers (0.0571); foster (0.0529)' -> 'carers, foster'."""
    words = [w.split(" (")[0].strip() for w in str(top_words or "").split(";")]
    return ", ".join(w for w in words if w)


def _topics_over_time(table: pd.DataFrame | None) -> pd.DataFrame | None:
    if table is None or not {"topic", "period", "share_of_period"} <= set(table.columns):
        return None
    frame = table.copy()
    frame["topic"] = pd.to_numeric(frame["topic"], errors="coerce").fillna(-1).astype(int)
    frame["period"] = frame["period"].astype(str)
    frame["share_of_period"] = pd.to_numeric(frame["share_of_period"], errors="coerce")
    if "period_start" not in frame.columns:
        frame["period_start"] = frame["period"]
    keep = ["topic", "period", "period_start", "share_of_period"]
    if "period_chunks" in frame.columns:
        keep.append("period_chunks")
    return frame[keep].reset_index(drop=True)


def _topic_stance(
    coded: pd.DataFrame,
    doc_topics: pd.DataFrame | None,
    topics: pd.DataFrame | None,
    stance_codes: list[str],
) -> dict[str, pd.DataFrame]:
    """Per stance code: topics ranked by how much more often their sentences use it.

    Each sentence belongs to the topic of the chunk (paragraph group) holding its
    first character. `lift` is the topic's share of sentences with the code over
    the share in all sentences that have a topic.
    """
    needed = {"doc_id", "start_char", "end_char", "topic"}
    codes = [c for c in stance_codes if c in coded.columns]
    if doc_topics is None or not needed <= set(doc_topics.columns) or not codes or coded.empty:
        return {}
    chunks = doc_topics[list(needed)].copy()
    for column in ("start_char", "end_char", "topic"):
        chunks[column] = pd.to_numeric(chunks[column], errors="coerce")
    chunks = chunks.dropna().astype({"start_char": "int64", "end_char": "int64", "topic": "int64"})
    sentences = coded[["doc_id", "start_char", *codes]].copy()
    sentences["start_char"] = pd.to_numeric(sentences["start_char"], errors="coerce")
    sentences = sentences.dropna(subset=["start_char"]).astype({"start_char": "int64"})
    joined = pd.merge_asof(
        sentences.sort_values("start_char"),
        chunks.sort_values("start_char"),
        on="start_char",
        by="doc_id",
        direction="backward",
    )
    joined = joined[joined["topic"].notna() & (joined["start_char"] < joined["end_char"])]
    joined = joined[joined["topic"] >= 0]
    if joined.empty:
        return {}
    names = {}
    if topics is not None and not topics.empty:
        names = dict(zip(topics["topic"], topics["name"], strict=True))
    grouped = joined.groupby("topic")
    result: dict[str, pd.DataFrame] = {}
    for code in codes:
        overall = joined[code].mean()
        table = grouped[code].agg(["sum", "size"]).reset_index()
        table = table[table["size"] >= MIN_TOPIC_SENTENCES]
        if not overall:
            continue
        intervals = [
            wilson_interval(int(k), int(n))
            for k, n in zip(table["sum"], table["size"], strict=True)
        ]
        ranked = pd.DataFrame(
            {
                "topic": table["topic"].astype(int),
                "name": [names.get(int(t), "") for t in table["topic"]],
                "n_sentences": table["size"].astype(int),
                "n_coded": table["sum"].astype(int),
                "share": table["sum"] / table["size"],
                "ci_low": [lo for lo, _ in intervals],
                "ci_high": [hi for _, hi in intervals],
            }
        )
        ranked["lift"] = ranked["share"] / overall
        ranked = ranked[(ranked["lift"] > 1) & (ranked["n_coded"] >= MIN_TOPIC_CODED)]
        ranked = ranked.sort_values(
            ["lift", "n_sentences"], ascending=[False, False], kind="stable"
        )
        result[code] = ranked.head(N_TOPICS_PER_STANCE).reset_index(drop=True)
    return result


# -- validity ----------------------------------------------------------------------------


def _validity(
    out: Path, codebook: Codebook, settings: Mapping[str, Any], model_dirs: list[str | os.PathLike]
) -> list[ValiditySource]:
    """Agreement figures found in files: learned models' metrics.json and evaluate tables."""
    found: list[ValiditySource] = []
    seen: set[Path] = set()
    candidates = [Path(str(resources.files("textmine") / "data" / "model" / "metrics.json"))]
    for key in ("model", "model_dir", "coder_model"):
        if settings.get(key):
            candidates.append(Path(str(settings[key])) / "metrics.json")
    candidates += [Path(d) / "metrics.json" for d in model_dirs]
    candidates += sorted(out.glob("metrics.json")) + sorted(out.glob("*/metrics.json"))
    for path in candidates:
        resolved = path.resolve()
        if resolved in seen or not path.is_file():
            continue
        seen.add(resolved)
        found.append(read_metrics_json(path, codebook))
    for pattern, reader in (("agreement", read_agreement_csv), ("by_period", read_validation_csv)):
        tables = sorted(out.glob(f"*_{pattern}.csv")) + sorted(out.glob(f"*/*_{pattern}.csv"))
        for path in tables:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found.append(reader(path, codebook))
    return found


def read_metrics_json(path: Path, codebook: Codebook) -> ValiditySource:
    """Per-code agreement figures from a learned model's metrics.json, read defensively.

    Accepted shapes: per-code figures as a mapping {code: {metric: value, ...}} or
    a list of {"code": ..., metric: value} anywhere in the file; a metric value
    may be a number, [low, high] under `<metric>_ci`, `<metric>_low`/`_high`
    (or `_ci_low`/`_ci_high`), or a mapping with value/mean/estimate and
    ci/low/high. Top-level scalars are shown as details.
    """
    title = "Learned coder: cross-validated agreement with human coding"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return ValiditySource(
            title, str(path), pd.DataFrame(columns=["code"]), note=f"cannot be read: {exc}"
        )
    codes = set(codebook.code_columns)
    rows = _per_code_rows(data, codes)
    details = {}
    if isinstance(data, dict):
        details = {
            str(k): _scalar_text(v)
            for k, v in data.items()
            if isinstance(v, (str, int, float, bool))
        }
    table = _metric_table(rows, codebook)
    note = "" if not table.empty else "no per-code figures recognised in this file"
    return ValiditySource(title, str(path), table, details, note)


def _scalar_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _per_code_rows(data: object, codes: set[str], depth: int = 0) -> list[dict]:
    if depth > 4:
        return []
    if isinstance(data, dict):
        hits = {k: v for k, v in data.items() if k in codes and isinstance(v, dict)}
        if hits:
            return [{"code": k, **v} for k, v in hits.items()]
        for value in data.values():
            rows = _per_code_rows(value, codes, depth + 1)
            if rows:
                return rows
    if isinstance(data, list):
        rows = [r for r in data if isinstance(r, dict) and r.get("code") in codes]
        if rows:
            return rows
        for value in data:
            rows = _per_code_rows(value, codes, depth + 1)
            if rows:
                return rows
    return []


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _metric_table(rows: list[dict], codebook: Codebook) -> pd.DataFrame:
    records = []
    for row in rows:
        record: dict[str, Any] = {"code": row["code"]}
        for metric in METRIC_NAMES:
            value, low, high = _metric(row, metric)
            if value is None:
                continue
            record[metric] = value
            if low is not None and high is not None:
                record[f"{metric}_low"], record[f"{metric}_high"] = low, high
        records.append(record)
    frame = pd.DataFrame(records)
    if frame.empty:
        return pd.DataFrame(columns=["code"])
    order = {c: i for i, c in enumerate(codebook.code_columns)}
    frame["_o"] = frame["code"].map(order)
    frame = frame.sort_values("_o", kind="stable").drop(columns="_o")
    if "support" in frame.columns and "n" not in frame.columns:
        frame = frame.rename(columns={"support": "n"})
    columns = ["code"] + [
        c for m in METRIC_NAMES for c in (m, f"{m}_low", f"{m}_high") if c in frame.columns
    ]
    return frame[columns].reset_index(drop=True)


def _metric(row: Mapping[str, Any], metric: str) -> tuple[float | None, float | None, float | None]:
    raw = row.get(metric)
    low = high = None
    if isinstance(raw, dict):
        value = next(
            (
                _number(raw[k])
                for k in ("value", "mean", "estimate", "point")
                if k in raw and _number(raw[k]) is not None
            ),
            None,
        )
        interval = raw.get("ci") or raw.get("interval")
        if isinstance(interval, (list, tuple)) and len(interval) == 2:
            low, high = _number(interval[0]), _number(interval[1])
        else:
            low, high = (
                _number(raw.get("low", raw.get("ci_low"))),
                _number(raw.get("high", raw.get("ci_high"))),
            )
        return value, low, high
    value = _number(raw)
    interval = row.get(f"{metric}_ci") or row.get(f"{metric}_interval")
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        low, high = _number(interval[0]), _number(interval[1])
    else:
        for low_key, high_key in (
            (f"{metric}_low", f"{metric}_high"),
            (f"{metric}_ci_low", f"{metric}_ci_high"),
        ):
            if low_key in row and high_key in row:
                low, high = _number(row[low_key]), _number(row[high_key])
                break
    return value, low, high


def read_agreement_csv(path: Path, codebook: Codebook) -> ValiditySource:
    """A `textmine evaluate` agreement table, with 95% intervals computed from its counts.

    Precision and recall get Wilson intervals (tp out of predicted / gold positives);
    kappa an asymptotic interval (kappa ± 1.96 · sqrt(po(1-po)/n) / (1-pe)).
    """
    title = f"Agreement of this corpus's coder with a coded set ({path.stem.removesuffix('_agreement')})"
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        return ValiditySource(
            title, str(path), pd.DataFrame(columns=["code"]), note=f"cannot be read: {exc}"
        )
    if "code" not in raw.columns:
        return ValiditySource(
            title,
            str(path),
            pd.DataFrame(columns=["code"]),
            note="no `code` column: not a `textmine evaluate` table",
        )
    codes = set(codebook.code_columns)
    records = []
    for row in raw.to_dict("records"):
        if row.get("code") not in codes:
            continue
        record: dict[str, Any] = {"code": row["code"]}
        for metric in ("n", "gold_pos", "pred_pos", "precision", "recall", "f1", "kappa", "alpha"):
            if _number(row.get(metric)) is not None and not math.isnan(row[metric]):
                record[metric] = float(row[metric])
        tp, fp, fn, n = (_int(row.get(k)) for k in ("tp", "fp", "fn", "n"))
        if tp is not None and fp is not None and fn is not None and n is not None:
            if tp + fp:
                record["precision_low"], record["precision_high"] = wilson_interval(tp, tp + fp)
            if tp + fn:
                record["recall_low"], record["recall_high"] = wilson_interval(tp, tp + fn)
            kappa_ci = _kappa_interval(tp, fp, fn, n)
            if kappa_ci is not None and "kappa" in record:
                record["kappa_low"], record["kappa_high"] = kappa_ci
        records.append(record)
    table = _metric_table(records, codebook)
    summary = raw[~raw["code"].isin(codes)]
    details = {}
    for row in summary.to_dict("records"):
        value = _number(row.get("f1"))
        if value is not None and not math.isnan(value):
            details[str(row["code"]).replace("_", " ")] = f"{value:.3f}"
    return ValiditySource(
        title,
        str(path),
        table,
        details,
        "" if not table.empty else "no rows for this codebook's codes",
    )


def read_validation_csv(path: Path, codebook: Codebook) -> ValiditySource:
    """A validation sample's design-weighted report (`textmine evaluate` on a `textmine sample`).

    Its rows for period "all": per code, the sentences checked, the human
    prevalence, the coder's bias (coder minus human), precision and recall,
    each with the 95% interval the file gives, and kappa.
    """
    title = (
        f"Validation sample of this corpus ({path.stem.removesuffix('_by_period')}): "
        "design-weighted agreement"
    )
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        return ValiditySource(
            title, str(path), pd.DataFrame(columns=["code"]), note=f"cannot be read: {exc}"
        )
    if not {"code", "period"} <= set(raw.columns):
        return ValiditySource(
            title,
            str(path),
            pd.DataFrame(columns=["code"]),
            note="no `code` and `period` columns: not a validation report",
        )
    rows = raw[raw["period"].astype(str) == ALL].rename(
        columns={
            "n_validation": "n",
            "human_ci_low": "human_share_ci_low",
            "human_ci_high": "human_share_ci_high",
        }
    )
    records = [
        {k: v for k, v in row.items() if not _missing_value(v)} for row in rows.to_dict("records")
    ]
    table = _metric_table(
        [r for r in records if r.get("code") in set(codebook.code_columns)], codebook
    )
    return ValiditySource(
        title, str(path), table, note="" if not table.empty else "no rows for this codebook's codes"
    )


def _missing_value(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _int(value: object) -> int | None:
    number = _number(value)
    if number is None or math.isnan(number):
        return None
    return int(number)


def _kappa_interval(tp: int, fp: int, fn: int, n: int) -> tuple[float, float] | None:
    tn = n - tp - fp - fn
    if n <= 0 or tn < 0:
        return None
    po = (tp + tn) / n
    pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    if pe >= 1:
        return None
    kappa = (po - pe) / (1 - pe)
    half = 1.96 * math.sqrt(max(po * (1 - po), 0.0) / n) / (1 - pe)
    return max(-1.0, kappa - half), min(1.0, kappa + half)


# -- reproducibility ----------------------------------------------------------------------


def corpus_hash(doc_ids: list[str]) -> str:
    """A hash of the corpus's content: SHA-256 of the sorted document ids (content hashes)."""
    digest = hashlib.sha256("\n".join(sorted(set(doc_ids))).encode())
    return digest.hexdigest()[:16]


def _reproducibility(
    store,
    codebook: Codebook,
    coded: pd.DataFrame,
    documents: pd.DataFrame,
    record: Mapping[str, Any],
) -> dict[str, str]:
    kept = documents[documents["duplicate_of"] == ""]
    model = None
    if "model_version" in coded.columns and len(coded):
        model = ", ".join(sorted(coded["model_version"].dropna().astype(str).unique()))
    if not model:
        model = record.get("model_version") or getattr(store, "model_version", None)
    values = {
        "textmine version (this report)": textmine.__version__,
        "textmine version (run)": str(record.get("textmine_version") or ""),
        "codebook": f"{codebook.name} ({codebook.path})",
        "codebook version (report)": codebook.version,
        "codebook version (store)": str(_store_codebook_version(store) or ""),
        "model version": str(model) if model else "not recorded (rule coder)",
        "corpus hash (sorted document content hashes)": corpus_hash(kept["doc_id"].tolist()),
        "store fingerprint": store.fingerprint(),
        "run id": str(record.get("run_id") or ""),
        "python (this report)": sys.version.split()[0],
    }
    return {k: v for k, v in values.items() if v}


def _runs(store) -> pd.DataFrame:
    frame = store.runs()
    return frame.tail(10).reset_index(drop=True)
