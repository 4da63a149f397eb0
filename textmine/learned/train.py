"""Train the learned coder from coded sets and measure it by grouped cross-validation.

Steps (`train_model`):
1. read the coded-set CSVs (id, sentence, one 0/1 column per codebook code;
   optional source, source_kind or doc_type, doc_id and sentence_index);
2. run the codebook's rules on every sentence and build the features
   (textmine.learned.features);
3. grouped cross-validation (folds by `source`): in each outer fold the
   vocabulary, the weights and each code's threshold are learned from the
   training folds only (thresholds from an inner grouped cross-validation of
   those folds), then the held-out fold is coded;
4. the figures (kappa, F1, 95% cluster-bootstrap intervals) of the pooled
   held-out predictions;
5. the final model: the same procedure on all rows.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from textmine.codebook import Codebook
from textmine.learned.features import (
    FeatureConfig,
    SentenceFeatures,
    featurize,
    is_inspection,
    neighbour_indices,
)
from textmine.learned.metrics import agreement_with_intervals, group_folds, write_metrics
from textmine.learned.model import FeatureSpace, LearnedModel

DEFAULT_C = 10.0
DEFAULT_FOLDS = 5
INNER_FOLDS = 4
THRESHOLD_GRID = np.round(np.arange(0.10, 0.901, 0.025), 3)
GENRE_COLUMNS = ("doc_type", "source_kind")


class CodedSetError(ValueError):
    """A coded-set CSV that cannot be trained on; the message names the file and the reason."""


@dataclass
class TrainingSet:
    """Coded sentences ready to learn from."""

    frame: pd.DataFrame  # id, sentence, codes, group, genre, doc_id, order, file
    codes: list[str]

    @property
    def labels(self) -> np.ndarray:
        """0/1 codes [rows, codes]."""
        return self.frame[self.codes].to_numpy(dtype=np.int64)

    @property
    def groups(self) -> np.ndarray:
        """Cross-validation group of each row."""
        return self.frame["group"].to_numpy()


def read_coded_sets(paths: Sequence[Path], codebook: Codebook) -> TrainingSet:
    """Read and check coded-set CSVs; CodedSetError names the file and what is wrong."""
    codes = codebook.code_columns
    frames = []
    for path in paths:
        path = Path(path)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except FileNotFoundError as error:
            raise CodedSetError(f"coded set {path}: the file does not exist") from error
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise CodedSetError(f"coded set {path}: not a readable CSV ({error})") from error
        missing = [c for c in ["id", "sentence", *codes] if c not in frame.columns]
        if missing:
            raise CodedSetError(
                f"coded set {path}: no column(s) {', '.join(missing)}; a coded set needs id, "
                f"sentence and one 0/1 column per code of codebook {codebook.version} "
                f"({', '.join(codes)})"
            )
        bad = [c for c in codes if not frame[c].isin(["0", "1"]).all()]
        if bad:
            raise CodedSetError(
                f"coded set {path}: column(s) {', '.join(bad)} must hold only 0 or 1 on every row"
            )
        out = pd.DataFrame({"id": frame["id"], "sentence": frame["sentence"]})
        for code in codes:
            out[code] = frame[code].astype(np.int64)
        genre = next((frame[c] for c in GENRE_COLUMNS if c in frame.columns), None)
        out["genre"] = genre if genre is not None else ""
        out["doc_id"] = frame["doc_id"] if "doc_id" in frame.columns else ""
        out["order"] = (
            pd.to_numeric(frame["sentence_index"], errors="coerce")
            if "sentence_index" in frame.columns
            else np.arange(len(frame))
        )
        by_source = "source" in frame.columns and (frame["source"] != "").all()
        out["source_key"] = frame["source"].astype(str) if by_source else ""
        if by_source:
            group = frame["source"]
        elif "doc_id" in frame.columns and (frame["doc_id"] != "").all():
            group = frame["doc_id"]
        else:  # every sentence its own group
            group = frame["id"]
        out["group"] = path.name + "::" + group.astype(str)
        out["doc_id"] = np.where(out["doc_id"] != "", path.name + "::" + out["doc_id"], "")
        out["file"] = str(path)
        frames.append(out)
    if not frames:
        raise CodedSetError("no coded set given")
    data = pd.concat(frames, ignore_index=True)
    if not len(data):
        raise CodedSetError(f"coded set(s) {', '.join(map(str, paths))}: no rows")
    # one source (page or report) in several files is one group, named as in the first file
    sourced = data["source_key"] != ""
    first = data[sourced].drop_duplicates("source_key").set_index("source_key")["group"]
    data.loc[sourced, "group"] = data.loc[sourced, "source_key"].map(first)
    return TrainingSet(frame=data.drop(columns="source_key"), codes=codes)


def score_subsets(training: TrainingSet) -> dict[str, np.ndarray]:
    """Row masks scored on their own: each file (when several) and each genre (when both)."""
    frame = training.frame
    subsets: dict[str, np.ndarray] = {}
    files = frame["file"].to_numpy()
    if len(set(files)) > 1:
        for name in dict.fromkeys(files):
            subsets[Path(name).name] = files == name
    inspection = np.array(is_inspection(frame["genre"].tolist()))
    if inspection.any() and not inspection.all():
        subsets["inspection-report sentences"] = inspection
        subsets["sentences of other genres"] = ~inspection
    return subsets


def training_features(
    training: TrainingSet, codebook: Codebook, config: FeatureConfig
) -> list[SentenceFeatures]:
    """Feature names of every training sentence (rules run once)."""
    from textmine.coding import get_coder

    frame = training.frame
    order = frame["order"].fillna(-1).astype(int).to_numpy()
    neighbours = neighbour_indices(frame["doc_id"].tolist(), order)
    _, features = featurize(
        get_coder(codebook),
        frame["sentence"].tolist(),
        is_inspection(frame["genre"]),
        neighbours,
        config,
    )
    return features


def fit_weights(
    x, labels: np.ndarray, c: float, averaged: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One L2 logistic regression per column of `labels`: (weights [codes, features], intercepts).

    `averaged` (bool per column, optional): those columns' fit is averaged with
    a fit without them (weights and intercepts, half each); still one linear
    model, which leans on the other columns as much as it did without them.
    A code with no positive (or no negative) example gets zero weights and an
    intercept that always predicts its only value.
    """
    if averaged is not None and averaged.any():
        import scipy.sparse as sp

        with_all = fit_weights(x, labels, c)
        keep = sp.diags((~averaged).astype(np.float32))
        without = fit_weights(sp.csr_matrix(x @ keep), labels, c)
        return ((with_all[0] + without[0]) / 2).astype(np.float32), (
            (with_all[1] + without[1]) / 2
        ).astype(np.float32)
    from sklearn.linear_model import LogisticRegression

    weights = np.zeros((labels.shape[1], x.shape[1]), dtype=np.float32)
    intercepts = np.zeros(labels.shape[1], dtype=np.float32)
    for j in range(labels.shape[1]):
        y = labels[:, j]
        if y.min() == y.max():
            intercepts[j] = 20.0 if y.max() == 1 else -20.0
            continue
        model = LogisticRegression(C=c, solver="liblinear", max_iter=2000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x, y)
        weights[j] = model.coef_[0]
        intercepts[j] = model.intercept_[0]
    return weights, intercepts


