"""PDF text per page with pypdfium2 (fast); pdfplumber only to repair broken files.

PDFium returns text in content-stream order, which keeps the reading order of
multi-column pages produced by ordinary publishing tools; pages whose text is
stored across columns are found from PDFium's text-run boxes and only those are
re-read with pdfplumber. Pages that are images without a text layer are
read by OCR when the `tesseract` command is installed. PDFium is not thread-safe: every use of it here,
pdfplumber's included (pdfplumber uses pypdfium2 internally), runs under
`PDFIUM_LOCK`, one process-wide lock, so threads read PDFs one at a time (every
document, page and text page here is closed after use, inside the lock). Other
code that calls pypdfium2 in a process that reads PDFs must hold it too.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import pypdfium2 as pdfium

from textmine.ingest.limits import Deadline
from textmine.types import IngestError

# The one lock around PDFium for the whole process (PDFium has global state and
# crashes when entered from two threads at once). Re-entrant: helpers nest.
PDFIUM_LOCK = threading.RLock()

# A page with fewer visible characters than this and an image is treated as scanned.
MIN_TEXT_CHARS = 25
# A document whose share of scanned pages reaches this needs OCR as a whole.
NEEDS_OCR_SHARE = 0.5
PDF_DATE = re.compile(r"D?:?(\d{4})(\d{2})?(\d{2})?")
# OCR of pages without a text layer, with the `tesseract` command when it is installed.
OCR_DPI = 300
OCR_ENV_SWITCH = "TEXTMINE_OCR"  # "0" turns OCR off
OCR_ENV_LANGUAGES = "TEXTMINE_OCR_LANGUAGES"  # tesseract languages, e.g. "eng+fra"; default "eng"


# Column check: consecutive text runs on one baseline separated by a gap wider than
# this share of the page, each at least COLUMN_RUN_SHARE wide, are read across columns.
COLUMN_GAP_SHARE = 0.03
COLUMN_RUN_SHARE = 0.2
# A page is re-read column by column when at least this many such pairs occur
# and they make up this share of its text lines.
INTERLEAVED_MIN_PAIRS = 4
INTERLEAVED_LINE_SHARE = 0.3
# Only the first text runs of a page are checked (interleaving runs through a page):
# a small sample, then more when the sample shows two or more cross-column steps.
COLUMN_SAMPLE_RUNS = 16
COLUMN_CHECK_RUNS = 80


@dataclass
class PdfText:
    """Raw text of each page plus the document information dictionary."""

    pages: list[str]
    metadata: dict[str, str] = field(default_factory=dict)
    scanned_pages: list[int] = field(default_factory=list)  # 1-based
    repaired: bool = False
    reordered_pages: list[int] = field(default_factory=list)  # 1-based, re-read by columns
    ocr_pages: list[int] = field(default_factory=list)  # 1-based, text read by OCR


def extract_pdf_text(
    data: bytes,
    *,
    password: str | None = None,
    deadline: Deadline | None = None,
    ocr: list[str] | None = None,
) -> PdfText:
    """Extract every page's text; raise IngestError for encrypted, malformed or scanned PDFs.

    Pages that are images without a text layer are read by OCR when `ocr` (a
    tesseract command line, default `ocr_command()`) is available; their
    numbers are in `ocr_pages`. Without OCR, or when OCR finds no text, a PDF
    whose pages are mostly such images fails with "needs_ocr".
    PDFium work holds PDFIUM_LOCK (OCR itself runs outside it); `deadline` is
    checked after every page.
    """
    deadline = deadline or Deadline(0)
    command = ocr_command() if ocr is None else ocr
    if not command:
        with PDFIUM_LOCK:
            return _extract_pdf_text(data, password=password, deadline=deadline)
    with PDFIUM_LOCK:
        result = _extract_pdf_text(
            data, password=password, deadline=deadline, check_text_layer=False
        )
        images = (
            {} if result.repaired else render_pages(data, result.scanned_pages, password=password)
        )
    for number, image in images.items():
        deadline.check(f"OCR of page {number}")
        text = ocr_image(image, command, timeout=deadline.remaining())
        if len(re.sub(r"\s", "", text)) >= MIN_TEXT_CHARS:
            result.pages[number - 1] = text
            result.ocr_pages.append(number)
    result.scanned_pages = [n for n in result.scanned_pages if n not in result.ocr_pages]
    try:
        _check_text_layer(result)
    except IngestError as error:
        if error.reason != "needs_ocr" or result.repaired or not ghostscript():
            raise
        with PDFIUM_LOCK:  # text may be hidden by a broken file: repair, re-read
            return _repaired_text(data, password=password, cause=error.message, repair_only=True)
    return result


def ocr_command(environ: Mapping[str, str] | None = None) -> list[str]:
    """The tesseract command line that OCRs a PNG on stdin to text on stdout; [] when unavailable.

    Unavailable when `tesseract` is not installed (Debian: `apt-get install
    tesseract-ocr`) or TEXTMINE_OCR is "0". Languages from TEXTMINE_OCR_LANGUAGES
    (default "eng"); page segmentation mode 1 detects the orientation of
    rotated scans.
    """
    environ = os.environ if environ is None else environ
    if environ.get(OCR_ENV_SWITCH, "1").strip() == "0":
        return []
    executable = shutil.which("tesseract", path=environ.get("PATH"))
    if not executable:
        return []
    languages = environ.get(OCR_ENV_LANGUAGES, "").strip() or "eng"
    return [executable, "stdin", "stdout", "-l", languages, "--psm", "1", "--dpi", str(OCR_DPI)]


def render_pages(data: bytes, pages: list[int], *, password: str | None = None) -> dict[int, bytes]:
    """{page number: grayscale PNG at OCR_DPI} for the given 1-based pages (holds PDFIUM_LOCK)."""
    if not pages:
        return {}
    images = {}
    with PDFIUM_LOCK:
        document = pdfium.PdfDocument(data, password=password)
        try:
            for number in pages:
                page = document[number - 1]
                try:
                    bitmap = page.render(scale=OCR_DPI / 72, grayscale=True)
                    buffer = io.BytesIO()
                    bitmap.to_pil().save(buffer, format="PNG")
                    bitmap.close()
                    images[number] = buffer.getvalue()
                finally:
                    page.close()
        finally:
            document.close()
    return images


def ocr_image(png: bytes, command: list[str], *, timeout: float = float("inf")) -> str:
    """Text of a PNG image by OCR with `command` (see `ocr_command`); "" when OCR fails.

    tesseract runs on one thread (OMP_THREAD_LIMIT=1): on a shared machine its
    own threads made it slower, not faster.
    """
    environment = dict(os.environ, OMP_THREAD_LIMIT="1")
    try:
        done = subprocess.run(
            command,
            input=png,
            capture_output=True,
            check=False,
            env=environment,
            timeout=None if timeout == float("inf") else max(1.0, timeout),
        )
    except subprocess.TimeoutExpired as error:
        raise IngestError(
            "timeout",
            "OCR of a scanned page took longer than the reading budget "
            "(raise it with TEXTMINE_READ_SECONDS)",
        ) from error
    except OSError:
        return ""
    return done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else ""


def _extract_pdf_text(
    data: bytes, *, password: str | None, deadline: Deadline, check_text_layer: bool = True
) -> PdfText:
    try:
        document = pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as error:
        if "password" in str(error).lower():
            detail = "a wrong password was given" if password else "no password was given"
            raise IngestError(
                "encrypted", f"the PDF is encrypted and {detail} (use --password)"
            ) from error
        return _repaired_text(data, password=password, cause=str(error), check=check_text_layer)
    try:
        result, interleaved = _document_text(document, deadline)
    finally:
        document.close()
    if interleaved:
        for index, text in reread_by_columns(data, interleaved, password=password).items():
            result.pages[index] = text
    if not check_text_layer:
        return result
    try:
        _check_text_layer(result)
    except IngestError as error:
        if error.reason != "needs_ocr" or not ghostscript():
            raise
        # Text may be hidden by a broken file (e.g. fonts without a Unicode map): repair, re-read.
        return _repaired_text(data, password=password, cause=error.message, repair_only=True)
    return result


def ghostscript() -> str | None:
    """Path of the Ghostscript executable that pdfplumber's repair needs, if installed."""
    return shutil.which("gs") or shutil.which("gswin64c") or shutil.which("gswin32c")


