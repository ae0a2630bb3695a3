"""Stats checker: how did each kind of operation fare?

Counts client completions per ``f``: ``count``, ``ok_count``,
``fail_count``, ``info_count`` (never-completed invokes are counted as
``info``, since that is what they are), plus the same totals over all f's.
Like Jepsen's ``checker/stats`` it is invalid when some ``f`` never
succeeded: a workload where every read failed proves nothing about reads,
and usually means the test or the cluster is broken.  A history with no
client ops is valid (there is nothing to complain about).

By example::

    >>> stats()
    stats()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers.core import Result

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History


def _zero() -> dict[str, int]:
    return {"count": 0, "ok_count": 0, "fail_count": 0, "info_count": 0}


@dataclass(frozen=True)
class Stats:
    """Per-f outcome counts; invalid if some f never succeeded."""

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        by_f: dict[str, dict[str, int]] = {}
        total = _zero()
        for inv, comp in history.pairs():
            if not inv.is_client:
                continue
            t = "info" if comp is None else comp.type
            s = by_f.setdefault(str(inv.f), _zero())
            for bucket in (s, total):
                bucket["count"] += 1
                bucket[f"{t}_count"] += 1
        never = sorted(f for f, s in by_f.items() if s["ok_count"] == 0)
        details: dict[str, Any] = {
            **total,
            "by_f": dict(sorted(by_f.items())),
            "never_ok": never,
        }
        return Result(valid=not never, details=details)

    def __repr__(self) -> str:
        return "stats()"


def stats() -> Stats:
    """Ok/fail/info counts per f; invalid if an f never succeeded (Jepsen ``checker/stats``)."""
    return Stats()
