"""Grouped cross-validation folds and agreement figures with cluster-bootstrap intervals.

Folds are built from whole groups (the `source` of a sentence: one web page
or one report), so no page or report sits on both sides of a split. The 95%
intervals resample groups, not sentences (a cluster bootstrap), because
sentences of one source are not independent.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

METRIC_COLUMNS = [
    "code",
    "kind",
    "n",
    "positives",
    "predicted",
    "tp",
    "fp",
    "fn",
    "precision",
    "recall",
    "f1",
    "f1_low",
    "f1_high",
    "kappa",
    "kappa_low",
    "kappa_high",
    "threshold",
]
MICRO_TYPES = "micro_f1_types"


def group_folds(groups: Sequence | np.ndarray, k: int) -> np.ndarray:
    """Fold number (0..k-1) of each row; rows of one group always share a fold.

    Groups are dealt largest first to the fold with fewest rows so far, ties
    broken by a hash of the group name: deterministic, balanced, independent
    of row order. Fewer groups than k gives one fold per group.
    """
    labels = pd.Series([str(g) for g in groups])
    sizes = labels.value_counts()
    k = max(1, min(k, len(sizes)))
    order = sorted(sizes.index, key=lambda g: (-sizes[g], hashlib.sha1(g.encode()).hexdigest()))
    load = np.zeros(k, dtype=int)
    fold_of: dict[str, int] = {}
    for group in order:
        fold = int(np.argmin(load))
        fold_of[group] = fold
        load[fold] += sizes[group]
    return labels.map(fold_of).to_numpy()


def _kappa(tp, fp, fn, tn):
    n = tp + fp + fn + tn
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (tp + tn) / n
        expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        return np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)


def _f1(tp, fp, fn):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)


def _interval(values: np.ndarray) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def agreement_with_intervals(
    gold: np.ndarray,
    predicted: np.ndarray,
    groups: Sequence | np.ndarray,
    codes: Sequence[str],
    kinds: dict[str, str],
    *,
    thresholds: dict[str, float] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per code (METRIC_COLUMNS) plus a micro-F1 row over the partnership types.

    `gold` and `predicted` are 0/1 arrays [rows, codes]. Intervals: 95%
    percentile intervals of `resamples` cluster-bootstrap resamples of groups.
    """
    gold = np.asarray(gold, dtype=int)
    predicted = np.asarray(predicted, dtype=int)
    group_ids, group_index = np.unique([str(g) for g in groups], return_inverse=True)
    n_groups = len(group_ids)

    def per_group(mask: np.ndarray) -> np.ndarray:  # [groups, codes]
        out = np.zeros((n_groups, gold.shape[1]))
        np.add.at(out, group_index, mask.astype(float))
        return out

    cells = {
        "tp": per_group((gold == 1) & (predicted == 1)),
        "fp": per_group((gold == 0) & (predicted == 1)),
        "fn": per_group((gold == 1) & (predicted == 0)),
        "tn": per_group((gold == 0) & (predicted == 0)),
    }
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups), size=resamples)
    boot = {name: draws @ table for name, table in cells.items()}  # [resamples, codes]
    total = {name: table.sum(0) for name, table in cells.items()}
    rows = []
    for j, code in enumerate(codes):
        tp, fp, fn, tn = (total[c][j] for c in ("tp", "fp", "fn", "tn"))
        kappa = float(_kappa(tp, fp, fn, tn))
        f1 = float(_f1(tp, fp, fn))
        kappa_low, kappa_high = _interval(
            _kappa(*(boot[c][:, j] for c in ("tp", "fp", "fn", "tn")))
        )
        f1_low, f1_high = _interval(_f1(*(boot[c][:, j] for c in ("tp", "fp", "fn"))))
        rows.append(
            {
                "code": code,
                "kind": kinds.get(code, ""),
                "n": int(tp + fp + fn + tn),
                "positives": int(tp + fn),
                "predicted": int(tp + fp),
                "tp": int(tp),
                "fp": int(fp),
                "fn": int(fn),
                "precision": tp / (tp + fp) if tp + fp else math.nan,
                "recall": tp / (tp + fn) if tp + fn else math.nan,
                "f1": f1,
                "f1_low": f1_low,
                "f1_high": f1_high,
                "kappa": kappa,
                "kappa_low": kappa_low,
                "kappa_high": kappa_high,
                "threshold": (thresholds or {}).get(code, math.nan),
            }
        )
    types = [j for j, c in enumerate(codes) if kinds.get(c) == "partnership"]
    if types:
        tp, fp, fn = (total[c][types].sum() for c in ("tp", "fp", "fn"))
        low, high = _interval(_f1(*(boot[c][:, types].sum(1) for c in ("tp", "fp", "fn"))))
        rows.append(
            {
                "code": MICRO_TYPES,
                "kind": "summary",
                "n": len(gold),
                "tp": int(tp),
                "fp": int(fp),
                "fn": int(fn),
                "precision": tp / (tp + fp) if tp + fp else math.nan,
                "recall": tp / (tp + fn) if tp + fn else math.nan,
                "f1": float(_f1(tp, fp, fn)),
                "f1_low": low,
                "f1_high": high,
            }
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def _cell(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def metrics_markdown(table: pd.DataFrame, title: str, notes: Sequence[str] = ()) -> str:
    """A readable Markdown report of an agreement table."""
    lines = [
        f"# {title}",
        "",
        *notes,
        "",
        "| code | positives | predicted | precision | recall | F1 [95% CI] | kappa [95% CI] "
        "| threshold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table.to_dict("records"):
        f1 = f"{_cell(row['f1'])} [{_cell(row['f1_low'])}, {_cell(row['f1_high'])}]"
        kappa = (
            f"{_cell(row['kappa'])} [{_cell(row['kappa_low'])}, {_cell(row['kappa_high'])}]"
            if row["kind"] != "summary"
            else ""
        )
        counts = [
            _cell(int(row[c])) if row[c] == row[c] and row[c] is not None else ""
            for c in ("positives", "predicted")
        ]
        lines.append(
            f"| {row['code']} | {counts[0]} | {counts[1]} "
            f"| {_cell(row['precision'])} | {_cell(row['recall'])} | {f1} | {kappa} "
            f"| {_cell(row['threshold'], 2)} |"
        )
    return "\n".join(lines) + "\n"


def write_metrics(
    folder: Path,
    table: pd.DataFrame,
    summary: dict,
    title: str,
    notes: Sequence[str] = (),
    parts: dict[str, pd.DataFrame] | None = None,
) -> None:
    """metrics.json (summary + rows), metrics.csv and metrics.md in `folder`.

    `parts`: the same figures for subsets of the rows (e.g. one coded-set file),
    appended to metrics.md and stored in metrics.json under `by_file`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    records = _records(table)
    parts = parts or {}
    by_file = {name: _records(part) for name, part in parts.items()}
    document = {**summary, "per_code": records, **({"by_file": by_file} if by_file else {})}
    (folder / "metrics.json").write_text(
        json.dumps(document, indent=2, default=_json_default) + "\n", encoding="utf-8"
    )
    table.to_csv(folder / "metrics.csv", index=False)
    markdown = metrics_markdown(table, title, notes)
    for name, part in parts.items():
        markdown += "\n" + metrics_markdown(part, f"Rows of {name} only", ()).replace(
            "# ", "## ", 1
        )
    (folder / "metrics.md").write_text(markdown, encoding="utf-8")


def _records(table: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in table.to_dict("records")
    ]


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
