"""Shared machinery for the Elle-style checkers: transactions, the
dependency graph, cycle search and classification, explanations.

Edges between transactions (T1 -> T2 means "T1 must come before T2"):

- ``ww``: T2 overwrote (or appended after) a version T1 wrote;
- ``wr``: T2 read a version T1 wrote;
- ``rw``: T1 read a version that T2's write replaced (anti-dependency);
- ``rt``: T1 completed before T2 was invoked (real time; strict models);
- ``process``: T1 and T2 ran on the same process, T1 first (session models).

A cycle is classified by its edges (Adya): only ``ww`` -> G0; ``ww``/``wr``
with at least one ``wr`` -> G1c; exactly one ``rw`` -> G-single; two or
more -> G2.  A cycle that needs an ``rt`` or ``process`` edge gets the
suffix ``-realtime`` or ``-process``.  Searches are bounded in count and
time; a search cut short makes the verdict ``unknown`` unless an anomaly
was already found.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx

from jepsy.checkers.core import Result
from jepsy.history import History, Op

if TYPE_CHECKING:
    from jepsy.core import Test

MOP_ALIASES = {
    "r": "r",
    "read": "r",
    "w": "w",
    "write": "w",
    "append": "append",
    "a": "append",
}

ANOMALY_DOCS: dict[str, str] = {
    "G0": "write cycle: transactions overwrote each other's writes in a cycle",
    "G1a": "aborted read: a transaction read a value written by a transaction that failed",
    "G1b": "intermediate read: a transaction read a version that its writer later overwrote",
    "G1c": "circular information flow: a cycle of write-write and write-read dependencies",
    "G-single": "read skew: a dependency cycle with exactly one anti-dependency (rw) edge",
    "G2": "anti-dependency cycle: a dependency cycle with two or more rw edges (e.g. write skew)",
    "internal": "a transaction's read disagrees with its own earlier reads and writes",
    "incompatible-order": "two reads of a list disagree on the order of its elements",
    "duplicate-elements": "a read of a list holds the same element twice",
    "garbage-read": "a read returned a value that no transaction ever wrote",
}

_CYCLE_BASES = ("G0", "G1c", "G-single", "G2")
_ALWAYS = frozenset({"internal", "incompatible-order", "duplicate-elements", "garbage-read"})

MODELS: dict[str, frozenset[str]] = {
    "read-uncommitted": frozenset({"G0"}),
    "read-committed": frozenset({"G0", "G1a", "G1b", "G1c"}),
    "snapshot-isolation": frozenset({"G0", "G1a", "G1b", "G1c", "G-single"}),
    "repeatable-read": frozenset({"G0", "G1a", "G1b", "G1c", "G-single", "G2"}),
    "serializable": frozenset({"G0", "G1a", "G1b", "G1c", "G-single", "G2"}),
}
_STRICT = {
    "strict-serializable": ("serializable", "realtime"),
    "strong-session-serializable": ("serializable", "process"),
    "strong-snapshot-isolation": ("snapshot-isolation", "realtime"),
}


def prohibited_anomalies(models: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(anomaly names the models prohibit, extra edge kinds they need: realtime/process)."""
    out: set[str] = set(_ALWAYS)
    extra: set[str] = set()
    for m in models:
        if m in MODELS:
            out |= MODELS[m]
        elif m in _STRICT:
            base, kind = _STRICT[m]
            out |= MODELS[base]
            out |= {f"{a}-{kind}" for a in MODELS[base] if a in _CYCLE_BASES}
            extra.add(kind)
        else:
            from jepsy.errors import ConfigError

            known = ", ".join(sorted([*MODELS, *_STRICT]))
            raise ConfigError(f"unknown consistency model {m!r}; known models: {known}")
    return frozenset(out), frozenset(extra)


def freeze(v: Any) -> Any:
    """Lists (as read from JSON/EDN) become tuples so they can be keys."""
    if isinstance(v, list | tuple):
        t = tuple(v)
        try:
            hash(t)  # C-speed check: flat tuples of scalars need no recursion
        except TypeError:
            return tuple(freeze(x) for x in t)
        return t
    return v