def _averaged(space: FeatureSpace, x) -> np.ndarray:
    """Columns whose fit is averaged with a fit without them: the concept cues (`k:`, `g:k:`).

    Embedding columns (after the named features) are never averaged.
    """
    named = np.array([n.startswith(("k:", "g:k:")) for n in space.names], dtype=bool)
    return np.concatenate([named, np.zeros(x.shape[1] - len(named), dtype=bool)])


def _probabilities(x, weights: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    scores = np.asarray(x @ weights.T) + intercepts
    return 1.0 / (1.0 + np.exp(-np.clip(scores, -50, 50)))


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The grid threshold with the highest Cohen's kappa (ties: the one nearest 0.5)."""
    if y.min() == y.max():
        return 0.5
    best, best_value = 0.5, -np.inf
    for t in sorted(THRESHOLD_GRID, key=lambda t: abs(t - 0.5)):
        pred = p >= t
        tp = float(np.sum(pred & (y == 1)))
        fp = float(np.sum(pred & (y == 0)))
        fn = float(np.sum(~pred & (y == 1)))
        tn = float(len(y) - tp - fp - fn)
        n = len(y)
        expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        kappa = ((tp + tn) / n - expected) / (1 - expected) if expected < 1 else 0.0
        if kappa > best_value + 1e-12:
            best, best_value = float(t), kappa
    return best


def _design(space: FeatureSpace, features, texts, config: FeatureConfig, embeddings):
    import scipy.sparse as sp

    x = space.matrix(features)
    if config.embeddings and embeddings is not None:
        x = sp.hstack([x, sp.csr_matrix(embeddings.embed(texts))], format="csr")
    return x


def fit_model_rows(
    features: list[SentenceFeatures],
    texts: list[str],
    labels: np.ndarray,
    groups: np.ndarray,
    config: FeatureConfig,
    c: float,
    embeddings=None,
    inner_folds: int = INNER_FOLDS,
):
    """Vocabulary, weights and thresholds learned from these rows only.

    Thresholds come from out-of-fold probabilities of an inner grouped
    cross-validation over the same rows (vocabulary rebuilt in each inner fold).
    Returns (space, weights, intercepts, thresholds as an array).
    """
    inner = group_folds(groups, inner_folds)
    oof = np.zeros(labels.shape)
    for fold in np.unique(inner):
        fit_rows, held = np.where(inner != fold)[0], np.where(inner == fold)[0]
        fitted = fit_linear(
            [features[i] for i in fit_rows],
            [texts[i] for i in fit_rows],
            labels[fit_rows],
            config,
            c,
            embeddings,
        )
        oof[held] = fitted.probabilities(
            [features[i] for i in held], [texts[i] for i in held], config, embeddings
        )
    thresholds = np.array([best_threshold(labels[:, j], oof[:, j]) for j in range(labels.shape[1])])
    fitted = fit_linear(features, texts, labels, config, c, embeddings)
    return fitted.space, fitted.weights, fitted.intercepts, thresholds


@dataclass
class LinearFit:
    """A vocabulary and the per-code weights fitted over it."""

    space: FeatureSpace
    weights: np.ndarray  # [codes, features]
    intercepts: np.ndarray  # [codes]

    def probabilities(self, features, texts, config: FeatureConfig, embeddings=None) -> np.ndarray:
        """P(code) [rows, codes] of these sentences."""
        x = _design(self.space, features, texts, config, embeddings)
        return _probabilities(x, self.weights, self.intercepts)


def fit_linear(
    features: list[SentenceFeatures],
    texts: list[str],
    labels: np.ndarray,
    config: FeatureConfig,
    c: float,
    embeddings=None,
) -> LinearFit:
    """Vocabulary from these rows, then one (averaged) logistic regression per code."""
    space = FeatureSpace.build(features)
    x = _design(space, features, texts, config, embeddings)
    weights, intercepts = fit_weights(x, labels, c, _averaged(space, x))
    return LinearFit(space, weights, intercepts)


@dataclass
class CrossValidation:
    """Pooled held-out predictions of a grouped cross-validation."""

    probabilities: np.ndarray  # [rows, codes]
    thresholds: np.ndarray  # [rows, codes]: the threshold of each row's outer fold
    folds: np.ndarray  # fold of each row

    @property
    def predictions(self) -> np.ndarray:
        """0/1 held-out decisions [rows, codes]."""
        return (self.probabilities >= self.thresholds).astype(np.int64)


def cross_validate(
    features: list[SentenceFeatures],
    texts: list[str],
    labels: np.ndarray,
    groups: np.ndarray,
    config: FeatureConfig,
    c: float,
    folds: int,
    embeddings=None,
    progress: Callable[[str], None] | None = None,
) -> CrossValidation:
    """Grouped k-fold cross-validation; nothing of a held-out fold is used to fit its model."""
    fold_of = group_folds(groups, folds)
    probabilities = np.zeros(labels.shape)
    thresholds = np.zeros(labels.shape)
    for fold in np.unique(fold_of):
        train_rows, held = np.where(fold_of != fold)[0], np.where(fold_of == fold)[0]
        space, w, b, t = fit_model_rows(
            [features[i] for i in train_rows],
            [texts[i] for i in train_rows],
            labels[train_rows],
            groups[train_rows],
            config,
            c,
            embeddings,
        )
        x_held = _design(
            space, [features[i] for i in held], [texts[i] for i in held], config, embeddings
        )
        probabilities[held] = _probabilities(x_held, w, b)
        thresholds[held] = t
        if progress:
            progress(f"fold {fold + 1}/{len(np.unique(fold_of))} done")
    return CrossValidation(probabilities=probabilities, thresholds=thresholds, folds=fold_of)


def train_model(
    paths: Sequence[Path],
    out: Path,
    codebook: Codebook,
    *,
    config: FeatureConfig | None = None,
    c: float = DEFAULT_C,
    folds: int = DEFAULT_FOLDS,
    resamples: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> tuple[LearnedModel, pd.DataFrame, dict]:
    """Cross-validate, fit on all rows, write the model and its metrics into `out`.

    Returns (model, metrics table, summary). `folds` = 0 skips the cross-validation.
    """
    config = config or FeatureConfig()
    started = time.perf_counter()
    training = read_coded_sets(paths, codebook)
    embeddings = None
    if config.embeddings:
        from textmine.learned.embeddings import default_embeddings_dir, load_static_embeddings

        embeddings = load_static_embeddings(default_embeddings_dir())
    texts = training.frame["sentence"].tolist()
    features = training_features(training, codebook, config)
    labels, groups = training.labels, training.groups
    codes = training.codes
    kinds = {code: codebook.codes[code].kind for code in codes}
    summary: dict = {
        "codebook_version": codebook.version,
        "sentences": len(texts),
        "groups": len(np.unique(groups)),
        "files": [str(p) for p in paths],
        "features": config.to_dict(),
        "C": c,
    }
    if config.concepts:
        summary["averaged"] = "concept cues (k:): mean of the fits with and without them"
    table = pd.DataFrame()
    parts: dict[str, pd.DataFrame] = {}
    if folds and folds > 1:
        if progress:
            progress(f"grouped {folds}-fold cross-validation over {summary['groups']} sources")
        cv = cross_validate(features, texts, labels, groups, config, c, folds, embeddings, progress)
        table = agreement_with_intervals(
            labels, cv.predictions, groups, codes, kinds, resamples=resamples
        )
        for name, rows in score_subsets(training).items():
            parts[name] = agreement_with_intervals(
                labels[rows], cv.predictions[rows], groups[rows], codes, kinds, resamples=resamples
            )
        summary["cross_validation"] = {
            "folds": len(np.unique(cv.folds)),
            "grouped_by": "source (else doc_id, else id)",
            "intervals": f"95% cluster bootstrap over sources, {resamples} resamples",
        }
    if progress:
        progress("fitting the final model on all rows")
    space, weights, intercepts, thresholds = fit_model_rows(
        features, texts, labels, groups, config, c, embeddings
    )
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if len(table):
        final = dict(zip(codes, map(float, thresholds), strict=True))
        table["threshold"] = table["code"].map(final)
    model = LearnedModel(
        codes=codes,
        codebook_version=codebook.version,
        codebook_name=codebook.name,
        config=config,
        space=space,
        weights=weights,
        intercepts=intercepts,
        thresholds=dict(zip(codes, map(float, thresholds), strict=True)),
        training={k: v for k, v in summary.items() if k != "cross_validation"},
        embeddings=embeddings,
    )
    model.save(out)
    if len(table):
        notes = [
            f"Grouped {summary['cross_validation']['folds']}-fold cross-validation of "
            f"{len(texts):,} sentences from {summary['groups']:,} sources (folds by source); "
            "vocabulary, weights and thresholds learned inside the training folds only. "
            f"Intervals: {summary['cross_validation']['intervals']}.",
            f"Codebook {codebook.version}; files: {', '.join(summary['files'])}.",
        ]
        for part in parts.values():
            part["threshold"] = part["code"].map(final)
        if parts:
            notes.append(
                "Below: the same held-out predictions, scored on each file's rows and on each "
                "genre's alone (a source in several files is one group, so it never sits on "
                "both sides)."
            )
        write_metrics(
            out, table, summary, "textmine train: cross-validated agreement", notes, parts
        )
        summary["by_file"] = parts
    return model, table, summary
