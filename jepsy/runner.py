"""The interpreter: runs a :class:`~jepsy.core.Test` with real threads and records it.

``run(test)`` sets up the remote, the DB on every node, the clients and the
nemesis; runs the main generator on one thread per client worker plus a
nemesis thread; then always goes through the same cleanup, whether the time
limit ran out, the generator ended, a worker raised, or the user pressed
Ctrl-C (SIGINT) or sent SIGTERM:

1. stop the workers (in-flight ops get ``op_timeout`` to finish),
2. run ``test.final_generator`` (heal the network, resume, final reads),
   then ``nemesis.teardown`` (undo any fault still in force),
3. tear down and close the clients,
4. collect DB log files into ``nodes/<node>/`` (:class:`~jepsy.db.HasLogFiles`),
5. tear down the DB and the remote (unless ``leave_db_running``),
6. read ``history.jsonl`` back and check it; write ``results.json``.

A second Ctrl-C during cleanup aborts it, logging a warning that names
what was left behind (a DB still running, faults maybe in force).

How ops are scheduled (the generator's interpreter contract): there is one
generator value, asked for its next op under one lock by whichever worker
is free.  ``ctx.free_threads`` is the set of threads with nothing in
flight, ``ctx.workers`` maps each thread (``0 .. concurrency-1`` and
``"nemesis"``) to its current process.  An op for another free thread is
handed to that thread; :data:`~jepsy.generator.PENDING` or an op whose
``time`` lies ahead makes the asker wait (bounded) and ask again.  Every
recorded invoke and completion goes to ``gen.update``.  A worker whose op
completes ``info`` is retired: its thread carries on as process
``process + concurrency`` with a freshly opened client.

How the lock is shared (flat combining): a worker whose op completed does
not wait its turn for the lock.  It queues a request ("record this
completion, what next?") and takes the lock only if it is free; whoever
holds it serves every queued request - records the completions, asks the
generator for the next ops, in queue order - then writes all the lines it
recorded with one ``os.write`` and only then hands each worker its answer.
So a completion and that worker's next invoke reach the file before the
worker moves on (an invoke is always on disk before its client call), the
history's line order is the order events were recorded, and the threads
that finish while the lock is busy park once until answered instead of
handing the lock (and the GIL) around one by one.  Answered workers are
woken a few at a time, by threads about to park or to call their client, so
that few threads contend for the GIL at once.  A server whose own answer is
ready serves a few more rounds at most, then wakes the first requester still
waiting to serve the rest.  Other users of the lock (the watchdog, the live
display) take it normally; requesters step aside while they wait.

A client call that hangs past ``test.op_timeout`` is recorded ``info`` by
the watchdog (the main thread); the hung call is abandoned on its daemon
thread, whose late answer is discarded, and a new thread takes over the
worker slot as the next process.  A client exception becomes ``info``
unless it is a definite :class:`~jepsy.errors.ClientError` (``fail``).

By example::

    >>> from jepsy.core import noop_test
    >>> from jepsy.runner import run
    >>> result = run(noop_test(time_limit=1), handle_signals=False)  # doctest: +SKIP
    >>> result.valid, result.run_dir.path  # doctest: +SKIP
    (True, PosixPath('store/noop/20261122T170102.345'))
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import threading
import time
import types
from _thread import allocate_lock as _allocate_lock
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from time import monotonic_ns as _monotonic_ns
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from jepsy.checkers.core import Checker, Result, Validity, safe_check
from jepsy.db import HasLogFiles
from jepsy.errors import ClientError, ConfigError, JepsyError
from jepsy.generator import (
    PENDING,
    Context,
    Generator,
    GeneratorError,
    Log,
    Sleep,
    _mkctx,
    ignores_events,
    lift,
    make_op,
)
from jepsy.history import NEMESIS, Op, _json_default, op_to_json
from jepsy.store import HistoryWriter, RunDir, create_run

if TYPE_CHECKING:
    from jepsy.client import Client
    from jepsy.core import Test
    from jepsy.nemesis import Nemesis

log = logging.getLogger(__name__)

_PENDING_WAIT = 0.01
_EXTRA_ROUNDS = 4  # see _Runner._ask
_WATCHDOG_TICK = 0.05


class Aborted(BaseException):
    """Raised in the main thread by a second SIGINT/SIGTERM: cleanup is abandoned."""


# -- progress -------------------------------------------------------------------


@dataclass
class Stats:
    """Live counters for a display, updated by the runner under its lock.

    Read them from another thread through :meth:`snapshot` (a consistent copy)."""

    time_limit: float | None = None
    phase: str = "setup"
    started: float = field(default_factory=time.monotonic)
    ops: int = 0
    counts: dict[str, list[int]] = field(default_factory=dict)
    nemesis: str = "none"
    run_dir: str = ""
    _lock: contextlib.AbstractContextManager[Any] = field(
        default_factory=threading.Lock, repr=False
    )

    def snapshot(self) -> dict[str, Any]:
        """``{"phase", "elapsed", "time_limit", "ops", "counts": {f: {ok, fail, info}}, "nemesis"}``."""
        with self._lock:
            return {
                "phase": self.phase,
                "elapsed": time.monotonic() - self.started,
                "time_limit": self.time_limit,
                "ops": self.ops,
                "counts": {
                    f: {"ok": c[0], "fail": c[1], "info": c[2]}
                    for f, c in sorted(self.counts.items())
                },
                "nemesis": self.nemesis,
                "run_dir": self.run_dir,
            }


_TYPE_SLOT = {"ok": 0, "fail": 1, "info": 2}

_enc = json.JSONEncoder(separators=(",", ":"), default=_json_default).encode


def _val(v: Any) -> str:
    """JSON for a history value; plain ints, strings, None and short lists of them
    without the json module's per-call overhead."""
    t = type(v)
    if t is int:
        return str(v)
    if v is None:
        return "null"
    if t is str:
        return encode_basestring(v)
    if t is list and len(v) == 2 and type(v[0]) is int:  # independent [key, v]
        a, b = v
        tb = type(b)
        if tb is int:
            return f"[{a},{b}]"
        if b is None:
            return f"[{a},null]"
        if tb is list and len(b) == 2 and type(b[0]) is int and type(b[1]) is int:
            return f"[{a},[{b[0]},{b[1]}]]"
    if t is list and len(v) <= 4:
        parts = []
        for x in v:
            tx = type(x)
            if tx is int:
                parts.append(str(x))
            elif x is None:
                parts.append("null")
            elif tx is list and len(x) <= 4 and all(type(y) is int for y in x):
                parts.append("[" + ",".join([str(y) for y in x]) + "]")
            else:
                return _enc(v)
        return "[" + ",".join(parts) + "]"
    return _enc(v)


