"""End to end: `textmine run` against the raw-text floor, first run against warm run, in one run.

    python benchmarks/e2e.py                       # every real Ofsted PDF beside the checkout
    python benchmarks/e2e.py --coder learned --workers 2 --warm-runs 2
    python benchmarks/e2e.py --source ../shared/corpus --source corpus --keep /tmp/e2e
    python benchmarks/e2e.py --compare-eager      # also first/warm runs as before issue 15
    python benchmarks/e2e.py --every 2            # every 2nd distinct report: run time vs corpus size
    python benchmarks/e2e.py --copies 5           # 5 byte-distinct copies of each: the issue's corpus size

The corpus is every real Ofsted report PDF under the sources (default
../shared/corpus when it is beside the checkout, and the bundled corpus/),
copied once per distinct content into a temporary folder with their manifest
rows (identical bytes would be read once by textmine, so copies are not used to
inflate the corpus: the table says how many documents and pages were measured).
`--copies K` is the one exception, for measuring at the size of the issue's
415-report corpus, which is not here: each report is also written K-1 more times
with a PDF comment after its end (`% textmine benchmark copy k`), so every copy
has its own content hash and is read, split, coded, stored and modelled like a
new report. The text repeats, so the topic model sees each chunk K times: run
time at that size, not topic quality.

Measured in this one process, one after another:
1. the floor: a fresh Python process reading every page's raw text with
   pypdfium2 (`get_text_range`), best of `--floor-runs`;
2. the first run on a fresh install: `textmine run` with an empty numba cache
   (`NUMBA_CACHE_DIR` in a new temporary folder) and a new output folder, so no
   store, no topic model and no compiled code;
3. warm runs: the same numba cache (filled by run 2), a new output folder each.

Each textmine run is a fresh process (`textmine run CORPUS --out OUT --coder
CODER --workers N`); the table gives wall seconds, the stage seconds from
run.json, the ratio to the floor, the peak memory of the process tree (sum of
RSS of textmine and its workers, sampled every 0.1 s) and the CPU used per wall
second (2.0 = both cores of a 2-core machine busy). With more than one worker
the topic stage runs in its own process alongside coding and outputs: "topics"
is that process's own seconds and "wait" how long the main process waited for
it (counted inside "outputs"), so the stages overlap. Load averages before and
after are printed: the machine may be shared.

Targets (issue 15): warm run <= 3x the floor; peak <= 2 GB; first run <= 1.5x
the warm run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 3.0
TARGET_PEAK_MB = 2048
TARGET_FIRST_RUN = 1.5
STAGES = ("scan", "extract", "code", "topics", "trends", "outputs", "topics_wait")

FLOOR_SCRIPT = """
import sys, time, pypdfium2 as pdfium
started = time.perf_counter()
pages = chars = 0
for path in sys.argv[1:]:
    document = pdfium.PdfDocument(path)
    try:
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            chars += len(textpage.get_text_range())
            textpage.close()
            page.close()
            pages += 1
    finally:
        document.close()
