"""Watch publication feeds: find new documents in Atom/RSS feeds and download them safely.

A *sources file* (YAML) names inbox folders and feeds; `check_feeds` reads each
feed, finds document links in entries it has not seen, downloads them into the
inbox with a manifest row filled from the feed (title, date, publisher, URL),
and remembers the entries so a re-check does nothing. Plain library code: the
`watch-publications` Prefect flow wraps it.

Download safety: only http and https (every redirect hop included); a limit on
bytes (Content-Length checked first, then counted while streaming, aborting
over the limit), on total time and on redirects (loops are caught); the
format is taken from the bytes (`textmine.ingest.detect`) and must be one the
feed accepts and agree with the declared Content-Type; file names are reduced
to a safe basename (no path traversal, no hidden files) and never overwrite an
existing file (a numeric suffix is added). An entry that fails is reported
and skipped; the others go on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import yaml

from textmine.atomic import write_json_atomic, write_text_atomic
from textmine.columns import DOC_TYPES

MANIFEST_COLUMNS = ["path", "title", "publisher", "doc_type", "published", "licence", "source", "notes"]
STATE_FILENAME = ".textmine-feeds.json"
DOCUMENT_SUFFIXES = {"pdf": ".pdf", "docx": ".docx", "html": ".html", "text": ".txt"}
DOCUMENT_LINK = re.compile(r"\.(pdf|docx)(?:$|[?#])", re.I)
# Declared types that name a document format; anything else is checked by the bytes alone.
DECLARED_KINDS = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
}
# Failure reasons that will not change by trying again (the entry is remembered).
PERMANENT_REASONS = {
    "bad_scheme",
    "too_large",
    "wrong_type",
    "type_mismatch",
    "redirect_loop",
    "too_many_redirects",
    "http_error",
    "no_documents",
}


@dataclass
class Limits:
    """Per-download limits."""

    max_bytes: int = 50_000_000
    timeout_seconds: float = 60.0
    max_redirects: int = 5
    max_documents_per_entry: int = 5
    max_entries_per_feed: int = 50


@dataclass
class FeedSource:
    """One Atom/RSS feed to watch."""

    name: str
    url: str
    publisher: str = ""
    doc_type: str = "unknown"
    licence: str = ""
    accept: list[str] = field(default_factory=lambda: ["pdf", "docx", "html"])
    follow_entry_page: bool = False  # look for attached PDF/DOCX on the entry's web page


@dataclass
class Sources:
    """A parsed sources file."""

    inbox: Path
    manifest: Path
    folders: list[Path] = field(default_factory=list)
    feeds: list[FeedSource] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)

    @property
    def state_path(self) -> Path:
        return self.inbox / STATE_FILENAME


@dataclass
class DownloadedDocument:
    path: str
    url: str
    feed: str
    entry_id: str
    title: str
    published: str
    format: str
    bytes: int


@dataclass
class EntryFailure:
    feed: str
    entry_id: str
    url: str
    reason: str
    message: str


@dataclass
class FeedReport:
    downloaded: list[DownloadedDocument] = field(default_factory=list)
    failures: list[EntryFailure] = field(default_factory=list)
    entries_seen_before: int = 0
    entries_new: int = 0
    feeds_checked: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class DownloadError(Exception):
    """A download refused or failed; `reason` is a short code."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


# -- sources file ---------------------------------------------------------------


