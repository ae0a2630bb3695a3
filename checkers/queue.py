"""Queue checkers: nothing dequeued from nowhere, twice, or lost.

Ops: ``f="enqueue"`` with the value, ``f="dequeue"`` whose ok completion
carries the dequeued value (``None`` means the queue was empty), and
``f="drain"`` whose ok completion carries a collection of dequeued values
(the final phase that empties the queue).

:func:`queue` checks an **unordered queue** as it runs: every dequeued value
must have an enqueue (not failed) invoked before the dequeue completed, and
no value may come out more often than it went in.  Order is not checked
(use the linearizable checker with the ``fifo-queue`` model for that).

:func:`total_queue` (Jepsen ``checker/total-queue``) compares what went in
with what came out by the end, after a drain:

- ``attempt``: enqueue invoked;  ``acknowledged``: enqueue ok;
- ``ok``: acknowledged and dequeued;  ``lost``: acknowledged, never dequeued;
- ``unexpected``: dequeued, never enqueued;  ``recovered``: dequeued though
  its enqueue was ``info``/pending;  ``duplicated``: dequeued more often
  than enqueued.

Valid iff nothing is lost or unexpected, and (unless
``allow_duplicates=True``, for at-least-once queues) nothing duplicated.
Values are counted as multisets, so enqueuing the same value twice is fine.

By example::

    >>> total_queue()
    total_queue(allow_duplicates=False)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers._support import LIMIT, elements, examples, hashable, jsonable, op_json
from jepsy.checkers.core import Result

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History, Op


def _dequeued(op: Op, drain_f: str) -> list[Any]:
    """Values an ok dequeue/drain completion took out of the queue."""
    if op.f == drain_f:
        return elements(op.value) or []
    return [] if op.value is None else [hashable(op.value)]


def _multiset_examples(c: Iterable[tuple[Any, int]]) -> list[dict[str, Any]]:
    items = sorted(c, key=lambda kv: -kv[1])[:LIMIT]
    return [{"value": jsonable(v), "count": n} for v, n in items]


@dataclass(frozen=True)
class Queue:
    """Unordered-queue safety as the history goes; see the module docstring."""

    enqueue_f: str = "enqueue"
    dequeue_f: str = "dequeue"
    drain_f: str = "drain"

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        failed: set[int] = set()
        for inv, comp in history.pairs():
            if inv.f == self.enqueue_f and comp is not None and comp.is_fail:
                failed.add(inv.index)
        available: Counter[Any] = Counter()  # enqueued (maybe) minus dequeued
        enqueued = 0
        dequeued = 0
        errors: list[dict[str, Any]] = []
        error_count = 0
        for op in history:
            if not op.is_client:
                continue
            if op.f == self.enqueue_f and op.is_invoke and op.index not in failed:
                enqueued += 1
                available[hashable(op.value)] += 1
            elif op.f in (self.dequeue_f, self.drain_f) and op.is_ok:
                for v in _dequeued(op, self.drain_f):
                    dequeued += 1
                    if available[v] > 0:
                        available[v] -= 1
                        continue
                    error_count += 1
                    if len(errors) < LIMIT:
                        errors.append({"value": jsonable(v), "op": op_json(op)})
        return Result(
            valid=error_count == 0,
            details={
                "enqueue_count": enqueued,
                "dequeue_count": dequeued,
                "error_count": error_count,
                "errors": errors,
            },
        )

    def __repr__(self) -> str:
        return "queue()"


def queue(
    *, enqueue_f: str = "enqueue", dequeue_f: str = "dequeue", drain_f: str = "drain"
) -> Queue:
    """Every dequeued value was enqueued (and not dequeued already); order not checked."""
    return Queue(enqueue_f=enqueue_f, dequeue_f=dequeue_f, drain_f=drain_f)


@dataclass(frozen=True)
class TotalQueue:
    """What went in came out, exactly once; see the module docstring."""

    enqueue_f: str = "enqueue"
    dequeue_f: str = "dequeue"
    drain_f: str = "drain"
    allow_duplicates: bool = False

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        attempts: Counter[Any] = Counter()
        acked: Counter[Any] = Counter()
        out: Counter[Any] = Counter()
        for inv, comp in history.pairs():
            if not inv.is_client:
                continue
            if inv.f == self.enqueue_f:
                v = hashable(inv.value)
                attempts[v] += 1
                if comp is not None and comp.is_ok:
                    acked[v] += 1
            elif inv.f in (self.dequeue_f, self.drain_f) and comp is not None and comp.is_ok:
                for v in _dequeued(comp, self.drain_f):
                    out[v] += 1
        ok = out & acked
        lost = acked - out
        unexpected = Counter({v: n for v, n in out.items() if v not in attempts})
        duplicated = Counter(
            {v: n - attempts[v] for v, n in out.items() if v in attempts and n > attempts[v]}
        )
        recovered = (out & attempts) - acked
        details: dict[str, Any] = {
            "attempt_count": sum(attempts.values()),
            "acknowledged_count": sum(acked.values()),
            "dequeued_count": sum(out.values()),
            "ok_count": sum(ok.values()),
            "lost_count": sum(lost.values()),
            "unexpected_count": sum(unexpected.values()),
            "duplicated_count": sum(duplicated.values()),
            "recovered_count": sum(recovered.values()),
            "lost": examples(lost.elements(), LIMIT),
            "unexpected": examples(unexpected.elements(), LIMIT),
            "duplicated": _multiset_examples(duplicated.items()),
            "recovered": examples(recovered.elements(), LIMIT),
        }
        valid = not lost and not unexpected and (self.allow_duplicates or not duplicated)
        return Result(valid=valid, details=details)

    def __repr__(self) -> str:
        return f"total_queue(allow_duplicates={self.allow_duplicates!r})"


def total_queue(
    *,
    allow_duplicates: bool = False,
    enqueue_f: str = "enqueue",
    dequeue_f: str = "dequeue",
    drain_f: str = "drain",
) -> TotalQueue:
    """Lost, unexpected and duplicated queue elements (Jepsen ``checker/total-queue``)."""
    return TotalQueue(
        enqueue_f=enqueue_f,
        dequeue_f=dequeue_f,
        drain_f=drain_f,
        allow_duplicates=allow_duplicates,
    )
