"""Incremental runs of `textmine run`: first run, re-run with nothing new, one new document.

Usage: python benchmarks/incremental.py [--corpus corpus] [--keep]

Copies the bundled corpus to a temporary folder, then times three runs of the
`textmine run` command (each a fresh process, as a researcher runs it, so
Python start-up and imports are included):

1. the first run over the whole corpus (the baseline);
2. a re-run with nothing new (target <= 5 s): no extraction, no coding, no topic refit;
3. a re-run after one new document is added (target <= 15 s): that document is
   read, segmented and coded, new sentences are assigned to the saved topic
   model (no refit), and the outputs are regenerated.

The new document is a real Ofsted report from ../shared/corpus when it is
there, else a bundled report with a byte appended after its end-of-file marker
(new content hash, same reading work).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_NEW = (
    REPO.parent
    / "shared/corpus/ofsted/childrens-services/80471_halton_csc-inspection_12_july_2024.pdf"
)
BUNDLED_FALLBACK = "ofsted/schools/ofsted_103980_rounds-green-primary_2016-11.pdf"
TARGETS = {"nothing new": 5.0, "one new document": 15.0}


def textmine_run(corpus: Path, out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from textmine.cli import main; main()",
            "run",
            str(corpus),
            "--out",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=REPO,
    )
    seconds = time.perf_counter() - started
    return seconds, json.loads((out / "run.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="textmine-incremental-"))
    corpus, out = work / "corpus", work / "outputs"
    shutil.copytree(args.corpus, corpus)
    rows = []
    try:
        seconds, report = textmine_run(corpus, out)
        rows.append(("first run", seconds, report))
        seconds, report = textmine_run(corpus, out)
        rows.append(("nothing new", seconds, report))
        new = corpus / "inbox" / "new-document.pdf"
        new.parent.mkdir(parents=True, exist_ok=True)
        if SHARED_NEW.is_file():
            shutil.copy2(SHARED_NEW, new)
            origin = f"{SHARED_NEW.name} from ../shared"
        else:
            new.write_bytes((args.corpus / BUNDLED_FALLBACK).read_bytes() + b"\n")
            origin = f"{BUNDLED_FALLBACK} with one byte appended"
        seconds, report = textmine_run(corpus, out)
        rows.append(("one new document", seconds, report))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    baseline = rows[0][1]
    print(f"textmine run on {args.corpus} (new document: {origin})")
    print()
    print(
        f"{'run':<18} {'seconds':>8} {'vs first':>9} {'target':>8}  "
        f"{'read':>4} {'coded':>6} {'topics':>9}  stages (s)"
    )
    for name, seconds, report in rows:
        counts = report.get("counts", {})
        target = TARGETS.get(name)
        verdict = "" if target is None else ("ok" if seconds <= target else "MISSED")
        topics = (
            "fitted"
            if report.get("topics_refit")
            else ("assigned" if "topics" in report.get("timings", {}) else "untouched")
        )
        stages = ", ".join(
            f"{k} {v:.1f}" for k, v in report.get("timings", {}).items() if k != "total"
        )
        print(
            f"{name:<18} {seconds:8.2f} {seconds / baseline:8.1%} "
            f"{(f'<= {target:g}' if target else '-'):>8}  {counts.get('documents_read', 0):>4} "
            f"{counts.get('sentences_coded', 0):>6} {topics:>9}  {stages} {verdict}"
        )


if __name__ == "__main__":
    main()
