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
    comp: list[CompRow], pend: list[PendRow], *, precheck: bool = True
) -> tuple[list[CompRow], list[PendRow], tuple[int, str] | None]:
    """Apply rules 2-5; returns (completed, pending, violation).

    ``violation`` is ``(entry, reason)`` for an ok op that the pre-check
    proves cannot be linearized, else None (always None without
    ``precheck``: the caller runs :func:`precheck_register` when it wants).
    Rows must be sorted by call; the returned lists are too."""
    if not pend:  # rules 2-4 are about pending ops only
        return comp, pend, precheck_register(comp, pend) if precheck else None
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

    # Rules 2 and 3 to a fixpoint, with a worklist: an op is looked at again
    # only when a count it depends on drops to 1 or 0, so this is O(n).
    alive = [True] * len(pend)
    by_from: dict[int, list[int]] = {}  # pending CAS by expected value
    by_to: dict[int, list[int]] = {}  # pending writers by written value
    for i, (_c, kd, a, b, _e) in enumerate(pend):
        if kd == CAS:
            by_from.setdefault(a, []).append(i)
            by_to.setdefault(b, []).append(i)
        else:
            by_to.setdefault(a, []).append(i)
    work = list(range(len(pend)))
    while work:
        i = work.pop()
        if not alive[i]:
            continue
        _c, kd, a, b, _e = pend[i]
        if kd == CAS:
            self_w = 1 if a == b else 0
            if a != NIL and writers.get(a, 0) - self_w <= 0:
                drop = True  # rule 2: nobody else writes the expected value
            else:
                drop = observers.get(b, 0) - self_w <= 0  # rule 3
        else:
            drop = observers.get(a, 0) <= 0  # rule 3
        if not drop:
            continue
        alive[i] = False
        w = b if kd == CAS else a
        writers[w] -= 1
        if writers[w] <= 1:
            work.extend(by_from.get(w, ()))
        if kd == CAS:
            observers[a] -= 1
            if observers[a] <= 1:
                work.extend(by_to.get(a, ()))
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

    return comp, pend, precheck_register(comp, pend) if precheck else None


def precheck_register(comp: list[CompRow], pend: list[PendRow]) -> tuple[int, str] | None:
    """Rule 5, in O(n log n), on rows :func:`reduce_register` returned: the
    earliest-returning ok observer that cannot see its value."""
    # Writers of each value by call, with the running max of their returns.
    writers: list[tuple[int, int, int]] = []
    for c, r, kd, a, b, _e in comp:
        if kd == WRITE:
            writers.append((c, r, a))
        elif kd == CAS:
            writers.append((c, r, b))
    for c, kd, a, b, _e in pend:
        writers.append((c, INF, a if kd == WRITE else b))
    writers.sort()  # two sorted runs: a merge
    wcalls: dict[int, list[int]] = {NIL: [-2]}
    wmax: dict[int, list[int]] = {NIL: [-1]}
    for c, r, v in writers:
        calls = wcalls.get(v)
        if calls is None:
            wcalls[v] = [c]
            wmax[v] = [r]
        else:
            calls.append(c)
            mx = wmax[v]
            last = mx[-1]
            mx.append(r if r > last else last)
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
