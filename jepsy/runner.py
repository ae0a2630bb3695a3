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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    _ignores_events,
    _mkctx,
    _mkop,
    lift,
)
from jepsy.history import NEMESIS, Op, _json_default, op_to_json
from jepsy.store import HistoryWriter, RunDir, create_run

if TYPE_CHECKING:
    from jepsy.client import Client
    from jepsy.core import Test
    from jepsy.nemesis import Nemesis

log = logging.getLogger(__name__)

_PENDING_WAIT = 0.01
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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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


_F_JSON: dict[str, str] = {}  # op.f -> its JSON string (a handful of names per test)


def _line(op: Op) -> str:
    """``op_to_json(op)``, faster for the common shapes (the recording hot path)."""
    if op.extra:
        return op_to_json(op)
    p = op.process
    ps = str(p) if type(p) is int else encode_basestring(str(p))
    f = op.f
    fs = _F_JSON.get(f)
    if fs is None:
        fs = encode_basestring(f)
        if len(_F_JSON) < 256:
            _F_JSON[f] = fs
    s = (
        f'{{"index":{op.index},"time":{op.time},"process":{ps},"type":"{op.type}",'
        f'"f":{fs},"value":{_val(op.value)}'
    )
    if op.node is not None:
        s += ',"node":' + encode_basestring(op.node)
    if op.error is not None:
        s += ',"error":' + _enc(op.error)
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


