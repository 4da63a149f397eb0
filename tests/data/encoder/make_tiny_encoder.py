"""Make the tiny encoder fixture: a WordPiece tokenizer, a 1-layer BERT base and its ONNX export.

    python tests/data/encoder/make_tiny_encoder.py   # needs the `finetune` extra (torch)

The weights are random (seeded): the fixture checks the encoder's plumbing
(tokenizer, ONNX inputs and outputs, blending, fine-tuning on a CPU), not
its accuracy. Runs without textmine installed (finetune.py is read by path).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CODES = 10  # the packaged codebook's codes


def main() -> None:
    """Write tokenizer.json, base/ and model.onnx beside this script."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel

    spec = importlib.util.spec_from_file_location(
        "finetune", REPO / "textmine" / "learned" / "finetune.py"
    )
    finetune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(finetune)
    with (REPO / "tests" / "data" / "learned" / "tiny_coded.csv").open(encoding="utf-8") as f:
        texts = [row["sentence"] for row in csv.DictReader(f)]
    texts += ["inspection report: rules: none collaboration competition academy trust network"]
    tokenizer = BertWordPieceTokenizer(lowercase=True)
    tokenizer.train_from_iterator(texts, vocab_size=400, min_frequency=1)
    tokenizer.save(str(HERE / "tokenizer.json"))
    base = HERE / "base"
    base.mkdir(exist_ok=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=finetune.MAX_TOKENS + 2,
    )
    BertModel(config).save_pretrained(str(base))
    (base / "tokenizer.json").write_text((HERE / "tokenizer.json").read_text())
    model = finetune.build_model(base, CODES)
    with tempfile.TemporaryDirectory() as tmp:
        finetune.save_weights(model, Path(tmp))
        onnx = finetune.export_onnx(base, Path(tmp) / "model.safetensors", CODES, Path(tmp), False)
        shutil.copyfile(onnx, HERE / "model.onnx")
    print(json.dumps({p.name: p.stat().st_size for p in HERE.rglob("*") if p.is_file()}))


if __name__ == "__main__":
    main()
