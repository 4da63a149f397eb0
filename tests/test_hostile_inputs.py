"""Hostile and odd inputs: no crash, no hang, no runaway memory, every file accounted for.

Every big file is generated here, in a temporary folder; none is committed.
`build_hostile_corpus(folder)` makes the whole bad-input corpus (also used by
hand: ``python -c "from tests.test_hostile_inputs import build_hostile_corpus;
build_hostile_corpus(__import__('pathlib').Path('/tmp/bad'))"``).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import CORPUS
from textmine.atomic import write_csv_atomic
from textmine.columns import FAILURE_REASONS
from textmine.csv_safety import FORMULA_TRIGGERS, unescape_formula, unescape_formula_cells
from textmine.export import write_parquet_export
from textmine.ingest import read_bytes
from textmine.ingest.boilerplate import is_prose_sentence
from textmine.ingest.discover import discover
from textmine.ingest.limits import Deadline, ReadLimits, time_budget
from textmine.ingest.paths import path_bytes, path_from_bytes, safe_display_path
from textmine.ingest.pdf import PDFIUM_LOCK
from textmine.ingest.text import decode_text
from textmine.run import RunSettings, run_pipeline
from textmine.types import IngestError

PROSE = (
    "The local authority and the academy trust work together on school improvement, "
    "and the partnership shares training across the schools of the town."
)
ERROR_PAGE = (
    b"<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>"
    b"<p>The page you asked for does not exist.</p></body></html>"
)
PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


# --------------------------------------------------------------------------- generators


def docx_bytes(paragraph_xml_bytes: int, text: str = "Schools collaborate.") -> bytes:
    """A valid DOCX whose word/document.xml holds about `paragraph_xml_bytes` of small paragraphs.

    Written in chunks, so a part that inflates to a gigabyte costs little memory here.
    """
    head = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document '
        'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    )
    paragraph = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
            '"application/xml"/><Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
            '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>',
        )
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(head.encode())
            chunk = (paragraph * 10_000).encode()
            for _ in range(max(1, paragraph_xml_bytes // len(chunk))):
                part.write(chunk)
            part.write(b"</w:body></w:document>")
    return buffer.getvalue()


def html_bytes(size: int) -> bytes:
    """An HTML article of distinct paragraphs, about `size` bytes."""
    parts = ["<html><head><title>A long report</title></head><body><article>"]
    total, index = 0, 0
    while total < size:
        paragraph = f"<p>Paragraph {index}: school {index} works with school {index + 1} in the trust.</p>\n"
        parts.append(paragraph)
        total += len(paragraph)
        index += 1
    parts.append("</article></body></html>")
    return "".join(parts).encode()


def long_line_without_full_stop(size: int) -> bytes:
    """One line of words, `size` bytes, that never ends a sentence."""
    words = ("schools", "trust", "partnership", "pupils", "local", "leaders", "network")
    rng = random.Random(7)
    out, total = [], 0
    while total < size:
        word = rng.choice(words)
        out.append(word)
        total += len(word) + 1
    return " ".join(out).encode()


def build_hostile_corpus(folder: Path, *, big: bool = True) -> dict[str, str]:
    """Write the bad-input corpus into `folder`; return {file name: what it tests}.

    With `big`, the large rows are full size (300 KB line, 1 GB-inflating DOCX,
    50 MB HTML); without, they are smaller but still past the default limits or
    still pathological for a backtracking pattern.
    """
    folder.mkdir(parents=True, exist_ok=True)
    made = {}

    def write(name: str | bytes, data: bytes, what: str) -> None:
        path = folder / os.fsdecode(name) if isinstance(name, bytes) else folder / name
        path.write_bytes(data)
        made[safe_display_path(path.relative_to(folder))] = what

    write(b"caf\xe9.txt", PROSE.encode(), "file name not valid UTF-8")
    write(
        "long-line.txt",
        long_line_without_full_stop(300_000 if big else 100_000),
        "long line, no full stop",
    )
    write(
        "bomb.docx",
        docx_bytes(1_000_000_000 if big else 60_000_000),
        "DOCX inflating past the limit",
    )
    write("big.html", html_bytes(50_000_000 if big else 11_000_000), "HTML past the size limit")
    for copy in range(1, 5):
        write(f"error-page-{copy}.html", ERROR_PAGE, "identical copies of a failing file")
    write("utf16-no-bom.txt", (PROSE + "\n").encode("utf-16-le") * 3, "UTF-16 without BOM")
    write(
        "=cmd()-title.txt",
        ('=HYPERLINK("http://x")\n\n' + PROSE).encode(),
        "formula in name and text",
    )
    write(
        "@at.md", ("# -2+3 heading\n\n+ 1 item\n\n" + PROSE).encode(), "formula characters in text"
    )
    write("empty.txt", b"", "empty file")
    write("image.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "unsupported format")
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    made["passwd.txt"] = "symlink outside the corpus"
    (folder / "dangling.txt").symlink_to(folder / "no-such-file.txt")
    made["dangling.txt"] = "dangling symlink"
    (folder / "loop").symlink_to(folder / "loop")
    made["loop"] = "symlink loop"
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder)
    made["sub/up"] = "symlink to a parent folder"
    os.mkfifo(folder / "pipe.txt")
    made["pipe.txt"] = "named pipe (reading it would wait for ever)"
    for pdf in sorted(CORPUS.rglob("*.pdf"))[:2]:
        shutil.copy(pdf, folder / pdf.name)
        made[pdf.name] = "a real PDF"
    return made


# --------------------------------------------------------------------------- file names


def test_a_file_name_that_is_not_utf8_is_read_and_written(tmp_path):
    name = os.fsdecode(b"caf\xe9 report.txt")
    (tmp_path / name).write_text(PROSE, encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / name).write_text(PROSE, encoding="utf-8")
    out = tmp_path / "out"
    report = run_pipeline(RunSettings(paths=[corpus], out_dir=out, stages=("ingest",)))
    assert report.counts.documents_read == 1 and report.counts.failed == 0
    listed = pd.read_csv(out / "documents.csv", keep_default_na=False)
    assert listed["path"].tolist() == [f"{corpus.as_posix()}/caf\\xe9 report.txt"]
    assert listed["title"][0].encode("utf-8")  # a title from the name is valid UTF-8
    again = run_pipeline(RunSettings(paths=[corpus], out_dir=out, stages=("ingest",)))
    assert again.counts.documents_unchanged == 1 and again.counts.documents_read == 0


def test_path_bytes_are_lossless():
    path = Path(os.fsdecode(b"/corpus/caf\xe9/\xff.txt"))
    assert path_bytes(path) == b"/corpus/caf\xe9/\xff.txt"
    assert path_from_bytes(path_bytes(path)) == path
    assert safe_display_path(path) == "/corpus/caf\\xe9/\\xff.txt"
    assert safe_display_path(Path("/corpus/café.txt")) == "/corpus/café.txt"


# --------------------------------------------------------------------------- slow patterns

OLD_PROSE_SENTENCE = re.compile(r"^(?:\S+\s+){7,}.*[.!?][\"'\u2019\u201d)]*$")


def test_prose_sentence_test_agrees_with_the_old_pattern():
    rng = random.Random(3)
    alphabet = ["a", "bc", " ", "  ", ".", "!", "?", ")", "'", "\t", "\u2019", "x."]
    for _ in range(5000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert is_prose_sentence(line) == bool(OLD_PROSE_SENTENCE.search(line)), repr(line)


def test_a_long_line_without_a_full_stop_is_read_in_linear_time():
    data = long_line_without_full_stop(300_000)
    started = time.perf_counter()
    document = read_bytes(data, "long-line.txt", limits=ReadLimits(seconds=0))
    assert time.perf_counter() - started < 5  # the backtracking pattern took 81 s
    assert len(document.text) > 290_000


@pytest.mark.parametrize(
    "payload",
    ["[" * 200_000, "**a " * 50_000, "__a " * 50_000, "[a](" * 50_000],
    ids=["brackets", "asterisks", "underscores", "open-links"],
)
def test_markdown_stripping_is_linear(payload):
    text = "# Heading one\n# Heading two\n[a](b) [c](d)\n" + payload
    started = time.perf_counter()
    decode_text(text.encode())
    read_bytes(text.encode(), "doc.md", limits=ReadLimits(seconds=0))
    assert (
        time.perf_counter() - started < 5
    )  # the unbounded patterns took 25-37 s at half this size


def test_a_document_past_its_time_budget_fails_with_timeout():
    data = long_line_without_full_stop(2_000_000).replace(b" network ", b". Network ")
    with pytest.raises(IngestError) as error:
        read_bytes(data, "slow.txt", limits=ReadLimits(seconds=0.05))
    assert error.value.reason == "timeout" and "TEXTMINE_READ_SECONDS" in error.value.message


def test_the_timer_interrupts_a_runaway_step_in_the_main_thread():
    started = time.perf_counter()
    with pytest.raises(IngestError) as error, time_budget(0.3):
        re.match(r"(a+)+$", "a" * 40 + "b")  # exponential backtracking
    assert error.value.reason == "timeout"
    assert time.perf_counter() - started < 3


def test_deadline_checks_work_in_any_thread():
    outcome = []

    def work():
        deadline = Deadline(0.01)
        time.sleep(0.05)
        try:
            deadline.check("cleaning text")
        except IngestError as error:
            outcome.append(error.reason)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert outcome == ["timeout"]


# --------------------------------------------------------------------------- size limits


def test_a_docx_that_inflates_past_the_limit_fails_fast_as_too_large():
    data = docx_bytes(60_000_000)  # about 0.2 MB on disk
    assert len(data) < 1_000_000
    started = time.perf_counter()
    with pytest.raises(IngestError) as error:
        read_bytes(data, "bomb.docx", limits=ReadLimits())
    assert error.value.reason == "too_large" and "TEXTMINE_MAX_INFLATED_MB" in error.value.message
    assert time.perf_counter() - started < 2


def test_a_docx_under_the_limit_is_read():
    document = read_bytes(docx_bytes(200_000, PROSE), "fine.docx", limits=ReadLimits())
    assert document.format == "docx" and PROSE in document.text


def test_an_html_file_past_the_markup_limit_fails_fast_as_too_large():
    data = html_bytes(11_000_000)
    started = time.perf_counter()
    with pytest.raises(IngestError) as error:
        read_bytes(data, "big.html", limits=ReadLimits())
    assert error.value.reason == "too_large" and "TEXTMINE_MAX_MARKUP_MB" in error.value.message
    assert time.perf_counter() - started < 2


def test_text_past_the_character_limit_fails_as_too_large():
    with pytest.raises(IngestError) as error:
        read_bytes(
            (PROSE + "\n\n").encode() * 100, "long.txt", limits=ReadLimits(max_text_chars=5_000)
        )
    assert error.value.reason == "too_large" and "TEXTMINE_MAX_TEXT_CHARS" in error.value.message


def test_limits_come_from_the_environment():
    limits = ReadLimits.from_env({"TEXTMINE_MAX_MARKUP_MB": "2.5", "TEXTMINE_READ_SECONDS": "0"})
    assert limits.max_markup_bytes == 2_500_000 and limits.seconds == 0
    assert limits.max_text_chars == ReadLimits().max_text_chars
    with pytest.raises(ValueError, match="TEXTMINE_MAX_FILE_MB"):
        ReadLimits.from_env({"TEXTMINE_MAX_FILE_MB": "lots"})


# --------------------------------------------------------------------------- copies, encodings


def test_copies_of_a_failing_file_are_failures_too(tmp_path):
    for copy in range(1, 5):
        (tmp_path / f"error-{copy}.html").write_bytes(ERROR_PAGE)
    out = tmp_path / "out"
    run_pipeline(RunSettings(paths=[tmp_path], out_dir=out, stages=("ingest",)))
    written = pd.read_csv(out / "failures.csv", keep_default_na=False)
    failures = {
        Path(p).name: row for p, row in zip(written["path"], written.itertuples(), strict=True)
    }
    assert sorted(failures) == [f"error-{copy}.html" for copy in range(1, 5)]
    assert {f.reason for f in failures.values()} == {"no_text"}
    assert failures["error-1.html"].duplicate_of == ""
    doc_ids = {failures[f"error-{copy}.html"].duplicate_of for copy in range(2, 5)}
    assert len(doc_ids) == 1 and len(doc_ids.pop()) == 16
    assert pd.read_csv(out / "documents.csv").empty


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read(encoding):
    document = read_bytes(
        (PROSE + "\n\n" + PROSE).encode(encoding), "notes.txt", limits=ReadLimits()
    )
    assert document.format == "text" and document.text.startswith(PROSE[:40])


def test_utf16_html_without_a_byte_order_mark_is_read():
    markup = f"<html><body><article><p>{PROSE}</p><p>{PROSE}</p></article></body></html>"
    document = read_bytes(markup.encode("utf-16-le"), "page.html", limits=ReadLimits())
    assert document.format == "html" and PROSE[:40] in document.text


def test_binary_data_with_zero_bytes_is_still_unsupported():
    with pytest.raises(IngestError) as error:
        read_bytes(bytes(range(256)) * 20, "blob.txt", limits=ReadLimits())
    assert error.value.reason == "unsupported_format"


# --------------------------------------------------------------------------- links, special files


def test_links_and_special_files_are_listed_not_followed(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "report.txt").write_text(PROSE, encoding="utf-8")
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "dangling.txt").symlink_to(corpus / "gone.txt")
    (corpus / "loop").symlink_to(corpus / "loop")
    (corpus / "copy.txt").symlink_to(corpus / "report.txt")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "up").symlink_to(corpus)
    os.mkfifo(corpus / "pipe.txt")
    (corpus / ".hidden").mkdir()
    (corpus / "table.csv").write_text("a,b\n", encoding="utf-8")
    found = discover([corpus])
    assert [p.name for p in found.files] == ["report.txt"]
    reasons = {Path(s.path).name: s.reason for s in found.skipped}
    assert reasons == {
        "passwd.txt": "symlink_skipped",
        "dangling.txt": "broken_symlink",
        "loop": "symlink_loop",
        "copy.txt": "symlink_skipped",
        "up": "symlink_skipped",
        "pipe.txt": "special_file",
        ".hidden": "hidden",
        "table.csv": "not_a_document",
    }
    assert all(s.reason in FAILURE_REASONS for s in found.skipped)
    assert "outside the corpus" in next(
        s.message for s in found.skipped if s.path.endswith("passwd.txt")
    )
    out = corpus.parent / "out"
    run_pipeline(RunSettings(paths=[corpus], out_dir=out, stages=("ingest",)))
    sentences = pd.read_csv(out / "sentences.csv", keep_default_na=False)
    assert not sentences["text"].str.contains("root:").any()
    failures = pd.read_csv(out / "failures.csv", keep_default_na=False)
    assert {Path(p).name for p in failures["path"]} == {
        "passwd.txt",
        "dangling.txt",
        "loop",
        "copy.txt",
        "up",
        "pipe.txt",
    }


def test_links_are_followed_when_asked_without_walking_loops(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shared.txt").write_text(PROSE, encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "linked").symlink_to(outside)
    (corpus / "sub").mkdir()
    (corpus / "sub" / "up").symlink_to(corpus)
    found = discover([corpus], follow_symlinks=True)
    assert [p.name for p in found.files] == ["shared.txt"]
    assert [(Path(s.path).name, s.reason) for s in found.skipped] == [("up", "symlink_loop")]


# --------------------------------------------------------------------------- CSV escaping, Parquet


def test_the_csv_writer_escapes_formula_cells_reversibly(tmp_path):
    frame = pd.DataFrame(
        {
            "path": ["=cmd()|' /C calc'!A0.pdf", "ok.pdf", "\tx", "'-1"],
            "n": [-1, 2, 3, 4],
            "share": [-0.5, 0.25, None, 1.0],
            "+header": ["@SUM(1)", "+1", "-", "\rx"],
        }
    )
    write_csv_atomic(tmp_path / "t.csv", frame)
    raw = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)
    for column in raw.columns:
        assert not column.startswith(FORMULA_TRIGGERS)
        for cell in raw[column]:
            assert not cell.startswith(FORMULA_TRIGGERS) or PLAIN_NUMBER.match(cell), cell
    restored = unescape_formula_cells(raw)
    assert restored["path"].tolist() == frame["path"].tolist()
    assert restored["+header"].tolist() == frame["+header"].tolist()
    assert restored["n"].tolist() == ["-1", "2", "3", "4"]


def test_parquet_export_of_a_partial_store_keeps_unknown_dates(tmp_path):
    empty = pd.DataFrame({"doc_id": [], "title": [], "published": []})
    unknown = pd.DataFrame(
        {"doc_id": ["a", "b"], "title": ["=x", "y"], "published": [None, float("nan")]}
    )
    write_parquet_export(tmp_path / "empty.parquet", empty)
    write_parquet_export(tmp_path / "unknown.parquet", unknown)
    assert len(pd.read_parquet(tmp_path / "empty.parquet")) == 0
    back = pd.read_parquet(tmp_path / "unknown.parquet")
    assert back["published"].isna().all() and back["title"].tolist() == ["=x", "y"]


# --------------------------------------------------------------------------- the whole bad corpus


def accounted_files(out: Path, corpus: Path) -> dict[str, str]:
    """{path relative to the corpus: "document" or the failure / skip reason} from a run's outputs."""
    root = safe_display_path(corpus.resolve())
    prefix = safe_display_path(corpus)

    def relative(path: str) -> str:
        for start in (root, prefix):
            if path.startswith(start + "/"):
                return path[len(start) + 1 :]
        return path

    documents = pd.read_csv(out / "documents.csv", dtype=str, keep_default_na=False)
    failures = pd.read_csv(out / "failures.csv", dtype=str, keep_default_na=False)
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    accounted = {relative(unescape_formula(p)): "document" for p in documents["path"]}
    accounted.update(
        {
            relative(unescape_formula(p)): r
            for p, r in zip(failures["path"], failures["reason"], strict=True)
        }
    )
    accounted.update({relative(s["path"]): s["reason"] for s in run["skipped"]})
    return accounted


