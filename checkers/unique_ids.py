"""Unique-id checker: did a generator hand out any id twice?

The ``unique-ids`` workload calls ``f="generate"``; each ok completion's
``value`` is the id the system issued.  Ids must be distinct (Jepsen
``checker/unique-ids``).  Valid iff no ok value occurs twice.

Details: ``attempted_count`` (invokes), ``acknowledged_count`` (ok),
``duplicated_count`` (distinct ids issued more than once), ``duplicated``
(at most 100 ``{"value", "count"}``, most repeated first) and ``range``
(smallest and largest id, when ids are comparable).

By example::

    >>> unique_ids()
    unique_ids()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers._support import LIMIT, hashable, jsonable, sorted_values
from jepsy.checkers.core import Result

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History


@dataclass(frozen=True)
class UniqueIds:
    """Checks that ok ``generate`` values are distinct."""

    f: str = "generate"

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        attempted = 0
        ids: Counter[Any] = Counter()
        for op in history:
            if not op.is_client or op.f != self.f:
                continue
            if op.is_invoke:
                attempted += 1
            elif op.is_ok:
                ids[hashable(op.value)] += 1
        dups = sorted(((v, n) for v, n in ids.items() if n > 1), key=lambda kv: -kv[1])
        details: dict[str, Any] = {
            "attempted_count": attempted,
            "acknowledged_count": sum(ids.values()),
            "duplicated_count": len(dups),
            "duplicated": [{"value": jsonable(v), "count": n} for v, n in dups[:LIMIT]],
        }
        if ids:
            vs = sorted_values(ids)
            details["range"] = [jsonable(vs[0]), jsonable(vs[-1])]
        return Result(valid=not dups, details=details)

    def __repr__(self) -> str:
        return "unique_ids()"


def unique_ids(*, f: str = "generate") -> UniqueIds:
    """Ok ``generate`` results must all differ (Jepsen ``checker/unique-ids``)."""
    return UniqueIds(f=f)
