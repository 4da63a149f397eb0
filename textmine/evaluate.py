"""Agreement between machine (or any second) coding and a gold coded set.

Per code: precision, recall, F1, Cohen's kappa and Krippendorff's alpha
(nominal, two coders); summaries: macro F1 over the stance codes and micro F1
over the partnership types. `disagreements` lists every sentence/code where
the two codings differ, with the tagger's evidence, for error analysis.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from textmine.codebook import load_codebook
from textmine.columns import EVIDENCE

TABLE_COLUMNS = [
    "code",
    "kind",
    "n",
    "gold_pos",
    "pred_pos",
    "tp",
    "fp",
    "fn",
    "precision",
    "recall",
    "f1",
    "kappa",
    "alpha",
]
DISAGREEMENT_COLUMNS = ["id", "sentence", "code", "gold", "predicted", "evidence"]
MACRO_STANCE = "macro_f1_stance"
MICRO_TYPES = "micro_f1_partnership_types"


def _as_binary(values: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(values).astype(int)
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError("codes must be 0 or 1")
    return arr


def cohen_kappa(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cohen's kappa of two 0/1 codings; NaN when chance agreement is 1 (both constant)."""
    first, second = _as_binary(a), _as_binary(b)
    n = len(first)
    if n == 0:
        return math.nan
    observed = float(np.mean(first == second))
    pa, pb = first.mean(), second.mean()
    expected = float(pa * pb + (1 - pa) * (1 - pb))
    if expected == 1.0:
        return math.nan
    return (observed - expected) / (1 - expected)


