"""cxr.serve: the supervisor restarts a part that died, with a growing backoff, and gives up on one that cannot
start (exit code 2)."""

from __future__ import annotations

import sys
import time

from cxr.serve import RESTART_MAX_S, STABLE_S, Child, _spawn, _tend
from cxr.startup import STARTUP_ERROR


def exiting(code: int) -> Child:
    command = [sys.executable, "-c", f"import sys; sys.exit({code})"]
    child = Child(command, _spawn(command))
    child.process.wait(timeout=30)
    return child


def test_a_part_that_dies_is_restarted_after_a_growing_backoff() -> None:
    child = exiting(3)
    delays = []
    for _ in range(8):
        before = time.monotonic()
        assert _tend([child]) == 0
        assert child.restart_at is not None
        delays.append(round(child.restart_at - before))
        child.restart_at = time.monotonic()  # due now
        assert _tend([child]) == 0 and child.restart_at is None, "started again"
        child.process.wait(timeout=30)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60] and RESTART_MAX_S == 60


def test_a_part_that_ran_for_a_while_is_restarted_quickly_again() -> None:
    child = exiting(3)
    child.restarts = 6
    child.started_at = time.monotonic() - STABLE_S - 1
    before = time.monotonic()
    _tend([child])
    assert child.restart_at is not None and child.restart_at - before < 2


def test_a_part_that_cannot_start_stops_the_supervisor() -> None:
    assert _tend([exiting(0), exiting(STARTUP_ERROR)]) == STARTUP_ERROR