@dataclass(eq=False)
class Txn:
    """One transaction: its invoke, completion and micro-ops ``(f, key, value)``.

    For ``ok`` txns the micro-ops come from the completion (reads carry
    results); for ``info``/pending txns from the invoke (reads unknown)."""

    id: int
    invoke: Op
    completion: Op | None
    type: str
    mops: list[tuple[str, Any, Any]]

    @property
    def process(self) -> Any:
        return self.invoke.process

    def describe(self) -> str:
        parts = []
        for f, k, v in self.mops:
            if f == "r":
                parts.append(f"r {k!r} {v!r}")
            else:
                parts.append(f"{f} {k!r} {v!r}")
        st = "" if self.type == "ok" else f" ({self.type})"
        return f"T{self.id} [{', '.join(parts)}]{st}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "process": self.process,
            "type": self.type,
            "mops": [[f, k, list(v) if isinstance(v, tuple) else v] for f, k, v in self.mops],
            "index": self.invoke.index,
        }


class TxnFormatError(ValueError):
    pass


def parse_mops(value: Any, *, allowed: frozenset[str]) -> list[tuple[str, Any, Any]]:
    if not isinstance(value, list | tuple):
        raise TxnFormatError(f"txn value must be a list of micro-ops, got {value!r}")
    out = []
    for m in value:
        if not isinstance(m, list | tuple) or len(m) != 3:
            raise TxnFormatError(f"micro-op must be [f, key, value], got {m!r}")
        f = MOP_ALIASES.get(str(m[0]))
        if f is None or f not in allowed:
            raise TxnFormatError(
                f"micro-op f must be one of {sorted(allowed)}, got {m[0]!r} in {m!r}"
            )
        out.append((f, freeze(m[1]), freeze(m[2])))
    return out


def collect_txns(
    history: History, *, allowed: frozenset[str], f: str = "txn"
) -> tuple[list[Txn], list[str]]:
    """Transactions of ``history`` (client ops with ``f``), plus format problems."""
    txns: list[Txn] = []
    problems: list[str] = []
    for inv, comp in history.pairs():
        if not inv.is_client or inv.f != f:
            continue
        typ = "info" if comp is None else comp.type
        src = comp if (comp is not None and comp.type == "ok") else inv
        try:
            mops = parse_mops(src.value, allowed=allowed)
        except TxnFormatError as e:
            if len(problems) < 20:
                problems.append(f"op {src.index}: {e}")
            continue
        txns.append(Txn(id=len(txns), invoke=inv, completion=comp, type=typ, mops=mops))
    return txns, problems


@dataclass
class DepGraph:
    """Transactions as nodes; each edge keeps its kinds and a reason per kind."""

    g: nx.DiGraph[int] = field(default_factory=nx.DiGraph)

    def add(self, a: Txn, b: Txn, kind: str, why: Mapping[str, Any]) -> None:
        if a is b:
            return
        data = self.g.get_edge_data(a.id, b.id)
        if data is None:
            self.g.add_edge(a.id, b.id, kinds={kind: dict(why)})
        elif kind not in data["kinds"]:
            data["kinds"][kind] = dict(why)

    def kinds(self, a: int, b: int) -> Mapping[str, Mapping[str, Any]]:
        kinds: Mapping[str, Mapping[str, Any]] = self.g.edges[a, b]["kinds"]
        return kinds


def add_realtime_edges(graph: DepGraph, txns: Sequence[Txn]) -> None:
    """T1 -rt-> T2 when ok T1 completed before T2 was invoked (transitively reduced)."""
    events: list[tuple[int, int, int, Txn]] = []
    for t in txns:
        events.append((t.invoke.index, 1, t.id, t))
        if t.type == "ok" and t.completion is not None:
            events.append((t.completion.index, 0, t.id, t))
    events.sort(key=lambda e: (e[0], e[1]))
    frontier: set[int] = set()
    preds: dict[int, frozenset[int]] = {}
    by_id = {t.id: t for t in txns}
    for _, is_invoke, tid, t in events:
        if is_invoke:
            preds[tid] = frozenset(frontier)
            for p in frontier:
                graph.add(by_id[p], t, "rt", {})
        else:
            frontier -= preds.get(tid, frozenset())
            frontier.add(tid)


def add_process_edges(graph: DepGraph, txns: Sequence[Txn]) -> None:
    """Consecutive ok transactions of one process are ordered."""
    last: dict[Any, Txn] = {}
    for t in sorted(txns, key=lambda t: t.invoke.index):
        if t.type != "ok":
            continue
        p = last.get(t.process)
        if p is not None:
            graph.add(p, t, "process", {})
        last[t.process] = t


