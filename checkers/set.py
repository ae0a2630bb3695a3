"""Set checkers: did every acknowledged add survive?

The ``set`` workload adds unique elements (``f="add"``, ``value=x``) and
ends with a read of the whole set (``f="read"``, ``value`` a collection:
a JSON list, an EDN ``#{}`` set, or a dict's keys).  A database that
acknowledges an add and later forgets it has *lost* a write — the classic
Redis/Sentinel and Elasticsearch failure Jepsen found this way.

:func:`set_checker` (Jepsen's ``checker/set``) looks at the **last ok read**
only and classifies every element:

- ``attempt``: an add was invoked for it;  ``acknowledged``: the add was ok;
- ``ok``: acknowledged and read;  ``lost``: acknowledged, not read;
- ``unexpected``: read, but no add was ever invoked for it;
- ``recovered``: read although its add ended ``info`` or never completed.

Valid iff nothing is lost and nothing unexpected.  No ok read at all gives
``"unknown"`` (there is nothing to judge).

:func:`set_full` (Jepsen's ``checker/set-full``) uses every ok read during
the run and follows each element over time (see :class:`SetFull`).

By example::

    >>> from jepsy.history import History
    >>> from jepsy.core import noop_test
    >>> h = History.from_dicts([
    ...     {"process": 0, "type": "invoke", "f": "add", "value": 1},
    ...     {"process": 0, "type": "ok", "f": "add", "value": 1},
    ...     {"process": 0, "type": "invoke", "f": "read", "value": None},
    ...     {"process": 0, "type": "ok", "f": "read", "value": []},
    ... ])
    >>> r = set_checker().check(noop_test(), h, {})
    >>> r.valid, r.details["lost"]
    (False, [1])
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers._support import LIMIT, elements, examples, hashable, op_json
from jepsy.checkers.core import Result, Validity

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History, Op


def _adds(history: History, add_f: str) -> tuple[set[Any], set[Any]]:
    """(attempted values, acknowledged values) of the add ops."""
    attempts: set[Any] = set()
    acked: set[Any] = set()
    for inv, comp in history.pairs():
        if inv.f != add_f or not inv.is_client:
            continue
        v = hashable(inv.value)
        attempts.add(v)
        if comp is not None and comp.is_ok:
            acked.add(v)
    return attempts, acked


@dataclass(frozen=True)
class SetChecker:
    """Jepsen's set checker over the final ok read; see the module docstring."""

    add_f: str = "add"
    read_f: str = "read"

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        attempts, acked = _adds(history, self.add_f)
        final: Op | None = None
        for op in history:
            if op.is_ok and op.f == self.read_f and op.is_client:
                final = op
        base: dict[str, Any] = {
            "attempt_count": len(attempts),
            "acknowledged_count": len(acked),
        }
        if final is None:
            return Result(valid="unknown", error="the set was never read", details=base)
        els = elements(final.value)
        if els is None:
            return Result(
                valid="unknown",
                error=f"the final read's value is not a collection: {final.value!r:.200}",
                details={**base, "final_read": op_json(final)},
            )
        read = set(els)
        ok = read & acked
        lost = acked - read
        unexpected = read - attempts
        recovered = (read & attempts) - acked
        details = {
            **base,
            "read_count": len(read),
            "ok_count": len(ok),
            "lost_count": len(lost),
            "unexpected_count": len(unexpected),
            "recovered_count": len(recovered),
            "lost": examples(lost),
            "unexpected": examples(unexpected),
            "recovered": examples(recovered),
            "final_read_index": final.index,
        }
        return Result(valid=not lost and not unexpected, details=details)

    def __repr__(self) -> str:
        return "set_checker()"


def set_checker(*, add_f: str = "add", read_f: str = "read") -> SetChecker:
    """Lost and unexpected elements in the final read of a set (Jepsen ``checker/set``)."""
    return SetChecker(add_f=add_f, read_f=read_f)


@dataclass
class _Element:
    known: int | None = None  # time we know the element is in the set
    known_by: str = ""  # "add" or "read"
    last_present: int | None = None  # invoke time of the latest read that saw it
    present_after: int = 0  # reads invoked after `known` that saw it
    first_seen: int | None = None  # completion time of the first ok read that saw it