# (process, type, f) -> ',"process":..,"type":..,"f":..,"value":' (the part of a line
# between its time and its value); ops of one process repeat a few (type, f) pairs.
_MID: dict[tuple[int | str, str, str], str] = {}
_NODE_JSON: dict[str, str] = {}  # node -> ',"node":"n1"'


def _mid(p: Any, typ: str, f: str) -> str:
    ps = str(p) if type(p) is int else encode_basestring(str(p))
    mid = f',"process":{ps},"type":"{typ}","f":{encode_basestring(f)},"value":'
    tp = type(p)
    if (tp is int or tp is str) and type(f) is str:  # (not bool: True == 1)
        if len(_MID) >= 8192:
            _MID.clear()
        _MID[(p, typ, f)] = mid
    return mid


def _line(op: Op) -> str:
    """``op_to_json(op)``, faster for the common shapes (the recording hot path)."""
    if op.extra:
        return op_to_json(op)
    return _line_of(op.index, op.time, op.process, op.type, op.f, op.value, op.node, op.error)


def _line_of(
    index: int, time: int, p: Any, typ: str, f: str, value: Any, node: str | None, error: Any
) -> str:
    """``_line`` of an op without ``extra``, from its fields (no op needs to be built)."""
    tp = type(p)
    mid = _MID.get((p, typ, f)) if tp is int or tp is str else None
    if mid is None:
        mid = _mid(p, typ, f)
    if type(value) is list and len(value) == 2 and type(value[0]) is int:
        a, b = value  # independent [key, v]: the register workload's every op
        tb = type(b)
        if tb is int:
            vs = f"[{a},{b}]"
        elif b is None:
            vs = f"[{a},null]"
        elif tb is list and len(b) == 2 and type(b[0]) is int and type(b[1]) is int:
            vs = f"[{a},[{b[0]},{b[1]}]]"
        else:
            vs = _val(value)
    else:
        vs = _val(value)
    if node is None:
        s = f'{{"index":{index},"time":{time}{mid}{vs}'
    else:
        ns = _NODE_JSON.get(node)
        if ns is None:
            ns = ',"node":' + encode_basestring(node)
            if len(_NODE_JSON) < 1024:
                _NODE_JSON[node] = ns
        s = f'{{"index":{index},"time":{time}{mid}{vs}{ns}'
    if error is not None:
        return s + ',"error":' + _enc(error) + "}"
    return s + "}"


# -- result -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """What a run ended with.

    ``valid``: the checkers' verdict (``"unknown"`` when never checked).
    ``error``: why the run crashed, if it did (then ``crashed`` is True, and
    ``bad_input`` tells a :class:`~jepsy.errors.JepsyError` from a bug).
    ``interrupted``: stopped early by SIGINT/SIGTERM.  ``aborted``: a second
    signal abandoned cleanup (``left_behind`` says what was not cleaned up)."""

    run_dir: RunDir
    valid: Validity
    results: Result | None
    ops: int
    error: str | None = None
    bad_input: bool = False
    interrupted: bool = False
    aborted: bool = False
    left_behind: tuple[str, ...] = ()

    @property
    def crashed(self) -> bool:
        return self.error is not None

    @property
    def exit_code(self) -> int:
        """0 valid, 1 invalid, 2 unknown, 254 bad input, 255 crash, 130 aborted."""
        if self.aborted:
            return 130
        if self.error is not None:
            return 254 if self.bad_input else 255
        if self.valid is True:
            return 0
        if self.valid is False:
            return 1
        return 2


# -- workers --------------------------------------------------------------------------

# What a worker asks the runner for (see _Runner._ask); every request also asks "what next?".
_ASK = 0  # at start, after a wait, after reopening a client
_DONE = 1  # my op completed: record w.done at time w.done_t
_SLEPT = 2  # my Sleep is over


class _Token:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_EXIT: Final = _Token("EXIT")  # answer: the phase is over for this worker (or it was superseded)
_REOPEN: Final = _Token("REOPEN")  # answer: the process was retired: reopen the client, ask again


class _Wait:
    """Answer: nothing for this worker until ``until`` (ns) or a hand-off; then ask again."""

    __slots__ = ("until",)

    def __init__(self, until: int) -> None:
        self.until = until


_Answer: TypeAlias = "Op | Sleep | _Wait | _Token"


class _Worker:
    """One worker slot: a thread id, its current process and client, and the one
    request it may have queued (``kind``, ``done``, ``done_t``) with its ``answer``."""

    __slots__ = (
        "answer",
        "busy",
        "client",
        "current",
        "done",
        "done_t",
        "is_nemesis",
        "kind",
        "mailbox",
        "node",
        "process",
        "started",
        "superseded",
        "thread",
        "thread_id",
        "waiters",
    )

    def __init__(self, thread_id: int | str, process: int | str, node: str | None):
        self.thread_id = thread_id
        self.process = process
        self.node = node
        self.is_nemesis = thread_id == NEMESIS
        self.client: Client | None = None
        self.mailbox: Op | Sleep | None = None  # handed over by another thread's request
        self.busy = False
        self.current: Op | None = None
        self.started = 0
        self.superseded = False
        self.thread: threading.Thread | None = None
        self.kind = _ASK
        self.done: Op | None = None
        self.done_t = 0
        self.answer: _Answer | None = None  # set (after the flush) by whoever served the request
        self.waiters: list[Any] = []  # locks this worker's thread is parked on


def _wake(w: _Worker) -> None:
    """Unpark ``w``'s thread (each parked lock is popped, so released, once)."""
    ws = w.waiters
    while ws:
        try:
            ws.pop().release()
        except IndexError:  # the thread removed its own lock meanwhile
            return


