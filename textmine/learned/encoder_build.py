r"""Cross-validate the encoder + linear blend and write an encoder folder.

    python -m textmine.learned.encoder_build --finetuned RESULTS/rules_lr1e4.npz \
        --table TABLE_DIR --onnx model.int8.onnx --tokenizer tokenizer.json \
        --train ../shared/gold/train.csv --out ENCODER_DIR

RESULTS comes from textmine/learned/finetune.py (held-out and next-fold
probabilities of each grouped fold), TABLE_DIR from scripts/encoder_data.py.
The linear model is cross-validated here on the same folds. For held-out
fold k each code's threshold is chosen on fold k+1, coded by models fitted
without k and k+1, so no threshold sees the fold it is measured on; the
shipped thresholds come from all held-out probabilities.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from textmine.codebook import Codebook, load_codebook
from textmine.learned.encoder import write_encoder_folder
from textmine.learned.features import FeatureConfig
from textmine.learned.metrics import agreement_with_intervals, write_metrics
from textmine.learned.model import default_model_dir
from textmine.learned.train import (
    DEFAULT_C,
    LinearFit,
    TrainingSet,
    best_threshold,
    fit_linear,
    read_coded_sets,
    training_features,
)

DEFAULT_BLEND = 0.5


def teacher_labels(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """0/1 codes [rows, codes] the teacher gives unlabelled sentences."""
    return (probabilities >= thresholds).astype(np.int64)


def fit_student(
    features: list,
    labels: np.ndarray,
    pseudo_features: list,
    pseudo_labels: np.ndarray,
    config: FeatureConfig,
    c: float = DEFAULT_C,
) -> LinearFit:
    """The linear model fitted on coded sentences + teacher-coded ones."""
    rows = list(features) + list(pseudo_features)
    return fit_linear(rows, [], np.vstack([labels, pseudo_labels]), config, c)


def student_cross_validation(
    training: TrainingSet,
    codebook: Codebook,
    folds: np.ndarray,
    pseudo_features: list,
    teacher_by_fold: np.ndarray,
    teacher_following: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out (0/1 decisions, probabilities) of the distilled linear model on these folds.

    For fold k the teacher is the encoder fitted without fold k
    (`teacher_by_fold[k]`: its probabilities on the unlabelled sentences,
    turned into codes at thresholds chosen on fold k+1 from
    `teacher_following`); the student is fitted on the other folds + those
    teacher codes, its thresholds chosen on fold k+1 by a student fitted
    without k and k+1.
    """
    config = FeatureConfig()
    features = training_features(training, codebook, config)
    labels = training.labels
    fold_ids = sorted(np.unique(folds))
    teacher_thresholds = next_fold_thresholds(labels, teacher_following, folds)
    held = np.zeros(labels.shape)
    following = np.zeros(labels.shape)
    for j, k in enumerate(fold_ids):
        k_next = fold_ids[(j + 1) % len(fold_ids)]
        pseudo = teacher_labels(
            teacher_by_fold[j].astype(float), teacher_thresholds[np.argmax(folds == k)]
        )
        for fit, out, target in (
            (folds != k, folds == k, held),
            ((folds != k) & (folds != k_next), folds == k_next, following),
        ):
            fit_rows, out_rows = np.where(fit)[0], np.where(out)[0]
            student = fit_student(
                [features[i] for i in fit_rows], labels[fit_rows], pseudo_features, pseudo, config
            )
            target[out_rows] = student.probabilities([features[i] for i in out_rows], [], config)
    return (held >= next_fold_thresholds(labels, following, folds)).astype(np.int64), held


def linear_fold_probabilities(
    training: TrainingSet, codebook: Codebook, folds: np.ndarray, c: float = DEFAULT_C
) -> tuple[np.ndarray, np.ndarray]:
    """The linear model's (held-out, next-fold) probabilities [rows, codes] on these folds.

    Held-out: fitted without fold k, coding fold k. Next-fold: fitted without
    k and k+1, coding fold k+1 (stored on fold k+1's rows).
    """
    config = FeatureConfig()
    features = training_features(training, codebook, config)
    labels = training.labels
    fold_ids = sorted(np.unique(folds))
    held = np.zeros(labels.shape)
    following = np.zeros(labels.shape)
    for j, k in enumerate(fold_ids):
        k_next = fold_ids[(j + 1) % len(fold_ids)]
        fit = np.where(folds != k)[0]
        out = np.where(folds == k)[0]
        fitted = fit_linear([features[i] for i in fit], [], labels[fit], config, c)
        held[out] = fitted.probabilities([features[i] for i in out], [], config)
        fit = np.where((folds != k) & (folds != k_next))[0]
        out = np.where(folds == k_next)[0]
        fitted = fit_linear([features[i] for i in fit], [], labels[fit], config, c)
        following[out] = fitted.probabilities([features[i] for i in out], [], config)
    return held, following


