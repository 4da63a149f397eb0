"""The run lock: one textmine run at a time per output folder."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from pathlib import Path

LOCK_FILENAME = ".textmine.lock"


class StoreLockedError(RuntimeError):
    """Another run holds the output folder."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RunLock:
    """An exclusive lock on an output folder, so two runs never write one store at once.

    POSIX: `fcntl.flock` on `<out_dir>/.textmine.lock`, released by the kernel
    when the process dies, so a killed run never leaves a stale lock. Elsewhere:
    the file is created with O_EXCL and holds the owner's pid and host; a lock
    whose process no longer runs on this host is stale and is taken over.
    """

    def __init__(self, out_dir: str | os.PathLike, wait_seconds: float = 0.0):
        self.path = Path(out_dir) / LOCK_FILENAME
        self.wait_seconds = wait_seconds
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, waiting up to `wait_seconds`; StoreLockedError if another run keeps it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            if self._try_acquire():
                return self
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"{self.path.parent} is in use by another textmine run "
                    f"({self._owner()}); wait for it to finish or use another --out folder"
                )
            time.sleep(0.2)

    def release(self) -> None:
        """Give the lock back (nothing happens when it is not held)."""
        if self._fd is None:
            return
        try:
            if _HAVE_FCNTL:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _owner_text(self) -> str:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()})

    def _owner(self) -> str:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return "owner unknown"
        if not data:
            return "owner unknown"
        return f"pid {data.get('pid')} on {data.get('host')} since {data.get('since')}"

    def _try_acquire(self) -> bool:
        if _HAVE_FCNTL:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return False
                raise
            os.ftruncate(fd, 0)
            os.write(fd, self._owner_text().encode())
            self._fd = fd
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if self._is_stale():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                return self._try_acquire()
            return False
        os.write(fd, self._owner_text().encode())
        self._fd = fd
        return True

    def _is_stale(self) -> bool:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return True
        if data.get("host") != socket.gethostname():
            return False  # cannot tell for another machine; leave it to the user
        return not _pid_alive(int(data.get("pid", -1)))


try:
    import fcntl

    _HAVE_FCNTL = True
except ImportError:  # Windows
    _HAVE_FCNTL = False


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
