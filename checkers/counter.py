"""Counter checker: is every read within what the adds allow?

The ``counter`` workload increments (``f="add"``, ``value=delta``) and reads
(``f="read"``, the ok completion's ``value`` is the count).  Adds that
failed certainly did not happen; ok adds did; ``info`` and never-completed
adds may have happened at any moment after their invoke, or never.  So an ok
read invoked at ``t0`` and completed at ``t1`` must return a value in

- ``lower`` = (sum of ok adds completed before ``t0``) + (the *negative*
  deltas of the other non-failed adds invoked before ``t1``),
- ``upper`` = (sum of ok adds completed before ``t0``) + (the *positive*
  deltas of the other non-failed adds invoked before ``t1``).

With only increments this is Jepsen's ``checker/counter``; negative deltas
(decrements) simply widen the lower bound.  The initial value is 0
(option ``initial``).  Valid iff every ok read is within its bounds.

Details: ``reads_count``, ``error_count``, ``errors`` (at most 100: the read
op, its value and the bounds), ``final`` (the last read and its bounds).

By example::

    >>> counter()
    counter()
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers._support import LIMIT, is_number, jsonable, op_json
from jepsy.checkers.core import Result

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History


@dataclass(frozen=True)
class Counter:
    """Bounds every ok read by the adds that could have happened; see the module docstring."""

    add_f: str = "add"
    read_f: str = "read"
    initial: float = 0

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        # Outcome of every add invocation, known up front from the whole history.
        outcome: dict[int, str] = {}
        for inv, comp in history.pairs():
            if inv.f == self.add_f and inv.is_client:
                outcome[inv.index] = "pending" if comp is None else comp.type
        certain = float(self.initial)  # ok adds completed so far
        certain_pos = 0.0  # ... their positive part
        certain_neg = 0.0  # ... their negative part
        invoked_pos = 0.0  # positive deltas of non-failed adds invoked so far
        invoked_neg = 0.0
        at_invoke: dict[Any, tuple[float, float, float]] = {}
        reads = 0
        errors: list[dict[str, Any]] = []
        error_count = 0
        bad_values: list[dict[str, Any] | None] = []
        final: dict[str, Any] | None = None
        for op in history:
            if not op.is_client:
                continue
            if op.f == self.add_f:
                if op.is_invoke:
                    if outcome.get(op.index) == "fail":
                        continue
                    if not is_number(op.value):
                        bad_values.append(op_json(op))
                        continue
                    d = float(op.value)
                    if d >= 0:
                        invoked_pos += d
                    else:
                        invoked_neg += d
                elif op.is_ok:
                    began = history.invocation(op)
                    if began is None or not is_number(began.value):
                        continue
                    d = float(began.value)
                    certain += d
                    if d >= 0:
                        certain_pos += d
                    else:
                        certain_neg += d
            elif op.f == self.read_f:
                if op.is_invoke:
                    at_invoke[op.process] = (certain, certain_pos, certain_neg)
                    continue
                base = at_invoke.pop(op.process, None)
                if not op.is_ok or base is None:
                    continue
                if not is_number(op.value):
                    bad_values.append(op_json(op))
                    continue
                c, cp, cn = base
                lower = c + (invoked_neg - cn)
                upper = c + (invoked_pos - cp)
                reads += 1
                entry = {
                    "lower": _num(lower),
                    "value": jsonable(op.value),
                    "upper": _num(upper),
                }
                final = {**entry, "index": op.index}
                if not (lower <= float(op.value) <= upper):
                    error_count += 1
                    if len(errors) < LIMIT:
                        errors.append({**entry, "op": op_json(op)})
        details: dict[str, Any] = {
            "reads_count": reads,
            "error_count": error_count,
            "errors": errors,
            "final": final,
        }
        if bad_values:
            details["bad_values"] = bad_values[:LIMIT]
            details["bad_value_count"] = len(bad_values)
        return Result(valid=error_count == 0, details=details)

    def __repr__(self) -> str:
        return "counter()"


def _num(x: float) -> int | float | str:
    if not math.isfinite(x):
        return repr(x)
    return int(x) if x == int(x) else x


def counter(*, initial: float = 0, add_f: str = "add", read_f: str = "read") -> Counter:
    """Checks reads of a counter against the possible sums of adds (Jepsen ``checker/counter``)."""
    return Counter(add_f=add_f, read_f=read_f, initial=initial)
