"""Everything a run writes into its output folder, registered in the store so none goes stale.

Each written file is registered (`Store.register_outputs`) with the store
fingerprint it was made from. A run whose store changed regenerates every
registered output it can make (the export formats a researcher wrote into the
folder included), and removes and lists the ones it cannot (a file exported
under another name, a figure no longer drawn).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from textmine import __version__
from textmine.atomic import write_csv_atomic, write_json_atomic
from textmine.columns import DOCUMENT_COLUMNS, FAILURE_COLUMNS
from textmine.run.settings import EXPORT_FORMATS, RunReport, RunSettings
from textmine.store import Store

if TYPE_CHECKING:
    from textmine.codebook import Codebook
    from textmine.run.topic_job import TopicJob
    from textmine.topics import TopicOutputs

RUN_JSON = "run.json"
REPORT_HTML = "report.html"
TOPIC_FILES = ("topics.csv", "doc_topics.csv", "topics_over_time.csv")
TREND_FILES = {
    "stance_trends": "stance_trends.csv",
    "partnership_trends": "partnership_trends.csv",
    "document_shares": "document_shares.csv",
}


@dataclass
class AnalysisTables:
    """What the analysis stages made this run (None when a stage did not run or failed)."""

    trends: dict[str, pd.DataFrame] | None = None
    topic_outputs: TopicOutputs | None = None
    coded_sentences: pd.DataFrame | None = None  # read once from the store, shared with outputs
    # `Store.sentences()` as read after reading; the sentences table is unchanged since
    sentences: pd.DataFrame | None = None
    # the topic stage running in its own process (textmine.run.topic_job), until waited for
    topic_job: TopicJob | None = None
    topic_notes_at: int = 0  # where its notes go in the run's notes
    topic_figures: list[Path] = field(default_factory=list)  # the figure files it wrote
    topic_figure_error: BaseException | None = None


OUTPUT_SETTINGS_KEY = "output_settings"
# the fingerprint the figures were last drawn from (also when there was nothing to draw)
FIGURES_DRAWN_KEY = "figures_drawn"


def outputs_fingerprint(store: Store) -> str:
    """What the outputs are made from: the store's state and the textmine version."""
    return f"{store.fingerprint()}/{__version__}"


def _settings_key(settings: RunSettings) -> str:
    return json.dumps(settings.output_settings(), sort_keys=True)


def registered_formats(store: Store) -> set[str]:
    """Export formats written into the folder before (by a run or `textmine export`)."""
    kinds = set(store.registered_outputs()["kind"]) if store is not None else set()
    return kinds & set(EXPORT_FORMATS)


def outputs_are_fresh(store: Store, settings: RunSettings, fingerprint: str) -> bool:
    """True when every registered output exists and was made from this fingerprint."""
    if settings.refit_topics or store.get_meta(OUTPUT_SETTINGS_KEY) != _settings_key(settings):
        return False
    registered = store.registered_outputs()
    if registered.empty:
        return False
    out = settings.out_dir
    names = set(registered["path"])
    needed = {"sentences.csv", "failures.csv", "documents.csv", RUN_JSON}
    if "export" in settings.stages and "csv" in settings.formats:
        needed.add("coded_sentences.csv")
    if store.coding is not None:
        needed.add(REPORT_HTML)
        if "trends" in settings.stages:
            needed.update(TREND_FILES.values())
        if "topics" in settings.stages:
            needed.update(TOPIC_FILES)
    if not needed <= names:
        return False
    if (
        "figures" in settings.stages
        and store.coding is not None
        and not any(name.startswith("figures/") for name in names)
        and store.get_meta(FIGURES_DRAWN_KEY) != fingerprint  # none to draw (no dated periods)
    ):
        return False
    missing_formats = set(settings.formats) - set(registered["kind"])
    if "export" in settings.stages and missing_formats:
        return False
    return bool(
        (registered["fingerprint"] == fingerprint).all()
        and all((out / p).exists() for p in registered["path"])
    )