print(pages, chars, time.perf_counter() - started)
"""


BOOT = "from textmine.cli import main; main()"
# Before issue 15: pynndescent imported as it is by UMAP, its ~140 numba signatures compiled
# at import (textmine's import_model_libraries finds it imported and leaves it as it is).
EAGER_BOOT = "import pynndescent; " + BOOT


def default_sources() -> list[Path]:
    shared = REPO.parent / "shared" / "corpus"
    return [p for p in (shared, REPO / "corpus") if p.is_dir()]


def build_corpus(sources: list[Path], target: Path, every: int = 1, copies: int = 1) -> list[Path]:
    """Copy every distinct real Ofsted PDF of `sources` into `target` with a manifest; the files.

    With `every` = k, only every k-th of them (in order of their path in the corpus).
    With `copies` = K, each also K-1 more times under `copy-2/` ... `copy-K/`, with a
    PDF comment appended after its end (distinct bytes, the same pages), each copy
    with its original's manifest row.
    """
    rows: dict[str, dict] = {}
    seen: dict[str, Path] = {}
    originals: dict[Path, Path] = {}
    fields: list[str] = []
    for root in sources:
        manifest = root / "manifest.csv"
        if manifest.is_file():
            with manifest.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                fields = fields or list(reader.fieldnames or [])
                for row in reader:
                    rows.setdefault(row["path"], row)
        for path in sorted((root / "ofsted").rglob("*.pdf")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                continue
            relative = path.relative_to(root)
            seen[digest] = relative
            originals[relative] = path
    chosen = sorted(seen.values())[:: max(1, every)]
    seen = {str(relative): relative for relative in chosen}
    for relative in chosen:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(originals[relative], target / relative)
    written = list(chosen)
    for k in range(2, copies + 1):
        for relative in chosen:
            copy = Path(f"copy-{k}") / relative
            (target / copy).parent.mkdir(parents=True, exist_ok=True)
            data = originals[relative].read_bytes()
            (target / copy).write_bytes(data + f"\n% textmine benchmark copy {k}\n".encode())
            if relative.as_posix() in rows:
                rows[copy.as_posix()] = dict(rows[relative.as_posix()], path=copy.as_posix())
            written.append(copy)
    seen = {str(relative): relative for relative in written}
    if fields:
        keep = [rows[p.as_posix()] for p in seen.values() if p.as_posix() in rows]
        with (target / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(keep)
    return sorted(target / p for p in seen.values())


def measure_floor(files: list[Path]) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, pages, characters) of a fresh process reading every page's raw text."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", FLOOR_SCRIPT, *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    pages, chars, _ = done.stdout.split()
    return wall, cpu, int(pages), int(chars)


@dataclass
class RunMeasure:
    """One `textmine run`: wall time, stage times, memory and CPU of its process tree."""

    label: str
    wall_s: float
    timings: dict[str, float]
    peak_tree_mb: float
    peak_main_mb: float
    cpu_s: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    counts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def cores_busy(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


def run_textmine(
    label: str,
    corpus: Path,
    out: Path,
    numba_dir: Path,
    coder: str,
    workers: int,
    eager: bool = False,
) -> RunMeasure:
    """Run `textmine run` in a fresh process and sample its process tree until it ends.

    With `eager`, pynndescent is imported first, as UMAP imports it (every numba
    signature it declares compiled at import): the behaviour before issue 15.
    """
    import psutil

    env = dict(os.environ, NUMBA_CACHE_DIR=str(numba_dir), PYTHONWARNINGS="ignore")
    command = [
        sys.executable,
        "-c",
        EAGER_BOOT if eager else BOOT,
        "run",
        str(corpus),
        "--out",
        str(out),
        "--coder",
        coder,
        "--workers",
        str(workers),
    ]
    load_before = os.getloadavg()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    root = psutil.Process(process.pid)
    cpu: dict[int, float] = {}
    peak_tree = peak_main = 0.0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        total = 0.0
        for proc in tree:
            try:
                times, rss = proc.cpu_times(), proc.memory_info().rss
            except psutil.Error:
                continue
            cpu[proc.pid] = times.user + times.system
            total += rss
            if proc.pid == root.pid:
                peak_main = max(peak_main, rss)
        peak_tree = max(peak_tree, total)
        time.sleep(0.1)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(
            f"textmine run failed ({process.returncode}):\n{stdout[-2000:]}\n{stderr[-3000:]}"
        )
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return RunMeasure(
        label,
        wall,
        report.get("timings", {}),
        peak_tree / 2**20,
        peak_main / 2**20,
        sum(cpu.values()),
        load_before,
        os.getloadavg(),
        report.get("counts", {}),
        report.get("notes", []),
    )


def print_table(
    floor: float,
    floor_cpu: float,
    pages: int,
    documents: int,
    runs: list[RunMeasure],
    coder: str,
    workers: int,
    copies: int = 1,
) -> None:
    """The benchmark's one table, then the target lines."""
    header = (
        f"{'run':<14} {'wall s':>7} "
        + " ".join(f"{s.replace('topics_wait', 'wait'):>8}" for s in STAGES)
        + f" {'x floor':>8} {'cpu s':>7} {'cpu x':>6} {'peak MB':>8} {'main MB':>8} {'cores':>6}"
        + f" {'load':>10}"
    )
    what = (
        f"{documents} Ofsted PDFs ({documents // copies} distinct reports x {copies} "
        "byte-distinct copies)"
        if copies > 1
        else f"{documents} distinct Ofsted PDFs"
    )
    print(
        f"corpus: {what}, {pages:,} pages; coder {coder}, "
        f"{workers} worker process(es); {os.cpu_count()} cores"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{'floor':<14} {floor:>7.1f} "
        + " ".join(f"{'':>8}" for _ in STAGES)
        + f" {1.0:>8.2f} {floor_cpu:>7.1f} {1.0:>6.2f} {'':>8} {'':>8}"
        + f" {floor_cpu / floor:>6.2f} {'':>10}"
    )
    for run in runs:
        stage = " ".join(f"{run.timings.get(s, 0.0):>8.1f}" for s in STAGES)
        load = f"{run.load_before[0]:.1f}->{run.load_after[0]:.1f}"
        print(
            f"{run.label:<14} {run.wall_s:>7.1f} {stage} {run.wall_s / floor:>8.2f} "
            f"{run.cpu_s:>7.1f} {run.cpu_s / floor_cpu:>6.2f} "
            f"{run.peak_tree_mb:>8.0f} {run.peak_main_mb:>8.0f} {run.cores_busy:>6.2f} {load:>10}"
        )
    for what, eager in (("this version", False), ("pynndescent compiled at import", True)):
        mine = [r for r in runs if r.label.endswith(", eager") == eager]
        first = next((r for r in mine if r.label.startswith("first")), None)
        warm = [r for r in mine if r.label.startswith("warm")]
        if not warm:
            continue
        best = min(warm, key=lambda r: r.wall_s)
        peak = max(r.peak_tree_mb for r in mine)
        print(
            f"{what}: warm run / floor {best.wall_s / floor:.2f}x (target <= {TARGET_RATIO:.0f}x); "
            f"peak memory {peak:.0f} MB (target <= {TARGET_PEAK_MB} MB)"
        )
        if first is not None:
            print(
                f"{what}: first run / warm run {first.wall_s / best.wall_s:.2f}x (target <= "
                f"{TARGET_FIRST_RUN}x); topic stage {first.timings.get('topics', 0):.1f} s "
                f"first, {best.timings.get('topics', 0):.1f} s warm"
            )
    print(
        "floor: a fresh Python process reading every page's raw text with pypdfium2 (best of "
        "the floor runs). first run: empty numba cache and output folder. warm: numba cache "
        "from the first run, new output folder. peak MB: sum of RSS over textmine's process "
        "tree; main MB: the main process. cpu s: CPU seconds of the process tree (less sensitive "
        "to other jobs than wall seconds); cpu x: / the floor's. cores: CPU seconds / wall "
        "seconds. With --workers > 1 the topic stage runs in its own process alongside coding "
        "and outputs: topics is that process's seconds, wait the seconds the main process waited "
        "for it (inside outputs), so stages add up to more than the wall time. load: 1-minute "
        "load average before -> after the run. eager: pynndescent imported first, its numba "
        "signatures compiled at import (before issue 15; its import time counts in wall s, "
        "not in a stage)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--source",
        type=Path,
        action="append",
        help="corpus folder holding ofsted/ and manifest.csv (repeatable; "
        "default: ../shared/corpus and corpus/)",
    )
    parser.add_argument(
        "--coder",
        default="rules",
        choices=("rules", "learned"),
        help="sentence coder of the runs (default: rules)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="textmine run --workers (default: one per core, at most 4)",
    )
    parser.add_argument("--warm-runs", type=int, default=1, help="warm runs (default 1)")
    parser.add_argument(
        "--floor-runs", type=int, default=3, help="floor runs, best kept (default 3)"
    )
    parser.add_argument("--no-first-run", action="store_true", help="skip the cold first run")
    parser.add_argument(
        "--compare-eager",
        action="store_true",
        help="also a first and a warm run with pynndescent compiled at import (before issue 15)",
    )
    parser.add_argument(
        "--every",
        type=int,
        default=1,
        help="only every k-th distinct report, by path (2: half the corpus; default 1: all)",
    )
    parser.add_argument(
        "--copies",
        type=int,
        default=1,
        help="K byte-distinct copies of each report (same pages, own content hash): "
        "run time at K times the corpus size (default 1: none)",
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="textmine-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        corpus = work / "corpus"
        shutil.rmtree(corpus, ignore_errors=True)
        files = build_corpus(args.source or default_sources(), corpus, args.every, args.copies)
        if not files:
            sys.exit("no Ofsted PDFs found under the sources")
        print(
            f"load average (1/5/15 min) at start: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        floors = [measure_floor(files) for _ in range(args.floor_runs)]
        floor, floor_cpu, pages, _ = min(floors)
        print(f"floor runs (s): {', '.join(f'{f[0]:.2f}' for f in floors)}")
        numba_dir = work / "numba-cache"
        shutil.rmtree(numba_dir, ignore_errors=True)
        numba_dir.mkdir()
        runs: list[RunMeasure] = []
        eager_dir = work / "numba-cache-eager"
        shutil.rmtree(eager_dir, ignore_errors=True)
        eager_dir.mkdir()
        plan: list[tuple[str, Path, bool]] = []
        if not args.no_first_run:
            plan.append(("first run", numba_dir, False))
            if args.compare_eager:
                plan.append(("first, eager", eager_dir, True))
        for i in range(args.warm_runs):
            plan.append((f"warm {i + 1}", numba_dir, False))
            if args.compare_eager:
                plan.append((f"warm {i + 1}, eager", eager_dir, True))
        for index, (label, cache, eager) in enumerate(plan):
            out = work / f"out-{index}"
            shutil.rmtree(out, ignore_errors=True)
            runs.append(
                run_textmine(label, corpus, out, cache, args.coder, args.workers, eager=eager)
            )
            print(f"{label}: {runs[-1].wall_s:.1f} s", flush=True)
        print_table(
            floor, floor_cpu, pages, len(files), runs, args.coder, args.workers, args.copies
        )
        counts = runs[-1].counts
        print(
            f"sentences {counts.get('sentences_total', 0):,}; documents {counts.get('documents_total', 0)}; "
            f"load average at the end: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        for note in runs[-1].notes:
            print(f"note: {note}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
