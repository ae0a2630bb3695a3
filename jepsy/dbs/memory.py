"""``--db memory``: an in-process key-value store, to try jepsy without root.

All "nodes" (``n1`` .. ``nN``) are names for one shared store living in the
jepsy process; clients reach it through a real :class:`~jepsy.client.Client`
that goes through a lock, optional latency, and per-node up/down/paused
state, so the runner, the nemesis (``kill``, ``pause``), the store and the
checkers all run for real, in seconds, on any machine.

Without bugs the store is linearizable.  ``--memory-bug`` (repeatable, or
comma-separated) plants one on purpose so you can watch jepsy catch it:

``stale-reads``
    Reads are sometimes (``memory_bug_p``, default 0.2) served from a lagging
    replica: they return the value *before* the key's latest write (register)
    or the list without its last append (list-append).  The linearizability
    and Elle checkers report them.
``lost-writes``
    Acknowledged writes, set adds, counter adds, enqueues and list appends
    are sometimes dropped: the client hears ``ok`` but nothing changes.
    Caught by every workload's checker (register, set, counter, queue,
    list-append).
``non-atomic-cas``
    Compare-and-set reads and writes in two steps with the lock released in
    between (a race window), so two CAS ops can both succeed from one value.

Other options (``-o key=value``): ``memory_bug_p`` (probability of each bug
per op), ``memory_latency`` (maximum random latency per op, seconds,
default 0).

By example::

    >>> from jepsy.dbs.memory import MemoryStore
    >>> s = MemoryStore()
    >>> s.write("k", 1); s.cas("k", 1, 2), s.read("k")
    (True, 2)
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jepsy.dbs import Suite, register_suite
from jepsy.errors import ClientError, ConfigError
from jepsy.generator import make_op
from jepsy.history import Op, OpType

if TYPE_CHECKING:
    from jepsy.client import Client
    from jepsy.core import Test

BUGS: Mapping[str, str] = {
    "stale-reads": "reads sometimes return the value before the key's latest write",
    "lost-writes": "acknowledged writes, adds, enqueues and appends are sometimes dropped",
    "non-atomic-cas": "compare-and-set checks and writes in two steps (a race window)",
}
DEFAULT_BUG_P = 0.2

_EMPTY: Any = object()


class MemoryStore:
    """The shared store: registers, sets and counters under one lock.

    ``bugs`` is a set of :data:`BUGS` names, ``bug_p`` their probability per
    op, ``seed`` seeds the bug dice."""

    def __init__(
        self, *, bugs: Iterable[str] = (), bug_p: float = DEFAULT_BUG_P, seed: int = 0
    ) -> None:
        self.bugs = frozenset(bugs)
        for b in self.bugs:
            if b not in BUGS:
                raise ConfigError(
                    f"unknown memory bug {b!r}; known bugs: {', '.join(sorted(BUGS))}"
                )
        if not 0.0 <= bug_p <= 1.0:
            raise ConfigError(f"memory_bug_p must be between 0 and 1; got {bug_p!r}")
        self.bug_p = bug_p
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._values: dict[Any, Any] = {}
        self._previous: dict[Any, Any] = {}
        self._sets: dict[Any, set[Any]] = {}
        self._queues: dict[Any, deque[Any]] = {}
        self._lists: dict[Any, list[Any]] = {}
        self._stale = "stale-reads" in self.bugs
        self._lost = "lost-writes" in self.bugs
        self._racy_cas = "non-atomic-cas" in self.bugs

    def _dice(self) -> bool:
        return self._rng.random() < self.bug_p

    def reset(self) -> None:
        with self._lock:
            self._values.clear()
            self._previous.clear()
            self._sets.clear()
            self._queues.clear()
            self._lists.clear()

    # -- registers ----------------------------------------------------
    def read(self, key: Any) -> Any:
        """The value of ``key`` (None when never written)."""
        with self._lock:
            if self._stale and key in self._previous and self._dice():
                return self._previous[key]
            return self._values.get(key)

    def write(self, key: Any, value: Any) -> None:
        with self._lock:
            if self._lost and self._dice():
                return
            self._previous[key] = self._values.get(key)
            self._values[key] = value

    def cas(self, key: Any, old: Any, new: Any) -> bool:
        """Set ``key`` to ``new`` if it holds ``old``; whether it did."""
        if self._racy_cas:
            with self._lock:
                cur = self._values.get(key)
            if cur != old:
                return False
            time.sleep(0)  # let another thread in: the bug's race window
            with self._lock:
                if self._dice():
                    time.sleep(0.0005)
                self._previous[key] = self._values.get(key)
                self._values[key] = new
            return True
        with self._lock:
            cur = self._values.get(key)
            if cur != old:
                return False
            if self._lost and self._dice():
                return True
            self._previous[key] = cur
            self._values[key] = new
            return True

    def add(self, key: Any, delta: int) -> None:
        """Counter increment."""
        with self._lock:
            if self._lost and self._dice():
                return
            self._values[key] = (self._values.get(key) or 0) + delta

    # -- queues and list transactions ---------------------------------------
    def enqueue(self, key: Any, element: Any) -> None:
        with self._lock:
            if self._lost and self._dice():
                return
            self._queues.setdefault(key, deque()).append(element)

    def dequeue(self, key: Any) -> Any:
        """The oldest element, or ``_EMPTY``."""
        with self._lock:
            q = self._queues.get(key)
            return q.popleft() if q else _EMPTY

    def drain(self, key: Any) -> list[Any]:
        with self._lock:
            q = self._queues.pop(key, None)
            return list(q or ())

    def txn(self, mops: list[Any]) -> list[Any]:
        """Run ``[["append", k, v] | ["r", k, None], ...]`` atomically; reads filled in.

        With ``lost-writes`` a transaction's appends are sometimes dropped whole
        (the commit is still acknowledged); ``stale-reads`` sometimes serves a
        read from the list as it was before the key's latest append."""
        out: list[Any] = []
        with self._lock:
            lose = self._lost and self._dice()
            for f, k, v in mops:
                lst = self._lists.setdefault(k, [])
                if f == "append":
                    if not lose:
                        lst.append(v)
                    out.append([f, k, v])
                elif self._stale and lst and self._dice():
                    out.append([f, k, lst[:-1]])
                else:
                    out.append([f, k, list(lst)])
        return out

    # -- sets -----------------------------------------------------------
    def set_add(self, key: Any, element: Any) -> None:
        with self._lock:
            if self._lost and self._dice():
                return
            self._sets.setdefault(key, set()).add(element)

    def set_read(self, key: Any) -> list[Any]:
        with self._lock:
            return sorted(self._sets.get(key, ()))


