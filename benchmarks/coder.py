"""Which sentence coder: accuracy (grouped CV, dev, Ofsted set), speed and size, one table.

    python benchmarks/coder.py [--folds 5] [--repeat 2]

Rows (each measured here, or marked "not run" with the reason):
1. rules: the codebook's tagger (textmine.coding);
2. linear: one logistic regression per code over lemma n-grams + rule
   features (hits per code and pattern, dropped matches with their reason,
   context cues) + genre + neighbours: the default before concept cues;
3. linear + concept cues (word families from the codebook, fit averaged
   with and without them): the shipped default;
4. row 3 + character 3-5-grams (`FeatureConfig(chars=True)`);
5. row 2 + the packaged static word embeddings distilled from
   all-MiniLM-L6-v2 (textmine/learned/distill.py);
6. a small encoder fine-tuned, run through onnxruntime: not run here;
7. that encoder distilled into the fast model on unlabelled corpus sentences:
   not run here (needs row 4).

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
NOT_RUN = {
    "fine-tuned small encoder (onnxruntime)": "not run: fine-tuning needs torch and hours of CPU time per cross-validation on this "
    "2-core shared machine with no GPU; no fine-tuned weights exist in any PyPI package",
    "fine-tuned encoder distilled into the fast model": "not run: needs the fine-tuned encoder above",
}
LEARNED_ROWS = (
    ("linear: n-grams + rules + genre + neighbours", {"concepts": False}),
    ("linear + concept cues (default)", {}),
    ("linear + concept cues + character 3-5-grams", {"chars": True}),
    ("linear + static embeddings (MiniLM-distilled)", {"concepts": False, "embeddings": True}),
)


def folder_size(folder: Path) -> int:
    """Bytes of the files a model reads (metrics reports excluded)."""
    return sum(
        p.stat().st_size
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith("metrics")
    )


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

    for name, settings in LEARNED_ROWS:
        config = FeatureConfig(**settings)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            started = time.perf_counter()
            _, table, _ = train_model(
                [train], folder, codebook, config=config, folds=args.folds, resamples=1000
            )
            seconds = time.perf_counter() - started
            by_code = table.set_index("code")
            cv = {code: by_code.loc[code, "kappa"] for code in codebook.stance_codes}
            cv["types"] = by_code.loc["micro_f1_types", "f1"]
            types = [c for c in codes if c in codebook.partnership_codes]
            measure(
                name,
                load_coder("learned", folder, codebook),
                {
                    "cv": cv,
                    "min_type_f1": float(by_code.loc[types, "f1"].min()),
                    "train_s": seconds,
                },
                folder_size(folder),
            )

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
    for name, reason in NOT_RUN.items():
        print(f"| {name} | {reason} |")
    print(
        "rules row: agreement with all of train.csv (the rules are not fitted to it); "
        "learned rows: grouped cross-validation."
    )


if __name__ == "__main__":
    main()