def krippendorff_alpha_nominal(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Krippendorff's alpha, nominal metric, two coders, no missing values.

    alpha = 1 - (n - 1) * D_o / D_e over the coincidence matrix, with
    n = 2 * units pairable values; NaN when every value is the same.
    """
    first, second = np.asarray(a), np.asarray(b)
    if len(first) != len(second):
        raise ValueError("both codings must have the same length")
    values = np.concatenate([first, second])
    n = len(values)
    if n < 2:
        return math.nan
    # each unit contributes the ordered pairs (a, b) and (b, a), weight 1/(m_u - 1) = 1
    disagreements_observed = 2 * float(np.sum(first != second))
    _, counts = np.unique(values, return_counts=True)
    disagreements_expected = float(n * n - np.sum(counts.astype(float) ** 2))
    if disagreements_expected == 0:
        return math.nan
    return 1.0 - (n - 1) * disagreements_observed / disagreements_expected


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = math.nan if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    return precision, recall, f1


def agreement_table(
    gold: pd.DataFrame,
    pred: pd.DataFrame,
    codes: Sequence[str],
    *,
    stance_codes: Sequence[str] | None = None,
    partnership_codes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per code plus the two summary rows (macro F1 stance, micro F1 types).

    `gold` and `pred` must be aligned row by row (see align_predictions).
    `stance_codes` and `partnership_codes` say which kind each code is
    (default: the packaged codebook's; pass your codebook's for added codes).
    """
    if stance_codes is None or partnership_codes is None:
        codebook = load_codebook()
        stance_codes = codebook.stance_codes if stance_codes is None else stance_codes
        partnership_codes = (
            codebook.partnership_codes if partnership_codes is None else partnership_codes
        )
    rows = []
    for code in codes:
        g, p = _as_binary(gold[code]), _as_binary(pred[code])
        tp = int(np.sum((g == 1) & (p == 1)))
        fp = int(np.sum((g == 0) & (p == 1)))
        fn = int(np.sum((g == 1) & (p == 0)))
        precision, recall, f1 = _prf(tp, fp, fn)
        kind = "stance" if code in stance_codes else "partnership"
        rows.append(
            {
                "code": code,
                "kind": kind,
                "n": len(g),
                "gold_pos": int(g.sum()),
                "pred_pos": int(p.sum()),
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "kappa": cohen_kappa(g, p),
                "alpha": krippendorff_alpha_nominal(g, p),
            }
        )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    stance = table[table.code.isin(stance_codes)]
    macro = float(stance.f1.mean()) if len(stance) else math.nan
    types = table[table.code.isin(partnership_codes)]
    tp, fp, fn = int(types.tp.sum()), int(types.fp.sum()), int(types.fn.sum())
    micro_p, micro_r, micro = _prf(tp, fp, fn)
    summary = pd.DataFrame(
        [
            {"code": MACRO_STANCE, "kind": "summary", "n": len(gold), "f1": macro},
            {
                "code": MICRO_TYPES,
                "kind": "summary",
                "n": len(gold),
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "precision": micro_p,
                "recall": micro_r,
                "f1": micro,
            },
        ],
        columns=TABLE_COLUMNS,
    )
    combined = pd.concat([table, summary], ignore_index=True)
    for column in ("n", "gold_pos", "pred_pos", "tp", "fp", "fn"):
        combined[column] = combined[column].astype("Int64")
    return combined


def align_predictions(gold: pd.DataFrame, pred: pd.DataFrame, codes: Sequence[str]) -> pd.DataFrame:
    """Rows of `pred` in the order of `gold`, matched by `id` (or by `sentence_id`).

    Raises ValueError naming missing ids or code columns.
    """
    if "id" not in gold.columns:
        raise ValueError("the gold set has no `id` column")
    key = "id" if "id" in pred.columns else "sentence_id" if "sentence_id" in pred.columns else None
    if key is None:
        raise ValueError("the predictions have neither an `id` nor a `sentence_id` column")
    missing_codes = [c for c in codes if c not in pred.columns]
    if missing_codes:
        raise ValueError(f"the predictions lack code column(s) {', '.join(missing_codes)}")
    pred = pred.copy()
    pred["_key"] = pred[key].astype(str)
    duplicated = pred["_key"][pred["_key"].duplicated()].unique()
    if len(duplicated):
        raise ValueError(f"the predictions repeat {key}(s) {', '.join(duplicated[:5])}")
    indexed = pred.set_index("_key")
    gold_ids = gold["id"].astype(str)
    absent = [i for i in gold_ids if i not in indexed.index]
    if absent:
        raise ValueError(
            f"{len(absent)} gold sentence(s) have no prediction "
            f"(matched on {key}), e.g. {', '.join(absent[:5])}"
        )
    aligned = indexed.loc[list(gold_ids)].reset_index(drop=True)
    return aligned


def disagreements(
    gold: pd.DataFrame, pred: pd.DataFrame, codes: Sequence[str], *, text_column: str = "sentence"
) -> pd.DataFrame:
    """One row per (sentence, code) where gold and prediction differ, with the evidence."""
    rows = []
    has_evidence = EVIDENCE in pred.columns
    for i in range(len(gold)):
        evidence = {}
        if has_evidence and isinstance(pred[EVIDENCE].iloc[i], str) and pred[EVIDENCE].iloc[i]:
            try:
                evidence = json.loads(pred[EVIDENCE].iloc[i])
            except json.JSONDecodeError:
                evidence = {}
        for code in codes:
            g, p = int(gold[code].iloc[i]), int(pred[code].iloc[i])
            if g != p:
                matched = evidence.get(code, [])
                rows.append(
                    {
                        "id": gold["id"].iloc[i],
                        "sentence": gold[text_column].iloc[i] if text_column in gold else "",
                        "code": code,
                        "gold": g,
                        "predicted": p,
                        "evidence": "; ".join(
                            f"{m.get('text')} [{m.get('rule', '')}]" for m in matched
                        ),
                    }
                )
    return pd.DataFrame(rows, columns=DISAGREEMENT_COLUMNS)


def evaluate_coding(
    gold: pd.DataFrame, pred: pd.DataFrame, codes: Sequence[str], **kwargs
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Align `pred` to `gold`, then return (agreement table, disagreements)."""
    aligned = align_predictions(gold, pred, codes)
    return agreement_table(gold, aligned, codes, **kwargs), disagreements(gold, aligned, codes)
