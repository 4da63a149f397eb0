"""Limits that keep one hostile or odd file from stopping, hanging or swamping a run.

A file past a limit fails alone with reason ``too_large`` or ``timeout``; the
run goes on. Defaults suit real publications (a 1,000-page report has about
3 million characters); each can be changed by an environment variable or by
passing a `ReadLimits` to `read_bytes`.

| limit | default | environment variable |
| --- | --- | --- |
| bytes of one file | 500 MB | TEXTMINE_MAX_FILE_MB |
| bytes of one HTML or text file | 10 MB | TEXTMINE_MAX_MARKUP_MB |
| inflated bytes of the XML parts of one DOCX | 50 MB | TEXTMINE_MAX_INFLATED_MB |
| characters of clean text of one document | 5,000,000 | TEXTMINE_MAX_TEXT_CHARS |
| seconds to read one document | 120 | TEXTMINE_READ_SECONDS |
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from textmine.types import IngestError

MB = 1_000_000
ENVIRONMENT_NAMES = {
    "max_file_bytes": ("TEXTMINE_MAX_FILE_MB", MB),
    "max_markup_bytes": ("TEXTMINE_MAX_MARKUP_MB", MB),
    "max_inflated_bytes": ("TEXTMINE_MAX_INFLATED_MB", MB),
    "max_text_chars": ("TEXTMINE_MAX_TEXT_CHARS", 1),
    "seconds": ("TEXTMINE_READ_SECONDS", 1),
}


@dataclass(frozen=True)
class ReadLimits:
    """Per-document limits; 0 switches a limit off."""

    max_file_bytes: int = 500 * MB
    max_markup_bytes: int = 10 * MB
    max_inflated_bytes: int = 50 * MB
    max_text_chars: int = 5_000_000
    seconds: float = 120.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReadLimits:
        """Defaults, overridden by TEXTMINE_MAX_* / TEXTMINE_READ_SECONDS when set.

        Raises ValueError naming the variable when a value is not a number.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}  # field name -> int, or float for `seconds`
        for item in fields(cls):
            name, unit = ENVIRONMENT_NAMES[item.name]
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            try:
                number = float(raw)
            except ValueError as error:
                raise ValueError(f"{name}={raw!r} is not a number") from error
            if number < 0:
                raise ValueError(f"{name}={raw!r} is negative (0 switches the limit off)")
            values[item.name] = number if item.name == "seconds" else int(number * unit)
        return cls(**values)


def check_size(size: int, limit: int, what: str, variable: str) -> None:
    """Raise IngestError("too_large") when `size` is over `limit` (0 = no limit)."""
    if limit and size > limit:
        raise IngestError(
            "too_large",
            f"{what} is {size / MB:,.1f} MB, over the limit of {limit / MB:,.1f} MB "
            f"(raise it with {variable})",
        )


class Deadline:
    """A point in time after which reading one document stops with IngestError("timeout")."""

    def __init__(self, seconds: float, clock=time.monotonic):
        """Start the budget of `seconds` now (0: no budget)."""
        self.seconds = seconds
        self._clock = clock
        self._ends = clock() + seconds if seconds else float("inf")

    def remaining(self) -> float:
        """Seconds left (inf when there is no budget)."""
        return self._ends - self._clock()

    def check(self, stage: str = "") -> None:
        """Raise IngestError("timeout") when the budget is spent."""
        if self.remaining() < 0:
            raise timeout_error(self.seconds, stage)


def timeout_error(seconds: float, stage: str = "") -> IngestError:
    """The IngestError for a document that took longer than its budget."""
    where = f" (while {stage})" if stage else ""
    return IngestError(
        "timeout",
        f"reading took longer than the budget of {seconds:g} s{where}; "
        "raise it with TEXTMINE_READ_SECONDS",
    )


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[Deadline]:
    """Budget for reading one document.

    Yields a Deadline that the reader checks between steps. In the main thread
    an interval timer also interrupts a step that runs past the budget (Python
    code and regular expressions are interrupted; a long call inside a C
    library ends first). In other threads only the checks apply.
    """
    deadline = Deadline(seconds)
    armed = (
        bool(seconds)
        and threading.current_thread() is threading.main_thread()
        and hasattr(signal, "setitimer")
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0  # never override someone's timer
    )
    if not armed:
        yield deadline
        return

    def on_alarm(signum, frame):
        raise timeout_error(seconds, "interrupted")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield deadline
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
