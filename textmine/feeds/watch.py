"""Watch publication feeds: find new documents in Atom/RSS feeds and download them into the inbox.

`check_feeds` reads each feed, finds document links in entries it has not
seen, downloads them (see `textmine.feeds.download`) into the inbox with a
manifest row filled from the feed (title, date, publisher, URL), and
remembers the entries so a re-check does nothing. An entry that fails is
reported and skipped; the others go on. Plain library code: the
`watch-publications` Prefect flow wraps it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from textmine.atomic import write_json_atomic, write_text_atomic
from textmine.feeds.download import (
    DECLARED_KINDS,
    DownloadError,
    check_document,
    fetch,
    safe_filename,
    save_new_file,
)
from textmine.feeds.sources import FeedSource, Sources

# The lock file that keeps feed checks of one inbox one at a time (hidden: never read as a document).
FEED_LOCK_FILENAME = ".textmine-feeds.lock"
FEED_LOCK_WAIT_SECONDS = 600.0
MANIFEST_COLUMNS = [
    "path",
    "title",
    "publisher",
    "doc_type",
    "published",
    "licence",
    "source",
    "notes",
]
DOCUMENT_LINK = re.compile(r"\.(pdf|docx)(?:$|[?#])", re.I)
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
class DownloadedDocument:
    """A document saved into the inbox from a feed entry."""

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
    """A feed or entry that could not be taken; `reason` is a short code."""

    feed: str
    entry_id: str
    url: str
    reason: str
    message: str


@dataclass
class FeedReport:
    """What one check of every feed did."""

    downloaded: list[DownloadedDocument] = field(default_factory=list)
    failures: list[EntryFailure] = field(default_factory=list)
    entries_seen_before: int = 0
    entries_new: int = 0
    feeds_checked: int = 0

    def to_dict(self) -> dict:
        """The report as plain data (for JSON and Prefect artifacts)."""
        return asdict(self)


def check_feeds(
    sources: Sources, client=None, *, lock_wait_seconds: float = FEED_LOCK_WAIT_SECONDS
) -> FeedReport:
    """Check every feed once: download documents of new entries into the inbox.

    One check at a time per inbox: the check holds a lock file in the inbox
    (FEED_LOCK_FILENAME), so two scheduled runs that start together never
    download the same entry twice; the second waits up to `lock_wait_seconds`
    for the first, then reads the state it left. Raises FeedsBusyError when
    the wait runs out.
    """
    import httpx

    from textmine.lock import RunLock, StoreLockedError

    lock = RunLock(sources.inbox, wait_seconds=lock_wait_seconds)
    lock.path = sources.inbox / FEED_LOCK_FILENAME
    try:
        lock.acquire()
    except StoreLockedError as error:
        raise FeedsBusyError(
            f"another feed check holds {lock.path} (waited {lock_wait_seconds:g} s); try again later"
        ) from error
    try:
        report = FeedReport()
        state = _load_state(sources.state_path)  # read under the lock: what the last check took
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
    finally:
        lock.release()


class FeedsBusyError(RuntimeError):
    """Another feed check of the same inbox is running."""


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
            report.failures.append(
                EntryFailure(feed.name, entry_id, entry["link"], exc.reason, exc.message)
            )
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
