r"""Fine-tune a small sentence encoder on coded sentences (torch: the `finetune` extra).

Runs as a script so that a GPU machine needs only torch, transformers,
tokenizers, numpy and pandas, not the rest of textmine:

    python textmine/learned/finetune.py cv --data table.parquet --base BASE_DIR \
        --configs scripts/encoder_configs.json --out OUT_DIR
    python textmine/learned/finetune.py export --base BASE_DIR \
        --weights OUT_DIR/NAME_weights/model.safetensors --codes 10 --out ONNX_DIR

`table.parquet` (from `textmine.learned.encoder.finetune_table`) has columns
split (train / dev / ofsted / unlabelled), text_a, text_b, fold (grouped
cross-validation fold of train rows, -1 elsewhere) and one 0/1 column per
code (-1 where unknown). BASE_DIR holds a BERT-style encoder: config.json,
model.safetensors, tokenizer.json.

For each configuration and each outer fold k the encoder is fitted on the
other folds and codes fold k (held-out probabilities), the unlabelled rows
(for distillation without leakage) and, fitted once more without fold k+1,
fold k+1 (for thresholds chosen outside fold k). A final fit on every train
row codes dev, ofsted and the unlabelled rows. The best configuration's final
weights are saved as float16 safetensors.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

MAX_TOKENS = 128
SPLITS = ("train", "dev", "ofsted", "unlabelled")


def tokenizer_from(path: Path):
    """The fast tokenizer of tokenizer.json, truncating pairs to MAX_TOKENS."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


def encode(
    tokenizer, text_a: list[str], text_b: list[str] | None
) -> list[tuple[list[int], list[int]]]:
    """(input ids, token type ids) of each text, or text pair when `text_b` is given."""
    inputs = list(zip(text_a, text_b, strict=True)) if text_b is not None else list(text_a)
    encodings = tokenizer.encode_batch(inputs)
    return [(e.ids, e.type_ids) for e in encodings]


def build_model(base: Path, n_codes: int):
    """BERT encoder + mean pooling + one logit per code."""
    import torch
    from transformers import BertModel

    class SentenceClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = BertModel.from_pretrained(str(base), dtype=torch.float32)
            self.dropout = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, n_codes)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return self.head(self.dropout(pooled))

    return SentenceClassifier()


