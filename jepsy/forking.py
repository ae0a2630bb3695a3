"""Work in a forked child process, its result sent back through a pipe.

A forked child starts with the parent's memory (copy-on-write): nothing is
pickled on the way in, only the result on the way out.  Used where a second
core pays for big inputs (reading a large EDN history, checking many keys).

By example::

    >>> child = fork_call(sum, [1, 2, 3])
    >>> child.result()
    6
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Child", "can_fork", "fork_call", "send_and_exit"]

CPUS = os.cpu_count() or 1  # asked once: os.cpu_count() reads /sys each time


def can_fork() -> bool:
    """Whether forking is possible and safe here: a ``fork`` start method,
    and no other thread (a thread may hold a lock the child would inherit
    locked; Python 3.12 warns about it)."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def send_and_exit(w: int, work: Callable[[], Any]) -> None:  # pragma: no cover - in a child
    """In a forked child: run ``work``, write ``("ok", result)`` or
    ``("error", exception)`` pickled to the pipe end ``w``, and leave with
    ``os._exit`` (never returns: no cleanup of the parent's state runs here)."""
    code = 0
    try:
        data = pickle.dumps(("ok", work()))
    except BaseException as e:  # sent to the parent, which raises it
        code = 1
        try:
            data = pickle.dumps(("error", e))
        except Exception:
            data = pickle.dumps(("error", RuntimeError(f"worker process failed: {e!r}")))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(w, view) :]
        os.close(w)
    finally:
        os._exit(code)


class Child:
    """A forked child's pid and the read end of its result pipe."""

    def __init__(self, pid: int, r: int) -> None:
        self.pid = pid
        self._r = r
        self._done = False

    def result(self) -> Any:
        """Wait for the child and return its result (or raise its exception)."""
        parts = []
        while chunk := os.read(self._r, 1 << 20):
            parts.append(chunk)
        os.close(self._r)
        os.waitpid(self.pid, 0)
        self._done = True
        if not parts:
            raise RuntimeError("a worker process died before sending its result")
        status, payload = pickle.loads(b"".join(parts))
        if status != "ok":
            raise payload
        return payload

    def cancel(self) -> None:
        """Stop the child if it is still running, and reap it."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.close(self._r)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def fork_call(fn: Callable[..., Any], *args: Any) -> Child:
    """``fn(*args)`` in a forked child; ``.result()`` waits for it.

    Call ``.cancel()`` on every path that does not reach ``.result()``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which leaves by os._exit
        os.close(r)
        send_and_exit(w, lambda: fn(*args))
    os.close(w)
    return Child(pid, r)
