"""Elle's rw-register checker.

Ops have ``f="txn"`` and micro-ops ``["w", k, v]`` / ``["r", k, v]``.
Written values must be unique per key; every key starts as ``None``
(never written).

A register read reveals only *which* write it saw, not the order of writes,
so the version order is inferred only where it is certain:

- the initial ``None`` precedes every written version;
- a transaction that read ``v1`` from a key and then wrote ``v2`` to it
  orders ``v1 < v2``.

From that: ``wr`` (writer -> reader), ``ww`` (writer of v1 -> writer of v2
for an inferred ``v1 < v2``), ``rw`` (reader of v1 -> writer of v2), and the
direct anomalies G1a (read of a failed write), G1b (read of a value its
writer overwrote in the same transaction), ``internal`` and ``garbage-read``.
This is weaker than Elle's full inference (which can also use real-time and
process order to order writes) but never reports an anomaly that did not
happen.

By example::

    >>> from jepsy.checkers.elle import rw_register
    >>> rw_register()
    rw_register(consistency_models=('serializable',))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from jepsy.checkers.elle.core import (
    DepGraph,
    ElleChecker,
    Txn,
    prohibited_anomalies,
)

_ALLOWED = frozenset({"w", "r"})
_MAX_INITIAL_RW_EDGES = 200_000


@dataclass(frozen=True, repr=False)
class RWRegisterChecker(ElleChecker):
    """Checks read/write register transaction histories; see the module docstring."""

    NAME: ClassVar[str] = "rw_register"
    ALLOWED: ClassVar[frozenset[str]] = _ALLOWED

    def infer(self, txns: Sequence[Txn]) -> tuple[DepGraph, dict[str, list[dict[str, Any]]]]:
        direct: dict[str, list[dict[str, Any]]] = {
            "internal": [],
            "G1a": [],
            "G1b": [],
            "garbage-read": [],
        }
        writer: dict[tuple[Any, Any], Txn] = {}
        final_write: dict[tuple[int, Any], Any] = {}
        for t in txns:
            for f, k, v in t.mops:
                if f == "w":
                    writer[(k, v)] = t
                    final_write[(t.id, k)] = v
        graph = DepGraph()
        for t in txns:
            if t.type != "fail":
                graph.g.add_node(t.id)
        # external reads and inferred version order
        ext_reads: dict[Any, dict[Any, list[Txn]]] = {}
        succ: dict[Any, dict[Any, set[Any]]] = {}
        for t in txns:
            if t.type != "ok":
                continue
            state: dict[Any, Any] = {}
            first_read: dict[Any, Any] = {}
            wrote: set[Any] = set()
            for f, k, v in t.mops:
                if f == "w":
                    if k not in wrote and k in first_read:
                        succ.setdefault(k, {}).setdefault(first_read[k], set()).add(v)
                    wrote.add(k)
                    state[k] = v
                    continue
                if k in state:
                    if state[k] != v:
                        direct["internal"].append(
                            {
                                "txn": t.to_json(),
                                "key": k,
                                "read": v,
                                "expected": state[k],
                                "explanation": f"T{t.id} read key {k!r} = {v!r} but its own state said {state[k]!r}",
                            }
                        )
                    continue
                state[k] = v
                first_read[k] = v
                ext_reads.setdefault(k, {}).setdefault(v, []).append(t)
        for k, by_val in ext_reads.items():
            for v, readers in by_val.items():
                if v is None:
                    continue
                w = writer.get((k, v))
                if w is None:
                    direct["garbage-read"].append(
                        {
                            "key": k,
                            "value": v,
                            "explanation": f"{v!r} was read from key {k!r} but never written",
                        }
                    )
                    continue
                for t in readers:
                    if w.type == "fail":
                        direct["G1a"].append(
                            {
                                "key": k,
                                "value": v,
                                "reader": t.to_json(),
                                "writer": w.to_json(),
                                "explanation": f"T{t.id} read {v!r} from key {k!r}, written by failed T{w.id}",
                            }
                        )
                        continue
                    if w is not t and final_write.get((w.id, k)) != v:
                        direct["G1b"].append(
                            {
                                "key": k,
                                "value": v,
                                "reader": t.to_json(),
                                "writer": w.to_json(),
                                "explanation": f"T{t.id} read key {k!r} = {v!r}, an intermediate write of T{w.id}",
                            }
                        )
                    graph.add(w, t, "wr", {"key": k, "value": v})
        # ww / rw from inferred orders
        for k, pairs in succ.items():
            for v1, v2s in pairs.items():
                w1 = writer.get((k, v1)) if v1 is not None else None
                for v2 in v2s:
                    w2 = writer.get((k, v2))
                    if w2 is None or w2.type == "fail":
                        continue
                    if w1 is not None and w1.type != "fail":
                        graph.add(
                            w1, w2, "ww", {"key": k, "value": v2, "prev": v1, "verb": "wrote"}
                        )
                    for r in ext_reads.get(k, {}).get(v1, []):
                        graph.add(r, w2, "rw", {"key": k, "value": v2, "read": v1})
        # initial state precedes every write
        budget = _MAX_INITIAL_RW_EDGES
        for k, by_val in ext_reads.items():
            readers = by_val.get(None, [])
            if not readers:
                continue
            # Only writes known to have taken effect: ok txns, or info txns
            # whose write some transaction observed.
            writers = {
                w.id: w
                for (kk, vv), w in writer.items()
                if kk == k and (w.type == "ok" or (w.type == "info" and by_val.get(vv)))
            }
            for r in readers:
                for w in writers.values():
                    if budget <= 0:
                        break
                    vw = final_write.get((w.id, k))
                    graph.add(r, w, "rw", {"key": k, "value": vw, "read": None})
                    budget -= 1
        return graph, direct


def rw_register(
    *, consistency_models: Sequence[str] = ("serializable",), time_limit: float = 30.0
) -> RWRegisterChecker:
    """An rw-register checker for the given consistency models (validated now)."""
    prohibited_anomalies(consistency_models)
    return RWRegisterChecker(consistency_models=tuple(consistency_models), time_limit=time_limit)
