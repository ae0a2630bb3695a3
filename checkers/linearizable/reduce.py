"""Sound reductions and a pre-check for register histories.

These shrink a register (or CAS-register) history before the search, or
find a violation without any search.  Values are interned ints, ``NIL``
(0) is the unset value the register starts with.  Each rule's soundness
argument is written down in ``docs/linearizability.md``; in short:

1. pending reads are dropped (done by ``Model.pending``);
2. a pending CAS whose expected value nobody else writes (and is not nil)
   can never succeed: dropped;
3. a pending write/CAS of ``v`` that nobody observes (no ok read of ``v``,
   no other CAS from ``v``) is dropped, to a fixpoint;
4. a pending op that is the only writer of ``v != nil`` which some ok op
   observes must take effect before that observer returns: it becomes a
   must-linearize op with that deadline;
5. per-observer pre-check: an ok op that observes ``v`` needs a writer of
   ``v`` that may precede it and is not overwritten for sure before it.

By example::

    >>> comp = [[0, 2, WRITE, 1, 0, 0], [4, 6, READ, 2, 0, 1]]
    >>> reduce_register(comp, [])[2] is not None   # read 2, nobody wrote 2
    True
"""

from __future__ import annotations

import bisect

from jepsy.checkers.linearizable.search import CAS, INF, READ, WRITE

NIL = 0

# comp rows: [call, ret, kind, a, b, entry]; pend rows: [call, kind, a, b, entry]
CompRow = list[int]
PendRow = list[int]


def reduce_register(
    comp: list[CompRow], pend: list[PendRow]
) -> tuple[list[CompRow], list[PendRow], tuple[int, str] | None]:
    """Apply rules 2-5; returns (completed, pending, violation).

    ``violation`` is ``(entry, reason)`` for an ok op that the pre-check
    proves cannot be linearized, else None.  Rows must be sorted by call;
    the returned lists are too."""
    writers: dict[int, int] = {}
    observers: dict[int, int] = {}
    for _c, _r, kd, a, b, _e in comp:
        if kd == WRITE:
            writers[a] = writers.get(a, 0) + 1
        elif kd == CAS:
            writers[b] = writers.get(b, 0) + 1
            observers[a] = observers.get(a, 0) + 1
        else:
            observers[a] = observers.get(a, 0) + 1
    for _c, kd, a, b, _e in pend:
        if kd == WRITE:
            writers[a] = writers.get(a, 0) + 1
        elif kd == CAS:
            writers[b] = writers.get(b, 0) + 1
            observers[a] = observers.get(a, 0) + 1

    # Rules 2 and 3 to a fixpoint.
    alive = [True] * len(pend)
    changed = True
    rounds = 0
    while changed and rounds < 10_000:
        changed = False
        rounds += 1
        for i, (_c, kd, a, b, _e) in enumerate(pend):
            if not alive[i]:
                continue
            if kd == CAS:
                self_w = 1 if a == b else 0
                if a != NIL and writers.get(a, 0) - self_w <= 0:
                    drop = True  # rule 2: nobody else writes the expected value
                else:
                    drop = observers.get(b, 0) - self_w <= 0  # rule 3
            else:
                drop = observers.get(a, 0) <= 0  # rule 3
            if drop:
                alive[i] = False
                changed = True
                if kd == CAS:
                    writers[b] -= 1
                    observers[a] -= 1
                else:
                    writers[a] -= 1
    pend = [row for row, ok in zip(pend, alive, strict=True) if ok]

    # Rule 4: the only writer of an observed value gets a deadline.
    first_obs: dict[int, int] = {}
    for _c, r, kd, a, _b, _e in comp:
        if kd in (READ, CAS):
            cur = first_obs.get(a)
            if cur is None or r < cur:
                first_obs[a] = r
    keep: list[PendRow] = []
    tightened = False
    for row in pend:
        c, kd, a, b, e = row
        v = a if kd == WRITE else b
        if v != NIL and writers.get(v, 0) == 1 and v in first_obs:
            comp.append([c, first_obs[v] - 1, kd, a, b, e])
            tightened = True
        else:
            keep.append(row)
    pend = keep
    if tightened:
        comp.sort(key=lambda row: row[0])

    return comp, pend, _precheck(comp, pend)


def _precheck(comp: list[CompRow], pend: list[PendRow]) -> tuple[int, str] | None:
    """Rule 5, in O(n log n): the earliest-returning ok observer that cannot
    see its value."""
    # Writers of each value: (call, ret) sorted by call, with prefix max of ret.
    wr: dict[int, list[tuple[int, int, int]]] = {NIL: [(-2, -1, -1)]}
    for c, r, kd, a, b, e in comp:
        if kd == WRITE:
            wr.setdefault(a, []).append((c, r, e))
        elif kd == CAS:
            wr.setdefault(b, []).append((c, r, e))
    for c, kd, a, b, e in pend:
        v = a if kd == WRITE else b
        wr.setdefault(v, []).append((c, INF, e))
    wcalls: dict[int, list[int]] = {}
    wmax: dict[int, list[int]] = {}
    for v, rows in wr.items():
        rows.sort()
        calls = []
        mx = []
        cur = -(1 << 62)
        for c, r, _e in rows:
            calls.append(c)
            cur = max(cur, r)
            mx.append(cur)
        wcalls[v] = calls
        wmax[v] = mx
    # Effective ops (must take effect) by call, with suffix min of ret.
    eff = [(c, r) for c, r, kd, _a, _b, _e in comp if kd != READ]  # comp is sorted by call
    ecalls = [c for c, _ in eff]
    sufmin = [INF] * (len(eff) + 1)
    for i in range(len(eff) - 1, -1, -1):
        sufmin[i] = min(eff[i][1], sufmin[i + 1])
    found: tuple[int, int, str] | None = None
    for c, r, kd, a, b, e in comp:
        if kd == WRITE or (kd == CAS and a == b):
            continue
        if found is not None and r >= found[0]:
            continue
        wc = wcalls.get(a)
        n = 0 if wc is None else bisect.bisect_left(wc, r)
        if n == 0:
            found = (r, e, "no write of the value it observes could precede it")
            continue
        latest = wmax[a][n - 1]
        if latest >= INF:
            continue
        i = bisect.bisect_right(ecalls, latest)
        if sufmin[i] < c:
            found = (
                r,
                e,
                "every write of the value it observes was overwritten by an op "
                "that completed before it began",
            )
    return None if found is None else (found[1], found[2])