def write_outputs(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    analysis: AnalysisTables,
    *,
    codebook: Codebook | None,
    fingerprint: str,
    run_id: int | None,
    wait_for_topics: Callable[[], None] | None = None,
) -> list[Path]:
    """Regenerate every output from the store, register them, remove the stale rest.

    When the topic stage runs in its own process (`analysis.topic_job`), the
    outputs that do not need topics are written first, then `wait_for_topics`
    is called (it sets `analysis.topic_outputs` and the topic tables of the
    store), then the topic tables, the topic figure and the report. The files
    and their order in `report.outputs` are the same either way.
    """
    out = settings.out_dir
    written = _write_corpus_tables(store, settings, report, analysis, codebook)
    trend_files: list[Path] = []
    if analysis.trends:
        for name, frame in analysis.trends.items():
            path = out / TREND_FILES.get(name, f"{name}.csv")
            write_csv_atomic(path, frame)
            trend_files.append(path)
    pending_topics = analysis.topic_job is not None
    figures = "figures" in settings.stages and analysis.trends is not None
    figure_files: list[Path] = []
    if figures and pending_topics:  # the trend figures while the topics are fitted
        figure_files = _figures(report, analysis.trends, None, out, settings, codebook)
    if pending_topics and wait_for_topics is not None:
        wait_for_topics()
    if analysis.topic_outputs is not None:
        written["topics"] = list(analysis.topic_outputs.write(out))
    if analysis.trends:
        written["trends"] = trend_files
    if figures:
        if not pending_topics:
            figure_files = _figures(
                report, analysis.trends, analysis.topic_outputs, out, settings, codebook
            )
        elif analysis.topic_figure_error is not None:
            report.stage_error("figures", analysis.topic_figure_error)
        written["figure"] = _in_figure_order(analysis.topic_figures + figure_files)
    elif analysis.topic_figures:  # drawn alongside, but the run draws no figures after all
        for path in analysis.topic_figures:
            path.unlink(missing_ok=True)
    if codebook is not None:
        try:
            from textmine.report import write_report

            record = {"settings": settings.to_dict(), **report.to_dict()}
            written["report"] = [
                write_report(
                    store,
                    out,
                    codebook,
                    run_record=record,
                    coded_sentences=analysis.coded_sentences,
                )
            ]
        except Exception as exc:  # the report is a view on the tables: report, keep the run
            report.stage_error("report", exc)
    written["run"] = [out / RUN_JSON]
    return _register_written(store, settings, report, written, fingerprint, run_id)


def _register_written(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    written: dict[str, list[Path]],
    fingerprint: str,
    run_id: int | None,
) -> list[Path]:
    """Register the written files (none after a stage error), remove stale ones; the files."""
    out = settings.out_dir
    all_written = [p for paths in written.values() for p in paths]
    report.outputs = [str(p) for p in all_written]
    report.outputs_removed = remove_stale_outputs(store, out, all_written)
    report.counts.outputs_removed = len(report.outputs_removed)
    report.outputs_regenerated = True
    if not report.counts.stage_errors:  # else the next run tries again
        for kind, paths in written.items():
            store.register_outputs(_relative(paths, out), kind, fingerprint, run_id)
        store.set_meta(OUTPUT_SETTINGS_KEY, _settings_key(settings))
        store.set_meta(FIGURES_DRAWN_KEY, fingerprint if "figure" in written else "")
    else:
        store.forget_outputs(_relative(all_written, out))
    return all_written


