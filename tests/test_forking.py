"""jepsy.forking: work in a forked child, its result back through a pipe."""

from __future__ import annotations

import os
import time

import pytest

from jepsy.forking import can_fork, fork_call


def _boom(msg: str) -> None:
    raise ValueError(msg)


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_result_comes_back_and_the_child_is_reaped() -> None:
    assert can_fork()
    big = list(range(200_000))
    child = fork_call(lambda xs: (os.getpid(), sum(xs)), big)
    pid, total = child.result()
    assert pid == child.pid != os.getpid()
    assert total == sum(big)
    child.cancel()  # after result(): nothing left to do
    assert _no_children_left()


def test_an_exception_in_the_child_is_raised_here() -> None:
    child = fork_call(_boom, "boom in a child")
    with pytest.raises(ValueError, match="boom in a child"):
        child.result()
    assert _no_children_left()


def test_cancel_stops_a_running_child() -> None:
    child = fork_call(time.sleep, 60)
    t0 = time.monotonic()
    child.cancel()
    assert time.monotonic() - t0 < 5
    assert _no_children_left()


def test_a_child_that_dies_without_a_result_is_an_error() -> None:
    child = fork_call(os._exit, 3)
    with pytest.raises(RuntimeError, match="died before sending"):
        child.result()
    assert _no_children_left()