def load_sources(path: str | Path) -> Sources:
    """Read a sources YAML file; relative paths are relative to the file's folder."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ValueError(f"sources file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"sources file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"sources file {path}: expected a mapping at the top level")
    base = path.resolve().parent

    def resolve(value: str) -> Path:
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (base / candidate)

    inbox = resolve(data.get("inbox", "corpus/inbox"))
    manifest = resolve(data["manifest"]) if data.get("manifest") else inbox.parent / "manifest.csv"
    limits = Limits(**(data.get("limits") or {}))
    feeds = []
    for index, item in enumerate(data.get("feeds") or []):
        if not isinstance(item, dict) or "url" not in item:
            raise ValueError(f"sources file {path}: feed #{index + 1} needs a url")
        scheme = urlsplit(item["url"]).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"sources file {path}: feed {item['url']!r} is not http(s)")
        doc_type = item.get("doc_type", "unknown")
        if doc_type not in DOC_TYPES:
            raise ValueError(
                f"sources file {path}: doc_type {doc_type!r} is not one of {', '.join(DOC_TYPES)}"
            )
        feeds.append(
            FeedSource(
                name=str(item.get("name") or urlsplit(item["url"]).netloc),
                url=item["url"],
                publisher=item.get("publisher", ""),
                doc_type=doc_type,
                licence=item.get("licence", ""),
                accept=list(item.get("accept") or ["pdf", "docx", "html"]),
                follow_entry_page=bool(item.get("follow_entry_page", False)),
            )
        )
    folders = [resolve(f) for f in data.get("folders") or []]
    return Sources(inbox=inbox, manifest=manifest, folders=folders, feeds=feeds, limits=limits)


# -- safe download ----------------------------------------------------------------


@dataclass
class Fetched:
    url: str  # final URL after redirects
    data: bytes
    content_type: str
    filename: str  # from Content-Disposition, else ""


def fetch(client, url: str, limits: Limits) -> Fetched:
    """GET `url` within the limits, following redirects by hand (http/https only)."""
    deadline = time.monotonic() + limits.timeout_seconds
    visited: set[str] = set()
    current = url
    for _hop in range(limits.max_redirects + 1):
        scheme = urlsplit(current).scheme.lower()
        if scheme not in ("http", "https"):
            raise DownloadError("bad_scheme", f"refusing {scheme or 'a relative'} URL {current}")
        if current in visited:
            raise DownloadError("redirect_loop", f"redirect loop at {current}")
        visited.add(current)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DownloadError("timeout", f"gave up on {url} after {limits.timeout_seconds:g} s")
        try:
            with client.stream("GET", current, timeout=remaining, follow_redirects=False) as resp:
                if resp.is_redirect:
                    location = resp.headers.get("location")
                    if not location:
                        raise DownloadError("http_error", f"redirect without Location at {current}")
                    current = urljoin(current, location)
                    continue
                if resp.status_code == 429 or resp.status_code >= 500:
                    raise DownloadError("server_error", f"HTTP {resp.status_code} from {current}")
                if resp.status_code >= 400:
                    raise DownloadError("http_error", f"HTTP {resp.status_code} from {current}")
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                    raise DownloadError(
                        "too_large",
                        f"{current} declares {int(declared):,} bytes, over the limit of "
                        f"{limits.max_bytes:,}",
                    )
                chunks, total = [], 0
                for chunk in resp.iter_bytes():
                    total += len(chunk)
                    if total > limits.max_bytes:
                        raise DownloadError(
                            "too_large", f"{current} sent more than {limits.max_bytes:,} bytes"
                        )
                    if time.monotonic() > deadline:
                        raise DownloadError(
                            "timeout", f"gave up on {url} after {limits.timeout_seconds:g} s"
                        )
                    chunks.append(chunk)
                return Fetched(
                    url=current,
                    data=b"".join(chunks),
                    content_type=resp.headers.get("content-type", ""),
                    filename=_disposition_filename(resp.headers.get("content-disposition", "")),
                )
        except DownloadError:
            raise
        except Exception as exc:  # httpx transport errors, timeouts, bad URLs
            name = type(exc).__name__
            reason = "timeout" if "Timeout" in name else "network_error"
            raise DownloadError(reason, f"{name} fetching {current}: {exc}") from exc
    raise DownloadError(
        "too_many_redirects", f"more than {limits.max_redirects} redirects from {url}"
    )


def check_document(fetched: Fetched, accept: list[str]) -> str:
    """The document format of the fetched bytes, or DownloadError if not acceptable."""
    from textmine.ingest.detect import detect_format

    if not fetched.data:
        raise DownloadError("wrong_type", f"{fetched.url} returned no bytes")
    kind, description = detect_format(fetched.data)
    declared = DECLARED_KINDS.get(fetched.content_type.split(";")[0].strip().lower())
    if declared is not None and declared != kind and not (declared == "text" and kind == "html"):
        raise DownloadError(
            "type_mismatch",
            f"{fetched.url} is declared {fetched.content_type} but its bytes are {description}",
        )
    if kind not in accept:
        raise DownloadError(
            "wrong_type",
            f"{fetched.url} holds {description} (declared {fetched.content_type or 'no type'}); "
            f"this feed accepts {', '.join(accept)}",
        )
    return kind


def safe_filename(name: str, kind: str) -> str:
    """A safe basename for a downloaded document: no directories, dots or odd characters."""
    name = unquote(name).replace("\\", "/").split("/")[-1]
    name = "".join(
        c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c)
    )
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-_ ")
    name = re.sub(r"\.{2,}", ".", name)
    suffix = DOCUMENT_SUFFIXES.get(kind, "")
    stem = name[: -len(suffix)] if suffix and name.lower().endswith(suffix) else name
    stem = stem.strip(".-_")[:120] or "document"
    return stem + suffix


def save_new_file(folder: Path, filename: str, data: bytes) -> Path:
    """Write `data` to folder/filename without ever overwriting: name-2, name-3, ... if taken."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        stem, ext = filename, ""
    tmp = folder / f".{filename}.{time.time_ns()}.part"
    tmp.write_bytes(data)
    try:
        for n in range(1, 10_000):
            candidate = filename if n == 1 else f"{stem}-{n}{'.' + ext if ext else ''}"
            target = folder / candidate
            try:
                target.hardlink_to(tmp)  # atomic and fails if the name exists
            except FileExistsError:
                continue
            return target
        raise DownloadError("name_taken", f"no free file name for {filename} in {folder}")
    finally:
        tmp.unlink(missing_ok=True)