def _batch(encoded, rows, device):
    import torch

    width = max(len(encoded[i][0]) for i in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for j, i in enumerate(rows):
        token_ids, type_ids = encoded[i]
        ids[j, : len(token_ids)] = torch.tensor(token_ids)
        types[j, : len(type_ids)] = torch.tensor(type_ids)
        mask[j, : len(token_ids)] = 1
    return ids.to(device), mask.to(device), types.to(device)


def fit(base, encoded, labels, rows, config, device, seed):
    """Fit one encoder on `rows`; returns the model in eval mode."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(base, labels.shape[1]).to(device)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": 0.01,
        },
        {
            "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimiser = torch.optim.AdamW(groups, lr=config["lr"])
    batch_size = config["batch"]
    steps = config["epochs"] * math.ceil(len(rows) / batch_size)
    warmup = max(1, int(0.06 * steps))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    target = torch.tensor(labels, dtype=torch.float32)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    rows = np.asarray(rows)
    for _ in range(config["epochs"]):
        order = rng.permutation(rows)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            ids, mask, types = _batch(encoded, batch, device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                logits = model(ids, mask, types)
            loss = loss_fn(logits.float(), target[batch].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
    model.eval()
    return model


def predict(model, encoded, rows, device, batch_size: int = 256) -> np.ndarray:
    """Probabilities [rows, codes]; rows sorted by length for speed, returned in input order."""
    import torch

    rows = np.asarray(rows)
    if not len(rows):
        return np.zeros((0, model.head.out_features), dtype=np.float32)
    order = rows[np.argsort([len(encoded[i][0]) for i in rows], kind="stable")]
    out: dict[int, np.ndarray] = {}
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            ids, mask, types = _batch(encoded, batch, device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                logits = model(ids, mask, types)
            probs = torch.sigmoid(logits.float()).cpu().numpy()
            out.update(zip(batch.tolist(), probs, strict=True))
    return np.stack([out[i] for i in rows.tolist()]).astype(np.float32)


def kappa(y: np.ndarray, p: np.ndarray) -> float:
    """Cohen's kappa of two 0/1 vectors."""
    tp = float(((y == 1) & (p == 1)).sum())
    tn = float(((y == 0) & (p == 0)).sum())
    fp = float(((y == 0) & (p == 1)).sum())
    fn = float(((y == 1) & (p == 0)).sum())
    n = tp + tn + fp + fn
    expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    return 0.0 if expected >= 1 else ((tp + tn) / n - expected) / (1 - expected)


def micro_f1(y: np.ndarray, p: np.ndarray) -> float:
    """Micro-averaged F1 over columns."""
    tp = float(((y == 1) & (p == 1)).sum())
    return 2 * tp / max(1.0, float(y.sum() + p.sum()))


def run_config(name, config, table, codes, base, encoded, device, seed, log) -> dict:
    """Cross-validate and fit one configuration; returns its arrays and summary."""
    split = table["split"].to_numpy()
    labels_all = table[codes].to_numpy(dtype=np.int64)
    train_rows = np.where(split == "train")[0]
    folds = table["fold"].to_numpy()
    fold_ids = sorted(int(f) for f in np.unique(folds[train_rows]))
    unlabelled = np.where(split == "unlabelled")[0]
    held_probs = np.zeros((len(table), len(codes)), dtype=np.float32)
    inner_probs = np.zeros((len(table), len(codes)), dtype=np.float32)
    inner_fold_of = np.full(len(table), -1)
    unl_by_fold = np.zeros((len(fold_ids), len(unlabelled), len(codes)), dtype=np.float16)
    started = time.perf_counter()
    for j, k in enumerate(fold_ids):
        k_next = fold_ids[(j + 1) % len(fold_ids)]
        fit_rows = train_rows[folds[train_rows] != k]
        model = fit(base, encoded, labels_all, fit_rows, config, device, seed)
        held = train_rows[folds[train_rows] == k]
        held_probs[held] = predict(model, encoded, held, device)
        unl_by_fold[j] = predict(model, encoded, unlabelled, device).astype(np.float16)
        del model
        inner_rows = fit_rows[folds[fit_rows] != k_next]
        model = fit(base, encoded, labels_all, inner_rows, config, device, seed)
        inner_held = train_rows[folds[train_rows] == k_next]
        inner_probs[inner_held] = predict(model, encoded, inner_held, device)
        inner_fold_of[inner_held] = k
        del model
        log(f"{name}: fold {k} done ({time.perf_counter() - started:.0f} s)")
    y = labels_all[train_rows]
    p = (held_probs[train_rows] >= 0.5).astype(np.int64)
    kinds = ["stance" if c in ("competition", "collaboration") else "type" for c in codes]
    summary = {
        "config": config,
        "cv_kappa_at_0.5": {c: round(kappa(y[:, i], p[:, i]), 4) for i, c in enumerate(codes)},
        "cv_types_micro_f1_at_0.5": round(
            micro_f1(
                y[:, [i for i, k in enumerate(kinds) if k == "type"]],
                p[:, [i for i, k in enumerate(kinds) if k == "type"]],
            ),
            4,
        ),
    }
    stance = [summary["cv_kappa_at_0.5"][c] for c in codes if c in ("competition", "collaboration")]
    summary["score"] = float(np.mean([*stance, summary["cv_types_micro_f1_at_0.5"]]))
    final = fit(base, encoded, labels_all, train_rows, config, device, seed)
    other = np.where(split != "train")[0]
    final_probs = np.zeros((len(table), len(codes)), dtype=np.float32)
    final_probs[other] = predict(final, encoded, other, device)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    log(f"{name}: {json.dumps(summary)}")
    arrays = {
        "held_probs": held_probs.astype(np.float16),
        "inner_probs": inner_probs.astype(np.float16),
        "inner_fold_of": inner_fold_of,
        "unlabelled_by_fold": unl_by_fold,
        "final_probs": final_probs.astype(np.float16),
    }
    return {"summary": summary, "arrays": arrays, "model": final}


def save_weights(model, out: Path) -> None:
    """The fine-tuned weights as float16 safetensors (model.safetensors)."""
    from safetensors.torch import save_file

    state = {
        k: (v.half() if v.is_floating_point() else v).detach().to("cpu").contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(state, str(out / "model.safetensors"))


def _export(torch, model, example, path: Path, axes: dict) -> None:
    torch.onnx.export(
        model,
        example,
        str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "logits": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )


def export_onnx(base: Path, weights: Path, n_codes: int, out: Path, quantize: bool = True) -> Path:
    """Write the fine-tuned classifier as ONNX: out/model.fp32.onnx and out/model.int8.onnx.

    Inputs input_ids, attention_mask, token_type_ids [batch, tokens]; output
    logits [batch, codes]. The int8 file (dynamic quantisation of the matrix
    weights, about 4x smaller and 2x faster on a CPU) is returned unless
    `quantize` is False.
    """
    import torch
    from safetensors.torch import load_file

    model = build_model(base, n_codes)
    state = {
        k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()
    }
    model.load_state_dict(state)
    model.eval()
    example = (
        torch.ones((2, 8), dtype=torch.long),
        torch.ones((2, 8), dtype=torch.long),
        torch.zeros((2, 8), dtype=torch.long),
    )
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / "model.fp32.onnx"
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():
        # the TorchScript exporter (exact for this model, checked by tests/test_encoder.py)
        # is deprecated, and tracing warns about shape checks it folds into constants
        warnings.simplefilter("ignore")
        _export(torch, model, example, fp32, axes)
    if not quantize:
        return fp32
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = out / "model.int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return int8


def main(argv: list[str] | None = None) -> int:
    """Command line: `cv` fine-tunes each configuration; `export` writes ONNX files."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cv = commands.add_parser("cv", help="grouped CV + final fit of each configuration")
    cv.add_argument("--data", type=Path, required=True, help="table.parquet")
    cv.add_argument("--base", type=Path, required=True)
    cv.add_argument("--out", type=Path, required=True)
    cv.add_argument("--configs", type=Path, required=True, help="JSON: name -> settings")
    cv.add_argument("--only", default="", help="run only this configuration")
    cv.add_argument("--seed", type=int, default=13)
    cv.add_argument("--limit", type=int, default=0, help="testing: keep N rows per split")
    export = commands.add_parser("export", help="fine-tuned weights -> model.fp32/int8.onnx")
    export.add_argument("--base", type=Path, required=True)
    export.add_argument(
        "--weights", type=Path, required=True, help="NAME_weights/model.safetensors"
    )
    export.add_argument("--codes", type=int, required=True, help="number of codes")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--fp32", action="store_true", help="skip the int8 file")
    args = parser.parse_args(argv)
    if args.command == "export":
        print(export_onnx(args.base, args.weights, args.codes, args.out, not args.fp32))
        return 0
    return cross_validate_configs(args)


def cross_validate_configs(args: argparse.Namespace) -> int:
    """Run `cv`: NAME.npz, NAME.json and NAME_weights/ for each configuration."""
    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    table = pd.read_parquet(args.data)
    if args.limit:
        table = table.groupby("split", group_keys=False).head(args.limit).reset_index(drop=True)
    meta = json.loads((args.data.parent / "table.json").read_text())
    codes = meta["codes"]
    configs = json.loads(args.configs.read_text())
    if args.only:
        configs = {args.only: configs[args.only]}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True

    def log(message: str) -> None:
        print(message, flush=True)

    tokenizer = tokenizer_from(args.base / "tokenizer.json")
    text_a, text_b = table["text_a"].tolist(), table["text_b"].fillna("").tolist()
    for name, config in configs.items():
        encoded = encode(tokenizer, text_a, text_b if config.get("rules", True) else None)
        result = run_config(name, config, table, codes, args.base, encoded, device, args.seed, log)
        np.savez_compressed(args.out / f"{name}.npz", **result["arrays"])
        (args.out / f"{name}.json").write_text(json.dumps(result["summary"], indent=1))
        weights_dir = args.out / f"{name}_weights"
        weights_dir.mkdir(exist_ok=True)
        save_weights(result["model"], weights_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
