"""The ``list-append`` workload: transactions that append to and read lists.

Each op is a transaction of 1-4 micro-ops over a small pool of active keys:
``["append", k, v]`` appends ``v`` (unique per key) to the list at ``k``,
``["r", k, None]`` reads it.  Because appended values are unique, every
read reveals the order in which its key's appends took effect and who wrote
them, so Elle-style analysis can build the dependency graph between
transactions and look for cycles (G0, G1c, G-single, G2) and for aborted or
intermediate reads.  A key retires after ``max_writes_per_key`` appends and
a fresh one takes its place, keeping lists short.

Op shapes::

    txn  invoke [["append", k, v], ["r", k, None], ...]
         -> ok [["append", k, v], ["r", k, [v1, v2, ...]], ...]
         | fail (did not commit) | info

Checked with ``elle.list_append`` for ``consistency_models`` (default
``strict-serializable``; ``-o consistency_models=serializable`` to relax).

By example::

    >>> Txns()
    Txns(key_count=5, max_txn_length=4, max_writes_per_key=32)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers.core import Checker, compose
from jepsy.generator import PENDING, Context, Generator, lowest_free_client
from jepsy.history import Op
from jepsy.workloads.core import Workload, int_option, register_workload

if TYPE_CHECKING:
    from jepsy.core import Test


@dataclass(frozen=True, slots=True)
class Txns:
    """Endless list-append transactions (a pure value; randomness from ``ctx.rng``).

    ``keys``: the active keys and how many appends each has had;
    ``next_key``: the next fresh key; ``next_value``: the next appended value
    (globally unique, hence unique per key)."""

    key_count: int = 5
    max_txn_length: int = 4
    max_writes_per_key: int = 32
    keys: tuple[tuple[int, int], ...] = ()
    next_key: int = 0
    next_value: int = 1

    def op(self, test: Test, ctx: Context) -> tuple[Any, Generator | None] | None:
        best = lowest_free_client(ctx)
        if best < 0:
            return (PENDING, self)
        rng = ctx.rng
        keys = list(self.keys)
        nk = self.next_key
        while len(keys) < self.key_count:
            keys.append((nk, 0))
            nk += 1
        nv = self.next_value
        mops: list[list[Any]] = []
        for _ in range(rng.randint(1, self.max_txn_length)):
            i = rng.randrange(len(keys))
            k, writes = keys[i]
            if rng.random() < 0.5:
                mops.append(["r", k, None])
            else:
                mops.append(["append", k, nv])
                nv += 1
                writes += 1
                keys[i] = (k, writes)
                if writes >= self.max_writes_per_key:
                    keys[i] = (nk, 0)
                    nk += 1
        op = Op(process=ctx.workers[best], type="invoke", f="txn", value=mops, time=ctx.time)
        nxt = Txns(
            self.key_count, self.max_txn_length, self.max_writes_per_key, tuple(keys), nk, nv
        )
        return (op, nxt)

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        return self

    def __repr__(self) -> str:
        return (
            f"Txns(key_count={self.key_count}, max_txn_length={self.max_txn_length}, "
            f"max_writes_per_key={self.max_writes_per_key})"
        )


def generator(opts: Mapping[str, Any]) -> Generator:
    return Txns(
        key_count=int_option(opts, "key_count", 5),
        max_txn_length=int_option(opts, "max_txn_length", 4),
        max_writes_per_key=int_option(opts, "max_writes_per_key", 32),
    )


def _models(opts: Mapping[str, Any]) -> tuple[str, ...]:
    raw = opts.get("consistency_models", "strict-serializable")
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(str(m).strip() for m in items if str(m).strip())


def checker(opts: Mapping[str, Any]) -> Checker:
    from jepsy.checkers.elle import list_append
    from jepsy.workloads.register import extra_checkers

    return compose({"elle": list_append(consistency_models=_models(opts)), **extra_checkers()})


WORKLOAD = register_workload(
    Workload(
        name="list-append",
        doc=(
            "Transactions of appends and reads over a few rotating keys (unique values); "
            "checked Elle-style for dependency cycles and aborted/intermediate reads."
        ),
        ops={
            "txn": "invoke [[append, k, v] | [r, k, None] ...] -> ok with reads filled in "
            "| fail (did not commit)",
        },
        generator=generator,
        checker=checker,
        options={
            "key_count": "active keys at a time (default 5)",
            "max_txn_length": "micro-ops per transaction, at most (default 4)",
            "max_writes_per_key": "appends before a key retires (default 32)",
            "consistency_models": "models for the Elle checker (default strict-serializable)",
        },
    )
)
