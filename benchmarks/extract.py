"""PDF text extraction speed on real Ofsted reports, three ways in one run.

    python benchmarks/extract.py [--limit N] [PATH ...]

1. pdfplumber `page.extract_text()` (the plain baseline),
2. pypdfium2 raw `get_text_range()` (no cleaning),
3. textmine's full reader (`read_document`: pypdfium2 + cleaning + metadata).

Prints pages/s for each and textmine's ratio to the other two. Targets: textmine at
least 10x pdfplumber, aiming within 1.5x of raw pypdfium2. Default input: every
PDF in ../shared/corpus/ofsted/childrens-services when ../shared exists, else the
bundled corpus/ofsted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_OFSTED = REPO.parent / "shared" / "corpus" / "ofsted" / "childrens-services"
BUNDLED_OFSTED = REPO / "corpus" / "ofsted"


def default_files() -> list[Path]:
    root = SHARED_OFSTED if SHARED_OFSTED.is_dir() else BUNDLED_OFSTED
    return sorted(root.rglob("*.pdf"))


def with_pdfplumber(files: list[Path]) -> int:
    import pdfplumber

    pages = 0
    for path in files:
        with pdfplumber.open(path) as pdf:
            for page in pdf.pages:
                page.extract_text()
                page.close()
                pages += 1
    return pages


def with_pypdfium2(files: list[Path]) -> int:
    import pypdfium2 as pdfium

    pages = 0
    for path in files:
        document = pdfium.PdfDocument(path)
        try:
            for index in range(len(document)):
                page = document[index]
                textpage = page.get_textpage()
                textpage.get_text_range()
                textpage.close()
                page.close()
                pages += 1
        finally:
            document.close()
    return pages


def with_textmine(files: list[Path]) -> int:
    from textmine.ingest import read_document

    return sum(read_document(path).pages for path in files)


def measure(function, files: list[Path]) -> tuple[int, float]:
    started = time.perf_counter()
    pages = function(files)
    return pages, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, help="PDF files (default: the Ofsted reports)"
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files")
    args = parser.parse_args()
    files = sorted(
        p for path in args.paths for p in ([path] if path.is_file() else path.rglob("*.pdf"))
    )
    files = (files or default_files())[: args.limit]
    if not files:
        raise SystemExit("no PDF files found")

    with_textmine(files[:1])  # warm-up: imports and the hyphenation word list
    results = {}
    for name, function in (
        ("pdfplumber extract_text", with_pdfplumber),
        ("pypdfium2 raw text", with_pypdfium2),
        ("textmine read_document", with_textmine),
    ):
        pages, seconds = measure(function, files)
        results[name] = pages / seconds
        print(f"  measured {name}: {pages} pages in {seconds:.2f} s", flush=True)

    plumber, raw, textmine = results.values()
    print(f"\n{len(files)} PDFs, {pages} pages")
    print(f"{'method':<26}{'pages/s':>10}{'textmine ratio':>16}")
    print(f"{'pdfplumber extract_text':<26}{plumber:>10.1f}{textmine / plumber:>15.1f}x")
    print(f"{'pypdfium2 raw text':<26}{raw:>10.1f}{textmine / raw:>15.2f}x")
    print(f"{'textmine read_document':<26}{textmine:>10.1f}{1:>15.2f}x")
    print(
        f"\ntarget: >= 10x pdfplumber ({'met' if textmine >= 10 * plumber else 'NOT met'}); "
        f"aim: within 1.5x of pypdfium2 ({'met' if raw <= 1.5 * textmine else 'not met'})"
    )


if __name__ == "__main__":
    main()
