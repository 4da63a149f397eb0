"""Do added coded sets help? Grouped CV on train.csv's rows, without and with them.

    python benchmarks/coded_data.py [EXTRA.csv ...]
    # default: training/ofsted_childrens_services.csv ../shared/gold/dev.csv

Folds are those `textmine train` makes for ../shared/gold/train.csv alone; a
row of an added set joins the fold of its source (a report of train.csv),
and a source train.csv lacks stays in every training fold. In each fold the
linear model (default features) is fitted on the training folds' rows, with
none, the first, the first two ... of the added sets, and scored on
train.csv's held-out rows only: the same rows and folds each time, so the
differences are the added data's. Prints kappa and F1 for all of train.csv's
rows and for its inspection-report rows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TRAIN = REPO.parent / "shared" / "gold" / "train.csv"


def main() -> None:
    """Print one table: without and with the added set, all rows and inspection rows."""
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "extra",
        nargs="*",
        type=Path,
        default=[REPO / "training" / "ofsted_childrens_services.csv", TRAIN.parent / "dev.csv"],
    )
    args = parser.parse_args()
    if not TRAIN.exists():
        raise SystemExit(f"{TRAIN} is missing: the benchmark needs ../shared")

    from textmine.codebook import load_codebook
    from textmine.learned.features import FeatureConfig, is_inspection
    from textmine.learned.metrics import agreement_with_intervals, group_folds
    from textmine.learned.train import (
        DEFAULT_C,
        _design,
        _probabilities,
        fit_model_rows,
        read_coded_sets,
        training_features,
    )

    codebook = load_codebook()
    codes = codebook.code_columns
    kinds = {c: codebook.codes[c].kind for c in codes}
    both = read_coded_sets([TRAIN, *args.extra], codebook)
    frame = both.frame
    is_train = (frame["file"] == str(TRAIN)).to_numpy()
    train_groups = both.groups[is_train]
    fold_of = dict(zip(train_groups, group_folds(train_groups, 5), strict=True))
    folds = np.array([fold_of.get(g, -1) for g in both.groups])
    config = FeatureConfig()
    texts = frame["sentence"].tolist()
    features = training_features(both, codebook, config)
    labels = both.labels
    inspection = np.array(is_inspection(frame["genre"].tolist()))[is_train]
    stance = " | ".join(f"CV κ {c}" for c in codebook.stance_codes)
    print(
        f"| training rows | scored rows | {stance} | CV types micro-F1 | CV cross_sector F1 "
        "| CV local_partnership F1 |"
    )
    print("|---" * (5 + len(codebook.stance_codes)) + "|")
    files = frame["file"].to_numpy()
    for added in range(len(args.extra) + 1):
        used = is_train | np.isin(files, [str(p) for p in args.extra[:added]])
        held = np.zeros(labels.shape)
        limits = np.zeros(labels.shape)
        for k in range(5):
            fit = np.where((folds != k) & used)[0]
            out = np.where((folds == k) & is_train)[0]
            space, w, b, t = fit_model_rows(
                [features[i] for i in fit],
                [texts[i] for i in fit],
                labels[fit],
                both.groups[fit],
                config,
                DEFAULT_C,
            )
            x = _design(space, [features[i] for i in out], [], config, None)
            held[out] = _probabilities(x, w, b)
            limits[out] = t
        predicted = (held >= limits).astype(np.int64)[is_train]
        name = " + ".join(["train.csv", *(p.name for p in args.extra[:added])])
        for scored, rows in (("all", np.ones(len(inspection), bool)), ("inspection", inspection)):
            table = agreement_with_intervals(
                labels[is_train][rows],
                predicted[rows],
                train_groups[rows],
                codes,
                kinds,
                resamples=1000,
            ).set_index("code")
            cells = [
                f"{table.loc[c, 'kappa']:.3f} [{table.loc[c, 'kappa_low']:.3f}, "
                f"{table.loc[c, 'kappa_high']:.3f}]"
                if table.loc[c, "kappa"] == table.loc[c, "kappa"]
                else "n/a (no positives)"
                for c in codebook.stance_codes
            ]
            types = table.loc["micro_f1_types"]
            print(
                f"| {name} | train.csv, {scored} ({rows.sum()}) | {' | '.join(cells)} | "
                f"{types['f1']:.3f} [{types['f1_low']:.3f}, {types['f1_high']:.3f}] | "
                f"{table.loc['cross_sector', 'f1']:.3f} | "
                f"{table.loc['local_partnership', 'f1']:.3f} |"
            )


if __name__ == "__main__":
    main()
