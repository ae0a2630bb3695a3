"""What the report shows of a history, read in one pass without building ops.

A report of a 100,000-op run must not cost more than the run's checking:
reading ``history.jsonl`` into a validated :class:`~jepsy.history.History`
builds an :class:`~jepsy.history.Op` per line, and the report only needs a
few numbers per op.  :func:`read_digest` decodes the file in chunks with the
fast JSON decoder and keeps only what the page draws: counts per ``f`` and
outcome (the ``stats`` checker's table), the latency points and nemesis ops
of the perf plots (:class:`~jepsy.checkers.perf.PerfData`), the first
nemesis events with their values, the processes and the duration.

The same pass checks what :func:`~jepsy.history.read_history` checks (field
types, a process never invoking twice, completions matching their
invocation).  Anything unusual — a malformed line, a blank line in an odd
place, a field of the wrong type, an invalid history — sends the file
through :func:`~jepsy.history.read_history` instead, so the report says
exactly what the reader would say (file and line), and a history the reader
accepts gives the same digest either way.  A torn last line (a run killed
mid-write) is dropped, as the reader drops it.

By example::

    >>> d = digest_of(History.from_dicts([
    ...     {"process": 0, "type": "invoke", "f": "read", "time": 0},
    ...     {"process": 0, "type": "ok", "f": "read", "value": 1, "time": 2_000_000},
    ... ]))
    >>> d.by_f["read"]["ok_count"], d.perf.latencies[("read", "ok")]
    (1, [(0.0, 2.0)])
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.history import History, read_history

if TYPE_CHECKING:  # jepsy.checkers.perf draws with jepsy.report.svg: import it late
    from jepsy.checkers.perf import PerfData

_loads: Callable[[bytes], Any] = json.loads
try:  # orjson decodes several times faster; json is the fallback
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    pass

#: Nemesis events kept with their values and errors (all are counted).
MAX_EVENTS = 200
#: Bytes decoded at a time: bounds the memory of decoded, not yet summarised ops.
CHUNK = 1 << 20

_COMPLETIONS = frozenset(("ok", "fail", "info"))
_OP_TYPES = frozenset(("invoke", "ok", "fail", "info"))


@dataclass(frozen=True)
class NemesisEvent:
    """A nemesis op as the report lists it."""

    time: int
    type: str
    f: str
    value: Any
    error: Any


@dataclass(frozen=True)
class HistoryDigest:
    """The numbers of a history the report draws.

    ``by_f``: per client ``f`` (sorted) ``count ok_count fail_count
    info_count`` of invocations, a never-completed one counted as ``info``
    (exactly the ``stats`` checker's ``by_f``); ``perf``: what the perf
    plots need; ``nemesis_events``: the first :data:`MAX_EVENTS` nemesis
    ops (``perf.nemesis`` has all of them)."""

    op_count: int
    client_op_count: int
    process_count: int
    by_f: dict[str, dict[str, int]]
    perf: PerfData
    nemesis_events: list[NemesisEvent]

    @property
    def nemesis_count(self) -> int:
        return len(self.perf.nemesis)

    @property
    def end_ns(self) -> int:
        return self.perf.end_ns


class _Irregular(Exception):
    """The fast path cannot vouch for this file; the full reader decides."""


def read_digest(path: str | os.PathLike[str]) -> HistoryDigest:
    """The digest of a history file (JSONL fast; EDN and odd files through the reader).

    Raises :class:`~jepsy.errors.HistoryError` exactly when
    :func:`~jepsy.history.read_history` would."""
    src = os.fspath(path)
    if src.endswith((".jsonl", ".json", ".ndjson")):
        try:
            with open(src, "rb") as fh:
                data = fh.read()
            return _digest_dicts(_decoded(data))
        except (_Irregular, OSError):
            pass
    return digest_of(read_history(src))


def _decoded(data: bytes) -> Iterator[list[Any]]:
    """The JSON values of ``data``'s lines, a chunk of lines at a time.

    Raises :class:`_Irregular` for anything but one JSON value per line;
    a last line without its newline that does not decode is dropped."""
    n = len(data)
    pos = 0
    for _ in range(n // CHUNK + 2):  # one more round than there are chunks
        if pos >= n:
            return
        end = data.find(b"\n", pos + CHUNK)
        if end < 0:
            end = n
        chunk = data[pos:end]
        pos = end + 1
        last = end >= n - 1
        if last and not data.endswith(b"\n"):
            head, _, tail = chunk.rpartition(b"\n")
            try:
                torn = _loads(tail)
            except ValueError:
                # orjson rejects NaN/Infinity, which the reader's decoder
                # accepts: only a tail neither decodes is torn.
                try:
                    torn = json.loads(tail)
                except ValueError:
                    torn = None
            if type(torn) is not dict:  # torn: the reader drops it too
                chunk = head
        if last and chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        if not chunk:
            continue
        if chunk.startswith(b"\n") or b"\n\n" in chunk:
            raise _Irregular("blank lines")
        try:
            values = _loads(b"[" + chunk.replace(b"\n", b",") + b"]")
        except ValueError:
            raise _Irregular("not one JSON value per line") from None
        if type(values) is not list or len(values) != chunk.count(b"\n") + 1:
            raise _Irregular("a line with several values")
        yield values
    raise _Irregular("too many chunks")  # pragma: no cover - the loop is bounded above


def _digest_dicts(chunks: Iterable[list[Any]]) -> HistoryDigest:
    """The digest of ops given as decoded JSON objects, with the reader's checks."""
    from jepsy.checkers.perf import PerfData

    open_: dict[int, tuple[str, int]] = {}  # client process -> (f, invoke time)
    outcomes: dict[tuple[str, str], int] = {}
    lat: dict[tuple[str, str], list[tuple[float, float]]] = {}
    nemesis: list[tuple[int, str, str]] = []
    events: list[NemesisEvent] = []
    procs: set[int] = set()
    count = 0
    end = -(1 << 64)  # below any time; 0 when there are no ops
    pop = open_.pop
    for chunk in chunks:
        count += len(chunk)
        for d in chunk:
            if type(d) is not dict:
                raise _Irregular("not an object")
            try:
                p = d["process"]
                typ = d["type"]
                f = d["f"]
            except KeyError:
                raise _Irregular("a missing field") from None
            tm = d.get("time", -1)
            if type(tm) is not int:
                tm = _time(tm)
            idx = d.get("index")  # the reader renumbers; no number shown here depends on it
            if type(idx) is not int and idx is not None:
                raise _Irregular("index")
            if type(f) is not str or type(typ) is not str:
                raise _Irregular("f or type")
            if tm > end:
                end = tm
            if type(p) is int:
                if typ == "invoke":
                    if p in open_:
                        raise _Irregular("invoked twice")
                    open_[p] = (f, tm)
                    procs.add(p)
                    continue
                if typ not in _COMPLETIONS:
                    raise _Irregular("type")
                inv = pop(p, None)
                if inv is None or inv[0] != f:
                    raise _Irregular("completion without its invocation")
                key = (f, typ)
                outcomes[key] = outcomes.get(key, 0) + 1
                t0 = inv[1]
                if t0 >= 0 and tm >= 0:
                    pts = lat.get(key)
                    if pts is None:
                        pts = lat[key] = []
                    pts.append((t0 / 1e9, (tm - t0) / 1e6))
            elif type(p) is str:
                if typ not in _OP_TYPES:
                    raise _Irregular("type")
                nemesis.append((tm, typ, f))
                if len(events) < MAX_EVENTS:
                    events.append(NemesisEvent(tm, typ, f, d.get("value"), d.get("error")))
            else:
                raise _Irregular("process")
    for f, _t in open_.values():  # never completed: counted as info
        outcomes[(f, "info")] = outcomes.get((f, "info"), 0) + 1
    return HistoryDigest(
        op_count=count,
        client_op_count=count - len(nemesis),
        process_count=len(procs),
        by_f=_by_f(outcomes),
        perf=PerfData(lat, nemesis, end if count else 0),
        nemesis_events=events,
    )


def _time(tm: Any) -> int:
    """``op_from_mapping``'s reading of a time that is not an int."""
    if tm is None:
        return -1
    if isinstance(tm, float) and math.isfinite(tm):
        return int(tm)
    raise _Irregular("time")


def _by_f(outcomes: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (f, typ), n in sorted(outcomes.items()):
        s = out.setdefault(f, {"count": 0, "ok_count": 0, "fail_count": 0, "info_count": 0})
        s["count"] += n
        s[f"{typ}_count"] += n
    return out


def digest_of(history: History) -> HistoryDigest:
    """The digest of a history already read (EDN, or a file the fast path declined)."""
    from jepsy.checkers.perf import perf_data

    outcomes: dict[tuple[str, str], int] = {}
    procs: set[Any] = set()
    clients = 0
    events: list[NemesisEvent] = []
    for op in history:
        p = op.process
        if type(p) is int or op.is_client:
            clients += 1
            procs.add(p)
        elif len(events) < MAX_EVENTS:
            events.append(NemesisEvent(op.time, op.type, str(op.f), op.value, op.error))
    for inv, comp in history.pairs():
        if type(inv.process) is int or inv.is_client:
            key = (str(inv.f), "info" if comp is None else comp.type)
            outcomes[key] = outcomes.get(key, 0) + 1
    return HistoryDigest(
        op_count=len(history),
        client_op_count=clients,
        process_count=len(procs),
        by_f=_by_f(outcomes),
        perf=perf_data(history),
        nemesis_events=events,
    )