class _RunnerLock:
    """The runner's lock.  Leaving it writes the history lines recorded under it
    (one ``os.write``), then publishes answers and wakes workers, then releases
    the lock and wakes a queued requester to serve the queue (see ``_Runner._ask``)."""

    __slots__ = ("_r",)

    def __init__(self, r: _Runner) -> None:
        self._r = r

    def __enter__(self) -> None:
        r = self._r
        if not r._raw.acquire(False):
            out = r._outsiders
            out.append(None)  # requesters stop taking the lock until we have had it
            try:
                r._raw.acquire()
            finally:
                out.pop()

    def __exit__(self, *exc: object) -> None:
        self._r._unlock()
        self._r._handoff()


class _Phase:
    """One generator run (main or final) over the shared workers."""

    def __init__(self, name: str, gen: Generator | None, deadline: int | None) -> None:
        self.name = name
        self.gen = gen
        self.deadline = deadline
        self.stopping = False
        self.stop_reason = ""
        self.stop_at = 0.0
        self.hard = False  # stopped by time limit, signal or crash (not just exhausted)
        self.live = 0
        self.done = threading.Event()
        self.error: BaseException | None = None


class _Runner:
    def __init__(
        self,
        test: Test,
        run_dir: RunDir,
        *,
        stats: Stats,
        progress: Callable[[Stats], None] | None,
        progress_interval: float,
        final_time_limit: float,
    ) -> None:
        self.test = test
        self.run_dir = run_dir
        self.stats = stats
        self.progress = progress
        self.progress_interval = progress_interval
        self.final_time_limit = final_time_limit
        self._raw = threading.Lock()
        self.lock = _RunnerLock(self)
        stats._lock = self.lock  # the counters change under the runner's lock
        self._requests: deque[_Worker] = deque()  # workers waiting to be served
        self._lines: list[str] = []  # history lines recorded under the lock, not yet written
        self._answers: list[tuple[_Worker, _Answer]] = []  # to publish once they are written
        self._woken: list[_Worker] = []  # workers to unpark once the lines are written
        self._baton: deque[_Worker] = deque()  # answered, parked, not woken yet
        self._outsiders: list[None] = []  # one entry per thread blocked in `with self.lock`
        self._opened_lock = threading.Lock()
        self.t0 = time.monotonic_ns()
        self.rng = random.Random(test.seed)
        self.rate_rng = random.Random(test.seed ^ 0x5EED)
        self.next_slot = 0
        self.rate_gap = 0 if not test.rate else int(2e9 / test.rate)
        self.writer: HistoryWriter | None = None
        self.index = 0
        self.nemesis: Nemesis = test.nemesis
        self.phase: _Phase | None = None
        self.interrupts = 0
        self.stop_requested = ""
        self.cleanup_started = False
        conc = test.concurrency
        nodes = test.nodes
        self.workers: dict[int | str, _Worker] = {}
        for t in range(conc):
            self.workers[t] = _Worker(t, t, nodes[t % len(nodes)])
        self.workers[NEMESIS] = _Worker(NEMESIS, NEMESIS, None)
        self.thread_of: dict[int | str, int | str] = {w.process: t for t, w in self.workers.items()}
        self.free: set[int | str] = set(self.workers)
        self._procs_view: Mapping[int | str, int | str] = types.MappingProxyType(
            {t: w.process for t, w in self.workers.items()}
        )
        self._ctx: Context | None = None
        self._inert: Generator | None = None  # last generator known to ignore events
        self.opened: list[Client] = []
        self.setup_client: Client | None = None

    # -- time / context ------------------------------------------------------------
    def now(self) -> int:
        return time.monotonic_ns() - self.t0

    def ctx(self, now: int) -> Context:
        """The generator's view now (reused while nothing changed for up to 1 ms)."""
        c = self._ctx
        if c is not None and now - c.time < 1_000_000:
            return c
        c = self._ctx = _mkctx(now, frozenset(self.free), self._procs_view, self.rng, None)
        return c

    # -- the lock ------------------------------------------------------------------------
    def _unlock(self) -> None:
        """Release the (held) raw lock: write the lines recorded under it with one
        ``os.write``, then publish the answers and unpark workers, then release.
        Nothing recorded can be acted on before it is on disk."""
        try:
            lines = self._lines
            if lines:
                self._lines = []
                assert self.writer is not None
                self.writer.write_lines(lines)
        except BaseException:
            # Not written: no worker may run an op whose invoke is not on disk (an
            # op handed over earlier and dropped here stays in flight: indefinite).
            self._answers = [(w, _EXIT) for w, _ in self._answers]
            for x in self.workers.values():
                x.mailbox = None
            ph = self.phase
            if ph is not None:
                ph.stopping = ph.hard = True
                self._woken.extend(self.workers.values())
            raise
        finally:
            answers = self._answers
            if answers:
                self._answers = []
                baton = self._baton
                for w, a in answers:
                    w.answer = a
                    if w.waiters:
                        baton.append(w)  # woken one at a time: see _ask
            woken = self._woken
            if woken:
                self._woken = []
                for w in woken:
                    _wake(w)
            self._raw.release()

    def _pass_baton(self) -> None:
        """Wake the worker answered longest ago.  Answered workers are woken one at a
        time, each by a thread about to park or to call its client: so few threads
        contend for the GIL at once, and each is woken when it can soon run."""
        try:
            w = self._baton.popleft()
        except IndexError:
            return
        _wake(w)

    def _handoff(self) -> None:
        """After a release: requests still queued are served by the first requester,
        woken here (it may be parked, trusting the holder to see its request)."""
        q = self._requests
        if q:
            try:
                w = q[0]
            except IndexError:
                return
            _wake(w)

    def _ask(self, w: _Worker, kind: int) -> _Answer:
        """Queue ``w``'s request and wait for its answer (flat combining).

        Whichever requester gets the lock serves every queued request (records the
        completions, asks the generator for the next ops), writes all their lines
        with one ``os.write``, and only then publishes the answers: so a worker's
        completion and its next invoke are on disk before it moves on, and threads
        that finish meanwhile park once instead of queueing on the lock one after
        another.  A requester whose own answer is ready serves at most
        ``_EXTRA_ROUNDS`` more rounds (it holds the GIL: cheaper than waking
        another thread), then wakes the first requester still queued to serve
        the rest, and goes on with its own op.

        Answered workers that are parked wait in ``_baton``: a thread wakes one
        before it parks and two before it returns to call its client (which may
        block), so every answered worker is woken soon, while only a few threads
        at a time compete for the GIL (waking them all at once made most of them
        wake only to sleep again on the GIL)."""
        w.kind = kind
        q = self._requests
        raw = self._raw
        out = self._outsiders
        q.append(w)
        extra = 0
        while True:
            a = w.answer
            if a is not None:
                if q and not out and extra < _EXTRA_ROUNDS and raw.acquire(False):
                    extra += 1
                    try:
                        self._serve()
                    finally:
                        self._unlock()
                    continue
                w.answer = None
                if q and not raw.locked():
                    self._handoff()  # (a holder hands the queue on when it lets go)
                if self._baton:  # before the client call, which may block: wake two
                    self._pass_baton()
                    self._pass_baton()
                return a
            if q and not out and raw.acquire(False):
                try:
                    self._serve()
                finally:
                    self._unlock()
                continue
            wl = _allocate_lock()
            wl.acquire()
            w.waiters.append(wl)
            # Park unless the request could be served now; whoever holds the lock
            # hands the queue on when it lets go, and an answer wakes us.
            if w.answer is None and (not q or out or raw.locked()):
                if self._baton:
                    self._pass_baton()
                wl.acquire()
            else:
                with contextlib.suppress(ValueError):
                    w.waiters.remove(wl)

    def _park(self, w: _Worker, ph: _Phase, until: int) -> None:
        """Wait until ``until`` (at most 1 s), an op handed to ``w``, or the phase's end."""
        delay = (until - self.now()) / 1e9
        if delay <= 0:
            return
        wl = _allocate_lock()
        wl.acquire()
        w.waiters.append(wl)
        if w.mailbox is None and not ph.stopping:
            wl.acquire(True, min(delay, 1.0))
        with contextlib.suppress(ValueError):
            w.waiters.remove(wl)

    # -- serving requests (caller holds the lock) ---------------------------------------
    def _serve(self) -> None:
        """Answer every queued request, in queue order (the hot path: kept flat)."""
        q = self._requests
        answers = self._answers
        free = self.free
        while q:
            w = q.popleft()
            try:
                if w.superseded:
                    a: _Answer = _EXIT  # the watchdog already recorded info for its op
                else:
                    kind = w.kind
                    if kind == _DONE:
                        done = w.done
                        assert done is not None
                        w.done = None
                        w.busy = False  # free w (as _free does)
                        w.current = None
                        free.add(w.thread_id)
                        self._ctx = None
                        self._record_done(done, w.done_t)
                        if done.type == "info" and not w.is_nemesis:
                            self._retire(w)
                            answers.append((w, _REOPEN))
                            continue
                    elif kind == _SLEPT:
                        self._free(w)
                    nxt = self._next(w)
                    a = _EXIT if nxt is None else nxt
            except BaseException as e:
                a = _EXIT
                log.exception("worker %s crashed", w.thread_id)
                ph = self.phase
                if ph is not None:
                    if ph.error is None:
                        ph.error = e
                    self._stop(ph, f"worker {w.thread_id} crashed: {type(e).__name__}: {e}")
            answers.append((w, a))

    # -- recording (caller holds the lock) ---------------------------------------------
    def _record(self, op: Op, time: int | None = None, node: str | None = None) -> Op:
        """Number ``op``, stamp it (``time``; ``node`` when it has none), queue its line
        (written when the lock is let go), update the generator."""
        op = make_op(
            self.index,
            op.time if time is None else time,
            op.process,
            op.type,
            op.f,
            op.value,
            node if op.node is None else op.node,
            op.error,
            op.extra,
        )
        self.index += 1
        self._lines.append(_line(op))
        if op.type != "invoke":
            self._count(op)
        ph = self.phase
        if ph is not None:
            g = ph.gen
            if g is not None and g is not self._inert:
                if ignores_events(g):
                    self._inert = g  # the same generator usually sees the next event too
                else:
                    ph.gen = g.update(self.test, self.ctx(op.time), op)
        return op

    def _record_done(self, done: Op, t: int) -> None:
        """``_record(done, t)``; without building the stamped op when no generator
        would see it (the common case)."""
        ph = self.phase
        g = None if ph is None else ph.gen
        if done.extra or not (g is None or g is self._inert or ignores_events(g)):
            self._record(done, t)
            return
        if g is not None:
            self._inert = g
        i = self.index
        self.index = i + 1
        p = done.process
        f = done.f
        typ = done.type
        self._lines.append(_line_of(i, t, p, typ, f, done.value, done.node, done.error))
        if p == NEMESIS:
            self.stats.nemesis = _describe_nemesis(done)
            return
        st = self.stats  # st._lock is self.lock, held here
        st.ops += 1
        c = st.counts.get(f)
        if c is None:
            c = st.counts[f] = [0, 0, 0]
        c[_TYPE_SLOT[typ]] += 1

    def _count(self, op: Op) -> None:
        st = self.stats  # st._lock is self.lock, held here
        if op.process == NEMESIS:
            st.nemesis = _describe_nemesis(op)
            return
        st.ops += 1
        c = st.counts.get(op.f)
        if c is None:
            c = st.counts[op.f] = [0, 0, 0]
        c[_TYPE_SLOT[op.type]] += 1

    def _retire(self, w: _Worker) -> None:
        """After ``info``: the worker's thread continues as the next process."""
        if w.is_nemesis:
            return
        old = w.process
        assert isinstance(old, int)
        w.process = old + self.test.concurrency
        self.thread_of.pop(old, None)
        self.thread_of[w.process] = w.thread_id
        self._procs_view = types.MappingProxyType({t: x.process for t, x in self.workers.items()})
        self._ctx = None

    # -- scheduling (caller holds the lock) ----------------------------------------------
    def _next(self, w: _Worker) -> Op | Sleep | _Wait | None:
        """The next thing for ``w`` to do: an op or sleep, a wait (then ask again), or
        None when its phase is over.  Ops the generator gives other free threads on the
        way are handed to them."""
        test = self.test
        ph = self.phase
        if ph is None:
            return None
        deadline = ph.deadline
        free = self.free
        while True:
            m = w.mailbox
            if m is not None:
                w.mailbox = None
                return m
            if ph.stopping or w.superseded:
                return None
            now = _monotonic_ns() - self.t0
            if deadline is not None and now >= deadline:
                self._stop(ph, "time limit")
                return None
            gen = ph.gen
            if gen is None:
                self._stop(ph, "generator exhausted", hard=False)
                return None
            c = self._ctx  # self.ctx(now), inlined
            if c is None or now - c.time >= 1_000_000:
                c = self._ctx = _mkctx(now, frozenset(free), self._procs_view, self.rng, None)
            res = gen.op(test, c)
            if res is None:
                ph.gen = None
                self._stop(ph, "generator exhausted", hard=False)
                return None
            action, gen2 = res
            if isinstance(action, Op):
                thread = self.thread_of.get(action.process)
                if thread is None or thread not in free:
                    raise GeneratorError(
                        f"generator emitted {action.f!r} for process {action.process!r}, "
                        f"which is not a free process (free threads: {sorted(map(str, free))}); "
                        "a generator must only use processes from ctx.free_threads"
                    )
                target = self.workers[thread]
                due = action.time
                if self.rate_gap and not target.is_nemesis:
                    if self.next_slot > due:
                        due = self.next_slot
                    if due > now:
                        return self._wait(ph, due)
                    # Catch up on small wake-up delays (up to 50 ms), never burst more.
                    self.next_slot = max(self.next_slot, now - 50_000_000) + int(
                        self.rate_rng.random() * self.rate_gap
                    )
                elif due > now:
                    return self._wait(ph, due)
                ph.gen = gen2
                free.discard(thread)
                self._ctx = None
                target.busy = True
                target.started = now
                op = self._record(action, now, target.node)
                target.current = op
                if target is w:
                    return op
                target.mailbox = op
                self._woken.append(target)
                continue
            if action is PENDING:
                return self._wait(ph, now + int(_PENDING_WAIT * 1e9))
            if isinstance(action, Sleep):
                ph.gen = gen2
                thread = self.thread_of.get(action.process, NEMESIS)
                target = self.workers[thread]
                if thread not in free:
                    continue
                free.discard(thread)
                self._ctx = None
                target.busy = True
                target.current = None
                target.started = now
                if target is w:
                    return action
                target.mailbox = action
                self._woken.append(target)
                continue
            if isinstance(action, Log):
                ph.gen = gen2
                log.info("%s", action.message)
                continue
            raise GeneratorError(
                f"generator emitted {action!r}; expected an Op, PENDING, Sleep or Log"
            )

    def _wait(self, ph: _Phase, until: int) -> _Wait:
        return _Wait(until if ph.deadline is None else min(until, ph.deadline))

    def _stop(self, ph: _Phase, reason: str, *, hard: bool = True) -> None:
        if ph.stopping and (ph.hard or not hard):
            return
        ph.stopping = True
        ph.hard = hard
        ph.stop_reason = reason
        ph.stop_at = time.monotonic()
        log.info("%s phase ending: %s", ph.name, reason)
        self._woken.extend(self.workers.values())  # parked threads ask again, hear EXIT

    def _free(self, w: _Worker) -> None:
        w.busy = False
        w.current = None
        self.free.add(w.thread_id)
        self._ctx = None

    # -- the worker thread ---------------------------------------------------------------
    def _worker_loop(self, w: _Worker, ph: _Phase) -> None:
        try:
            if not w.is_nemesis and w.client is None:
                self._open_client(w)
            item = self._ask(w, _ASK)
            while item is not _EXIT:
                if isinstance(item, Op):
                    w.done = self._invoke(w, item)
                    w.done_t = self.now()
                    item = self._ask(w, _DONE)
                elif isinstance(item, _Wait):
                    self._park(w, ph, item.until)
                    item = self._ask(w, _ASK)
                elif isinstance(item, Sleep):
                    end = time.monotonic() + item.seconds
                    while not ph.hard and (left := end - time.monotonic()) > 0:
                        time.sleep(min(left, 0.1))
                    item = self._ask(w, _SLEPT)
                else:  # _REOPEN: the process was retired after info
                    self._close_client(w)
                    self._open_client(w)
                    item = self._ask(w, _ASK)
        except BaseException as e:
            log.exception("worker %s crashed", w.thread_id)
            with self.lock:
                if ph.error is None:
                    ph.error = e
                self._stop(ph, f"worker {w.thread_id} crashed: {type(e).__name__}: {e}")
        finally:
            with self.lock:
                ph.live -= 1
                if ph.live <= 0:
                    ph.done.set()

    def _invoke(self, w: _Worker, op: Op) -> Op:
        test = self.test
        try:
            if w.is_nemesis:
                done = self.nemesis.invoke(test, op)
            else:
                c = w.client
                if c is None:  # opening failed before: try again, once per op
                    self._open_client(w)
                    c = w.client
                if c is None:
                    return op.replace(type="fail", error=f"could not open a client to {w.node}")
                done = c.invoke(test, op)
        except ClientError as e:
            kind = "fail" if e.definite and not w.is_nemesis else "info"
            return op.replace(type=kind, error=f"{type(e).__name__}: {e}")
        except Exception as e:
            return op.replace(type="info", error=f"{type(e).__name__}: {e}")
        if not isinstance(done, Op) or done.type == "invoke" or done.f != op.f:
            return op.replace(
                type="info",
                error=f"{'nemesis' if w.is_nemesis else 'client'} returned {done!r}, "
                "not a completion of the op",
            )
        if done.process != op.process or done.node != op.node:
            return done.replace(process=op.process, node=op.node)
        return done

    def _open_client(self, w: _Worker) -> None:
        assert w.node is not None
        try:
            c = self.test.client.open(self.test, w.node)
        except Exception as e:
            log.warning("opening a client to %s failed: %s", w.node, e)
            w.client = None
            return
        w.client = c
        with self._opened_lock:
            self.opened.append(c)

    def _close_client(self, w: _Worker) -> None:
        c = w.client
        w.client = None
        if c is None:
            return
        with self._opened_lock, contextlib.suppress(ValueError):
            self.opened.remove(c)
        try:
            c.close(self.test)
        except Exception as e:
            log.warning("closing a client of %s failed: %s", w.node, e)

    # -- the watchdog (main thread) ------------------------------------------------------
    def _check_timeouts(self, ph: _Phase, *, force: bool = False) -> None:
        limit = int(self.test.op_timeout * 1e9)
        with self.lock:
            now = self.now()
            for t, w in list(self.workers.items()):
                if not w.busy or w.current is None:
                    continue
                if not force and (w.is_nemesis or now - w.started < limit):
                    continue
                op = w.current
                why = (
                    f"timed out: no answer within op_timeout={self.test.op_timeout}s"
                    if not force
                    else f"still in flight when the {ph.name} phase ended"
                )
                w.superseded = True
                fresh = _Worker(t, w.process, w.node)
                self.workers[t] = fresh
                self._record(op.replace(type="info", error=why), now)
                self._retire(fresh)
                self._free(fresh)
                log.warning("process %s: %s; abandoning the call", op.process, why)
                if not force and not ph.stopping:
                    self._start_thread(fresh, ph)

    def _start_thread(self, w: _Worker, ph: _Phase) -> None:
        ph.live += 1
        ph.done.clear()
        th = threading.Thread(
            target=self._worker_loop,
            args=(w, ph),
            name=f"jepsy-worker-{w.thread_id}",
            daemon=True,
        )
        w.thread = th
        th.start()

    # -- a phase ---------------------------------------------------------------------------
    def run_phase(self, name: str, gen: Generator | None, limit: float | None) -> None:
        deadline = None if limit is None else self.now() + int(limit * 1e9)
        ph = _Phase(name, None if gen is None else lift(gen), deadline)
        with self.stats._lock:
            self.stats.phase = name
            self.stats.started = time.monotonic()  # elapsed counts from the phase's start
            self.stats.time_limit = limit
        with self.lock:
            self.phase = ph
            for w in self.workers.values():
                w.superseded = False
            for w in list(self.workers.values()):
                self._start_thread(w, ph)
        grace = self.test.op_timeout + 1.0
        next_progress = time.monotonic()
        while True:
            if ph.done.wait(_WATCHDOG_TICK):
                break
            if self.stop_requested and not ph.hard:
                with self.lock:
                    self._stop(ph, self.stop_requested)
            if ph.deadline is not None and not ph.hard and self.now() >= ph.deadline:
                with self.lock:
                    self._stop(ph, "time limit")
            self._check_timeouts(ph)
            if ph.hard and time.monotonic() - ph.stop_at > grace:
                self._check_timeouts(ph, force=True)
                break
            if self.progress is not None and time.monotonic() >= next_progress:
                next_progress = time.monotonic() + self.progress_interval
                self._report_progress()
        with self.lock:
            self.phase = None
        self._report_progress()  # the phase's final counts
        if ph.error is not None:
            raise ph.error

    def _report_progress(self) -> None:
        if self.progress is None:
            return
        try:
            self.progress(self.stats)
        except Exception:
            log.exception("progress callback failed")

    # -- lifecycle steps -------------------------------------------------------------------
    def on_nodes(self, what: str, fn: Callable[[str], None]) -> None:
        nodes = list(self.test.nodes)
        if not nodes:
            return
        with ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix=f"jepsy-{what}") as ex:
            futs = {n: ex.submit(fn, n) for n in nodes}
            errors = []
            for n, f in futs.items():
                e = f.exception()
                if e is not None:
                    errors.append((n, e))
        if errors:
            n, e = errors[0]
            e.add_note(f"({what} on node {n})")
            raise e

    def collect_logs(self) -> None:
        db = self.test.db
        if not isinstance(db, HasLogFiles):
            return
        remote = self.test.remote

        def one(node: str) -> None:
            for path in db.log_files(self.test, node):
                dest = self.run_dir.node_dir(node) / Path(path).name
                try:
                    remote.download(node, path, dest)
                except Exception as e:
                    log.warning("could not collect %s from %s: %s", path, node, e)

        self.on_nodes("collect-logs", one)