class NodeDown(ClientError):
    """The node is killed: connection refused before anything was sent (definite)."""


class MemoryDB:
    """The DB for ``--db memory``: one :class:`MemoryStore` for every node.

    Killable (a killed node refuses connections: definite ``fail``) and
    Pausable (a paused node stalls calls until resumed or the call's timeout,
    then the runner records ``info``)."""

    def __init__(
        self,
        *,
        bugs: Iterable[str] = (),
        bug_p: float = DEFAULT_BUG_P,
        latency: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.store = MemoryStore(bugs=bugs, bug_p=bug_p, seed=seed)
        if latency < 0:
            raise ConfigError(f"memory_latency must be >= 0 seconds; got {latency!r}")
        self.latency = latency
        self._down: set[str] = set()
        self._running = threading.Event()
        self._running.set()
        self._paused: dict[str, threading.Event] = {}
        self._state_lock = threading.Lock()

    # -- DB ---------------------------------------------------------------
    def setup(self, test: Test, node: str) -> None:
        with self._state_lock:
            self._down.discard(node)
            ev = self._paused.pop(node, None)
        if ev is not None:
            ev.set()

    def teardown(self, test: Test, node: str) -> None:
        self.setup(test, node)
        self.store.reset()

    # -- Killable / Pausable ----------------------------------------------
    def start(self, test: Test, node: str) -> None:
        with self._state_lock:
            self._down.discard(node)

    def kill(self, test: Test, node: str) -> None:
        with self._state_lock:
            self._down.add(node)

    def pause(self, test: Test, node: str) -> None:
        with self._state_lock:
            self._paused.setdefault(node, threading.Event())

    def resume(self, test: Test, node: str) -> None:
        with self._state_lock:
            ev = self._paused.pop(node, None)
        if ev is not None:
            ev.set()

    def gate(self, node: str, timeout: float) -> None:
        """Called by clients before each op: refuse on a down node, stall on a paused one."""
        if node in self._down:
            raise NodeDown(f"connection refused: memory node {node} is killed")
        ev = self._paused.get(node)
        if ev is not None:
            ev.wait(timeout)
        if self.latency:
            time.sleep(random.random() * self.latency)

    def __repr__(self) -> str:
        return f"MemoryDB(bugs={sorted(self.store.bugs)!r}, bug_p={self.store.bug_p!r})"


class MemoryClient:
    """A client of :class:`MemoryDB` for the register, set, counter, queue and
    list-append workloads.

    Op shapes: register ``read [k, None] -> [k, v]``, ``write [k, v]``,
    ``cas [k, [old, new]]`` (``fail`` when the compare fails); set ``add x``,
    ``read None -> [x, ...]``; counter ``add d``, ``read None -> n``; queue
    ``enqueue x``, ``dequeue -> x`` (``fail`` when empty), ``drain -> [x ...]``;
    list-append ``txn [[append, k, v] | [r, k, None] ...]`` (atomic)."""

    def __init__(self, workload: str, *, node: str | None = None, db: MemoryDB | None = None):
        self.workload = workload
        self.node = node
        self._db = db

    def open(self, test: Test, node: str) -> MemoryClient:
        db = test.db
        if not isinstance(db, MemoryDB):
            raise ConfigError(
                f"the memory client needs the memory db; the test's db is {db!r} (use --db memory)"
            )
        return MemoryClient(self.workload, node=node, db=db)

    def setup(self, test: Test) -> None:
        pass

    def invoke(self, test: Test, op: Op) -> Op:
        db = self._db
        assert db is not None and self.node is not None, "invoke on an unopened MemoryClient"
        if db._down or db._paused or db.latency:  # else gate() has nothing to do
            db.gate(self.node, test.op_timeout)
        store = db.store
        f = op.f
        w = self.workload
        typ: OpType = "ok"
        value = op.value
        if w == "register":
            k, v = value
            if f == "read":
                value = [k, store.read(k)]
            elif f == "write":
                store.write(k, v)
            elif f == "cas":
                if not store.cas(k, v[0], v[1]):
                    typ = "fail"
            else:
                return _unknown(op, w)
        elif w == "set":
            if f == "add":
                store.set_add("set", value)
            elif f == "read":
                value = store.set_read("set")
            else:
                return _unknown(op, w)
        elif w == "queue":
            if f == "enqueue":
                store.enqueue("queue", value)
            elif f == "dequeue":
                value = store.dequeue("queue")
                if value is _EMPTY:
                    return op.replace(type="fail", error="empty")
            elif f == "drain":
                value = store.drain("queue")
            else:
                return _unknown(op, w)
        elif w == "list-append":
            if f != "txn":
                return _unknown(op, w)
            value = store.txn(value)
        elif w == "counter":
            if f == "add":
                store.add("counter", value)
            elif f == "read":
                value = store.read("counter") or 0
            else:
                return _unknown(op, w)
        else:
            return _unknown(op, w)
        # Built directly: cheaper than op.replace() on the recording hot path.
        return make_op(op.index, op.time, op.process, typ, f, value, op.node, None, op.extra)

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        pass

    def __repr__(self) -> str:
        return f"MemoryClient({self.workload!r})"


def _unknown(op: Op, workload: str) -> Op:
    return op.replace(
        type="fail", error=f"memory db: unknown op {op.f!r} for workload {workload!r}"
    )


def _bugs(opts: Mapping[str, Any]) -> list[str]:
    raw = opts.get("memory_bug") or ()
    if isinstance(raw, str):
        raw = [raw]
    out: list[str] = []
    for item in raw:
        out.extend(b.strip() for b in str(item).split(",") if b.strip())
    return out


def make_db(opts: Mapping[str, Any]) -> MemoryDB:
    try:
        bug_p = float(opts.get("memory_bug_p", DEFAULT_BUG_P))
        latency = float(opts.get("memory_latency", 0.0))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"memory_bug_p and memory_latency must be numbers: {e}") from None
    return MemoryDB(bugs=_bugs(opts), bug_p=bug_p, latency=latency, seed=int(opts.get("seed", 0)))


WORKLOADS: frozenset[str] = frozenset({"register", "set", "counter", "queue", "list-append"})


def make_client(workload: str, opts: Mapping[str, Any]) -> Client:
    if workload not in WORKLOADS:
        raise ConfigError(
            f"the memory db supports workloads {', '.join(sorted(WORKLOADS))}; got {workload!r}"
        )
    return MemoryClient(workload)


def default_nodes(n: int = 5) -> Sequence[str]:
    return tuple(f"n{i}" for i in range(1, n + 1))


SUITE = register_suite(
    Suite(
        name="memory",
        doc=(
            "An in-process linearizable key-value store shared by all nodes (names only); "
            "no root, no daemons. Killable and pausable. Plant bugs with --memory-bug."
        ),
        workloads=WORKLOADS,
        make_db=make_db,
        make_client=make_client,
        needs_remote=False,
        options={
            "memory_bug": "bugs to plant: " + "; ".join(f"{k}: {v}" for k, v in BUGS.items()),
            "memory_bug_p": f"probability of a planted bug per op (default {DEFAULT_BUG_P})",
            "memory_latency": "maximum random latency per op in seconds (default 0)",
        },
    )
)
