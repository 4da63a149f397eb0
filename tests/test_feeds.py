"""Feed watching and safe downloads against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import csv
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from textmine.feeds import (
    DownloadError,
    Limits,
    check_feeds,
    fetch,
    load_sources,
    safe_filename,
    save_new_file,
)

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
PDF = (
    CORPUS
    / "ofsted/childrens-services/80526_north_east_lincolnshire_csc-inspection_26_november_2021.pdf"
)
DOCX = CORPUS / "docx/dfe-academy-conversion-project-template-great-whelnetham-2021-11-12.docx"
LIMIT = 400_000  # bytes; the good files are smaller, the huge ones larger
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _routes(base: str) -> dict:
    pdf = PDF.read_bytes()
    return {
        "/docs/report.pdf": (200, {"Content-Type": "application/pdf"}, pdf),
        "/docs/template.docx": (200, {"Content-Type": DOCX_TYPE}, DOCX.read_bytes()),
        # same name as the first, other bytes: must not overwrite it
        "/other/report.pdf": (200, {"Content-Type": "application/pdf"}, pdf + b"\n%%extra\n"),
        "/huge-declared.pdf": (
            200,
            {"Content-Type": "application/pdf", "Content-Length": "999999999"},
            b"%PDF-",
        ),
        "/huge-streamed.pdf": (
            200,
            {"Content-Type": "application/pdf", "stream": "1"},
            b"%PDF-1.4\n" + b"x" * (LIMIT * 3),
        ),
        "/image.pdf": (
            200,
            {"Content-Type": "application/pdf"},
            b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
        ),
        "/page-as.pdf": (
            200,
            {"Content-Type": "application/pdf"},
            b"<!doctype html><html><body>Sign in</body></html>",
        ),
        "/exe.pdf": (
            200,
            {"Content-Type": "application/octet-stream"},
            b"MZ\x90\x00\x03" + b"\0" * 200,
        ),
        "/traversal": (
            200,
            {
                "Content-Type": "application/pdf",
                "Content-Disposition": 'attachment; filename="../../../escape.pdf"',
            },
            pdf + b"\n%%t\n",
        ),
        "/loop-a.pdf": (302, {"Location": "/loop-b.pdf"}, b""),
        "/loop-b.pdf": (302, {"Location": f"{base}/loop-a.pdf"}, b""),
        "/to-file.pdf": (302, {"Location": "file:///etc/passwd"}, b""),
        "/feed.atom": (200, {"Content-Type": "application/atom+xml"}, _feed(base).encode()),
        # a GOV.UK-like entry: the feed links a web page that links the PDF
        "/feed2.atom": (
            200,
            {"Content-Type": "application/atom+xml"},
            (
                b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
                b"<entry><id>page-1</id><title>Annual report</title>"
                b"<published>2023-03-02T09:00:00Z</published>"
                b'<link rel="alternate" type="text/html" href="/publications/annual"/></entry></feed>'
            ),
        ),
        "/publications/annual": (
            200,
            {"Content-Type": "text/html; charset=utf-8"},
            (
                b"<!doctype html><html><body><nav><a href='/'>Home</a></nav>"
                b"<a href='https://assets.invalid/never.css'>style</a>"
                b"<a href='/media/annual-report-2023.pdf'>Annual report (PDF, 150 KB)</a>"
                b"</body></html>"
            ),
        ),
        "/media/annual-report-2023.pdf": (200, {"Content-Type": "application/pdf"}, pdf + b"%%a\n"),
    }


def _feed(base: str) -> str:
    def entry(eid, title, href, date="2024-05-01T10:00:00Z", typ="application/pdf"):
        return (
            f"<entry><id>{eid}</id><title>{title}</title><updated>{date}</updated>"
            f'<link rel="enclosure" type="{typ}" href="{href}"/></entry>'
        )

    entries = [
        entry("good-1", "Good inspection report", "/docs/report.pdf"),
        entry("good-2", "Conversion template", "/docs/template.docx", typ=DOCX_TYPE),
        entry("good-3", "Same name, other report", "/other/report.pdf"),
        entry("huge-1", "Huge declared", "/huge-declared.pdf"),
        entry("huge-2", "Huge streamed", "/huge-streamed.pdf"),
        entry("type-1", "PNG called PDF", "/image.pdf"),
        entry("type-2", "Web page called PDF", "/page-as.pdf"),
        entry("type-3", "Executable", "/exe.pdf"),
        entry("name-1", "Traversal name", "/traversal"),
        entry("name-2", "Traversal in URL", "/docs/..%2F..%2Fdotdot.pdf"),
        entry("loop-1", "Redirect loop", "/loop-a.pdf"),
        entry("scheme-1", "Redirect to file://", "/to-file.pdf"),
        entry("scheme-2", "FTP link", "ftp://127.0.0.1/x.pdf"),
    ]
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>Test publications</title>'
        f"<id>{base}/feed.atom</id><updated>2024-05-01T10:00:00Z</updated>"
        + "".join(entries)
        + "</feed>"
    )


@pytest.fixture(scope="module")
def server():
    routes: dict = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            path = self.path
            if path == "/docs/..%2F..%2Fdotdot.pdf":
                status, headers, body = routes["/docs/report.pdf"]
                body = body + b"\n%%dd\n"
            elif path in routes:
                status, headers, body = routes[path]
            else:
                status, headers, body = 404, {}, b"not found"
            headers = dict(headers)
            stream = headers.pop("stream", None)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if not stream and "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if stream:
                    for i in range(0, len(body), 65536):
                        self.wfile.write(body[i : i + 65536])
                elif "Content-Length" in headers:
                    self.wfile.write(body)
                else:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    routes.update(_routes(base))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base, hits
    httpd.shutdown()
    httpd.server_close()


def _sources(tmp_path: Path, base: str) -> Path:
    corpus = tmp_path / "corpus"
    (corpus / "inbox").mkdir(parents=True)
    (corpus / "manifest.csv").write_text(
        "path,title,publisher,doc_type,published,licence,source,notes\n"
        "seeds/a.txt,A seed,Someone,blog_post,2014,,,\n",
        encoding="utf-8",
    )
    # a file already in the inbox with the name the first download wants
    (corpus / "inbox" / "report.pdf").write_bytes(b"%PDF-1.4 researcher's own file")
    sources = tmp_path / "sources.yml"
    sources.write_text(
        f"""
