"""Which sentence coder: accuracy (grouped CV, dev, Ofsted set), speed and size, one table.

    python benchmarks/coder.py [--folds 5] [--repeat 2]

Rows (each measured here, or marked "not run" with the reason):
1. rules: the codebook's tagger (textmine.coding);
2. linear: one logistic regression per code over lemma n-grams + rule
   features (hits per code and pattern, dropped matches with their reason,
   context cues) + genre + neighbours: the default before concept cues;
3. linear + concept cues (eleven word families from the codebook, fit
   averaged with and without them), trained on train.csv alone;
   3b. the same trained on train.csv + training/ofsted_childrens_services.csv
   (1,148 more adjudicated Ofsted sentences), scored on train.csv's rows: the
   shipped default's recipe less dev.csv (which it adds for the final fit, so
   that its dev figures stay honest);
4. row 3 + character 3-5-grams (`FeatureConfig(chars=True)`);
5. row 2 + the packaged static word embeddings distilled from
   all-MiniLM-L6-v2 (textmine/learned/distill.py);
6. a small encoder (all-MiniLM-L6-v2) fine-tuned on train.csv, run through
   onnxruntime (int8), alone (`--encoder DIR`, an encoder folder);
7. that encoder averaged with row 3 (the encoder folder's coder);
8. that encoder distilled into row 3's model on unlabelled corpus sentences
   (`--finetuned NPZ --table DIR`: the fine-tuning run's fold probabilities).
Rows 6-8 need an encoder fine-tuned on a GPU (README: Fine-tuned encoder);
without the options they are marked "not run".

Accuracy: grouped 5-fold cross-validation on ../shared/gold/train.csv (folds
by source; vocabulary, weights and thresholds learned inside the training
folds), kappa per stance code and micro F1 over the types; then the model
trained on all of train.csv codes ../shared/gold/dev.csv (never trained on)
and tests/data/ofsted_gold.csv (as inspection-report sentences). Speed:
segmentation + coding of the bundled corpus/, end to end, best of --repeat.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
ENCODER_ROWS = (
    "fine-tuned MiniLM-L6 encoder alone (onnxruntime int8)",
    "fine-tuned encoder + linear (0.5 each)",
)
STUDENT_ROW = "fine-tuned encoder distilled into the linear model"
EXTRA = REPO / "training" / "ofsted_childrens_services.csv"
LEARNED_ROWS = (  # (name, feature settings, also trained on EXTRA)
    ("linear: n-grams + rules + genre + neighbours", {"concepts": False}, False),
    ("linear + concept cues, train.csv only", {}, False),
    ("linear + concept cues + 1,148 coded Ofsted sentences (default, less dev)", {}, True),
    ("linear + concept cues + character 3-5-grams", {"chars": True}, False),
    (
        "linear + static embeddings (MiniLM-distilled)",
        {"concepts": False, "embeddings": True},
        False,
    ),
)


def folder_size(folder: Path) -> int:
    """Bytes of the files a model reads (metrics reports excluded)."""
    return sum(
        p.stat().st_size
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith("metrics")
    )


def cv_figures(table, codebook) -> dict:
    """Kappa per stance code, types micro-F1 and the lowest type F1 of a metrics table."""
    by_code = table.set_index("code")
    cv = {code: by_code.loc[code, "kappa"] for code in codebook.stance_codes}
    cv["types"] = by_code.loc["micro_f1_types", "f1"]
    types = [c for c in codebook.code_columns if c in codebook.partnership_codes]
    return {"cv": cv, "min_type_f1": float(by_code.loc[types, "f1"].min())}


def encoder_rows(folder: Path, codebook, measure) -> None:
    """Rows 6 and 7: the encoder alone and averaged with the linear model."""
    import dataclasses
    import json

    import numpy as np
    import pandas as pd

    from textmine.learned import load_coder
    from textmine.learned.encoder import ENCODER_JSON, ENCODER_ONNX, LINEAR_DIR, TOKENIZER_JSON

    meta = json.loads((folder / "metrics.json").read_text())
    details = json.loads((folder / ENCODER_JSON).read_text())
    blend = load_coder("learned", folder, codebook)
    alone = dataclasses.replace(
        blend.encoder,
        blend=1.0,
        thresholds=np.array(
            [details["encoder_alone_thresholds"][c] for c in codebook.code_columns]
        ),
    )
    alone_coder = type(blend)(alone, blend.linear, codebook, blend.version, folder)
    encoder_size = sum((folder / n).stat().st_size for n in (ENCODER_ONNX, TOKENIZER_JSON))
    alone_table = pd.DataFrame(meta["encoder_alone"])
    measure(ENCODER_ROWS[0], alone_coder, cv_figures(alone_table, codebook), encoder_size)
    blend_table = pd.DataFrame(meta["per_code"])
    size = encoder_size + folder_size(folder / LINEAR_DIR)
    measure(ENCODER_ROWS[1], blend, cv_figures(blend_table, codebook), size)


def student_row(finetuned: Path, table_dir: Path, training, codebook, measure) -> None:
    """Row 8: the linear model trained on train.csv + encoder-coded unlabelled sentences."""
    import numpy as np
    import pandas as pd

    from textmine.learned.coder import LearnedCoder
    from textmine.learned.encoder_build import (
        fit_student,
        student_cross_validation,
        teacher_labels,
    )
    from textmine.learned.features import FeatureConfig, featurize
    from textmine.learned.metrics import agreement_with_intervals
    from textmine.learned.model import LearnedModel
    from textmine.learned.train import best_threshold, training_features

    started = time.perf_counter()
    codes = codebook.code_columns
    table = pd.read_parquet(table_dir / "table.parquet")
    results = np.load(finetuned)
    train_rows = np.where(table["split"] == "train")[0]
    unlabelled = np.where(table["split"] == "unlabelled")[0]
    folds = table["fold"].to_numpy()[train_rows]
    config = FeatureConfig()
    from textmine.coding import get_coder

    _, pseudo_features = featurize(
        get_coder(codebook),
        table["sentence"].iloc[unlabelled].tolist(),
        table["inspection"].iloc[unlabelled].tolist(),
        [(-1, -1)] * len(unlabelled),
        config,
    )
    teacher_following = results["inner_probs"][train_rows].astype(float)
    decisions, held = student_cross_validation(
        training,
        codebook,
        folds,
        pseudo_features,
        results["unlabelled_by_fold"],
        teacher_following,
    )
    kinds = {c: codebook.codes[c].kind for c in codes}
    metrics = agreement_with_intervals(
        training.labels, decisions, training.groups, codes, kinds, resamples=1
    )
    labels = training.labels
    teacher = results["held_probs"][train_rows].astype(float)
    teacher_t = np.array([best_threshold(labels[:, j], teacher[:, j]) for j in range(len(codes))])
    pseudo = teacher_labels(results["final_probs"][unlabelled].astype(float), teacher_t)
    student = fit_student(
        training_features(training, codebook, config), labels, pseudo_features, pseudo, config
    )
    thresholds = {c: best_threshold(labels[:, j], held[:, j]) for j, c in enumerate(codes)}
    model = LearnedModel(
        codes=codes,
        codebook_version=codebook.version,
        codebook_name=codebook.name,
        config=config,
        space=student.space,
        weights=student.weights,
        intercepts=student.intercepts,
        thresholds=thresholds,
    )
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp))
        size = folder_size(Path(tmp))
    figures = {**cv_figures(metrics, codebook), "train_s": time.perf_counter() - started}
    measure(STUDENT_ROW, LearnedCoder(model, codebook, "student"), figures, size)


def agreement(gold, coded, codebook) -> dict:
    """Kappa per stance code and micro F1 over the types of a coded gold set."""
    from textmine.evaluate import agreement_table, align_predictions

    codes = codebook.code_columns
    aligned = align_predictions(gold, coded, codes)
    table = agreement_table(
        gold,
        aligned,
        codes,
        stance_codes=codebook.stance_codes,
        partnership_codes=codebook.partnership_codes,
    ).set_index("code")
    out = {code: table.loc[code, "kappa"] for code in codebook.stance_codes}
    out["types"] = table.loc["micro_f1_partnership_types", "f1"]
    return out


def read_corpus(folder: Path) -> tuple[list, dict[str, str]]:
    """The readable documents of a folder and their manifest doc_type by document path."""
    from textmine.ingest import discover_files, read_document
    from textmine.manifest import read_manifest
    from textmine.types import IngestError

    manifest_path = folder / "manifest.csv"
    manifest = read_manifest(manifest_path) if manifest_path.exists() else {}
    documents, doc_types = [], {}
    for path in discover_files([folder]):
        try:
            document = read_document(path)
        except IngestError:
            continue
        documents.append(document)
        relative = Path(path).resolve().relative_to(folder.resolve()).as_posix()
        doc_types[document.path] = manifest.get(relative, {}).get("doc_type", "unknown")
    return documents, doc_types


def speed(coder, documents, doc_types: dict[str, str], repeat: int) -> tuple[float, float]:
    """(sentences/s, words/s) of segmentation + coding over the documents, best of `repeat`."""
    import pandas as pd

    from textmine.segment import build_nlp, segment_document

    nlp = build_nlp()
    words = sum(len(d.text[p.start : p.end].split()) for d in documents for p in d.paragraphs)
    best, count = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        frames = []
        for document in documents:
            frame = segment_document(document, nlp)
            frame["doc_type"] = doc_types.get(document.path, "unknown")
            frames.append(frame)
        count = len(coder.code_sentences(pd.concat(frames, ignore_index=True)))
        best = min(best, time.perf_counter() - start)
    return count / best, words / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--encoder", type=Path, help="an encoder folder (encoder_build)")
    parser.add_argument("--finetuned", type=Path, help="finetune.py's NAME.npz for that encoder")
    parser.add_argument("--table", type=Path, help="folder of the fine-tuning table.parquet")
    args = parser.parse_args()

    import pandas as pd

    from textmine.codebook import load_codebook
    from textmine.learned import load_coder
    from textmine.learned.features import FeatureConfig
    from textmine.learned.train import read_coded_sets, train_model

    codebook = load_codebook()
    codes = codebook.code_columns
    train = SHARED / "gold" / "train.csv"
    if not train.exists():
        raise SystemExit(f"{train} is missing: the benchmark needs ../shared")
    dev = pd.read_csv(SHARED / "gold" / "dev.csv")
    ofsted = pd.read_csv(REPO / "tests" / "data" / "ofsted_gold.csv")
    ofsted["doc_type"] = "inspection_report"  # every sentence comes from an Ofsted report
    documents, doc_types = read_corpus(REPO / "corpus")
    training = read_coded_sets([train], codebook)
    rows = []

    def measure(name: str, coder, cv: dict, size: int) -> None:
        dev_coded = coder.code_sentences(dev.drop(columns=codes), text_column="sentence")
        ofsted_coded = coder.code_sentences(ofsted.drop(columns=codes), text_column="sentence")
        sentences_s, words_s = speed(coder, documents, doc_types, args.repeat)
        rows.append(
            {
                "coder": name,
                **cv,
                "dev": agreement(dev, dev_coded, codebook),
                "ofsted": agreement(ofsted, ofsted_coded, codebook),
                "sentences_s": sentences_s,
                "words_s": words_s,
                "size": size,
            }
        )
        print(f"measured {name}", flush=True)

    # 1. rules: its "cross-validation" is just its agreement with train.csv (nothing is fitted)
    rules = load_coder("rules", codebook=codebook)
    coded = rules.code_sentences(training.frame[["id", "sentence"]], text_column="sentence")
    cv_rules = agreement(training.frame, coded, codebook)
    measure("rules (codebook tagger)", rules, {"cv": cv_rules, "min_type_f1": None}, 0)

    for name, settings, with_extra in LEARNED_ROWS:
        config = FeatureConfig(**settings)
        files = [train, EXTRA] if with_extra else [train]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            started = time.perf_counter()
            _, table, summary = train_model(
                files, folder, codebook, config=config, folds=args.folds, resamples=1000
            )
            seconds = time.perf_counter() - started
            if with_extra:  # score train.csv's rows only, like every other row
                table = summary["by_file"][train.name]
            measure(
                name,
                load_coder("learned", folder, codebook),
                {**cv_figures(table, codebook), "train_s": seconds},
                folder_size(folder),
            )

    not_run = {}
    if args.encoder:
        encoder_rows(args.encoder, codebook, measure)
    else:
        not_run.update(dict.fromkeys(ENCODER_ROWS, "not run: pass --encoder DIR"))
    if args.finetuned and args.table:
        student_row(args.finetuned, args.table, training, codebook, measure)
    else:
        not_run[STUDENT_ROW] = "not run: pass --finetuned NPZ --table DIR"

    stance = codebook.stance_codes
    header = (
        "| coder | "
        + " | ".join(f"CV κ {c}" for c in stance)
        + " | CV types micro-F1 | CV min type F1 | "
        + " | ".join(f"dev κ {c}" for c in stance)
        + " | dev types F1 | "
        + " | ".join(f"Ofsted κ {c}" for c in stance)
        + " | Ofsted types F1 | sentences/s | words/s | model size | train (CV + fit) |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))

    def f(value) -> str:
        return "n/a" if value is None or value != value else f"{value:.3f}"

    for row in rows:
        cells = [
            row["coder"],
            *(f(row["cv"][c]) for c in stance),
            f(row["cv"]["types"]),
            f(row["min_type_f1"]),
            *(f(row["dev"][c]) for c in stance),
            f(row["dev"]["types"]),
            *(f(row["ofsted"][c]) for c in stance),
            f(row["ofsted"]["types"]),
            f"{row['sentences_s']:,.0f}",
            f"{row['words_s']:,.0f}",
            f"{row['size'] / 1e6:.1f} MB" if row["size"] else "0 (codebook)",
            f"{row['train_s']:.0f} s" if "train_s" in row else "–",
        ]
        print("| " + " | ".join(cells) + " |")
    for name, reason in not_run.items():
        print(f"| {name} | {reason} |")
    print(
        "rules row: agreement with all of train.csv (the rules are not fitted to it); "
        "learned rows: grouped cross-validation."
    )


if __name__ == "__main__":
    main()
