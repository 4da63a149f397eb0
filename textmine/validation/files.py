"""Sample and validation files: read them, check them, and join human codes to a sample.

A *sample file* is what `textmine sample` writes (`FILE.csv`, or `FILE.sample.csv`
beside `FILE.qdpx`): id, sentence, empty code columns, then the design columns
(`design.DESIGN_COLUMNS`). A *validation file* is a sample whose code columns
hold the human codes (0/1): the sample CSV filled in by hand, or
`textmine import-qdpx CODED.qdpx --sample FILE.sample.csv`, which joins the
codes read from QDA software to the sample by sentence id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from textmine.coded_sets import SentenceCsvError, read_sentence_csv
from textmine.validation.design import DESIGN_COLUMNS, parse_stratified_by


class ValidationError(ValueError):
    """A sample or validation file that cannot be used; the message names the file and the problem."""


def _read(path: str | Path, what: str) -> pd.DataFrame:
    try:
        return read_sentence_csv(path, what)
    except SentenceCsvError as error:
        raise ValidationError(str(error)) from error


def _examples(ids: pd.Series, limit: int = 5) -> str:
    values = ids.astype(str).tolist()
    return ", ".join(values[:limit]) + (
        f" and {len(values) - limit} more" if len(values) > limit else ""
    )


def read_sample(path: str | Path) -> pd.DataFrame:
    """A sample file written by `textmine sample`: id and the design columns (codes may be empty)."""
    frame = _read(path, "sample file")
    missing = [c for c in ("id", "inclusion_prob", "strategy") if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"sample file {path} lacks column(s) {', '.join(missing)}: "
            "it was not written by `textmine sample`"
        )
    duplicated = frame["id"][frame["id"].duplicated()]
    if len(duplicated):
        raise ValidationError(f"sample file {path}: id(s) appear twice: {_examples(duplicated)}")
    return frame


def check_validation(
    frame: pd.DataFrame, path: str | Path, code_columns: Sequence[str]
) -> pd.DataFrame:
    """Check a validation sample already read as text; return it with typed columns.

    Needs `id`, at least one of `code_columns` holding 0/1 on every row, and
    `inclusion_prob` in (0, 1]; `stratum` (with `stratum_size`) is optional:
    without it each distinct inclusion probability is taken as a stratum of
    size n_h / inclusion_prob. Raises ValidationError naming the file and the
    rows at fault.
    """
    if "id" not in frame.columns:
        raise ValidationError(f"validation file {path} has no `id` column")
    if frame.empty:
        raise ValidationError(f"validation file {path} has no rows")
    duplicated = frame["id"][frame["id"].duplicated()]
    if len(duplicated):
        raise ValidationError(
            f"validation file {path}: id(s) appear twice: {_examples(duplicated)}"
        )
    if "strategy" in frame.columns and (frame["strategy"].astype(str) == "uncertain").any():
        raise ValidationError(
            f"validation file {path} was drawn with --strategy uncertain: its selection "
            "probabilities are unknown, so it cannot correct trends (use it to train a coder; "
            "draw a --strategy random sample to correct trends)"
        )
    if "inclusion_prob" not in frame.columns:
        raise ValidationError(
            f"validation file {path} has no `inclusion_prob` column: a validation file is a "
            "sample drawn by `textmine sample` with the human codes filled in (or imported with "
            "`textmine import-qdpx CODED.qdpx --sample FILE.sample.csv`)"
        )
    frame = _typed_codes(frame.copy(), path, code_columns)
    prob = pd.to_numeric(frame["inclusion_prob"], errors="coerce")
    bad = ~((prob > 0) & (prob <= 1))
    if bad.any():
        raise ValidationError(
            f"validation file {path}: inclusion_prob must be a number in (0, 1]; "
            f"{int(bad.sum())} row(s) are not, e.g. id(s) {_examples(frame.loc[bad, 'id'])}"
        )
    frame["inclusion_prob"] = prob.astype(float)
    frame = _typed_strata(frame, path)
    _check_design(frame, path)
    return frame


def _typed_codes(frame: pd.DataFrame, path, code_columns: Sequence[str]) -> pd.DataFrame:
    codes = [c for c in code_columns if c in frame.columns]
    if not codes:
        raise ValidationError(
            f"validation file {path} has none of the code columns {', '.join(code_columns)}"
        )
    for code in codes:
        text = frame[code].astype(str).str.strip()
        bad = ~text.isin(["0", "1", "0.0", "1.0"])
        if bad.any():
            raise ValidationError(
                f"validation file {path}: column {code} must hold 0 or 1 on every row; "
                f"{int(bad.sum())} row(s) do not (empty means not coded yet), e.g. id(s) "
                f"{_examples(frame.loc[bad, 'id'])}"
            )
        frame[code] = text.astype(float).astype("int64")
    return frame


def _typed_strata(frame: pd.DataFrame, path) -> pd.DataFrame:
    """`stratum` and integer `stratum_size`, checked; one stratum per probability when absent."""
    if "stratum" not in frame.columns or (frame["stratum"].astype(str) == "").all():
        frame["stratum"] = "p=" + frame["inclusion_prob"].map(lambda p: f"{p:.10g}")
        counts = frame.groupby("stratum")["id"].transform("size")
        frame["stratum_size"] = np.rint(counts / frame["inclusion_prob"]).astype("int64")
        return frame
    frame["stratum"] = frame["stratum"].astype(str)
    if "stratum_size" not in frame.columns:
        raise ValidationError(f"validation file {path} has `stratum` but no `stratum_size` column")
    size = pd.to_numeric(frame["stratum_size"], errors="coerce")
    bad = size.isna() | (size < 1)
    if bad.any():
        raise ValidationError(
            f"validation file {path}: stratum_size must be a positive whole "
            f"number, e.g. id(s) {_examples(frame.loc[bad, 'id'])}"
        )
    frame["stratum_size"] = size.astype("int64")
    varying = frame.groupby("stratum")["stratum_size"].nunique()
    if (varying > 1).any():
        raise ValidationError(
            f"validation file {path}: stratum_size differs within stratum "
            f"{varying[varying > 1].index[0]!r}"
        )
    counts = frame.groupby("stratum").agg(n=("id", "size"), size=("stratum_size", "first"))
    too_many = counts[counts["n"] > counts["size"]]
    if len(too_many):
        raise ValidationError(
            f"validation file {path}: stratum {too_many.index[0]!r} has more "
            "sampled sentences than its stratum_size"
        )
    return frame


def _check_design(frame: pd.DataFrame, path) -> None:
    if "stratified_by" not in frame.columns:
        return
    designs = sorted({d for d in frame["stratified_by"].astype(str) if d})
    if len(designs) > 1:
        raise ValidationError(
            f"validation file {path} mixes designs {designs}: "
            "combine only samples drawn with the same --by and strata"
        )
    for design in designs:
        try:
            parse_stratified_by(design)
        except ValueError as error:
            raise ValidationError(f"validation file {path}: {error}") from error


def read_validation(path: str | Path, code_columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read and check a validation file (see `check_validation`).

    `code_columns` are the codebook's (default: the packaged codebook's);
    codes the file lacks are simply not corrected.
    """
    if code_columns is None:
        from textmine.codebook import load_codebook

        code_columns = load_codebook().code_columns
    return check_validation(_read(path, "validation file"), path, list(code_columns))


