"""Explaining a failed check, small and bounded.

When a history is not linearizable the checker reports, as JSON-ready data:

- ``op``: the first op that cannot be linearized (the completed op with the
  earliest return among those left at the furthest point the search
  reached),
- ``previous_ok``: the last ok op that completed before it,
- ``configs``: up to 10 model states possible just before it, each with the
  ops that were called and not yet linearized there (up to 10),
- ``final_paths``: up to 10 longest linearizable prefixes, each the last
  32 ops with the state after each, and how many earlier search steps were left out.

The size is bounded however big the history is.

By example (the shape)::

    {"op": {...}, "previous_ok": {...},
     "configs": [{"state": "3", "pending": [{...}]}],
     "final_paths": [{"skipped": 120, "ops": [{"op": {...}, "state": "3"}]}]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jepsy.checkers.linearizable.problem import Built, Entry
from jepsy.checkers.linearizable.search import INF, TAIL, Frontier, Outcome, step_ops

MAX_PENDING_SHOWN = 10


def jsonable(v: Any) -> Any:
    """``v`` with tuples, sets and odd keys turned into JSON types."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, set | frozenset):
        items = [jsonable(x) for x in v]
        try:
            return sorted(items)
        except TypeError:
            return items
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


def op_dict(e: Entry) -> dict[str, Any]:
    d: dict[str, Any] = jsonable(e.op().to_dict())
    if e.cpos < 0:
        d["pending"] = True
    return d


def _blocking(b: Built, fr: Frontier) -> tuple[int, list[int]]:
    """(op id that must come next but cannot, candidate op ids) at ``fr``."""
    p = b.problem
    m = p.m
    r_min = INF
    k = fr.lo
    ww = fr.w
    best = -1
    cands: list[int] = []
    while k < m and p.ccall[k] < r_min:
        if not ww & 1:
            cands.append(k)
            if p.cret[k] < r_min:
                r_min = p.cret[k]
                best = k
        k += 1
        ww >>= 1
    cands = [k for k in cands if p.ccall[k] < r_min]
    for q, c in enumerate(p.pcall):
        if c >= r_min:
            break
        if not (fr.pu >> q) & 1:
            cands.append(m + q)
    return best, cands


def _state(b: Built, sid: int) -> str:
    return b.model.describe_state(b.states[sid])


def explain(b: Built, out: Outcome) -> dict[str, Any]:
    """The explanation for an invalid outcome of the search."""
    if not out.frontier:
        return {}
    blocking, _ = _blocking(b, out.frontier[0])
    d: dict[str, Any] = {}
    if blocking >= 0:
        e = b.ids[blocking]
        d["op"] = op_dict(e)
        prev = previous_ok(b.ids, e)
        if prev is not None:
            d["previous_ok"] = op_dict(prev)
    configs = []
    seen = set()
    paths = []
    for fr in out.frontier:
        if (fr.state, fr.pu) not in seen:
            seen.add((fr.state, fr.pu))
            _, cands = _blocking(b, fr)
            configs.append(
                {
                    "state": _state(b, fr.state),
                    "pending": [op_dict(b.ids[c]) for c in cands[:MAX_PENDING_SHOWN]],
                }
            )
        ops: list[dict[str, Any]] = []
        for i, c in enumerate(fr.path):
            ids = step_ops(fr.path[i - 1], c, b.problem.m) if i else [c[4]]
            for k in ids:
                if k >= 0:
                    ops.append({"op": op_dict(b.ids[k]), "state": _state(b, c[3])})
        paths.append({"skipped": max(0, fr.depth - len(fr.path)), "ops": ops[-TAIL:]})
    d["configs"] = configs
    d["final_paths"] = paths
    return d


def previous_ok(entries: Sequence[Entry], e: Entry) -> Entry | None:
    """The ok op that completed last before ``e`` completed (or was called, if pending)."""
    limit = e.ret if e.cpos >= 0 else e.call
    best: Entry | None = None
    for x in entries:
        if x.cpos >= 0 and x.ret < limit and (best is None or x.ret > best.ret):
            best = x
    return best


def explain_violation(b: Built, e: Entry, reason: str) -> dict[str, Any]:
    """The explanation for a violation the pre-check found without search."""
    d: dict[str, Any] = {"op": op_dict(e), "reason": reason, "configs": [], "final_paths": []}
    prev = previous_ok(b.ids, e)
    if prev is not None:
        d["previous_ok"] = op_dict(prev)
    return d