def assert_no_formula_cells(out: Path) -> None:
    for csv_path in out.glob("*.csv"):
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
        for column in table.columns:
            for cell in table[column]:
                assert not cell.startswith(FORMULA_TRIGGERS) or PLAIN_NUMBER.match(cell), (
                    csv_path.name,
                    cell,
                )


def test_the_whole_bad_corpus_is_accounted_for(tmp_path):
    corpus = tmp_path / "bad"
    made = build_hostile_corpus(corpus, big=False)
    out = tmp_path / "out"
    report = run_pipeline(
        RunSettings(
            paths=[corpus],
            out_dir=out,
            coder="rules",
            stages=("ingest", "code", "trends", "export"),
        )
    )
    assert report.status == "finished"
    accounted = accounted_files(out, corpus)
    assert set(made) <= set(accounted), set(made) - set(accounted)
    assert accounted["long-line.txt"] == "document" and accounted["utf16-no-bom.txt"] == "document"
    assert accounted["caf\\xe9.txt"] == "document"
    assert accounted["bomb.docx"] == accounted["big.html"] == "too_large"
    assert {accounted[f"error-page-{i}.html"] for i in range(1, 5)} == {"no_text"}
    assert accounted["passwd.txt"] == "symlink_skipped" and accounted["pipe.txt"] == "special_file"
    failures = pd.read_csv(out / "failures.csv", dtype=str, keep_default_na=False)
    copies = failures[failures["path"].str.contains("error-page-")]
    assert (copies["duplicate_of"] != "").sum() == 3  # the first fails, its copies name it
    assert_no_formula_cells(out)
    # and the next run reads nothing again and still accounts for every file
    again = run_pipeline(
        RunSettings(
            paths=[corpus],
            out_dir=out,
            coder="rules",
            stages=("ingest", "code", "trends", "export"),
        )
    )
    assert again.counts.documents_read == 0
    assert accounted_files(out, corpus) == accounted


