"""The ``counter`` workload: concurrent increments and reads of one counter.

Clients add small positive deltas (1-5) and read the count; after the faults
are healed one client reads it once more.  Every ok read must lie between
what the acknowledged adds force and what all possibly-applied adds allow
(Jepsen's ``counter`` checker): a read below the lower bound means
acknowledged increments were lost, above the upper bound that increments
were applied twice or invented.

Op shapes::

    add   invoke d      -> ok d | fail (certainly not applied) | info
    read  invoke None   -> ok n

By example::

    >>> CounterOps()
    CounterOps(read_fraction=0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy import generator as gen
from jepsy.checkers.core import Checker, compose
from jepsy.errors import ConfigError
from jepsy.generator import PENDING, Context, Generator, lowest_free_client
from jepsy.history import Op
from jepsy.workloads.core import Workload, register_workload

if TYPE_CHECKING:
    from jepsy.core import Test

MAX_DELTA = 5


@dataclass(frozen=True, slots=True)
class CounterOps:
    """Endless ``add`` (delta 1..5) and ``read`` ops, reads with probability
    ``read_fraction`` (a pure value; randomness from ``ctx.rng``)."""

    read_fraction: float = 0.5

    def op(self, test: Test, ctx: Context) -> tuple[Any, Generator | None] | None:
        t = lowest_free_client(ctx)
        if t < 0:
            return (PENDING, self)
        rng = ctx.rng
        if rng.random() < self.read_fraction:
            f, v = "read", None
        else:
            f, v = "add", rng.randint(1, MAX_DELTA)
        return (Op(process=ctx.workers[t], type="invoke", f=f, value=v, time=ctx.time), self)

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        return self

    def __repr__(self) -> str:
        return f"CounterOps(read_fraction={self.read_fraction})"


def _fraction(opts: Mapping[str, Any]) -> float:
    raw = opts.get("read_fraction", 0.5)
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"option read_fraction must be a number; got {raw!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ConfigError(f"option read_fraction must be between 0 and 1; got {v}")
    return v


def generator(opts: Mapping[str, Any]) -> Generator:
    return CounterOps(read_fraction=_fraction(opts))


def final_generator(opts: Mapping[str, Any]) -> Generator:
    return gen.clients(gen.once({"f": "read", "value": None}))


def checker(opts: Mapping[str, Any]) -> Checker:
    from jepsy.checkers.counter import counter
    from jepsy.workloads.register import extra_checkers

    return compose({"counter": counter(), **extra_checkers()})


WORKLOAD = register_workload(
    Workload(
        name="counter",
        doc=(
            "Concurrent increments (1-5) and reads of one counter, a final read after "
            "healing; every read must lie within the bounds the adds allow."
        ),
        ops={"add": "invoke d -> ok d", "read": "invoke None -> ok n"},
        generator=generator,
        final_generator=final_generator,
        checker=checker,
        options={"read_fraction": "share of reads among the ops (default 0.5)"},
    )
)