def _describe_nemesis(op: Op) -> str:
    v = op.value
    s = op.f if v is None else f"{op.f} {v}"
    return s if len(s) <= 80 else s[:77] + "..."


# -- signals ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _signals(r: _Runner, enabled: bool) -> Iterator[None]:
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: types.FrameType | None) -> None:
        r.interrupts += 1
        name = signal.Signals(signum).name
        if r.interrupts == 1:
            if r.cleanup_started:
                log.warning("%s: already cleaning up (again to abort cleanup)", name)
            else:
                log.warning("%s: stopping the test and cleaning up (again to abort cleanup)", name)
                r.stop_requested = f"interrupted by {name}"
            return
        raise Aborted(name)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _log_to(run_dir: RunDir) -> Iterator[None]:
    handler = run_dir.log_handler()
    root = logging.getLogger()
    jl = logging.getLogger("jepsy")
    old_level = jl.level
    if jl.getEffectiveLevel() > logging.INFO:
        jl.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        jl.setLevel(old_level)


# -- the entry point -----------------------------------------------------------------------------


def run(
    test: Test,
    *,
    run_dir: RunDir | None = None,
    progress: Callable[[Stats], None] | None = None,
    progress_interval: float = 1.0,
    handle_signals: bool = True,
    final_time_limit: float = 60.0,
    check: bool = True,
) -> RunResult:
    """Run ``test``; return its verdict.  Never raises for a failing system or
    checker; a crash of the run itself is reported in :attr:`RunResult.error`
    after cleanup (``Aborted`` propagates nowhere: it becomes ``aborted``).

    ``progress(stats)`` is called from this thread every ``progress_interval``
    seconds while ops run; ``handle_signals`` installs SIGINT/SIGTERM
    handlers (main thread only); ``final_time_limit`` bounds the final phase."""
    rd = run_dir if run_dir is not None else create_run(test.store_dir, test.name)
    stats = Stats(time_limit=test.time_limit, run_dir=str(rd.path))
    r = _Runner(
        test,
        rd,
        stats=stats,
        progress=progress,
        progress_interval=progress_interval,
        final_time_limit=final_time_limit,
    )
    rd.write_test(test.to_json())
    error: BaseException | None = None
    left: dict[str, str] = {}
    aborted = False
    results: Result | None = None
    with _log_to(rd), _signals(r, handle_signals):
        log.info("test %s starting in %s (seed %s)", test.name, rd.path, test.seed)
        r.writer = rd.open_history()
        try:
            try:
                # -- setup
                if not test.leave_db_running:
                    left["remote"] = "remote (namespaces, containers or connections) not torn down"
                test.remote.setup()
                if not test.leave_db_running:
                    left["db"] = f"DB maybe still running on {', '.join(test.nodes)}"
                r.on_nodes("db-setup", lambda n: test.db.setup(test, n))
                left["clients"] = "clients not torn down"
                client0 = test.client.open(test, test.nodes[0])
                r.opened.append(client0)
                r.setup_client = client0
                client0.setup(test)
                left["nemesis"] = (
                    "nemesis not torn down (faults such as partitions may be in force)"
                )
                r.nemesis = test.nemesis.setup(test)
                # -- main phase
                if not r.stop_requested:
                    r.run_phase("main", test.generator, test.time_limit)
                    log.info("main phase over: %s ops recorded", r.index)
            except Aborted:
                raise
            except BaseException as e:
                log.exception("the run failed: %s", e)
                error = e
            r.cleanup_started = True
            r.stop_requested = ""
            # -- cleanup, in order
            if "nemesis" in left:
                if test.final_generator is not None:  # heal even after a crash
                    try:
                        r.run_phase("final", test.final_generator, final_time_limit)
                    except Aborted:
                        raise
                    except BaseException as e:
                        log.exception("final generator failed: %s", e)
                        error = error or e
                with _step("nemesis teardown"):
                    r.nemesis.teardown(test)
                del left["nemesis"]
            if "clients" in left:
                with _step("client teardown"):
                    if r.setup_client is not None:
                        r.setup_client.teardown(test)
                for c in list(r.opened):
                    with _step("client close"):
                        c.close(test)
                r.opened.clear()
                del left["clients"]
            with r.stats._lock:
                r.stats.phase = "teardown"
            with _step("collecting logs"):
                r.collect_logs()
            if "db" in left:
                with _step("db teardown"):
                    r.on_nodes("db-teardown", lambda n: test.db.teardown(test, n))
                del left["db"]
            if "remote" in left:
                with _step("remote teardown"):
                    test.remote.teardown()
                del left["remote"]
            if test.leave_db_running:
                log.warning(
                    "leaving the DB running on %s (--leave-db-running)", ", ".join(test.nodes)
                )
            r.writer.close()
            # -- check
            if check:
                with r.stats._lock:
                    r.stats.phase = "checking"
                left["check"] = "history not checked (run `jepsy analyze` on the run directory)"
                results = check_run(test, rd)
                del left["check"]
        except Aborted as sig:
            aborted = True
            log.warning(
                "%s again: cleanup aborted. Left behind: %s",
                sig,
                "; ".join(left.values()) or "nothing",
            )
        finally:
            if r.writer is not None and not r.writer.closed:
                r.writer.close()
        with r.stats._lock:
            r.stats.phase = "done"
        if error is not None:
            log.error("run crashed: %s: %s", type(error).__name__, error)
        valid: Validity = results.valid if results is not None else "unknown"
        log.info("test %s done: valid=%s, %s ops in %s", test.name, valid, r.index, rd.path)
    return RunResult(
        run_dir=rd,
        valid=valid,
        results=results,
        ops=r.index,
        error=None if error is None else f"{type(error).__name__}: {error}",
        bad_input=isinstance(error, JepsyError),
        interrupted=r.interrupts > 0,
        aborted=aborted,
        left_behind=tuple(left.values()) if aborted else (),
    )


