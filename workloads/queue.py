"""The ``queue`` workload: enqueue unique integers, dequeue, drain at the end.

Clients enqueue 0, 1, 2, ... and dequeue at random; after the faults are
healed one client drains what is left.  Judged by Jepsen's ``total-queue``
checker: every acknowledged enqueue must come out exactly once (``lost``,
``duplicated`` and ``unexpected`` elements make the history invalid), plus
the running ``queue`` check that nothing is dequeued before it was enqueued.

Op shapes::

    enqueue  invoke x      -> ok x
    dequeue  invoke None   -> ok x | fail (empty)
    drain    invoke None   -> ok [x, ...]      (final phase only)

By example::

    >>> QueueOps()
    QueueOps(next=0, dequeue_fraction=0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy import generator as gen
from jepsy.checkers.core import Checker, compose
from jepsy.generator import PENDING, Context, Generator, lowest_free_client
from jepsy.history import Op
from jepsy.workloads.core import Workload, register_workload

if TYPE_CHECKING:
    from jepsy.core import Test


@dataclass(frozen=True, slots=True)
class QueueOps:
    """Endless ``enqueue`` of 0, 1, 2, ... and ``dequeue`` ops (a pure value)."""

    next: int = 0
    dequeue_fraction: float = 0.5

    def op(self, test: Test, ctx: Context) -> tuple[Any, Generator | None] | None:
        best = lowest_free_client(ctx)
        if best < 0:
            return (PENDING, self)
        p = ctx.workers[best]
        if ctx.rng.random() < self.dequeue_fraction:
            return (Op(process=p, type="invoke", f="dequeue", value=None, time=ctx.time), self)
        op = Op(process=p, type="invoke", f="enqueue", value=self.next, time=ctx.time)
        return (op, QueueOps(self.next + 1, self.dequeue_fraction))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        return self

    def __repr__(self) -> str:
        return f"QueueOps(next={self.next}, dequeue_fraction={self.dequeue_fraction})"


def generator(opts: Mapping[str, Any]) -> Generator:
    return QueueOps()


def final_generator(opts: Mapping[str, Any]) -> Generator:
    return gen.clients(gen.once({"f": "drain", "value": None}))


def checker(opts: Mapping[str, Any]) -> Checker:
    from jepsy.checkers.queue import queue, total_queue
    from jepsy.workloads.register import extra_checkers

    return compose({"total-queue": total_queue(), "queue": queue(), **extra_checkers()})


WORKLOAD = register_workload(
    Workload(
        name="queue",
        doc=(
            "Enqueue unique integers and dequeue concurrently, drain after healing; every "
            "acknowledged element must come out exactly once (Jepsen's total-queue)."
        ),
        ops={
            "enqueue": "invoke x -> ok x",
            "dequeue": "invoke None -> ok x | fail (empty)",
            "drain": "invoke None -> ok [x, ...] (final phase)",
        },
        generator=generator,
        final_generator=final_generator,
        checker=checker,
    )
)
