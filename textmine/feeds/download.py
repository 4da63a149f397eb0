"""Safe downloads: http(s) only, limits on bytes, time and redirects, formats checked by the bytes.

Only http and https (every redirect hop included); a limit on bytes
(Content-Length checked first, then counted while streaming, aborting over
the limit), on total time and on redirects (loops are caught); the format is
taken from the bytes (`textmine.ingest.detect`) and must be one the feed
accepts and agree with the declared Content-Type; file names are reduced to a
safe basename (no path traversal, no hidden files) and never overwrite an
existing file (a numeric suffix is added).
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from textmine.feeds.sources import Limits

DOCUMENT_SUFFIXES = {"pdf": ".pdf", "docx": ".docx", "html": ".html", "text": ".txt"}
# Declared types that name a document format; anything else is checked by the bytes alone.
DECLARED_KINDS = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
}


class DownloadError(Exception):
    """A download refused or failed; `reason` is a short code."""

    def __init__(self, reason: str, message: str):
        """Keep the short `reason` code and the human `message`."""
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class Fetched:
    """The body and headers of a finished download."""

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
    name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
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


def _disposition_filename(header: str) -> str:
    if not header:
        return ""
    message = Message()
    message["content-disposition"] = header
    return message.get_filename() or ""
