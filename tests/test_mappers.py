"""The run's batch mappers: every batch once, its result or its error, from any process."""

from __future__ import annotations

import functools
import os

from textmine.run import serial_map, shared_map


def square_with_pid(value: int) -> tuple[int, int]:
    """The square of a batch, and the process that computed it."""
    return os.getpid(), value * value


def die_outside(value: int, parent: int) -> int:
    """Ends a worker process abruptly (like a crash in a C library); runs in `parent`."""
    if os.getpid() != parent:
        os._exit(3)
    return value + 1


def test_shared_map_runs_batches_here_and_in_a_worker():
    batches = list(range(12))
    results = list(shared_map(1)(square_with_pid, batches, name="code"))
    assert sorted(r.batch for r in results) == batches  # every batch once
    assert all(r.error is None and r.result[1] == r.batch**2 for r in results)
    pids = {r.result[0] for r in results}
    assert os.getpid() in pids and len(pids) == 2  # this process and one worker
    # this process takes from the front, the worker from the back
    here = sorted(r.batch for r in results if r.result[0] == os.getpid())
    assert here[0] == 0 and max(r.batch for r in results if r.result[0] != os.getpid()) == 11


def test_shared_map_finishes_the_work_when_its_worker_dies():
    batches = list(range(6))
    step = functools.partial(die_outside, parent=os.getpid())
    results = list(shared_map(1)(step, batches, name="code"))
    assert sorted(r.batch for r in results) == batches
    failed = [r for r in results if r.error is not None]
    assert failed and all(r.batch >= 4 for r in failed)  # the two sent to the worker first
    assert {r.batch: r.result for r in results if r.error is None} == {
        b: b + 1 for b in batches if b not in {r.batch for r in failed}
    }


def test_shared_map_without_helpers_or_with_one_batch_is_serial():
    for helpers, batches in ((0, [1, 2, 3]), (1, [5])):
        results = list(shared_map(helpers)(square_with_pid, batches, name="code"))
        assert [r.result for r in results] == [
            r.result for r in serial_map(square_with_pid, batches)
        ]
        assert {r.result[0] for r in results} == {os.getpid()}