def _document_text(
    document: pdfium.PdfDocument, deadline: Deadline
) -> tuple[PdfText, dict[int, list[float]]]:
    pages: list[str] = []
    scanned: list[int] = []
    interleaved: dict[int, list[float]] = {}
    for index in range(len(document)):
        page = document[index]
        try:
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
                splits = column_splits(textpage, page.get_width())
                if splits:
                    interleaved[index] = splits
            finally:
                textpage.close()
            if len(re.sub(r"\s", "", text)) < MIN_TEXT_CHARS and _has_image(page):
                scanned.append(index + 1)
        finally:
            page.close()
        pages.append(text)
        deadline.check(f"reading page {index + 1}")
    metadata = {k: v for k, v in document.get_metadata_dict(skip_empty=True).items() if v}
    return PdfText(
        pages=pages,
        metadata=metadata,
        scanned_pages=scanned,
        reordered_pages=[i + 1 for i in interleaved],
    ), interleaved


def column_splits(textpage: pdfium.PdfTextPage, width: float) -> list[float]:
    """X positions between columns when text runs go across columns, else [].

    The runs go across columns
    line by line (content order not reading order); [] for a page in reading order.

    Cheap: it looks only at PDFium's text-run rectangles, in content order, first
    at a small sample and at more of the page only when the sample is suspicious.
    """
    total = textpage.count_rects()
    if total < 2 * INTERLEAVED_MIN_PAIRS or width <= 0:
        return []
    sample = _interleaved_gaps(_rects(textpage, min(total, COLUMN_SAMPLE_RUNS)), width)[0]
    if len(sample) < 2:
        return []
    gaps, lines = _interleaved_gaps(_rects(textpage, min(total, COLUMN_CHECK_RUNS)), width)
    if len(gaps) < INTERLEAVED_MIN_PAIRS or len(gaps) < INTERLEAVED_LINE_SHARE * lines:
        return []
    # cluster gap positions (within 5% of the page width) into column boundaries
    splits: list[list[float]] = []
    for x in sorted(gaps):
        if splits and x - splits[-1][-1] < 0.05 * width:
            splits[-1].append(x)
        else:
            splits.append([x])
    return [
        sorted(group)[len(group) // 2] for group in splits if len(group) >= INTERLEAVED_MIN_PAIRS
    ]


def _interleaved_gaps(
    rects: list[tuple[float, float, float, float]], width: float
) -> tuple[list[float], int]:
    """Gap midpoints between consecutive wide runs on one baseline, and the number of baselines."""
    gaps = []
    baselines = set()
    for (l1, b1, r1, t1), (l2, b2, r2, _t2) in itertools.pairwise(rects):
        baselines.add(round(b1))
        if (
            abs(b1 - b2) < 0.5 * max(t1 - b1, 1.0)
            and l2 - r1 > COLUMN_GAP_SHARE * width
            and r1 - l1 > COLUMN_RUN_SHARE * width
            and r2 - l2 > COLUMN_RUN_SHARE * width
        ):
            gaps.append((r1 + l2) / 2)
    return gaps, len(baselines)


def _rects(textpage: pdfium.PdfTextPage, count: int) -> list[tuple[float, float, float, float]]:
    """The first `count` text-run rectangles, via the raw PDFium call (the helper is slower)."""
    import ctypes

    left, top, right, bottom = (ctypes.c_double() for _ in range(4))
    refs = [ctypes.byref(v) for v in (left, top, right, bottom)]
    get_rect = pdfium.raw.FPDFText_GetRect
    rects = []
    for index in range(count):
        get_rect(textpage.raw, index, *refs)
        rects.append((left.value, bottom.value, right.value, top.value))
    return rects


def reread_by_columns(
    data: bytes, interleaved: dict[int, list[float]], *, password: str | None
) -> dict[int, str]:
    """Text of the given pages (0-based) in reading order, from pdfplumber's words.

    The page is cut into horizontal bands: lines that run across a column split
    (titles, full-width paragraphs) are read as they are; runs of column lines are
    read column by column, left to right.
    """
    import io

    import pdfplumber

    texts = {}
    with pdfplumber.open(io.BytesIO(data), password=password or "") as pdf:
        for index, splits in interleaved.items():
            page = pdf.pages[index]
            texts[index] = "\n".join(
                _column_ordered_lines(page.extract_words(), splits, float(page.width))
            )
            page.close()
    return texts


def _column_ordered_lines(words: list[dict], splits: list[float], width: float) -> list[str]:
    lines: list[list[dict]] = []
    for word in sorted(words, key=lambda w: (round(w["top"]), w["x0"])):
        if lines and abs(lines[-1][0]["top"] - word["top"]) < 0.5 * (word["bottom"] - word["top"]):
            lines[-1].append(word)
        else:
            lines.append([word])
    edges = [float("-inf"), *splits, float("inf")]

    def spans(line: list[dict]) -> bool:
        line = sorted(line, key=lambda w: w["x0"])
        for split in splits:
            if any(w["x0"] < split < w["x1"] for w in line):
                return True
            if any(
                a["x1"] <= split <= b["x0"] and b["x0"] - a["x1"] < COLUMN_GAP_SHARE * width
                for a, b in itertools.pairwise(line)
            ):
                return True
        return False

    out: list[str] = []
    band: list[list[dict]] = []

    def flush() -> None:
        if not band:
            return
        out.append("")  # a change of layout ends a paragraph
        for left, right in itertools.pairwise(edges):
            for line in band:
                cell = [
                    w["text"]
                    for w in sorted(line, key=lambda w: w["x0"])
                    if left <= w["x0"] < right
                ]
                if cell:
                    out.append(" ".join(cell))
            if out[-1] and out[-1].rstrip()[-1:] in ".!?:":
                out.append("")  # the column ends with its paragraph
        band.clear()
        out.append("")

    for line in lines:
        if spans(line):
            flush()
            out.append(" ".join(w["text"] for w in sorted(line, key=lambda w: w["x0"])))
        else:
            band.append(line)
    flush()
    return out


def _has_image(page: pdfium.PdfPage) -> bool:
    return any(obj.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE for obj in page.get_objects(max_depth=2))


def _check_text_layer(result: PdfText) -> None:
    n_pages = len(result.pages)
    if n_pages == 0:
        raise IngestError("malformed", "the PDF has no pages")
    if result.scanned_pages and len(result.scanned_pages) >= NEEDS_OCR_SHARE * n_pages:
        pages = _page_list(result.scanned_pages)
        raise IngestError(
            "needs_ocr",
            f"{len(result.scanned_pages)} of {n_pages} pages are images with no extractable text "
            f"(pages {pages}): scanned, or fonts without a Unicode map; OCR it first, "
            "e.g. `ocrmypdf in.pdf out.pdf`, or install tesseract (`apt-get install tesseract-ocr`) "
            "and textmine reads such pages by OCR",
        )


def _page_list(pages: list[int]) -> str:
    return ", ".join(map(str, pages[:10])) + (", ..." if len(pages) > 10 else "")


def _repaired_text(
    data: bytes, *, password: str | None, cause: str, repair_only: bool = False, check: bool = True
) -> PdfText:
    """Second chance for files PDFium rejects or finds no text in.

    pdfplumber
    (pdfminer), then pdfplumber's Ghostscript repair when Ghostscript is installed.
    """
    import io

    import pdfplumber

    attempts = ([] if repair_only else [False]) + ([True] if ghostscript() else [])
    errors = [f"PDFium: {cause}"]
    for repair in attempts:
        try:
            with pdfplumber.open(io.BytesIO(data), password=password or "", repair=repair) as pdf:
                pages = [page.extract_text() or "" for page in pdf.pages]
                metadata = {
                    k: str(v) for k, v in (pdf.metadata or {}).items() if isinstance(v, str | bytes)
                }
                scanned = [
                    i + 1
                    for i, (page, text) in enumerate(zip(pdf.pages, pages, strict=True))
                    if len(re.sub(r"\s", "", text)) < MIN_TEXT_CHARS and page.images
                ]
        except Exception as error:  # pdfminer raises many unrelated exception types
            errors.append(
                f"pdfplumber{' with repair' if repair else ''}: {type(error).__name__}: {error}"
            )
            continue
        result = PdfText(pages=pages, metadata=metadata, scanned_pages=scanned, repaired=True)
        if check:
            _check_text_layer(result)
        return result
    if not ghostscript():
        errors.append("Ghostscript repair not tried: `gs` is not installed")
    raise IngestError("malformed", "; ".join(e.strip()[:200] for e in errors))


def pdf_date(value: str) -> str:
    """ISO date from a PDF date string ("D:20260511150224+01'00'" -> "2026-05-11")."""
    match = PDF_DATE.match(value.strip()) if value else None
    if not match or not 1900 < int(match.group(1)) < 2100:
        return ""
    parts = [match.group(1)] + [g for g in match.groups()[1:] if g]
    with contextlib.suppress(ValueError):
        if len(parts) > 1 and not 1 <= int(parts[1]) <= 12:
            return parts[0]
    return "-".join(parts)