@contextlib.contextmanager
def _step(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as e:
        log.exception("%s failed: %s", what, e)


def check_run(test: Test, run_dir: RunDir, *, keep_old: bool = True) -> Result:
    """Read ``history.jsonl`` back, check it with ``test.checker``, write ``results.json``
    (and ``report.html`` when :mod:`jepsy.report` provides ``write_report``)."""
    try:
        history = run_dir.history()
    except JepsyError as e:
        res = Result(valid="unknown", error=f"history unreadable: {e}")
    else:
        res = safe_check(
            test.checker,
            test,
            history,
            {"dir": run_dir.path, "time_limit": test.time_limit},
        )
    run_dir.write_results(res.to_json(), keep_old=keep_old)
    _write_report(run_dir.path)
    return res


def _write_report(path: Path) -> None:
    from jepsy.report import write_report

    try:
        write_report(path)
    except Exception as e:
        log.warning("writing the HTML report failed: %s", e)


# -- building a test from a spec ---------------------------------------------------------------

SPEC_DEFAULTS: Mapping[str, Any] = types.MappingProxyType(
    {
        "workload": "register",
        "db": "memory",
        "nodes": ["n1", "n2", "n3", "n4", "n5"],
        "remote": None,
        "concurrency": "1n",
        "time_limit": 60.0,
        "rate": None,
        "op_timeout": 10.0,
        "seed": 0,
        "nemesis": [],
        "nemesis_interval": 10.0,
        "nemesis_targets": None,
        "leave_db_running": False,
        "remote_opts": {},
        "store": "store",
        "name": None,
    }
)


def parse_concurrency(value: int | str, n_nodes: int) -> int:
    """``"10"`` -> 10, ``"2n"`` -> 2 per node; :class:`ConfigError` otherwise."""
    s = str(value).strip().lower()
    try:
        if s.endswith("n"):
            k = int(s[:-1] or "1")
            c = k * n_nodes
        else:
            c = int(s)
    except ValueError:
        raise ConfigError(
            f"concurrency must be a number or N followed by 'n' (per node); got {value!r}"
        ) from None
    if c < 1:
        raise ConfigError(f"concurrency must be at least 1; got {value!r} ({c} workers)")
    return c


def checker_from_spec(spec: Mapping[str, Any]) -> Checker:
    """The checker a run with ``spec`` uses (for re-checking stored runs)."""
    from jepsy.workloads.core import get_workload

    return get_workload(str(spec.get("workload", SPEC_DEFAULTS["workload"]))).checker(spec)


def build_test(spec: Mapping[str, Any], *, secrets: Mapping[str, Any] | None = None) -> Test:
    """A :class:`~jepsy.core.Test` from a plain, JSON-ready ``spec`` (the CLI's options).

    Keys (defaults in :data:`SPEC_DEFAULTS`): ``workload`` (a name or a .py path),
    ``db``, ``nodes``, ``remote`` (``local|docker|ssh``; None: the suite's default),
    ``concurrency`` (``10`` or ``"2n"``), ``time_limit``, ``rate``, ``op_timeout``,
    ``seed``, ``nemesis`` (names), ``nemesis_interval``, ``nemesis_targets``,
    ``leave_db_running``, ``store``, ``name``; anything else is an option for the
    suite or workload (e.g. ``memory_bug``).  ``remote_opts`` (a dict) goes to
    :func:`jepsy.control.make_remote` (``user``, ``key_file``, ``port``, ``sudo``,
    ``docker_host``, ``cluster`` ...); ``secrets`` (e.g. ``{"password": ...}``) too,
    but they are kept out of the spec and so out of ``test.json``.  The returned
    test's ``spec`` is the full spec, so ``test.json`` rebuilds it."""
    from jepsy import generator as g
    from jepsy.control import NoopRemote, make_remote
    from jepsy.core import Test
    from jepsy.dbs import get_suite
    from jepsy.nemesis import NoopNemesis
    from jepsy.workloads.core import get_workload

    full = {**SPEC_DEFAULTS, **{k: v for k, v in spec.items() if v is not None}}
    nodes = [str(n) for n in full["nodes"]]
    if not nodes:
        raise ConfigError("no nodes given; use --nodes n1,n2,... or --nodes-file FILE")
    suite = get_suite(str(full["db"]))
    workload = get_workload(str(full["workload"]))
    ops_of = workload.base or workload.name
    if workload.client is not None:
        client = workload.client(full)
    elif ops_of in suite.workloads:
        client = suite.make_client(ops_of, full)
    else:
        raise ConfigError(
            f"db {suite.name!r} does not support workload {workload.name!r}; it supports "
            f"{', '.join(sorted(suite.workloads)) or 'none'} (see `jepsy list`)"
        )
    concurrency = parse_concurrency(full["concurrency"], len(nodes))
    db = suite.make_db(full)
    kind = full["remote"]
    if not suite.needs_remote and kind in (None, "noop"):
        remote: Any = NoopRemote(nodes)
    else:
        ropts = dict(full.get("remote_opts") or {})
        ropts.update(secrets or {})
        remote = make_remote(str(kind or "local"), nodes, **ropts)
    names = [n for n in (full["nemesis"] or []) if n and n != "none"]
    nemesis: Any = NoopNemesis()
    nem_gen: Any = None
    nem_final: Any = None
    plot: Mapping[str, Any] = {}
    if names:
        from jepsy.nemeses.combined import package

        pkg = package(
            names,
            interval=float(full["nemesis_interval"]),
            targets=full["nemesis_targets"],
            db=db,
            nodes=nodes,
        )
        nemesis, nem_gen, nem_final = pkg.nemesis, pkg.generator, pkg.final_generator
        plot = dict(getattr(pkg, "plot", None) or {})
    main = g.clients(workload.generator(full))
    if nem_gen is not None:
        main = g.any_(main, g.nemesis(nem_gen))
    finals = []
    if nem_final is not None:
        finals.append(g.nemesis(nem_final))
    wf = workload.final_generator(full)
    if wf is not None:
        finals.append(g.clients(wf))
    rate = full["rate"]
    name = full["name"] or f"{suite.name}-{workload.name}"
    return Test(
        name=str(name),
        nodes=tuple(nodes),
        remote=remote,
        db=db,
        client=client,
        generator=main,
        final_generator=g.phases(*finals) if finals else None,
        nemesis=nemesis,
        checker=workload.checker(full),
        concurrency=concurrency,
        time_limit=None if full["time_limit"] is None else float(full["time_limit"]),
        rate=None if rate is None else float(rate),
        op_timeout=float(full["op_timeout"]),
        seed=int(full["seed"]),
        store_dir=Path(str(full["store"])),
        leave_db_running=bool(full["leave_db_running"]),
        spec=full,
        plot=plot,
    )


__all__ = [
    "SPEC_DEFAULTS",
    "Aborted",
    "RunResult",
    "Stats",
    "build_test",
    "check_run",
    "checker_from_spec",
    "parse_concurrency",
    "run",
]