# -- feeds --------------------------------------------------------------------------


def check_feeds(sources: Sources, client=None) -> FeedReport:
    """Check every feed once: download documents of new entries into the inbox."""
    import httpx

    report = FeedReport()
    state = _load_state(sources.state_path)
    own_client = client is None
    if own_client:
        client = httpx.Client(headers={"User-Agent": "textmine feed watcher"})
    try:
        for feed in sources.feeds:
            report.feeds_checked += 1
            _check_one_feed(client, feed, sources, state, report)
            write_json_atomic(sources.state_path, state)
    finally:
        if own_client:
            client.close()
    return report


def _check_one_feed(client, feed: FeedSource, sources: Sources, state: dict, report: FeedReport):
    import feedparser

    seen = state["entries"].setdefault(feed.url, {})
    try:
        fetched = fetch(client, feed.url, sources.limits)
    except DownloadError as exc:
        report.failures.append(EntryFailure(feed.name, "", feed.url, exc.reason, exc.message))
        return
    parsed = feedparser.parse(fetched.data)
    if parsed.bozo and not parsed.entries:
        report.failures.append(
            EntryFailure(
                feed.name, "", feed.url, "bad_feed", f"not a readable feed: {parsed.bozo_exception}"
            )
        )
        return
    for entry in parsed.entries[: sources.limits.max_entries_per_feed]:
        entry_id = str(entry.get("id") or entry.get("link") or entry.get("title") or "")
        if not entry_id:
            continue
        if entry_id in seen:
            report.entries_seen_before += 1
            continue
        report.entries_new += 1
        outcome = _take_entry(client, feed, entry, fetched.url, sources, state, report)
        if outcome is not None:
            seen[entry_id] = {"status": outcome, "at": _now()}


