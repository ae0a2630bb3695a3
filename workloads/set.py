"""The ``set`` workload: add unique integers, then read the whole set once.

Every client op adds a fresh integer (0, 1, 2, ...); after the faults are
healed one client reads the set.  An element whose add was acknowledged but
which the final read lacks was *lost* (Jepsen's ``set`` checker).

Op shapes::

    add   invoke x      -> ok x
    read  invoke None   -> ok [x, ...]     (final phase only)

By example::

    >>> g = Adds()
    >>> g
    Adds(start=0)
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
class Adds:
    """Endless ``add`` ops of 0, 1, 2, ... on the lowest free client thread (a pure value)."""

    start: int = 0

    def op(self, test: Test, ctx: Context) -> tuple[Any, Generator | None] | None:
        best = lowest_free_client(ctx)
        if best < 0:
            return (PENDING, self)
        op = Op(process=ctx.workers[best], type="invoke", f="add", value=self.start, time=ctx.time)
        return (op, Adds(self.start + 1))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        return self

    def __repr__(self) -> str:
        return f"Adds(start={self.start})"


def generator(opts: Mapping[str, Any]) -> Generator:
    return Adds()


def final_generator(opts: Mapping[str, Any]) -> Generator:
    return gen.clients(gen.once({"f": "read", "value": None}))


def checker(opts: Mapping[str, Any]) -> Checker:
    from jepsy.checkers.set import set_checker
    from jepsy.workloads.register import extra_checkers

    return compose({"set": set_checker(), **extra_checkers()})


WORKLOAD = register_workload(
    Workload(
        name="set",
        doc=(
            "Adds unique integers, then one final read after healing; every acknowledged "
            "add must be in the final read (Jepsen's set)."
        ),
        ops={"add": "invoke x -> ok x", "read": "invoke None -> ok [x, ...] (final phase)"},
        generator=generator,
        final_generator=final_generator,
        checker=checker,
    )
)
