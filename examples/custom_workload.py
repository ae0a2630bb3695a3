"""A custom workload in one file: a counter with its own client.

Run it against the embedded memory DB (no root needed)::

    jepsy test --db memory --workload examples/custom_workload.py --time-limit 10
    jepsy test --db memory --workload examples/custom_workload.py --time-limit 10 \\
        --memory-bug lost-writes        # exits 1: reads fall below the acknowledged adds

jepsy imports this file and reads ``workload``: a
:class:`~jepsy.workloads.core.Workload` (or a zero-argument function
returning one).  A workload needs a doc string, the shapes of its ops, a
generator, a checker and - when no database suite knows its ops - a client.
Here the client talks to the memory DB's store directly; for your own
system it would open a connection to ``node`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jepsy import generator as gen
from jepsy.checkers.core import Checker, compose
from jepsy.checkers.counter import counter
from jepsy.checkers.stats import stats
from jepsy.core import Test
from jepsy.dbs.memory import MemoryDB
from jepsy.errors import ConfigError
from jepsy.history import Op
from jepsy.workloads.core import Workload


class CounterClient:
    """``add d`` increments the counter, ``read`` returns it.

    ``open`` returns a fresh client bound to ``node``; ``invoke`` returns the
    completion.  Raising an ordinary exception records ``info`` (unknown
    outcome); raise :class:`jepsy.errors.ClientError` only when the op
    certainly did not happen."""

    def __init__(self, db: MemoryDB | None = None, node: str | None = None) -> None:
        self.db = db
        self.node = node

    def open(self, test: Test, node: str) -> CounterClient:
        if not isinstance(test.db, MemoryDB):
            raise ConfigError("examples/custom_workload.py needs --db memory")
        return CounterClient(test.db, node)

    def setup(self, test: Test) -> None:
        pass

    def invoke(self, test: Test, op: Op) -> Op:
        assert self.db is not None and self.node is not None
        self.db.gate(self.node, test.op_timeout)  # honours kill / pause of the node
        store = self.db.store
        if op.f == "add":
            store.add("my-counter", op.value)
            return op.replace(type="ok")
        return op.replace(type="ok", value=store.read("my-counter") or 0)

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        pass


def generator(opts: Mapping[str, Any]) -> Any:
    # 9 adds of 1 for every read, forever (the runner applies the time limit and rate).
    return gen.mix([gen.repeat({"f": "add", "value": 1})] * 9 + [gen.repeat({"f": "read"})])


def final_generator(opts: Mapping[str, Any]) -> Any:
    return gen.once({"f": "read"})  # one last read once the faults are healed


def checker(opts: Mapping[str, Any]) -> Checker:
    return compose({"counter": counter(), "stats": stats()})


workload = Workload(
    name="my-counter",
    doc="Increments and reads of one counter; every read must lie within the acknowledged adds.",
    ops={"add": "invoke d -> ok d", "read": "invoke None -> ok n"},
    generator=generator,
    final_generator=final_generator,
    checker=checker,
    client=lambda opts: CounterClient(),
)
