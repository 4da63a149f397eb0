"""Watch publication feeds and download new documents safely into the inbox.

`sources` reads the sources file, `download` fetches within limits and checks
what arrived, `watch` walks the feeds, saves new documents with manifest rows
and remembers what it has taken.
"""

from textmine.feeds.download import (
    DownloadError,
    Fetched,
    check_document,
    fetch,
    safe_filename,
    save_new_file,
)
from textmine.feeds.sources import STATE_FILENAME, FeedSource, Limits, Sources, load_sources
from textmine.feeds.watch import (
    MANIFEST_COLUMNS,
    DownloadedDocument,
    EntryFailure,
    FeedReport,
    append_manifest_row,
    check_feeds,
    document_links,
    links_in_html,
)

__all__ = [
    "MANIFEST_COLUMNS",
    "STATE_FILENAME",
    "DownloadError",
    "DownloadedDocument",
    "EntryFailure",
    "FeedReport",
    "FeedSource",
    "Fetched",
    "Limits",
    "Sources",
    "append_manifest_row",
    "check_document",
    "check_feeds",
    "document_links",
    "fetch",
    "links_in_html",
    "load_sources",
    "safe_filename",
    "save_new_file",
]