def attach_sample(
    coded_set: pd.DataFrame, sample: pd.DataFrame, sample_path: str | Path
) -> tuple[pd.DataFrame, list[str]]:
    """The rows of a human coded set (from `read_qdpx`) that belong to a sample, with its design columns.

    Rows keep the coded-set columns (id, sentence, codes, doc_id, source) and
    gain the sample's design columns; they follow the sample's order. Sampled
    sentences absent from the coded set (their document was not in the QDA
    project) are left out and reported. Raises ValidationError when none is found.
    """
    wanted = sample["id"].astype(str)
    found = wanted.isin(set(coded_set["id"].astype(str)))
    if not found.any():
        raise ValidationError(
            f"none of the {len(sample)} sentences of sample {sample_path} is in the "
            "coded project: was it exported from this sample and this corpus?"
        )
    notes = []
    if not found.all():
        notes.append(
            f"{int((~found).sum())} sampled sentence(s) are not in the project and are left "
            f"out (their documents were not matched), e.g. {_examples(wanted[~found])}"
        )
    design = [c for c in DESIGN_COLUMNS if c in sample.columns and c not in ("doc_id",)]
    if "uncertainty" in sample.columns:
        design.append("uncertainty")
    keyed = sample.loc[found, ["id", *design]].assign(id=lambda f: f["id"].astype(str))
    coded = coded_set.assign(id=coded_set["id"].astype(str))
    coded = coded.drop(columns=[c for c in design if c in coded.columns])
    joined = keyed[["id"]].merge(coded, on="id", how="left").merge(keyed, on="id", how="left")
    return joined.reset_index(drop=True), notes


def import_sample_coding(imported, sample_path: str | Path):
    """An `ImportedCoding` (from `read_qdpx`) narrowed to the sample in `sample_path`.

    The coded set keeps only the sampled sentences, in the sample's order,
    with its design columns (a validation file); the warning about codings
    of the sample's marker code is dropped, notes about missing sentences added.
    """
    import re
    from dataclasses import replace

    from textmine.validation.qdpx import SAMPLE_CODE

    sample = read_sample(sample_path)
    coded_set, notes = attach_sample(imported.coded_set, sample, sample_path)
    marker = re.compile(rf"(, )?{re.escape(SAMPLE_CODE)} \(\d+\)(, )?")
    warnings = []
    for warning in imported.warnings:
        if SAMPLE_CODE in warning:
            warning = marker.sub(lambda m: ", " if m.group(1) and m.group(2) else "", warning)
            if warning.rstrip().endswith(":"):  # the marker was the only unknown code
                continue
        warnings.append(warning)
    return replace(imported, coded_set=coded_set, warnings=[*warnings, *notes])
