"""Generated histories for the linearizability benchmarks (and tests).

Each generator simulates clients against a real in-memory register (or kv
store): an op is invoked, takes effect at one random later moment (its
linearization point), and completes later still, so the history is
linearizable by construction.  ``p_info`` of the ops time out: they are
recorded as ``info`` whether or not they took effect, and the process is
retired (the client goes on as a new process id), as in Jepsen.
``stale=True`` splices one impossible read in late: a read that returns a
value overwritten long before it began.

By example::

    >>> ops = register_history(seed=1, ops_per_key=10)
    >>> sum(1 for o in ops if o["type"] == "invoke")
    10
"""

from __future__ import annotations

import random
from typing import Any


def register_history(
    *,
    seed: int = 0,
    keys: int = 1,
    ops_per_key: int = 1000,
    processes: int = 5,
    p_info: float = 0.05,
    values: int | None = None,
    cas: bool = True,
    stale: bool = False,
) -> list[dict[str, Any]]:
    """A CAS-register history as op dicts; ``keys > 1`` gives ``[key value]`` values.

    ``values``: None for unique written values, else values drawn from
    ``range(values)``.  ``processes`` per key."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    state: list[Any] = [None] * keys
    started = [0] * keys
    # per key: list of [process, phase, op] with phase 0 idle, 1 invoked, 2 applied
    slots = [[[k * processes + i, 0, None] for i in range(processes)] for k in range(keys)]
    next_proc = keys * processes
    counter = 0
    live = list(range(keys))
    stale_done = not stale
    total = keys * ops_per_key
    while live:
        k = live[rng.randrange(len(live))]
        slot = slots[k][rng.randrange(processes)]
        proc, phase, op = slot
        if phase == 0:
            if started[k] >= ops_per_key:
                if all(s[1] == 0 for s in slots[k]):
                    live.remove(k)
                continue
            started[k] += 1
            r = rng.random()
            if r < 0.5:
                f, v = "read", None
            elif r < 0.8 or not cas:
                counter += 1
                f, v = "write", counter if values is None else rng.randrange(values)
            else:
                counter += 1
                cur = state[k]
                frm = cur if rng.random() < 0.5 else rng.choice([cur, counter - 1, None])
                f, v = "cas", [frm, counter if values is None else rng.randrange(values)]
            op = {"f": f, "value": v, "applied": False}
            events.append(_ev(proc, "invoke", f, None if f == "read" else v, k, keys))
            slot[1], slot[2] = 1, op
            if not stale_done and sum(started) > total * 0.9 and f == "read":
                op["stale"] = True  # the first such read that completes ok
        elif phase == 1:
            assert op is not None
            if rng.random() < p_info and rng.random() < 0.5:
                _complete(events, slot, "info", k, keys, rng)
                slot[0] = next_proc
                next_proc += 1
                continue
            f, v = op["f"], op["value"]
            if f == "read":
                op["result"] = state[k]
            elif f == "write":
                state[k] = v
            elif state[k] == v[0]:
                state[k] = v[1]
                op["ok"] = True
            else:
                op["ok"] = False
            op["applied"] = True
            slot[1] = 2
        else:
            assert op is not None
            if rng.random() < p_info:
                _complete(events, slot, "info", k, keys, rng)
                slot[0] = next_proc
                next_proc += 1
                continue
            if op["f"] == "cas" and not op["ok"]:
                _complete(events, slot, "fail", k, keys, rng)
            else:
                if op.get("stale") and not stale_done:
                    stale_done = True
                    # A value that was certainly overwritten before this read began.
                    op["result"] = -1
                    first = next(
                        (
                            i
                            for i, e in enumerate(events)
                            if e["f"] == "write" and e["type"] == "ok" and _key(e, keys) == k
                        ),
                        None,
                    )
                    if first is not None:
                        op["result"] = _val(events[first], keys)
                _complete(events, slot, "ok", k, keys, rng)
    return events


def _key(e: dict[str, Any], keys: int) -> int:
    return e["value"][0] if keys > 1 else 0  # type: ignore[no-any-return]


def _val(e: dict[str, Any], keys: int) -> Any:
    return e["value"][1] if keys > 1 else e["value"]


def _ev(proc: int, typ: str, f: str, v: Any, k: int, keys: int) -> dict[str, Any]:
    return {"process": proc, "type": typ, "f": f, "value": [k, v] if keys > 1 else v}


def _complete(
    events: list[dict[str, Any]], slot: list[Any], typ: str, k: int, keys: int, rng: random.Random
) -> None:
    proc, _, op = slot
    v = op.get("result") if op["f"] == "read" and typ == "ok" else op["value"]
    if op["f"] == "read" and typ != "ok":
        v = None
    events.append(_ev(proc, typ, op["f"], v, k, keys))
    slot[1], slot[2] = 0, None


def kv_history(
    *,
    seed: int = 0,
    keys: int = 10,
    ops_per_key: int = 200,
    clients: int = 50,
    p_info: float = 0.05,
) -> list[dict[str, Any]]:
    """A kv history (get/put [k v]) by ``clients`` processes over ``keys`` keys."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    store: dict[int, Any] = {}
    slots: list[list[Any]] = [[c, 0, None] for c in range(clients)]
    next_proc = clients
    left = keys * ops_per_key
    counter = 0
    while left > 0 or any(s[1] for s in slots):
        slot = slots[rng.randrange(clients)]
        proc, phase, op = slot
        if phase == 0:
            if left <= 0:
                continue
            left -= 1
            k = rng.randrange(keys)
            if rng.random() < 0.5:
                op = {"f": "get", "k": k, "v": None}
            else:
                counter += 1
                op = {"f": "put", "k": k, "v": counter}
            events.append({"process": proc, "type": "invoke", "f": op["f"], "value": [k, op["v"]]})
            slot[1], slot[2] = 1, op
        elif phase == 1:
            if op["f"] == "get":
                op["v"] = store.get(op["k"])
            else:
                store[op["k"]] = op["v"]
            slot[1] = 2
        else:
            typ = "info" if rng.random() < p_info else "ok"
            v = op["v"] if typ == "ok" or op["f"] == "put" else None
            events.append({"process": proc, "type": typ, "f": op["f"], "value": [op["k"], v]})
            slot[1], slot[2] = 0, None
            if typ == "info":
                slot[0] = next_proc
                next_proc += 1
    return events
