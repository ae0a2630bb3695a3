"""Elle's list-append checker.

Ops have ``f="txn"`` and a value of micro-ops ``[f, key, value]``:
``["append", k, v]`` appends ``v`` to the list at ``k``; ``["r", k, None]``
reads it (the completion carries the list).  Appended values must be unique
per key (the workload guarantees it), which makes every read reveal the
version order of its key: ``[1, 2, 3]`` says 1 was appended before 2 before
3, and which transaction wrote each element.

Inference (all sound under unique appends):

- version order of a key: its longest read; every other read must be a
  prefix of it (else ``incompatible-order``);
- ``ww``: the writers of consecutive elements are ordered;
- ``wr``: the writer of a read's last element precedes the reader;
- ``rw``: a reader precedes the writer of the element that follows what it
  read (it did not see that append);
- ``G1a``: an element written by a failed transaction was read;
- ``G1b``: a read ends in an element that its writer followed with another
  append to the same key;
- ``internal``: a read disagrees with the transaction's own earlier
  reads/appends of that key.

By example::

    >>> from jepsy.checkers.elle import list_append
    >>> list_append(consistency_models=("strict-serializable",))
    list_append(consistency_models=('strict-serializable',))
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

_ALLOWED = frozenset({"append", "r"})


def _internal(t: Txn) -> list[dict[str, Any]]:
    """Reads inside ``t`` that contradict its own earlier reads and appends."""
    out = []
    known: dict[Any, tuple[Any, ...] | None] = {}
    suffix: dict[Any, list[Any]] = {}
    for f, k, v in t.mops:
        if f == "append":
            suffix.setdefault(k, []).append(v)
            continue
        if v is None:
            continue
        lst = tuple(v)
        own = suffix.get(k, [])
        if own and (len(lst) < len(own) or list(lst[len(lst) - len(own) :]) != own):
            out.append(
                {
                    "txn": t.to_json(),
                    "key": k,
                    "read": list(lst),
                    "expected_suffix": list(own),
                    "explanation": f"T{t.id} appended {own!r} to key {k!r} but then read {list(lst)!r}",
                }
            )
        elif k in known and known[k] is not None:
            prev = known[k]
            assert prev is not None
            expected = list(prev) + own
            if list(lst) != expected:
                out.append(
                    {
                        "txn": t.to_json(),
                        "key": k,
                        "read": list(lst),
                        "expected": expected,
                        "explanation": f"T{t.id} read key {k!r} as {list(prev)!r} and later as {list(lst)!r}",
                    }
                )
        known[k] = lst
        suffix[k] = []
    return out


@dataclass(frozen=True, repr=False)
class ListAppendChecker(ElleChecker):
    """Checks list-append transaction histories; see the module docstring."""

    NAME: ClassVar[str] = "list_append"
    ALLOWED: ClassVar[frozenset[str]] = _ALLOWED

    def infer(self, txns: Sequence[Txn]) -> tuple[DepGraph, dict[str, list[dict[str, Any]]]]:
        direct: dict[str, list[dict[str, Any]]] = {
            "internal": [],
            "G1a": [],
            "G1b": [],
            "incompatible-order": [],
            "duplicate-elements": [],
            "garbage-read": [],
        }
        # writer of each (key, value); last append of each txn per key
        writer: dict[tuple[Any, Any], Txn] = {}
        last_append: dict[tuple[int, Any], Any] = {}
        for t in txns:
            for f, k, v in t.mops:
                if f == "append":
                    writer[(k, v)] = t
                    last_append[(t.id, k)] = v
        # reads by key (ok txns only)
        reads: dict[Any, list[tuple[Txn, tuple[Any, ...]]]] = {}
        for t in txns:
            if t.type != "ok":
                continue
            direct["internal"].extend(_internal(t))
            own_by_key: dict[Any, list[Any]] = {}
            for f, k, v in t.mops:
                if f == "append":
                    own_by_key.setdefault(k, []).append(v)
                    continue
                if v is None:
                    continue
                lst = tuple(v)
                if len(set(lst)) != len(lst):
                    dups = sorted({x for x in lst if lst.count(x) > 1}, key=repr)
                    direct["duplicate-elements"].append(
                        {"txn": t.to_json(), "key": k, "read": list(lst), "duplicates": dups}
                    )
                # strip this txn's own appends from the end for external edges
                own = own_by_key.get(k, [])
                ext = lst
                if own and list(lst[len(lst) - len(own) :]) == own:
                    ext = lst[: len(lst) - len(own)]
                reads.setdefault(k, []).append((t, ext))
        # version orders
        graph = DepGraph()
        for t in txns:
            if t.type != "fail":
                graph.g.add_node(t.id)
        order: dict[Any, tuple[Any, ...]] = {}
        for k, rs in reads.items():
            longest = max((r for _, r in rs), key=len, default=())
            for t, r in rs:
                if longest[: len(r)] != r:
                    direct["incompatible-order"].append(
                        {
                            "key": k,
                            "txn": t.to_json(),
                            "read": list(r),
                            "longest": list(longest),
                            "explanation": f"T{t.id} read key {k!r} as {list(r)!r}, not a prefix of {list(longest)!r}",
                        }
                    )
            order[k] = longest
        for k, seq in order.items():
            prev_w: Txn | None = None
            prev_v: Any = None
            for v in seq:
                w = writer.get((k, v))
                if w is None:
                    direct["garbage-read"].append(
                        {
                            "key": k,
                            "value": v,
                            "explanation": f"{v!r} was read from key {k!r} but never appended",
                        }
                    )
                    prev_w = None
                    continue
                if w.type == "fail":
                    prev_w = None
                    continue
                if prev_w is not None:
                    graph.add(
                        prev_w, w, "ww", {"key": k, "value": v, "prev": prev_v, "verb": "appended"}
                    )
                prev_w, prev_v = w, v
        # wr / rw, G1a / G1b
        for k, rs in reads.items():
            seq = order[k]
            pos = {v: i for i, v in enumerate(seq)}
            for t, r in rs:
                for v in r:
                    w = writer.get((k, v))
                    if w is not None and w.type == "fail":
                        direct["G1a"].append(
                            {
                                "key": k,
                                "value": v,
                                "reader": t.to_json(),
                                "writer": w.to_json(),
                                "explanation": f"T{t.id} read {v!r} from key {k!r}, appended by failed T{w.id}",
                            }
                        )
                if r:
                    last = r[-1]
                    w = writer.get((k, last))
                    if w is not None and w is not t and w.type != "fail":
                        graph.add(w, t, "wr", {"key": k, "value": last})
                        if last_append.get((w.id, k)) != last:
                            direct["G1b"].append(
                                {
                                    "key": k,
                                    "value": last,
                                    "reader": t.to_json(),
                                    "writer": w.to_json(),
                                    "explanation": f"T{t.id} read key {k!r} ending in {last!r}, an intermediate append of T{w.id}",
                                }
                            )
                nxt_i = pos[r[-1]] + 1 if r and r[-1] in pos else (0 if not r else None)
                if nxt_i is not None and nxt_i < len(seq):
                    nv = seq[nxt_i]
                    w2 = writer.get((k, nv))
                    if w2 is not None and w2.type != "fail":
                        graph.add(t, w2, "rw", {"key": k, "value": nv, "read": list(r)})
        return graph, direct


def list_append(
    *, consistency_models: Sequence[str] = ("serializable",), time_limit: float = 30.0
) -> ListAppendChecker:
    """A list-append checker for the given consistency models (validated now)."""
    prohibited_anomalies(consistency_models)
    return ListAppendChecker(consistency_models=tuple(consistency_models), time_limit=time_limit)