# -- cycle search -------------------------------------------------------------

_DEP = frozenset({"ww", "wr"})


class _Budget:
    def __init__(self, deadline: float, max_searches: int) -> None:
        self.deadline = deadline
        self.left = max_searches
        self.exhausted = False

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() > self.deadline:
            self.exhausted = True
            return False
        self.left -= 1
        return True


def _shortest_path(
    g: nx.DiGraph[int], src: int, dst: int, ok: Callable[[Mapping[str, Any]], bool], nodes: set[int]
) -> list[int] | None:
    """BFS path src -> dst over edges whose kinds satisfy ``ok``, within ``nodes``."""
    if src == dst:
        return [src]
    prev: dict[int, int] = {src: src}
    q: deque[int] = deque([src])
    while q:
        u = q.popleft()
        for v, data in g.succ[u].items():
            if v in prev or v not in nodes or not ok(data["kinds"]):
                continue
            prev[v] = u
            if v == dst:
                path = [v]
                while path[-1] != src:
                    path.append(prev[path[-1]])
                return path[::-1]
            q.append(v)
    return None


def _pick_kind(kinds: Mapping[str, Any], order: Sequence[str]) -> str:
    for k in order:
        if k in kinds:
            return k
    return next(iter(kinds))


def _has(kinds: Mapping[str, Any], allowed: frozenset[str]) -> bool:
    return any(k in allowed for k in kinds)


