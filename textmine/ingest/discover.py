"""Find the files to read under the paths of a run, and account for every file left out.

Folders are walked without following symbolic links (a link inside a corpus
could lead anywhere: ``passwd.txt -> /etc/passwd``). Every entry that is not
read is listed with a reason: symbolic links (followed only when asked),
broken links, link loops, special files (pipes, sockets, devices: reading a
pipe would wait for ever), hidden files and folders, folders that cannot be
listed, and data or code files that are not documents. A file or link named
explicitly in `paths` is read as given.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from textmine.ingest.paths import safe_display_path
from textmine.manifest import MANIFEST_NAME

# Files in a walked folder with these suffixes are data or code, not documents.
NOT_DOCUMENT_SUFFIXES = {
    ".csv",
    ".tsv",
    ".json",
    ".jsonl",
    ".yaml",
    ".yml",
    ".toml",
    ".ini",
    ".cfg",
    ".py",
    ".ipynb",
    ".parquet",
    ".sqlite",
    ".db",
    ".pyc",
    ".log",
    ".lock",
    ".tmp",
    ".xsd",
    ".qdpx",
}
# Reasons for entries that are left out on purpose (not problems with a document).
IGNORED_REASONS = frozenset({"not_a_document", "hidden"})


@dataclass(frozen=True)
class SkippedFile:
    """An entry under the run's paths that is not read; `reason` is in columns.FAILURE_REASONS."""

    path: str  # safe display form (see textmine.ingest.paths)
    reason: str
    message: str

    @property
    def is_problem(self) -> bool:
        """True for entries a user should look at (links, special files, unreadable folders)."""
        return self.reason not in IGNORED_REASONS


@dataclass
class Discovery:
    """The files to read (sorted, each once) and the entries left out, with reasons."""

    files: list[Path] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def problems(self) -> list[SkippedFile]:
        """Skipped entries that belong in failures.csv (see SkippedFile.is_problem)."""
        return [s for s in self.skipped if s.is_problem]


def follow_symlinks_setting(follow_symlinks: bool | None = None) -> bool:
    """`follow_symlinks` when given, else TEXTMINE_FOLLOW_SYMLINKS (1/true/yes), else False."""
    if follow_symlinks is not None:
        return follow_symlinks
    return os.environ.get("TEXTMINE_FOLLOW_SYMLINKS", "").strip().lower() in ("1", "true", "yes")


def discover_files(
    paths: Iterable[str | os.PathLike], *, follow_symlinks: bool | None = None
) -> list[Path]:
    """Files to read: given files as they are, folders walked recursively (sorted).

    See `discover` for what is left out and why. `follow_symlinks=None` reads
    TEXTMINE_FOLLOW_SYMLINKS.
    """
    return discover(paths, follow_symlinks=follow_symlinks_setting(follow_symlinks)).files


def discover(paths: Iterable[str | os.PathLike], *, follow_symlinks: bool = False) -> Discovery:
    """Walk `paths`: files to read and every entry left out with its reason.

    A path that does not exist is kept in `files` so that the reader reports it
    as `not_found`. With `follow_symlinks`, links to files and folders are
    followed (a folder reached twice, as in a link loop, is walked once and the
    loop is listed); broken links are listed either way.
    """
    result = Discovery()
    seen: set[str] = set()
    roots = [Path(p) for p in paths]
    for root in roots:
        if root.is_dir():
            walker = _Walker(root, follow_symlinks, result)
            walker.walk(root)
            candidates = sorted(walker.files, key=os.fspath)
        else:
            candidates = [root]
        for candidate in candidates:
            key = _resolved(candidate)
            if key not in seen:
                seen.add(key)
                result.files.append(candidate)
    result.skipped.sort(key=lambda s: s.path)
    return result


def _resolved(path: Path) -> str:
    try:
        return os.fspath(path.resolve())
    except (OSError, RuntimeError):
        return os.path.abspath(path)


@dataclass
class _Walker:
    root: Path
    follow_symlinks: bool
    result: Discovery
    files: list[Path] = field(default_factory=list)
    visited: set[tuple[int, int]] = field(default_factory=set)

    def skip(self, path: Path, reason: str, message: str) -> None:
        self.result.skipped.append(SkippedFile(safe_display_path(path), reason, message))

    def walk(self, folder: Path) -> None:
        try:
            info = folder.stat()
        except OSError as error:
            self.skip(folder, "not_found", f"cannot open the folder: {error.strerror or error}")
            return
        key = (info.st_dev, info.st_ino)
        if key in self.visited:
            self.skip(folder, "symlink_loop", "the link leads back to a folder already walked")
            return
        self.visited.add(key)
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError as error:
            self.skip(folder, "not_found", f"cannot list the folder: {error.strerror or error}")
            return
        for entry in listed:
            self.visit(Path(entry.path), entry)

    def visit(self, path: Path, entry: os.DirEntry) -> None:
        if entry.name.startswith("."):
            kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
            self.skip(path, "hidden", f"hidden {kind}, not read")
            return
        if entry.is_symlink():
            self.visit_link(path)
            return
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as error:
            self.skip(path, "not_found", f"cannot read the entry: {error.strerror or error}")
            return
        if stat.S_ISDIR(mode):
            self.walk(path)
        elif stat.S_ISREG(mode):
            self.add_file(path)
        else:
            self.skip(path, "special_file", f"{_kind(mode)}, not a regular file; not read")

    def visit_link(self, path: Path) -> None:
        target = os.readlink(path)
        try:
            resolved = path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 raises RuntimeError for loops
            self.skip(path, "symlink_loop", f"symbolic link loop ({target})")
            return
        except OSError as error:
            if error.errno == 40:  # ELOOP
                self.skip(path, "symlink_loop", f"symbolic link loop ({target})")
            else:
                self.skip(
                    path, "broken_symlink", f"symbolic link to {target!r}, which does not exist"
                )
            return
        inside = _is_inside(resolved, self.root)
        where = "inside" if inside else "outside"
        if not self.follow_symlinks:
            self.skip(
                path,
                "symlink_skipped",
                f"symbolic link to {safe_display_path(target)} ({where} the corpus folder); "
                "links are not followed unless asked (TEXTMINE_FOLLOW_SYMLINKS=1)",
            )
            return
        if resolved.is_dir():
            self.walk(path)
        elif resolved.is_file():
            self.add_file(path)
        else:
            self.skip(
                path, "special_file", f"symbolic link to {_kind(resolved.stat().st_mode)}; not read"
            )

    def add_file(self, path: Path) -> None:
        if path.name == MANIFEST_NAME:
            self.skip(
                path, "not_a_document", "the manifest of the folder (metadata, not a document)"
            )
        elif path.suffix.lower() in NOT_DOCUMENT_SUFFIXES:
            self.skip(
                path,
                "not_a_document",
                f"a {path.suffix.lower()} file is data or code, not a document",
            )
        else:
            self.files.append(path)


def _is_inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"
