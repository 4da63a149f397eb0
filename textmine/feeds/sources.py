"""The sources file: inbox folders, Atom/RSS feeds to watch and per-download limits.

A sources file is YAML; `load_sources` reads and checks it (relative paths
are relative to the file's folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from textmine.columns import DOC_TYPES

STATE_FILENAME = ".textmine-feeds.json"


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
        """The file that remembers the entries and URLs already taken."""
        return self.inbox / STATE_FILENAME


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
