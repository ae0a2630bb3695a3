"""A brute-force linearizability oracle for tiny histories, and random ones to feed it.

It shares nothing with the real checker but the model's ``init``/``step``/
``pending``: it pairs ops itself and tries every order of every subset of
the pending ops (depth-first, stopping at the first illegal step), so it is
exponential and only for histories of up to about 8 ops.
"""

from __future__ import annotations

import random
from typing import Any

from jepsy.checkers.linearizable.models import Model, freeze
from jepsy.history import History

INF = float("inf")


def _ops(history: History, model: Model) -> tuple[list[tuple[int, float, str, Any]], list[bool]]:
    """(call, ret, f, value) per op, and whether each must be linearized."""
    open_: dict[Any, tuple[int, Any]] = {}
    out: list[tuple[int, float, str, Any]] = []
    must: list[bool] = []
    for pos, op in enumerate(history):
        if not op.is_client:
            continue
        if op.type == "invoke":
            open_[op.process] = (pos, op)
            continue
        got = open_.pop(op.process, None)
        if got is None:
            continue
        ipos, inv = got
        if op.type == "ok":
            v = op.value
            if v is None and inv.f not in ("read", "get", "dequeue"):
                v = inv.value
            out.append((ipos, pos, inv.f, freeze(v)))
            must.append(True)
        elif op.type == "info":
            pv = model.pending(inv.f, freeze(inv.value))
            if pv is not None:
                out.append((ipos, INF, pv[0], freeze(pv[1])))
                must.append(False)
    for ipos, inv in open_.values():
        pv = model.pending(inv.f, freeze(inv.value))
        if pv is not None:
            out.append((ipos, INF, pv[0], freeze(pv[1])))
            must.append(False)
    return out, must


def brute_force(history: History, model: Model) -> bool:
    """True iff some order of all ok ops and some of the pending ops is legal."""
    ops, must = _ops(history, model)
    n = len(ops)
    need = sum(must)

    def go(done: int, state: Any, count: int) -> bool:
        if count == need:
            return True
        # Every op not yet placed that returned before some candidate was called
        # must come first; an op is placeable if no unplaced ok op returned before its call.
        min_ret = min((ops[i][1] for i in range(n) if not done >> i & 1 and must[i]), default=INF)
        for i in range(n):
            if done >> i & 1 or ops[i][0] > min_ret:
                continue
            ok, new = model.step(state, ops[i][2], ops[i][3])
            if ok and go(done | 1 << i, new, count + (1 if must[i] else 0)):
                return True
        return False

    return go(0, model.init(), 0)


def random_history(
    rng: random.Random,
    *,
    n_ops: int = 6,
    processes: int = 3,
    values: int = 3,
    fs: tuple[str, ...] = ("read", "write", "cas"),
    simulate: bool = False,
    p_info: float = 0.2,
    p_fail: float = 0.1,
) -> History:
    """A random register-like history of ``n_ops`` ops.

    With ``simulate`` the ops really run against a register (at a random
    point inside their interval), so the history is linearizable unless an
    op is reported differently from what happened; otherwise read values
    are random."""
    events: list[dict[str, Any]] = []
    open_: dict[int, dict[str, Any]] = {}
    state: Any = None
    started = 0
    next_proc = processes
    procs = list(range(processes))
    guard = 0
    while (started < n_ops or open_) and guard < 10_000:
        guard += 1
        p = rng.choice(procs)
        if p in open_:
            inv = open_[p]
            if simulate and not inv.get("_applied"):
                # apply now (linearization point) then maybe complete later
                state = _apply(inv, state)
                inv["_applied"] = True
                continue
            del open_[p]
            r = rng.random()
            if r < p_info:
                typ = "info"
            elif r < p_info + p_fail and not simulate:
                typ = "fail"
            else:
                typ = "ok"
            value = inv["value"]
            if inv["f"] == "read" and typ == "ok":
                value = inv.get("_result") if simulate else rng.choice([None, *range(values)])
            if simulate and inv["f"] == "cas" and typ == "ok" and not inv.get("_succeeded"):
                typ = "fail"
            events.append({"process": p, "type": typ, "f": inv["f"], "value": value})
            if typ == "info":
                procs[procs.index(p)] = next_proc
                next_proc += 1
        elif started < n_ops:
            f = rng.choice(fs)
            if f == "read":
                v: Any = None
            elif f == "write":
                v = rng.randrange(values)
            else:
                v = [rng.choice([None, *range(values)]), rng.randrange(values)]
            inv = {"process": p, "type": "invoke", "f": f, "value": v}
            events.append(dict(inv))
            open_[p] = inv
            started += 1
    # Leave some invocations without completion: cut the history short.
    if not simulate and events and rng.random() < 0.3:
        events = events[: rng.randrange(len(events)) + 1]
    return History.from_dicts(events)


def _apply(inv: dict[str, Any], state: Any) -> Any:
    f, v = inv["f"], inv["value"]
    if f == "read":
        inv["_result"] = state
        return state
    if f == "write":
        return v
    if state == v[0]:
        inv["_succeeded"] = True
        return v[1]
    return state


OpMaker = Any
"""``(rng) -> (f, invoke value, ok value)``: one random operation."""


def random_ops_history(
    rng: random.Random,
    make_op: OpMaker,
    *,
    n_ops: int = 6,
    processes: int = 3,
    p_info: float = 0.2,
    p_fail: float = 0.1,
) -> History:
    """A random history of ops from ``make_op``, completions at random times."""
    events: list[dict[str, Any]] = []
    open_: dict[int, tuple[str, Any, Any]] = {}
    procs = list(range(processes))
    next_proc = processes
    started = 0
    guard = 0
    while (started < n_ops or open_) and guard < 10_000:
        guard += 1
        p = rng.choice(procs)
        if p in open_:
            f, _iv, okv = open_.pop(p)
            r = rng.random()
            typ = "info" if r < p_info else "fail" if r < p_info + p_fail else "ok"
            events.append({"process": p, "type": typ, "f": f, "value": okv})
            if typ == "info":
                procs[procs.index(p)] = next_proc
                next_proc += 1
        elif started < n_ops:
            f, iv, okv = make_op(rng)
            events.append({"process": p, "type": "invoke", "f": f, "value": iv})
            open_[p] = (f, iv, okv)
            started += 1
    if events and rng.random() < 0.3:
        events = events[: rng.randrange(len(events)) + 1]
    return History.from_dicts(events)
