"""The run lock: one run per output folder, released when its process dies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from textmine import lock as lock_module
from textmine.lock import LOCK_FILENAME, RunLock, StoreLockedError


def test_lock_excludes_a_second_run(tmp_path):
    with RunLock(tmp_path), pytest.raises(StoreLockedError, match="in use by another"):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: free again
        pass


def test_lock_held_by_another_process_and_released_when_it_dies(tmp_path):
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from textmine.lock import RunLock; "
            f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match=f"pid {child.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait()
    # the killed run left its lock file behind, but not the lock
    assert (tmp_path / LOCK_FILENAME).exists()
    with RunLock(tmp_path, wait_seconds=5):
        pass


def test_lock_without_fcntl_detects_stale_owner(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_module, "_HAVE_FCNTL", False)
    lock_file = tmp_path / LOCK_FILENAME
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_file.write_text(
        json.dumps({"pid": dead.pid, "host": lock_module.socket.gethostname(), "since": "x"})
    )
    with RunLock(tmp_path):  # stale: the owner is gone
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        with pytest.raises(StoreLockedError):
            RunLock(tmp_path).acquire()  # a live owner (us) is respected
    assert not lock_file.exists()


def test_lock_waits_for_release(tmp_path):
    first = RunLock(tmp_path).acquire()
    started = time.monotonic()
    import threading

    threading.Timer(0.5, first.release).start()
    with RunLock(tmp_path, wait_seconds=10):
        assert time.monotonic() - started >= 0.4
