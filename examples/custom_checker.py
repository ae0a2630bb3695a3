"""A custom checker, and a workload that adds it to the built-in register checks.

A checker is any object with ``check(test, history, opts) -> Result``.  It
must be pure (read the history, return a verdict) and return ``"unknown"``
rather than raise when it cannot decide.  Compose it with others using
:func:`jepsy.checkers.compose`.  Try::

    jepsy test --db memory --workload examples/custom_checker.py --time-limit 10

The checker below asks a weaker question than linearizability: did every
read return a value somebody actually tried to write (or None)?  Stale reads
pass it (the value *was* written, just earlier) - the linearizability
checker next to it is what catches those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jepsy.checkers.core import Checker, Result, compose
from jepsy.core import Test
from jepsy.history import History
from jepsy.workloads.core import get_workload


@dataclass(frozen=True)
class ReadsWereWritten:
    """Every ok read of an independent register returns None or a value some
    write or cas to that key tried to store."""

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        written: dict[Any, set[Any]] = {}
        for op in history:
            if op.type != "invoke" or not isinstance(op.value, list | tuple):
                continue
            k, v = op.value
            if op.f == "write":
                written.setdefault(k, set()).add(v)
            elif op.f == "cas" and isinstance(v, list | tuple):
                written.setdefault(k, set()).add(v[1])
        bad = [
            op.to_dict()
            for op in history
            if op.type == "ok"
            and op.f == "read"
            and op.value[1] is not None
            and op.value[1] not in written.get(op.value[0], set())
        ]
        return Result(valid=not bad, details={"bad_reads": bad[:10], "bad_count": len(bad)})


def checker(opts: Mapping[str, Any]) -> Checker:
    builtin = get_workload("register").checker(opts)
    return compose({"register": builtin, "reads-were-written": ReadsWereWritten()})


def workload() -> Any:
    """The register workload with one more checker (a factory: called on load)."""
    reg = get_workload("register")
    # base="register": any DB suite that runs the register workload serves this one too.
    return dataclasses.replace(reg, name="register-plus", base="register", checker=checker)