@dataclass(frozen=True)
class SetFull:
    """Jepsen's ``set-full``: follows each element through every ok read.

    An element becomes *known* at the completion of its ok add, or at the
    completion of the first ok read that contains it, whichever is first.
    Reads *invoked* after that moment should contain it.  Judged by the
    latest such read (by invoke time), each attempted element is:

    - ``stable``: the latest read saw it;  ``stale`` too if some earlier read
      (invoked after it was known) missed it — a stale read;
    - ``lost``: the latest read missed it (it was known and then vanished);
    - ``never_read``: no ok read began after it was known.

    An element whose add was never acknowledged and that no read showed is
    never known, so it is not classified (nothing can be said about it).

    Also reported: ``unexpected`` (read, never attempted) and
    ``duplicated`` (a single read listing an element twice), and
    ``first_seen_ms``: quantiles of the time from an add's invoke to the
    completion of the first ok read that showed the element.  Valid iff no
    element is lost, unexpected or duplicated, and, with
    ``linearizable=True``, no read was stale.  ``"unknown"`` when elements
    were attempted but none was stable or lost (no informative read).

    Cost: one pass over the elements the reads hold, not reads x elements.
    """

    add_f: str = "add"
    read_f: str = "read"
    linearizable: bool = False

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        attempts, acked = _adds(history, self.add_f)
        els: dict[Any, _Element] = {}
        reads: list[tuple[Op, list[Any]]] = []  # (invoke, elements) of ok reads
        bad_reads: list[dict[str, Any] | None] = []
        duplicated: Counter[Any] = Counter()
        # When each acknowledged element became known through its add.
        for inv, comp in history.pairs():
            if not inv.is_client or comp is None or not comp.is_ok:
                continue
            if inv.f == self.add_f:
                e = els.setdefault(hashable(inv.value), _Element())
                if e.known is None or comp.time < e.known:
                    e.known, e.known_by = comp.time, "add"
            elif inv.f == self.read_f:
                vs = elements(comp.value)
                if vs is None:
                    bad_reads.append(op_json(comp))
                    continue
                reads.append((inv, vs))
                counts = Counter(vs)
                for v, n in counts.items():
                    if n > 1:
                        duplicated[v] = max(duplicated[v], n)
                    e = els.setdefault(v, _Element())
                    if e.known is None or comp.time < e.known:
                        e.known, e.known_by = comp.time, "read"
                    if e.first_seen is None or comp.time < e.first_seen:
                        e.first_seen = comp.time
        read_sets = [(inv, set(vs)) for inv, vs in reads]
        read_sets.sort(key=lambda r: r[0].time)
        times = [inv.time for inv, _ in read_sets]
        # One pass over what the reads hold (not reads x elements): count the
        # reads that began after each element was known and still saw it.
        for inv, present in read_sets:
            for v in present:
                e = els[v]
                e.last_present = inv.time
                if e.known is not None and inv.time >= e.known:
                    e.present_after += 1
        latest = read_sets[-1][1] if read_sets else set()
        stable: list[Any] = []
        stale: list[Any] = []
        lost: list[Any] = []
        never_read: list[Any] = []
        stale_reads = 0
        for v, e in els.items():
            if v not in attempts:
                continue
            after = len(times) - bisect.bisect_left(times, e.known) if e.known is not None else 0
            absent = after - e.present_after
            if absent == 0:
                (stable if e.last_present is not None else never_read).append(v)
            elif v in latest:  # missed by some read, seen again by the latest
                stable.append(v)
                stale.append(v)
                stale_reads += absent
            else:
                lost.append(v)
        unexpected = [v for v in els if v not in attempts]
        # How long after its add was invoked an element first showed up in a read.
        add_invoked: dict[Any, int] = {}
        for op in history:
            if op.is_client and op.is_invoke and op.f == self.add_f:
                add_invoked.setdefault(hashable(op.value), op.time)
        seen_ms = sorted(
            (e.first_seen - add_invoked[v]) / 1e6
            for v, e in els.items()
            if e.first_seen is not None and v in add_invoked
        )
        details: dict[str, Any] = {
            "attempt_count": len(attempts),
            "acknowledged_count": len(acked),
            "read_count": len(reads),
            "stable_count": len(stable),
            "lost_count": len(lost),
            "stale_count": len(stale),
            "stale_read_count": stale_reads,
            "never_read_count": len(never_read),
            "unexpected_count": len(unexpected),
            "duplicated_count": len(duplicated),
            "first_seen_ms": _quantiles(seen_ms),
            "lost": examples(lost),
            "stale": examples(stale),
            "never_read": examples(never_read),
            "unexpected": examples(unexpected),
            "duplicated": [
                {"value": examples([v])[0], "count": n}
                for v, n in sorted(duplicated.items(), key=lambda kv: -kv[1])[:LIMIT]
            ],
        }
        if bad_reads:
            details["bad_reads"] = bad_reads[:LIMIT]
        valid: Validity = True
        error = None
        if lost or unexpected or duplicated or (self.linearizable and stale):
            valid = False
        elif attempts and not stable:
            valid, error = "unknown", "no ok read observed any attempted element"
        return Result(valid=valid, details=details, error=error)

    def __repr__(self) -> str:
        return f"set_full(linearizable={self.linearizable!r})"


def _quantiles(xs: list[float]) -> dict[str, float] | None:
    """Nearest-rank quantiles of an ascending list (None when empty)."""
    if not xs:
        return None

    def q(p: float) -> float:
        return round(xs[min(len(xs) - 1, max(0, math.ceil(p * len(xs)) - 1))], 6)

    return {"p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": round(xs[-1], 6)}


def set_full(*, linearizable: bool = False, add_f: str = "add", read_f: str = "read") -> SetFull:
    """Per-element set analysis over all reads (Jepsen ``checker/set-full``)."""
    return SetFull(add_f=add_f, read_f=read_f, linearizable=linearizable)
