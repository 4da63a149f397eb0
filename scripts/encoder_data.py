"""Build the fine-tuning table (train.csv folds, dev, the Ofsted set, unlabelled corpus sentences).

    python scripts/encoder_data.py --train ../shared/gold/train.csv --dev ../shared/gold/dev.csv \
        --unlabelled outputs/coded_sentences.csv --out .ft

Unlabelled sentences: those of a run's coded_sentences.csv, less any that
appears in a coded set and less documents under a `seeds/` folder (dev's sources).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from textmine.codebook import load_codebook
from textmine.learned.encoder import finetune_table, write_finetune_table
from textmine.learned.train import read_coded_sets

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Write table.parquet and table.json."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--dev", type=Path)
    parser.add_argument("--ofsted", type=Path, default=REPO / "tests/data/ofsted_gold.csv")
    parser.add_argument("--unlabelled", type=Path, required=True)
    parser.add_argument("--max-unlabelled", type=int, default=40000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    codebook = load_codebook()
    train = read_coded_sets([args.train], codebook).frame
    evaluation = {}
    if args.dev:
        evaluation["dev"] = read_coded_sets([args.dev], codebook).frame
    ofsted = read_coded_sets([args.ofsted], codebook).frame
    ofsted["genre"] = "inspection_report"
    evaluation["ofsted"] = ofsted
    known = set(train["sentence"]).union(*(set(f["sentence"]) for f in evaluation.values()))
    unl = pd.read_csv(args.unlabelled, dtype=str, keep_default_na=False)
    unl = unl[~unl["path"].str.contains("/seeds/") & ~unl["text"].isin(known)]
    unl = unl[unl["text"].str.split().str.len() >= 4].drop_duplicates("text")
    if len(unl) > args.max_unlabelled:
        unl = unl.sample(args.max_unlabelled, random_state=7)
    unlabelled = pd.DataFrame(
        {"id": unl["sentence_id"], "sentence": unl["text"], "genre": unl["doc_type"]}
    )
    table = finetune_table(codebook, train, evaluation, unlabelled)
    path = write_finetune_table(table, codebook, args.out)
    print(path, table["split"].value_counts().to_dict())


if __name__ == "__main__":
    main()