def next_fold_thresholds(
    labels: np.ndarray, following: np.ndarray, folds: np.ndarray
) -> np.ndarray:
    """Per row and code: the threshold chosen on the next fold's probabilities."""
    fold_ids = sorted(np.unique(folds))
    out = np.zeros(labels.shape)
    for j, k in enumerate(fold_ids):
        rows = folds == fold_ids[(j + 1) % len(fold_ids)]
        for code in range(labels.shape[1]):
            out[folds == k, code] = best_threshold(labels[rows, code], following[rows, code])
    return out


def blend_cross_validation(
    labels: np.ndarray,
    folds: np.ndarray,
    encoder: tuple[np.ndarray, np.ndarray],
    linear: tuple[np.ndarray, np.ndarray],
    blend: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(held-out 0/1 decisions, shipped thresholds [codes]) of blend*encoder + (1-blend)*linear."""
    held = blend * encoder[0] + (1 - blend) * linear[0]
    following = blend * encoder[1] + (1 - blend) * linear[1]
    decisions = (held >= next_fold_thresholds(labels, following, folds)).astype(np.int64)
    final = np.array([best_threshold(labels[:, j], held[:, j]) for j in range(labels.shape[1])])
    return decisions, final


def build(args: argparse.Namespace) -> Path:
    """Cross-validate the blend and write the encoder folder with its metrics."""
    codebook = load_codebook(args.codebook) if args.codebook else load_codebook()
    codes = codebook.code_columns
    kinds = {c: codebook.codes[c].kind for c in codes}
    table = pd.read_parquet(args.table / "table.parquet")
    meta = json.loads((args.table / "table.json").read_text())
    if meta["codebook_version"] != codebook.version or meta["codes"] != codes:
        raise SystemExit(
            f"{args.table}: the table was made with codebook {meta['codebook_version']}, "
            f"not {codebook.version}"
        )
    train_rows = np.where(table["split"] == "train")[0]
    training = read_coded_sets([args.train], codebook)
    if training.frame["sentence"].tolist() != table["sentence"].iloc[train_rows].tolist():
        raise SystemExit(f"{args.train}: its sentences are not the table's train rows")
    folds = table["fold"].to_numpy()[train_rows]
    labels = training.labels
    results = np.load(args.finetuned)
    encoder = (
        results["held_probs"][train_rows].astype(float),
        results["inner_probs"][train_rows].astype(float),
    )
    linear = linear_fold_probabilities(training, codebook, folds)
    decisions, final = blend_cross_validation(labels, folds, encoder, linear, args.blend)
    groups = training.groups
    metrics = agreement_with_intervals(labels, decisions, groups, codes, kinds, resamples=1000)
    alone = (encoder[0] >= next_fold_thresholds(labels, encoder[1], folds)).astype(np.int64)
    encoder_only = agreement_with_intervals(labels, alone, groups, codes, kinds, resamples=1000)
    thresholds = dict(zip(codes, map(float, final), strict=True))
    alone_final = [best_threshold(labels[:, j], encoder[0][:, j]) for j in range(len(codes))]
    summary = {
        "codebook_version": codebook.version,
        "sentences": len(labels),
        "groups": len(np.unique(groups)),
        "blend": args.blend,
        "cross_validation": {
            "folds": len(np.unique(folds)),
            "grouped_by": "source",
            "thresholds": "fold k's from fold k+1, coded by models fitted without k and k+1",
            "intervals": "95% cluster bootstrap over sources, 1000 resamples",
        },
        "encoder_alone": encoder_only.to_dict("records"),
    }
    details = {
        "base": args.base_note,
        "fine_tuning": json.loads(args.finetune_summary.read_text())
        if args.finetune_summary
        else {},
        "training_files": [str(args.train)],
        "encoder_alone_thresholds": dict(zip(codes, map(float, alone_final), strict=True)),
    }
    out = write_encoder_folder(
        args.out,
        onnx_file=args.onnx,
        tokenizer_file=args.tokenizer,
        linear_dir=args.linear,
        codebook=codebook,
        thresholds=thresholds,
        blend=args.blend,
        details=details,
    )
    notes = [
        f"Grouped {summary['cross_validation']['folds']}-fold cross-validation of "
        f"{len(labels):,} sentences from {summary['groups']:,} sources (folds by source): "
        f"{args.blend} x fine-tuned encoder + {1 - args.blend} x linear model; each fold's "
        "models fitted without it, thresholds chosen on the next fold. Intervals: 95% "
        "cluster bootstrap over sources.",
        f"Codebook {codebook.version}; training file: {args.train}.",
    ]
    metrics["threshold"] = metrics["code"].map(thresholds)
    write_metrics(out, metrics, summary, "Encoder + linear blend: cross-validated agreement", notes)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line of `python -m textmine.learned.encoder_build`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finetuned", type=Path, required=True, help="finetune.py's NAME.npz")
    parser.add_argument("--finetune-summary", type=Path, help="finetune.py's NAME.json")
    parser.add_argument("--table", type=Path, required=True, help="folder of table.parquet")
    parser.add_argument("--onnx", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--linear", type=Path, default=default_model_dir())
    parser.add_argument("--codebook", type=Path)
    parser.add_argument("--blend", type=float, default=DEFAULT_BLEND)
    parser.add_argument("--base-note", default="", help="where the base encoder came from")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(build(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