@pytest.mark.slow
def test_the_full_size_bad_corpus_runs_in_one_textmine_run_under_3_gb(tmp_path):
    corpus = tmp_path / "bad"
    made = build_hostile_corpus(corpus, big=True)
    out = tmp_path / "out"
    code = (
        "import resource, sys\n"
        "from textmine.cli import app\n"
        "try:\n"
        f'    app(["run", {str(corpus)!r}, "--out", {str(out)!r}, "--coder", "rules",'
        ' "--workers", "1"], standalone_mode=False)\n'
        "finally:\n"
        "    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-3000:]
    peak_kb = int(result.stdout.rsplit("PEAK_KB", 1)[1].split()[0])
    assert peak_kb < 3 * 1024 * 1024, peak_kb
    accounted = accounted_files(out, corpus)
    assert set(made) <= set(accounted), set(made) - set(accounted)
    assert_no_formula_cells(out)


# --------------------------------------------------------------------------- PDFium on threads


def _real_pdfs() -> list[Path]:
    pdfs = sorted(CORPUS.rglob("*.pdf"))
    if not pdfs:
        pytest.skip("the bundled corpus/ has no PDFs")
    return [pdfs[i % len(pdfs)] for i in range(36)]


def test_pdfium_lock_is_held_while_a_pdf_is_read():
    pdf = _real_pdfs()[0].read_bytes()
    seen = []

    def probe():
        got = PDFIUM_LOCK.acquire(blocking=False)
        seen.append(got)
        if got:
            PDFIUM_LOCK.release()

    with PDFIUM_LOCK:  # the reader in another thread must wait for it
        reader = threading.Thread(
            target=read_bytes, args=(pdf, "a.pdf"), kwargs={"limits": ReadLimits()}
        )
        reader.start()
        reader.join(timeout=0.5)
        assert reader.is_alive()
    reader.join()
    probe()
    assert seen == [True]


@pytest.mark.slow
def test_pdfs_read_on_six_threads_never_crash_or_fail():
    files = _real_pdfs()
    expected = {
        path: read_bytes(path.read_bytes(), path, limits=ReadLimits()).text for path in set(files)
    }

    def read(path: Path) -> str:
        return read_bytes(path.read_bytes(), path, limits=ReadLimits()).text

    for _ in range(3):
        with ThreadPoolExecutor(max_workers=6) as pool:
            texts = list(pool.map(read, files))
        assert texts == [expected[path] for path in files]


# --------------------------------------------------------------------------- feed checks


def test_two_feed_checks_started_together_download_each_entry_once(tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from textmine.feeds import check_feeds, load_sources

    pdf = sorted(CORPUS.rglob("*.pdf"))[0].read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/feed.atom":
                body, kind = (
                    (
                        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
                        b'<entry><id>one</id><title>Report</title><link href="/report.pdf"/></entry></feed>'
                    ),
                    "application/atom+xml",
                )
            else:
                time.sleep(0.5)  # a slow download: both checks would be inside it together
                body, kind = pdf, "application/pdf"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "corpus" / "inbox").mkdir(parents=True)
        (tmp_path / "sources.yml").write_text(
            "inbox: corpus/inbox\nmanifest: corpus/manifest.csv\nfeeds:\n"
            f"  - name: f\n    url: http://127.0.0.1:{server.server_address[1]}/feed.atom\n",
            encoding="utf-8",
        )
        sources = load_sources(tmp_path / "sources.yml")
        with ThreadPoolExecutor(max_workers=2) as pool:
            reports = list(pool.map(lambda _: check_feeds(sources), range(2)))
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(len(r.downloaded) for r in reports) == [0, 1]
    inbox = tmp_path / "corpus" / "inbox"
    assert [p.name for p in inbox.iterdir() if not p.name.startswith(".")] == ["report.pdf"]


def test_a_named_pipe_given_by_name_fails_instead_of_blocking(tmp_path):
    from textmine.ingest import read_document

    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(IngestError) as error:
        read_document(tmp_path / "pipe.txt")
    assert error.value.reason == "not_found" and "not a regular file" in error.value.message
    (tmp_path / "big.txt").write_bytes(b"x" * 2_000)
    with pytest.raises(IngestError) as error:
        read_document(tmp_path / "big.txt", limits=ReadLimits(max_file_bytes=1_000))
    assert error.value.reason == "too_large"
