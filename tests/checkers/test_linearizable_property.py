"""Property tests: histories recorded from real linearizable objects under threads.

A shared in-memory register, FIFO queue or set, guarded by a lock (so it is
linearizable), is driven by real threads with random delays around each
call.  Some calls time out (recorded ``info``, whether or not they took
effect; the process is retired as in Jepsen) and some fail (recorded
``fail``, certainly without effect).  Such histories must always be judged
linearizable; splicing in one impossible observation must make them not.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jepsy.checkers.linearizable import linearizable
from jepsy.history import History

Apply = Callable[[str, Any], tuple[bool, Any]]
"""Runs one op on the shared object under its lock: (took effect, result value)."""


class Recorder:
    """Runs ``threads`` workers doing ``ops`` ops each against ``apply``, recording a history."""

    def __init__(self, seed: int, threads: int, p_info: float, p_fail: float) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.seed = seed
        self.threads = threads
        self.p_info = p_info
        self.p_fail = p_fail

    def record(self, **event: Any) -> None:
        with self.lock:
            self.events.append(event)

    def run(
        self, ops: int, choose: Callable[[random.Random], tuple[str, Any]], apply: Apply
    ) -> None:
        def worker(t: int) -> None:
            rng = random.Random(self.seed * 1000 + t)
            process = t
            for _ in range(ops):
                f, v = choose(rng)
                self.record(process=process, type="invoke", f=f, value=v)
                time.sleep(rng.random() * 2e-4)
                r = rng.random()
                if r < self.p_fail:
                    # Known not to have happened (e.g. rejected before reaching the object).
                    self.record(process=process, type="fail", f=f, value=v)
                    continue
                timeout = r < self.p_fail + self.p_info
                happened, result = (False, None)
                if not timeout or rng.random() < 0.5:
                    happened, result = apply(f, v)
                time.sleep(rng.random() * 2e-4)
                if timeout:
                    self.record(process=process, type="info", f=f, value=v)
                    process += self.threads  # a retired process never invokes again
                elif not happened:
                    self.record(process=process, type="fail", f=f, value=v)
                else:
                    self.record(process=process, type="ok", f=f, value=result)

        ts = [threading.Thread(target=worker, args=(t,)) for t in range(self.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in ts)


def _splice_end(events: list[dict[str, Any]], f: str, value: Any) -> list[dict[str, Any]]:
    """The history plus one op invoked after everything else completed."""
    p = 10_000
    return [
        *events,
        {"process": p, "type": "invoke", "f": f, "value": None},
        {"process": p, "type": "ok", "f": f, "value": value},
    ]


SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
PARAMS = dict(
    seed=st.integers(0, 10**6),
    threads=st.integers(1, 5),
    ops=st.integers(1, 25),
    p_info=st.sampled_from([0.0, 0.1, 0.3]),
    p_fail=st.sampled_from([0.0, 0.1]),
)


@SETTINGS
@given(**PARAMS)
def test_register_histories(
    seed: int, threads: int, ops: int, p_info: float, p_fail: float
) -> None:
    state: list[Any] = [None]
    counter = iter(range(1, 10**9))
    lock = threading.Lock()
    numbers = threading.Lock()

    def choose(rng: random.Random) -> tuple[str, Any]:
        with numbers:
            n = next(counter)  # unique written values
        r = rng.random()
        if r < 0.4:
            return "read", None
        if r < 0.8:
            return "write", n
        return "cas", [rng.choice([None, n - 1, n - 2, n - 3]), n]

    def apply(f: str, v: Any) -> tuple[bool, Any]:
        with lock:
            if f == "read":
                return True, state[0]
            if f == "write":
                state[0] = v
                return True, v
            if state[0] == v[0]:
                state[0] = v[1]
                return True, v
            return False, v

    rec = Recorder(seed, threads, p_info, p_fail)
    rec.run(ops, choose, apply)
    h = History.from_dicts(rec.events)
    assert linearizable("cas-register").check(None, h, {}).valid is True  # type: ignore[arg-type]

    # A read, after everything, of a value certainly overwritten: some ok write W of v,
    # then an ok write or ok cas invoked after W completed.  Values are unique.
    pos = {id(e): i for i, e in enumerate(rec.events)}
    oks = [e for e in rec.events if e["type"] == "ok" and e["f"] in ("write", "cas")]
    for w in oks:
        if w["f"] != "write":
            continue
        later = [
            e
            for e in oks
            if _invoke_pos(rec.events, e, pos) > pos[id(w)] and e["value"] != w["value"]
        ]
        if later:
            bad = History.from_dicts(_splice_end(rec.events, "read", w["value"]))
            r = linearizable("cas-register").check(None, bad, {})  # type: ignore[arg-type]
            assert r.valid is False
            assert r.details["op"]["value"] == w["value"]
            break


def _invoke_pos(events: list[dict[str, Any]], comp: dict[str, Any], pos: dict[int, int]) -> int:
    i = pos[id(comp)]
    for j in range(i - 1, -1, -1):
        e = events[j]
        if e["process"] == comp["process"] and e["type"] == "invoke":
            return j
    raise AssertionError("completion without invocation")


@SETTINGS
@given(**PARAMS)
def test_fifo_queue_histories(
    seed: int, threads: int, ops: int, p_info: float, p_fail: float
) -> None:
    q: deque[int] = deque()
    lock = threading.Lock()
    numbers = threading.Lock()
    counter = iter(range(1, 10**9))

    def choose(rng: random.Random) -> tuple[str, Any]:
        if rng.random() < 0.5:
            with numbers:
                return "enqueue", next(counter)
        return "dequeue", None

    def apply(f: str, v: Any) -> tuple[bool, Any]:
        with lock:
            if f == "enqueue":
                q.append(v)
                return True, v
            return True, (q.popleft() if q else None)

    rec = Recorder(seed, threads, p_info, p_fail)
    rec.run(ops, choose, apply)
    h = History.from_dicts(rec.events)
    assert linearizable("fifo-queue").check(None, h, {}).valid is True  # type: ignore[arg-type]
    # Dequeuing a value nobody enqueued is impossible.
    bad = History.from_dicts(_splice_end(rec.events, "dequeue", -1))
    assert linearizable("fifo-queue").check(None, bad, {}).valid is False  # type: ignore[arg-type]


@SETTINGS
@given(**PARAMS)
def test_unordered_queue_histories(
    seed: int, threads: int, ops: int, p_info: float, p_fail: float
) -> None:
    bag: list[int] = []
    lock = threading.Lock()
    numbers = threading.Lock()
    counter = iter(range(1, 10**9))

    def choose(rng: random.Random) -> tuple[str, Any]:
        if rng.random() < 0.5:
            with numbers:
                return "enqueue", next(counter)
        return "dequeue", None

    def apply(f: str, v: Any) -> tuple[bool, Any]:
        with lock:
            if f == "enqueue":
                bag.append(v)
                return True, v
            if not bag:
                return True, None
            return True, bag.pop(random.Random(len(bag)).randrange(len(bag)))

    rec = Recorder(seed, threads, p_info, p_fail)
    rec.run(ops, choose, apply)
    h = History.from_dicts(rec.events)
    assert linearizable("unordered-queue").check(None, h, {}).valid is True  # type: ignore[arg-type]
    # Dequeuing an element a second time is impossible (each was enqueued once).
    got = [e["value"] for e in rec.events if e["type"] == "ok" and e["f"] == "dequeue"]
    twice = next((v for v in got if v is not None), -1)
    bad = History.from_dicts(_splice_end(rec.events, "dequeue", twice))
    assert linearizable("unordered-queue").check(None, bad, {}).valid is False  # type: ignore[arg-type]


@SETTINGS
@given(**PARAMS)
def test_set_histories(seed: int, threads: int, ops: int, p_info: float, p_fail: float) -> None:
    elements: set[int] = set()
    lock = threading.Lock()
    numbers = threading.Lock()
    counter = iter(range(1, 10**9))

    def choose(rng: random.Random) -> tuple[str, Any]:
        if rng.random() < 0.6:
            with numbers:
                return "add", next(counter)
        return "read", None

    def apply(f: str, v: Any) -> tuple[bool, Any]:
        with lock:
            if f == "add":
                elements.add(v)
                return True, v
            return True, sorted(elements)

    rec = Recorder(seed, threads, p_info, p_fail)
    rec.run(ops, choose, apply)
    h = History.from_dicts(rec.events)
    assert linearizable("set").check(None, h, {}).valid is True  # type: ignore[arg-type]
    # A final read missing an element whose add completed is impossible.
    added = [e["value"] for e in rec.events if e["type"] == "ok" and e["f"] == "add"]
    if added:
        with lock:
            final = sorted(elements - {added[0]})
        bad = History.from_dicts(_splice_end(rec.events, "read", final))
        assert linearizable("set").check(None, bad, {}).valid is False  # type: ignore[arg-type]