def _scc_index(nodes: Iterable[int], edges: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Node -> id of its strongly connected component (only non-trivial ones)."""
    sub: nx.DiGraph[int] = nx.DiGraph()
    sub.add_nodes_from(nodes)
    sub.add_edges_from(edges)
    out: dict[int, int] = {}
    for i, comp in enumerate(nx.strongly_connected_components(sub)):
        if len(comp) > 1:
            for n in comp:
                out[n] = i
    return out


class _CycleSearch:
    """Finds and classifies cycles, bounded by count per type, searches and time.

    Every edge inside a strongly connected component lies on a cycle, so the
    search first computes, per anomaly type, the components of the subgraph
    of the edge kinds that type allows; an edge is tried only when both its
    ends share such a component, and then the BFS that closes the cycle is
    certain to succeed.  The cost is a few SCC passes plus one BFS per
    reported cycle."""

    def __init__(self, graph: DepGraph, max_per_type: int, budget: _Budget) -> None:
        self.graph = graph
        self.g = graph.g
        self.max_per_type = max_per_type
        self.budget = budget
        self.found: dict[str, list[list[tuple[int, int, str]]]] = {}
        self.seen: set[frozenset[tuple[int, int]]] = set()

    def _room(self, name: str) -> bool:
        return len(self.found.get(name, [])) < self.max_per_type

    def _path(
        self, src: int, dst: int, allowed: frozenset[str], comp: set[int]
    ) -> list[int] | None:
        return _shortest_path(self.g, src, dst, lambda k: _has(k, allowed), comp)

    def _reachable(self, src: int, allowed: frozenset[str], comp: set[int]) -> set[int]:
        seen = {src}
        q: deque[int] = deque([src])
        succ = self.g.succ
        while q:
            u = q.popleft()
            for v, data in succ[u].items():
                if v not in seen and v in comp and _has(data["kinds"], allowed):
                    seen.add(v)
                    q.append(v)
        return seen

    def _uses_extra(self, edges: Sequence[tuple[int, int]], extra: frozenset[str]) -> bool:
        """In an extra pass, only cycles that need an rt/process edge are new."""
        if not extra:
            return True
        base = _DEP | {"rw"}
        return any(not (set(self.graph.kinds(a, b)) & base) for a, b in edges)

    def _record(
        self, name: str, edges: list[tuple[int, int]], first_kind: str | None, prefer: Sequence[str]
    ) -> None:
        sig = frozenset(edges)
        if sig in self.seen:
            return
        self.seen.add(sig)
        steps = []
        for i, (a, b) in enumerate(edges):
            kind = (
                first_kind
                if (i == 0 and first_kind)
                else _pick_kind(self.graph.kinds(a, b), prefer)
            )
            steps.append((a, b, kind))
        self.found.setdefault(name, []).append(steps)

    def component(
        self, comp: set[int], edges: list[tuple[int, int]], extra: frozenset[str], suffix: str
    ) -> bool:
        """Search one strongly connected component; False when the budget ran out."""
        order = ["ww", "wr", "rt", "process"]
        kinds = {e: self.graph.kinds(*e) for e in edges}
        dep = _DEP | extra
        ww_only = frozenset({"ww"}) | extra
        scc_ww = _scc_index(comp, [e for e in edges if _has(kinds[e], ww_only)])
        scc_dep = _scc_index(comp, [e for e in edges if _has(kinds[e], dep)])
        for base, allowed, scc in (("G0", ww_only, scc_ww), ("G1c", dep, scc_dep)):
            name = base + suffix
            for a, b in edges:
                if not self._room(name):
                    break
                k = kinds[(a, b)]
                if not _has(k, allowed) or a not in scc or scc.get(b) != scc[a]:
                    continue
                if base == "G1c" and "wr" not in k and not (extra & set(k)):
                    continue
                if not self.budget.take():
                    return False
                path = self._path(b, a, allowed, comp)
                if path is None:
                    continue
                cyc = [(a, b), *itertools.pairwise(path)]
                if base == "G1c" and all("ww" in self.graph.kinds(x, y) for x, y in cyc):
                    continue  # a G0, reported by the G0 pass
                if self._uses_extra(cyc, extra):
                    self._record(name, cyc, None, order)
        # G-single: an rw edge a -> b closed by a path b -> a of dependency
        # edges only; G2: closed only through another rw edge (a and b share
        # the component, so some path exists).  One BFS per distinct b.
        reach: dict[int, set[int]] = {}
        for base in ("G-single", "G2"):
            name = base + suffix
            for a, b in edges:
                if not self._room(name):
                    break
                if "rw" not in kinds[(a, b)]:
                    continue
                if b not in reach:
                    if not self.budget.take():
                        return False
                    reach[b] = self._reachable(b, dep, comp)
                if (a in reach[b]) != (base == "G-single"):
                    continue
                if not self.budget.take():
                    return False
                path = self._path(b, a, dep if base == "G-single" else dep | {"rw"}, comp)
                if path is None:
                    continue
                cyc = [(a, b), *itertools.pairwise(path)]
                if self._uses_extra(cyc, extra):
                    self._record(name, cyc, "rw", [*order, "rw"])
        return True


def find_cycles(
    graph: DepGraph,
    *,
    extra_kinds: frozenset[str] = frozenset(),
    max_per_type: int = 8,
    time_limit: float = 30.0,
    max_searches: int = 20000,
) -> tuple[dict[str, list[list[tuple[int, int, str]]]], bool]:
    """Cycles by anomaly type, each a list of (from, to, kind) steps.

    Returns (cycles, complete); complete is False if a budget ran out."""
    search = _CycleSearch(graph, max_per_type, _Budget(time.monotonic() + time_limit, max_searches))
    all_edges = [(a, b, set(d["kinds"])) for a, b, d in graph.g.edges(data=True)]
    if not _scc_index(graph.g.nodes, [(a, b) for a, b, _ in all_edges]):
        return search.found, True  # acyclic: nothing to classify
    passes: list[tuple[str, frozenset[str]]] = [("", frozenset())]
    for kind in sorted(extra_kinds):
        passes.append((f"-{kind}", frozenset({"rt" if kind == "realtime" else "process"})))
    for suffix, extra in passes:
        allowed = _DEP | {"rw"} | extra
        sub_edges = [(a, b) for a, b, k in all_edges if k & allowed]
        comps: dict[int, list[tuple[int, int]]] = {}
        scc = _scc_index(graph.g.nodes, sub_edges)
        for a, b in sub_edges:
            ca = scc.get(a)
            if ca is not None and scc.get(b) == ca:
                comps.setdefault(ca, []).append((a, b))
        members: dict[int, set[int]] = {}
        for n, c in scc.items():
            members.setdefault(c, set()).add(n)
        for c, comp_edges in comps.items():
            if not search.component(members[c], comp_edges, extra, suffix):
                return search.found, False
    return search.found, True


# -- explanations -------------------------------------------------------------


def explain_step(graph: DepGraph, txns: Sequence[Txn], a: int, b: int, kind: str) -> str:
    why = graph.kinds(a, b).get(kind, {})
    ta, tb = f"T{a}", f"T{b}"
    k = why.get("key")
    if kind == "ww":
        return f"{ta} < {tb}: {tb} {why.get('verb', 'wrote')} {why.get('value')!r} to key {k!r} after {ta}'s {why.get('prev')!r}"
    if kind == "wr":
        return f"{ta} < {tb}: {tb} observed {ta}'s write of {why.get('value')!r} to key {k!r}"
    if kind == "rw":
        return f"{ta} < {tb}: {ta} read key {k!r} = {why.get('read')!r}, which did not include {tb}'s write of {why.get('value')!r}"
    if kind == "rt":
        return f"{ta} < {tb}: {ta} completed before {tb} began (real time)"
    if kind == "process":
        return f"{ta} < {tb}: both ran on process {txns[a].process}, {ta} first"
    return f"{ta} < {tb} ({kind})"


def cycle_json(
    graph: DepGraph, txns: Sequence[Txn], steps: list[tuple[int, int, str]], name: str
) -> dict[str, Any]:
    ids = []
    for a, _, _ in steps:
        if a not in ids:
            ids.append(a)
    lines = [explain_step(graph, txns, a, b, k) for a, b, k in steps]
    story = "Let:\n" + "\n".join(f"  {txns[i].describe()}" for i in ids)
    story += "\nThen:\n" + "\n".join(f"  - {ln}" for ln in lines)
    story += f"\nso T{ids[0]} must come before itself: a cycle ({name})."
    return {
        "type": name,
        "cycle": [txns[i].to_json() for i in ids],
        "steps": [
            {"from": a, "to": b, "type": k, "explanation": ln}
            for (a, b, k), ln in zip(steps, lines, strict=True)
        ],
        "explanation": story,
    }


def build_result(
    *,
    txns: Sequence[Txn],
    graph: DepGraph,
    direct: Mapping[str, list[dict[str, Any]]],
    prohibited: frozenset[str],
    extra_kinds: frozenset[str],
    models: Sequence[str],
    time_limit: float,
    problems: Sequence[str],
    max_examples: int = 8,
) -> Result:
    cycles, complete = find_cycles(graph, extra_kinds=extra_kinds, time_limit=time_limit)
    anomalies: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for name, items in direct.items():
        if items:
            counts[name] = len(items)
            anomalies[name] = list(items[:max_examples])
    for name, cyc_list in cycles.items():
        counts[name] = len(cyc_list)
        anomalies[name] = [cycle_json(graph, txns, s, name) for s in cyc_list[:max_examples]]
    bad = sorted(a for a in anomalies if a in prohibited)
    details: dict[str, Any] = {
        "consistency_models": list(models),
        "txn_count": len(txns),
        "edge_count": graph.g.number_of_edges(),
        "anomaly_types": sorted(anomalies),
        "anomaly_counts": counts,
        "anomalies": anomalies,
        "prohibited_found": bad,
        "cycle_search_complete": complete,
    }
    if problems:
        details["format_problems"] = list(problems)
    if bad:
        return Result(valid=False, details=details)
    if not complete:
        return Result(valid="unknown", details=details, error="cycle search budget exhausted")
    if problems:
        return Result(valid="unknown", details=details, error="some transactions were malformed")
    return Result(valid=True, details=details)


@dataclass(frozen=True)
class ElleChecker:
    """The shared shell of the Elle checkers: collect transactions, let the
    subclass infer dependencies (``infer``), add real-time/process edges when
    the models ask for them, search and classify cycles."""

    consistency_models: tuple[str, ...] = ("serializable",)
    time_limit: float = 30.0
    f: str = "txn"

    NAME: ClassVar[str] = "elle"
    ALLOWED: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        return f"{self.NAME}(consistency_models={self.consistency_models!r})"

    def infer(self, txns: Sequence[Txn]) -> tuple[DepGraph, dict[str, list[dict[str, Any]]]]:
        """The dependency graph and the non-cycle anomalies found on the way."""
        raise NotImplementedError

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        prohibited, extra = prohibited_anomalies(self.consistency_models)
        txns, problems = collect_txns(history, allowed=self.ALLOWED, f=self.f)
        graph, direct = self.infer(txns)
        if "realtime" in extra:
            add_realtime_edges(graph, [t for t in txns if t.type != "fail"])
        if "process" in extra:
            add_process_edges(graph, txns)
        return build_result(
            txns=txns,
            graph=graph,
            direct=direct,
            prohibited=prohibited,
            extra_kinds=extra,
            models=self.consistency_models,
            time_limit=float(opts.get("time_limit") or self.time_limit),
            problems=problems,
        )
