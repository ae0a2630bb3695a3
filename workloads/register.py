"""The ``register`` workload: independent compare-and-set registers.

Like Jepsen's ``independent`` registers: client threads are grouped
``threads_per_key`` to a group; each group works on one key at a time with
a random mix of reads, writes and compare-and-sets, and moves to a fresh key
after ``ops_per_key`` ops.  Many short per-key histories keep the
linearizability check fast (each key is checked alone), while several
threads per key keep it concurrent enough to catch stale reads and lost
writes.

Op shapes (values are ``[key, v]``)::

    read   invoke [k, None]          -> ok [k, v]        (v None before any write)
    write  invoke [k, v]             -> ok [k, v]
    cas    invoke [k, [old, new]]    -> ok, or fail when the register did not hold old

Values are small ints (0-4) so compare-and-sets often succeed.  Checked with
``linearizable("cas-register", independent=True)`` plus stats, perf and
timeline.

By example::

    >>> from jepsy.generator import simulate
    >>> ops = simulate(limit(4, IndependentRegisters(threads_per_key=2, ops_per_key=2)))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers.core import Checker, compose
from jepsy.generator import (
    PENDING,
    Context,
    Generator,
    fast_constructor,
    ignore_event,
    lowest_free_client,
    make_op,
)
from jepsy.workloads.core import Workload, int_option, register_workload

if TYPE_CHECKING:
    from jepsy.core import Test

VALUES = 5


def _choice(ctx: Context) -> tuple[str, Any]:
    rnd = ctx.rng.random  # random() is several times cheaper than randrange()
    r = rnd() * 3
    if r < 1:
        return ("read", None)
    if r < 2:
        return ("write", int(rnd() * VALUES))
    return ("cas", [int(rnd() * VALUES), int(rnd() * VALUES)])


@dataclass(frozen=True, slots=True)
class IndependentRegisters:
    """Endless read/write/cas ops on rotating keys, ``threads_per_key`` client
    threads per key, a new key after ``ops_per_key`` ops (a pure value).

    The op handed out depends only on this value and the context's free
    threads (the random choice for the next op is drawn into the next state)."""

    threads_per_key: int = 5
    ops_per_key: int = 100
    groups: tuple[tuple[int, int], ...] = ()  # per group: (current key, ops issued on it)
    next_key: int = 0
    nxt: tuple[str, Any] | None = None

    def op(self, test: Test, ctx: Context) -> tuple[Any, Generator | None] | None:
        best = lowest_free_client(ctx)
        if best < 0:
            return (PENDING, self)
        g = best // self.threads_per_key
        groups = list(self.groups)
        while len(groups) <= g:
            groups.append((-1, 0))
        k, n = groups[g]
        nk = self.next_key
        if k < 0 or n >= self.ops_per_key:
            k, n = nk, 0
            nk += 1
        groups[g] = (k, n + 1)
        f, v = self.nxt if self.nxt is not None else _choice(ctx)
        op = make_op(-1, ctx.time, ctx.workers[best], "invoke", f, [k, v], None, None, None)
        return (
            op,
            _make(self.threads_per_key, self.ops_per_key, tuple(groups), nk, _choice(ctx)),
        )

    # Events change nothing here; wrappers such as clients() see this function and
    # skip building a context just to hear ``self`` back.
    update = ignore_event

    def __repr__(self) -> str:
        return (
            f"IndependentRegisters(threads_per_key={self.threads_per_key}, "
            f"ops_per_key={self.ops_per_key})"
        )


_make = fast_constructor(IndependentRegisters)


def generator(opts: Mapping[str, Any]) -> Generator:
    return IndependentRegisters(
        threads_per_key=int_option(opts, "threads_per_key", 5),
        ops_per_key=int_option(opts, "ops_per_key", 100),
    )


def extra_checkers() -> dict[str, Checker]:
    """stats, perf and timeline (reports are checkers too)."""
    from jepsy.checkers.perf import perf
    from jepsy.checkers.stats import stats
    from jepsy.checkers.timeline import timeline

    return {"stats": stats(), "perf": perf(), "timeline": timeline()}


def checker(opts: Mapping[str, Any]) -> Checker:
    from jepsy.checkers.linearizable import linearizable

    return compose(
        {"linearizable": linearizable("cas-register", independent=True), **extra_checkers()}
    )


WORKLOAD = register_workload(
    Workload(
        name="register",
        doc=(
            "Independent compare-and-set registers: groups of threads do reads, writes and "
            "CAS on one key at a time, rotating keys; checked for linearizability per key."
        ),
        ops={
            "read": "invoke [k, None] -> ok [k, v]",
            "write": "invoke [k, v] -> ok [k, v]",
            "cas": "invoke [k, [old, new]] -> ok | fail (did not hold old)",
        },
        generator=generator,
        checker=checker,
        options={
            "threads_per_key": "client threads sharing one key (default 5)",
            "ops_per_key": "ops on a key before its group moves to a new key (default 100)",
        },
    )
)
