"""benchmarks/e2e.py's corpus: each distinct report once, every k-th of them, or K copies."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_e2e():
    spec = importlib.util.spec_from_file_location("e2e_benchmark", REPO / "benchmarks" / "e2e.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def manifest_paths(folder: Path) -> set[str]:
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return {row["path"] for row in csv.DictReader(handle)}


def source_folder(tmp_path: Path, reports: int, twin: bool = False) -> Path:
    """The first `reports` bundled Ofsted PDFs (and a same-bytes copy of the first) with a manifest."""
    source = tmp_path / "source"
    pdfs = sorted((REPO / "corpus" / "ofsted").rglob("*.pdf"))[:reports]
    for report in pdfs:
        copy = source / report.relative_to(REPO / "corpus")
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(report.read_bytes())
    if twin:  # the same bytes under another name
        (source / "ofsted" / "copy-of-the-first.pdf").write_bytes(pdfs[0].read_bytes())
    with (source / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "title"])
        writer.writeheader()
        for path in sorted(source.rglob("*.pdf")):
            writer.writerow({"path": path.relative_to(source).as_posix(), "title": path.stem})
    return source


def test_the_benchmark_corpus_holds_each_report_once_or_every_kth(tmp_path):
    e2e = load_e2e()
    source = source_folder(tmp_path, 6, twin=True)

    every = e2e.build_corpus([source], tmp_path / "all")
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in every}
    assert len(every) == len(digests) == 6  # the copy is left out
    assert manifest_paths(tmp_path / "all") == {
        p.relative_to(tmp_path / "all").as_posix() for p in every
    }
    half = e2e.build_corpus([source], tmp_path / "half", every=2)
    assert [p.relative_to(tmp_path / "half") for p in half] == [
        p.relative_to(tmp_path / "all") for p in every[::2]
    ]
    assert manifest_paths(tmp_path / "half") == {
        p.relative_to(tmp_path / "half").as_posix() for p in half
    }


def test_byte_distinct_copies_hold_the_same_pages_under_their_own_hash(tmp_path):
    import pypdfium2 as pdfium

    e2e = load_e2e()
    source = source_folder(tmp_path, 2)

    files = e2e.build_corpus([source], tmp_path / "three", copies=3)
    assert len(files) == len({hashlib.sha256(p.read_bytes()).hexdigest() for p in files}) == 6
    assert manifest_paths(tmp_path / "three") == {
        p.relative_to(tmp_path / "three").as_posix() for p in files
    }

    def pages(path: Path) -> list[str]:
        document = pdfium.PdfDocument(str(path))
        try:
            return [document[i].get_textpage().get_text_range() for i in range(len(document))]
        finally:
            document.close()

    originals = [
        p for p in files if not p.relative_to(tmp_path / "three").parts[0].startswith("copy-")
    ]
    assert len(originals) == 2
    for original in originals:
        relative = original.relative_to(tmp_path / "three")
        for k in (2, 3):
            assert pages(tmp_path / "three" / f"copy-{k}" / relative) == pages(original)