def _take_entry(client, feed, entry, feed_url, sources, state, report) -> str | None:
    """Download an entry's documents; return its state, or None to try again next time."""
    entry_id = str(entry.get("id") or entry.get("link") or entry.get("title"))
    title = _clean(entry.get("title", ""))
    published = _entry_date(entry)
    links = document_links(entry, feed_url)
    if not links and feed.follow_entry_page and entry.get("link"):
        try:
            page = fetch(client, urljoin(feed_url, entry["link"]), sources.limits)
            if check_document(page, ["html"]) == "html":
                links = links_in_html(page.data.decode("utf-8", "replace"), page.url)
        except DownloadError as exc:
            report.failures.append(EntryFailure(feed.name, entry_id, entry["link"], exc.reason, exc.message))
            return "failed" if exc.reason in PERMANENT_REASONS else None
    if not links and "html" in feed.accept and entry.get("link"):
        links = [urljoin(feed_url, entry["link"])]
    if not links:
        report.failures.append(
            EntryFailure(feed.name, entry_id, "", "no_documents", "the entry links no document")
        )
        return "no_documents"
    retry = False
    taken = known = 0
    for url in links[: sources.limits.max_documents_per_entry]:
        if url in state["urls"]:
            known += 1  # already downloaded through another entry
            continue
        try:
            fetched = fetch(client, url, sources.limits)
            kind = check_document(fetched, feed.accept)
        except DownloadError as exc:
            report.failures.append(EntryFailure(feed.name, entry_id, url, exc.reason, exc.message))
            retry = retry or exc.reason not in PERMANENT_REASONS
            continue
        digest = hashlib.sha256(fetched.data).hexdigest()[:16]
        if digest in state["hashes"]:
            state["urls"][url] = state["hashes"][digest]
            known += 1
            continue
        name = fetched.filename or urlsplit(fetched.url).path or title
        path = save_new_file(sources.inbox, safe_filename(name, kind), fetched.data)
        state["urls"][url] = str(path)
        state["hashes"][digest] = str(path)
        append_manifest_row(
            sources.manifest,
            {
                "path": _relative(path, sources.manifest.parent),
                "title": title,
                "publisher": feed.publisher,
                "doc_type": feed.doc_type,
                "published": published,
                "licence": feed.licence,
                "source": url,
                "notes": f"downloaded {_now()} from feed {feed.name}",
            },
        )
        report.downloaded.append(
            DownloadedDocument(
                path=str(path),
                url=url,
                feed=feed.name,
                entry_id=entry_id,
                title=title,
                published=published,
                format=kind,
                bytes=len(fetched.data),
            )
        )
        taken += 1
    if retry and not taken:
        return None
    if taken:
        return "downloaded"
    return "already_downloaded" if known else "failed"


def document_links(entry, base_url: str) -> list[str]:
    """Links to documents in a feed entry: enclosures, typed links, then links in its HTML."""
    links: list[str] = []
    for link in entry.get("links", []) or []:
        href = link.get("href")
        if not href:
            continue
        kind = DECLARED_KINDS.get(str(link.get("type", "")).split(";")[0].lower())
        if link.get("rel") == "enclosure" or kind in ("pdf", "docx") or DOCUMENT_LINK.search(href):
            links.append(urljoin(base_url, href))
    html_parts = [entry.get("summary", "")] + [c.get("value", "") for c in entry.get("content", [])]
    for part in html_parts:
        links.extend(links_in_html(part or "", base_url))
    return list(dict.fromkeys(links))


class _HrefParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def links_in_html(html: str, base_url: str) -> list[str]:
    """Absolute links to PDF/DOCX files in an HTML fragment or page."""
    parser = _HrefParser()
    parser.feed(html)
    found = [urljoin(base_url, h) for h in parser.hrefs if DOCUMENT_LINK.search(h)]
    return list(dict.fromkeys(found))


def append_manifest_row(manifest: Path, row: dict) -> None:
    """Append one row to a manifest CSV (created with a header if absent), atomically."""
    existing = manifest.read_text(encoding="utf-8-sig") if manifest.exists() else ""
    header = next(csv.reader(io.StringIO(existing)), None) if existing.strip() else None
    columns = header or MANIFEST_COLUMNS
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if header is None:
        writer.writeheader()
    elif not existing.endswith("\n"):
        buffer.write("\n")
    writer.writerow({c: row.get(c, "") for c in columns})
    write_text_atomic(manifest, existing + buffer.getvalue())


# -- helpers --------------------------------------------------------------------------


def _load_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        state = {}
    state.setdefault("entries", {})
    state.setdefault("urls", {})
    state.setdefault("hashes", {})
    return state


def _disposition_filename(header: str) -> str:
    if not header:
        return ""
    message = Message()
    message["content-disposition"] = header
    return message.get_filename() or ""


def _entry_date(entry) -> str:
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            return time.strftime("%Y-%m-%d", value)
    return ""


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