inbox: corpus/inbox
manifest: corpus/manifest.csv
limits:
  max_bytes: {LIMIT}
  timeout_seconds: 20
  max_redirects: 4
feeds:
  - name: test-feed
    url: {base}/feed.atom
    publisher: Ofsted
    doc_type: inspection_report
    licence: Open Government Licence v3.0
    accept: [pdf, docx]
""",
        encoding="utf-8",
    )
    return sources


def test_feed_downloads_good_entries_and_reports_hostile_ones(server, tmp_path):
    base, _hits = server
    sources = load_sources(_sources(tmp_path, base))
    report = check_feeds(sources)
    inbox = tmp_path / "corpus" / "inbox"

    downloaded = {d.entry_id: Path(d.path) for d in report.downloaded}
    assert set(downloaded) == {"good-1", "good-2", "good-3", "name-1", "name-2"}
    for path in downloaded.values():
        assert path.parent == inbox  # nothing escapes the inbox
    # never overwrite: the researcher's report.pdf is intact, downloads get suffixes
    assert (inbox / "report.pdf").read_bytes() == b"%PDF-1.4 researcher's own file"
    assert downloaded["good-1"].name == "report-2.pdf"
    assert downloaded["good-3"].name == "report-3.pdf"
    assert downloaded["good-1"].read_bytes() == PDF.read_bytes()
    assert downloaded["good-2"].suffix == ".docx"
    assert downloaded["name-1"].name == "escape.pdf"
    assert ".." not in downloaded["name-2"].name
    assert not (tmp_path / "escape.pdf").exists() and not (tmp_path / "dotdot.pdf").exists()

    reasons = {f.entry_id: f.reason for f in report.failures}
    assert reasons == {
        "huge-1": "too_large",
        "huge-2": "too_large",
        "type-1": "type_mismatch",
        "type-2": "type_mismatch",
        "type-3": "wrong_type",
        "loop-1": "redirect_loop",
        "scheme-1": "bad_scheme",
        "scheme-2": "bad_scheme",
    }
    assert not list(inbox.glob("*.part")) and not list(inbox.glob(".*.part"))

    with open(tmp_path / "corpus" / "manifest.csv", encoding="utf-8") as handle:
        rows = {r["path"]: r for r in csv.DictReader(handle)}
    assert rows["seeds/a.txt"]["title"] == "A seed"  # earlier rows kept
    row = rows["inbox/report-2.pdf"]
    assert row["title"] == "Good inspection report"
    assert row["publisher"] == "Ofsted"
    assert row["doc_type"] == "inspection_report"
    assert row["published"] == "2024-05-01"
    assert row["source"] == f"{base}/docs/report.pdf"
    assert row["licence"] == "Open Government Licence v3.0"

    # a re-check downloads nothing and fetches no document again
    before = len(_hits)
    again = check_feeds(sources)
    assert _hits[before:] == ["/feed.atom"]
    assert again.downloaded == []
    assert again.entries_new == 0
    assert again.entries_seen_before == 13
    assert sorted(p.name for p in inbox.iterdir() if not p.name.startswith(".")) == sorted(
        [
            "report.pdf",
            "report-2.pdf",
            "report-3.pdf",
            "template.docx",
            "escape.pdf",
            downloaded["name-2"].name,
        ]
    )


def test_fetch_refuses_non_http_schemes():
    with httpx.Client() as client, pytest.raises(DownloadError) as info:
        fetch(client, "file:///etc/passwd", Limits())
    assert info.value.reason == "bad_scheme"


def test_too_many_redirects(server):
    base, _ = server
    with httpx.Client() as client, pytest.raises(DownloadError) as info:
        fetch(client, f"{base}/loop-a.pdf", Limits(max_redirects=0))
    assert info.value.reason == "too_many_redirects"


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("../../etc/passwd", "pdf", "passwd.pdf"),
        ("..\\..\\boot.ini", "text", "boot.ini.txt"),
        (".hidden.pdf", "pdf", "hidden.pdf"),
        ("Report%20(final).PDF", "pdf", "Report-final.pdf"),
        ("", "docx", "document.docx"),
        ("/", "pdf", "document.pdf"),
        ("école—rapport.pdf", "pdf", "ecole-rapport.pdf"),
    ],
)
def test_safe_filename(raw, kind, expected):
    assert safe_filename(raw, kind) == expected


def test_save_new_file_never_overwrites(tmp_path):
    first = save_new_file(tmp_path, "a.pdf", b"1")
    second = save_new_file(tmp_path, "a.pdf", b"2")
    assert (first.name, second.name) == ("a.pdf", "a-2.pdf")
    assert first.read_bytes() == b"1" and second.read_bytes() == b"2"


def test_sources_file_errors(tmp_path):
    bad = tmp_path / "s.yml"
    bad.write_text("feeds:\n  - url: ftp://example.org/feed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not http"):
        load_sources(bad)
    bad.write_text("feeds:\n  - url: https://example.org/f\n    doc_type: memo\n", encoding="utf-8")
    with pytest.raises(ValueError, match="doc_type"):
        load_sources(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_sources(tmp_path / "missing.yml")


def test_entry_page_is_followed_to_its_attachments(server, tmp_path):
    base, _ = server
    (tmp_path / "corpus").mkdir()
    sources = tmp_path / "sources.yml"
    sources.write_text(
        f"inbox: corpus/inbox\nfeeds:\n  - name: pages\n    url: {base}/feed2.atom\n"
        "    publisher: Department for Education\n    doc_type: policy_paper\n"
        "    accept: [pdf]\n    follow_entry_page: true\n",
        encoding="utf-8",
    )
    report = check_feeds(load_sources(sources))
    assert [Path(d.path).name for d in report.downloaded] == ["annual-report-2023.pdf"]
    assert report.downloaded[0].published == "2023-03-02"
    with open(tmp_path / "corpus" / "manifest.csv", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))  # created with a header
    assert row["path"] == "inbox/annual-report-2023.pdf"
    assert row["doc_type"] == "policy_paper" and row["title"] == "Annual report"
