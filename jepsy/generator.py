"""Generators: immutable values that say what operation to do next.

(The combinators are being written; this header pins the protocol that the
runner and every workload/nemesis build on.)

The protocol follows ``jepsen.generator``:

- ``gen.op(test, ctx)`` returns ``None`` when the generator is exhausted, or
  a pair ``(x, gen2)`` where ``gen2`` is the generator to use next time and
  ``x`` is one of

  * an :class:`~jepsy.history.Op` of type ``invoke`` with ``process`` set to
    a *free* process of ``ctx`` and ``time`` (ns since test start) no earlier
    than ``ctx.time``; the interpreter waits until ``time`` then runs it;
  * :data:`PENDING`: nothing to do right now, ask again after the next event;
  * a :class:`Sleep` (the emitting thread sleeps) or :class:`Log` (a line in
    jepsy.log) action.

- ``gen.update(test, ctx, event)`` returns the generator after observing an
  event (every invoke and every completion the interpreter records).

Generators never mutate themselves: calling ``op`` twice with the same
arguments gives the same answer.  Randomness comes only from ``ctx.rng``
(seeded from the test's seed), so a run is deterministic given the seed and
the order of events, and :func:`simulate` is deterministic outright.

Plain values are coerced by :func:`lift`: a ``dict`` is one op template
(``{"f": "read"}`` -> one invoke), a list runs its elements in order, a
function ``(test, ctx) -> op-like`` is called each time, ``None`` is empty.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, runtime_checkable

from jepsy.history import NEMESIS, Op, Process

if TYPE_CHECKING:
    from jepsy.core import Test

Thread: TypeAlias = int | str
"""A worker thread: ``0 .. concurrency-1`` for clients, ``"nemesis"`` for the nemesis."""


class _Pending:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PENDING"


PENDING: Final = _Pending()


@dataclass(frozen=True, slots=True)
class Sleep:
    """Ask the emitting thread to sleep ``seconds`` (recorded in no history)."""

    seconds: float
    process: Process = NEMESIS


@dataclass(frozen=True, slots=True)
class Log:
    """Write ``message`` to the run log."""

    message: str
    process: Process = NEMESIS


Action: TypeAlias = Op | _Pending | Sleep | Log


@dataclass(frozen=True, kw_only=True)
class Context:
    """What a generator may know about the run at this instant.

    ``time``: ns since the test started.  ``free_threads``: threads with no
    operation in flight.  ``workers``: thread -> its current process (a
    client thread's process grows by ``concurrency`` each time it crashes).
    ``rng``: the run's seeded random source (the only randomness allowed)."""

    time: int
    free_threads: frozenset[Thread]
    workers: Mapping[Thread, Process]
    rng: random.Random = field(compare=False, repr=False)


@runtime_checkable
class Generator(Protocol):
    def op(self, test: Test, ctx: Context) -> tuple[Action, Generator | None] | None: ...

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None: ...


GenLike: TypeAlias = "Generator | Mapping[str, Any] | list[Any] | tuple[Any, ...] | Any | None"