def _write_corpus_tables(
    store: Store,
    settings: RunSettings,
    report: RunReport,
    analysis: AnalysisTables,
    codebook: Codebook | None,
) -> dict[str, list[Path]]:
    """The export formats, documents.csv, sentences.csv and failures.csv; {kind: files}."""
    out = settings.out_dir
    written: dict[str, list[Path]] = {}
    coded = (
        analysis.coded_sentences
        if analysis.coded_sentences is not None
        else store.coded_sentences()
    )
    listing = store.documents(include_duplicates=True)  # duplicate files listed, zero counts
    formats = list(settings.formats) if "export" in settings.stages else []
    formats += sorted(registered_formats(store) - set(formats))
    if ("qdpx" in formats or "qdc" in formats) and codebook is None:
        report.notes.append("REFI-QDA exports need the codebook: run with the code stage")
        formats = [f for f in formats if f not in ("qdpx", "qdc")]
    if formats:
        from textmine.export import write_exports

        for fmt in formats:
            written[fmt] = write_exports(
                listing,
                coded,
                out,
                formats=[fmt],
                doc_texts=store.document_texts() if fmt == "qdpx" else None,
                codebook=codebook,
            )
    if "csv" not in formats:
        path = out / "documents.csv"
        write_csv_atomic(
            path,
            listing[[c for c in listing.columns if c in DOCUMENT_COLUMNS or c.startswith("n_")]],
        )
        written["table"] = [path]
    written.setdefault("table", [])
    failures = failures_table(store, report)
    sentences = analysis.sentences if analysis.sentences is not None else store.sentences()
    for name, frame in (("sentences.csv", sentences), ("failures.csv", failures)):
        write_csv_atomic(out / name, frame)
        written["table"].append(out / name)
    return written


def failures_table(store: Store, report: RunReport) -> pd.DataFrame:
    """The rows of failures.csv: unreadable files, then this run's coding failures.

    A document the coder failed on has reason `coding_error`; it is coded again on
    the next run.
    """
    read = store.failures()
    coding = [f for f in report.failures if f.get("stage") == "coding"]
    if not coding:
        return read
    rows = pd.DataFrame(
        [{"path": f["path"], "reason": f["reason"], "message": f["message"]} for f in coding]
    ).reindex(columns=FAILURE_COLUMNS, fill_value="")
    return pd.concat([read, rows], ignore_index=True)[FAILURE_COLUMNS]


def _figures(
    report: RunReport,
    trends: dict[str, pd.DataFrame] | None,
    topic_outputs: TopicOutputs | None,
    out: Path,
    settings: RunSettings,
    codebook: Codebook | None,
) -> list[Path]:
    """The figures of these tables; a failure is noted in the report (charts are a view)."""
    try:
        from textmine.figures import write_figures

        return list(
            write_figures(trends, topic_outputs, out / "figures", by=settings.by, codebook=codebook)
        )
    except Exception as exc:
        report.stage_error("figures", exc)
        return []


def _in_figure_order(paths: list[Path]) -> list[Path]:
    """Figure files once each, the shared plotly.min.js last (as `write_figures` lists them)."""
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if p.suffix != ".js"] + [p for p in unique if p.suffix == ".js"]


def register_export(store: Store, out_dir: Path, paths: Iterable[Path], kind: str) -> None:
    """Register files `textmine export` wrote into the store's folder (others are not tracked)."""
    inside = [p for p in paths if _is_inside(p, out_dir)]
    if inside:
        store.register_outputs(_relative(inside, out_dir), kind, outputs_fingerprint(store), None)


def remove_stale_outputs(store: Store, out_dir: Path, written: list[Path]) -> list[str]:
    """Delete registered outputs this run did not regenerate; return their paths."""
    keep = set(_relative(written, out_dir))
    removed = []
    for name in store.registered_outputs()["path"]:
        if name in keep:
            continue
        path = out_dir / name
        if path.is_file():
            path.unlink()
        removed.append(name)
    store.forget_outputs(removed)
    return removed


def write_run_json(settings: RunSettings, report: RunReport) -> Path:
    """run.json: the settings and the report of the run."""
    path = settings.out_dir / RUN_JSON
    write_json_atomic(path, {"settings": settings.to_dict(), **report.to_dict()})
    return path


def _relative(paths: Iterable[Path], out_dir: Path) -> list[str]:
    root = out_dir.resolve()
    return [Path(p).resolve().relative_to(root).as_posix() for p in paths]


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