class _Worker:
    """One worker slot: a thread id, its current process and client."""

    __slots__ = (
        "busy",
        "client",
        "cond",
        "current",
        "is_nemesis",
        "mailbox",
        "node",
        "process",
        "started",
        "superseded",
        "thread",
        "thread_id",
    )

    def __init__(self, thread_id: int | str, process: int | str, node: str | None, lock: Any):
        self.thread_id = thread_id
        self.process = process
        self.node = node
        self.is_nemesis = thread_id == NEMESIS
        self.client: Client | None = None
        self.cond = threading.Condition(lock)
        self.mailbox: Op | Sleep | None = None
        self.busy = False
        self.current: Op | None = None
        self.started = 0
        self.superseded = False
        self.thread: threading.Thread | None = None


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
        self.lock = threading.Lock()
        stats._lock = self.lock  # the counters change under the runner's lock
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
            self.workers[t] = _Worker(t, t, nodes[t % len(nodes)], self.lock)
        self.workers[NEMESIS] = _Worker(NEMESIS, NEMESIS, None, self.lock)
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

    # -- recording (caller holds the lock) ---------------------------------------------
    def _record(self, op: Op, time: int | None = None, node: str | None = None) -> Op:
        """Number ``op``, stamp it (``time``; ``node`` when it has none), write it, update
        the generator."""
        op = _mkop(
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
        assert self.writer is not None
        self.writer.write_line(_line(op))
        if op.type != "invoke":
            st = self.stats  # st._lock is self.lock, held here
            if op.process == NEMESIS:
                st.nemesis = _describe_nemesis(op)
            else:
                st.ops += 1
                c = st.counts.get(op.f)
                if c is None:
                    c = st.counts[op.f] = [0, 0, 0]
                c[_TYPE_SLOT[op.type]] += 1
        ph = self.phase
        if ph is not None:
            g = ph.gen
            if g is not None and g is not self._inert:
                if _ignores_events(g):
                    self._inert = g  # the same generator usually sees the next event too
                else:
                    ph.gen = g.update(self.test, self.ctx(op.time), op)
        return op

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
    def _next(self, w: _Worker) -> Op | Sleep | None:
        """The next thing for ``w`` to do, or None when its phase is over."""
        test = self.test
        ph = self.phase
        assert ph is not None
        while True:
            m = w.mailbox
            if m is not None:
                w.mailbox = None
                return m
            if ph.stopping or w.superseded:
                return None
            now = self.now()
            if ph.deadline is not None and now >= ph.deadline:
                self._stop(ph, "time limit")
                return None
            gen = ph.gen
            if gen is None:
                self._stop(ph, "generator exhausted", hard=False)
                return None
            res = gen.op(test, self.ctx(now))
            if res is None:
                ph.gen = None
                self._stop(ph, "generator exhausted", hard=False)
                return None
            action, gen2 = res
            if action is PENDING:
                self._wait(w, ph, now + int(_PENDING_WAIT * 1e9))
                continue
            if isinstance(action, Op):
                thread = self.thread_of.get(action.process)
                if thread is None or thread not in self.free:
                    raise GeneratorError(
                        f"generator emitted {action.f!r} for process {action.process!r}, "
                        f"which is not a free process (free threads: {sorted(map(str, self.free))}); "
                        "a generator must only use processes from ctx.free_threads"
                    )
                target = self.workers[thread]
                due = action.time
                if self.rate_gap and not target.is_nemesis and self.next_slot > due:
                    due = self.next_slot
                if due > now:
                    self._wait(w, ph, due)
                    continue
                if self.rate_gap and not target.is_nemesis:
                    # Catch up on small wake-up delays (up to 50 ms), never burst more.
                    self.next_slot = max(self.next_slot, now - 50_000_000) + int(
                        self.rate_rng.random() * self.rate_gap
                    )
                ph.gen = gen2
                self.free.discard(thread)
                self._ctx = None
                target.busy = True
                target.started = now
                op = self._record(action, now, target.node)
                target.current = op
                if target is w:
                    return op
                target.mailbox = op
                target.cond.notify()
                continue
            if isinstance(action, Sleep):
                ph.gen = gen2
                thread = self.thread_of.get(action.process, NEMESIS)
                target = self.workers[thread]
                if thread not in self.free:
                    continue
                self.free.discard(thread)
                self._ctx = None
                target.busy = True
                target.current = None
                target.started = now
                if target is w:
                    return action
                target.mailbox = action
                target.cond.notify()
                continue
            if isinstance(action, Log):
                ph.gen = gen2
                log.info("%s", action.message)
                continue
            raise GeneratorError(
                f"generator emitted {action!r}; expected an Op, PENDING, Sleep or Log"
            )

    def _wait(self, w: _Worker, ph: _Phase, until: int) -> None:
        limit = until if ph.deadline is None else min(until, ph.deadline)
        delay = (limit - self.now()) / 1e9
        if delay > 0:
            w.cond.wait(min(delay, 1.0))

    def _stop(self, ph: _Phase, reason: str, *, hard: bool = True) -> None:
        if ph.stopping and (ph.hard or not hard):
            return
        ph.stopping = True
        ph.hard = hard
        ph.stop_reason = reason
        ph.stop_at = time.monotonic()
        log.info("%s phase ending: %s", ph.name, reason)
        for x in self.workers.values():
            x.cond.notify_all()

    def _free(self, w: _Worker) -> None:
        w.busy = False
        w.current = None
        self.free.add(w.thread_id)
        self._ctx = None

    # -- the worker thread ---------------------------------------------------------------
    def _worker_loop(self, w: _Worker, ph: _Phase) -> None:
        lock = self.lock
        try:
            if not w.is_nemesis and w.client is None:
                self._open_client(w)
            item: Op | Sleep | None
            with lock:
                item = self._next(w)
            while item is not None:
                if isinstance(item, Sleep):
                    end = time.monotonic() + item.seconds
                    while not ph.hard and (left := end - time.monotonic()) > 0:
                        time.sleep(min(left, 0.1))
                    with lock:
                        if w.superseded:
                            return
                        self._free(w)
                        item = self._next(w)
                    continue
                op = item
                done = self._invoke(w, op)
                t = self.now()
                reopen = False
                with lock:
                    if w.superseded:
                        return  # the watchdog already recorded info for this op
                    self._free(w)
                    self._record(done, t)
                    if done.type == "info" and not w.is_nemesis:
                        self._retire(w)
                        reopen = True
                    else:
                        item = self._next(w)
                if reopen:
                    self._close_client(w)
                    self._open_client(w)
                    with lock:
                        item = self._next(w)
        except BaseException as e:
            log.exception("worker %s crashed", w.thread_id)
            with lock:
                if ph.error is None:
                    ph.error = e
                self._stop(ph, f"worker {w.thread_id} crashed: {type(e).__name__}: {e}")
        finally:
            with lock:
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
        with self.lock:
            self.opened.append(c)

    def _close_client(self, w: _Worker) -> None:
        c = w.client
        w.client = None
        if c is None:
            return
        with self.lock, contextlib.suppress(ValueError):
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
                fresh = _Worker(t, w.process, w.node, self.lock)
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
