"""The run report: one self-contained `report.html` a researcher reads in a browser.

`write_report` is the single way to build it: `textmine run`, the mine-corpus
flow and `textmine report` all call it. It reads through
`data.gather_report_data` and renders with `html.render_report` (pure).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from textmine.atomic import write_text_atomic
from textmine.codebook import Codebook
from textmine.report.data import REPORT_FILENAME, ReportData, gather_report_data
from textmine.report.html import render_report

__all__ = ["REPORT_FILENAME", "ReportData", "gather_report_data", "render_report", "write_report"]


def write_report(
    store,
    out_dir: str | os.PathLike,
    codebook: Codebook,
    *,
    run_record: Mapping[str, Any] | None = None,
    coded_sentences: pd.DataFrame | None = None,
) -> Path:
    """Build `out_dir/report.html` from the store and the run folder; return its path.

    Args:
        store: the open `textmine.store.Store` of `out_dir`.
        out_dir: the output folder.
        codebook: the codebook the corpus was coded with.
        run_record: the current run's record (`{"settings": ..., **RunReport.to_dict()}`)
            when `run.json` is not written yet; default: read `out_dir/run.json`.
        coded_sentences: `store.coded_sentences()` when the caller has read it already.

    The file is written atomically (a temporary file renamed into place).
    """
    data = gather_report_data(
        store, out_dir, codebook, run_record=run_record, coded_sentences=coded_sentences
    )
    path = Path(out_dir) / REPORT_FILENAME
    write_text_atomic(path, render_report(data))
    return path
