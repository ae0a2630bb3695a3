"""From a history to search problems.

:func:`collect` pairs invocations with completions (per process, in one
pass), drops ``fail`` ops and nemesis ops, keeps ``info`` ops and invokes
that never completed as *pending*, and splits by key for Jepsen's
``independent`` workloads (values ``[key value]``).  :func:`build` turns
one part into a :class:`~.search.Problem` of int arrays: register models
take the fast path (interned values, inlined steps, the reductions of
:mod:`.reduce`); every other model goes through ``Model.step`` with
interned states and a step cache.

By example::

    >>> from jepsy.history import History
    >>> h = History.from_dicts([
    ...     {"process": 0, "type": "invoke", "f": "write", "value": 1},
    ...     {"process": 0, "type": "ok", "f": "write", "value": 1}])
    >>> [e.f for e in collect(h)[None]]
    ['write']
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any, overload

from jepsy.checkers.linearizable.models import (
    READ_FS,
    WRITE_FS,
    CASRegister,
    Model,
    Register,
    freeze,
)
from jepsy.checkers.linearizable.reduce import NIL, precheck_register, reduce_register
from jepsy.checkers.linearizable.search import CAS, GEN, GENREAD, INF, READ, WRITE, Problem
from jepsy.errors import ModelError
from jepsy.history import History, Op


@dataclass(slots=True)
class Entry:
    """One operation: call/return times (event positions x2; ``ret`` is
    INF while pending), what the model sees (``f``, frozen ``value``), and
    where in ``src`` (the history) its invocation and completion are
    (``cpos`` -1: pending; an ``info`` completion counts as pending).  The
    history's ops are looked up only to explain a failure."""

    call: int
    ret: int
    f: str
    value: Any
    src: Sequence[Op]
    ipos: int
    cpos: int

    @property
    def pending(self) -> bool:
        return self.ret >= INF

    @property
    def inv(self) -> Op:
        return self.src[self.ipos]

    @property
    def comp(self) -> Op | None:
        return None if self.cpos < 0 else self.src[self.cpos]

    def op(self) -> Op:
        """The op to show: the completion for ok ops, else the invocation."""
        return self.src[self.cpos if self.cpos >= 0 else self.ipos]


Slot = tuple[int, int]
"""(invoke position, ok completion position or -1) of one client operation."""


def _as_history(history: Sequence[Op]) -> History:
    return history if isinstance(history, History) else History(history, validate=False)


def pair(history: Sequence[Op]) -> list[Slot]:
    """Client invocations with their ok completions, in invocation order;
    failed ops are left out, ``info`` and unanswered ones have -1.

    Works on the history's columns: no op objects are built."""
    return pair_by_key(history, independent=False)[None]


def pair_by_key(history: Sequence[Op], *, independent: bool) -> dict[Hashable, list[Slot]]:
    """The slots of :func:`pair`, in one pass: per key of ``[key value]``
    values (Jepsen's ``independent`` histories; ops whose value is not such
    a pair are left out) when ``independent``, else all under the key None."""
    h = _as_history(history)
    cols = h.columns()
    types = cols.type
    values = cols.value
    whole: list[Slot] = []
    parts: dict[Hashable, list[Slot]] = {} if independent else {None: whole}
    get = parts.get
    scalars = _SCALARS
    for i, p, t, c in zip(count(), cols.process, types, h.partners()):
        if t != "invoke" or type(p) is not int:
            continue
        if c >= 0:
            ct = types[c]
            if ct != "ok":
                if ct == "fail":
                    continue
                c = -1  # info: pending
        if not independent:
            whole.append((i, c))
            continue
        iv = values[i]
        if (type(iv) is list or type(iv) is tuple) and len(iv) == 2:
            k = iv[0]
            if type(k) not in scalars:
                k = freeze(k)
            got = get(k)
            if got is None:
                parts[k] = [(i, c)]
            else:
                got.append((i, c))
    return parts


def to_entries(slots: list[Slot], history: Sequence[Op], *, independent: bool) -> list[Entry]:
    """Entries of slots, values frozen, unwrapped from ``[key value]`` when
    ``independent``."""
    h = _as_history(history)
    cols = h.columns()
    values = cols.value
    fs = cols.f
    out: list[Entry] = []
    append = out.append
    readish = _READISH
    scalars = _SCALARS
    for ipos, cpos in slots:
        iv = values[ipos]
        f = fs[ipos]
        if cpos >= 0:
            cv = values[cpos]
            if independent:
                iv = iv[1]
                cv = cv[1] if (type(cv) is list or type(cv) is tuple) and len(cv) == 2 else None
            value = cv if cv is not None else (None if f in readish else iv)
            ret = cpos + cpos
        else:
            if independent:
                iv = iv[1]
            value = iv
            ret = INF
        if type(value) not in scalars:
            value = freeze(value)
        append(Entry(ipos + ipos, ret, f, value, h, ipos, cpos))
    return out


def collect(history: Sequence[Op], *, independent: bool = False) -> dict[Hashable, list[Entry]]:
    """Entries per key (key None unless ``independent``), sorted by call."""
    h = _as_history(history)
    parts = pair_by_key(h, independent=independent)
    return {k: to_entries(v, h, independent=independent) for k, v in parts.items()}


_READISH = frozenset(("read", "get", "r", "dequeue"))
_SCALARS = frozenset((int, str, float, bool, type(None)))


@dataclass
class Built:
    """A part ready for the search: ``problem``, ``ids`` (op id -> Entry),
    state names for explanations, and a ``violation`` (entry, reason) when
    the pre-check already proved the part not linearizable.

    ``precheck``, when set, is that pre-check not run yet (the caller runs it
    only if a short search does not prove the part valid first: for a valid
    history it is pure cost); ``pending`` is how many of the part's ops were
    pending before the reductions (-1: not counted)."""

    problem: Problem
    ids: Sequence[Entry]
    model: Model
    states: list[Any] = field(default_factory=list)
    violation: tuple[Entry, str] | None = None
    precheck: Callable[[], tuple[Entry, str] | None] | None = None
    pending: int = -1


def build(entries: list[Entry], model: Model, *, reduce: bool = True) -> Built:
    """Turn one part's entries into a :class:`Problem` for ``model``."""
    live: list[Entry] = []
    for e in entries:
        if e.pending:
            pv = model.pending(e.f, e.value)
            if pv is None:
                continue
            if pv != (e.f, e.value):
                e = Entry(e.call, e.ret, pv[0], freeze(pv[1]), e.src, e.ipos, e.cpos)
        live.append(e)
    if type(model) in (Register, CASRegister):
        return _build_register(live, model, reduce=reduce)
    return _build_generic(live, model)


def _build_register(entries: list[Entry], model: Model, *, reduce: bool) -> Built:
    # The initial value is interned first, as NIL: the reductions treat it as
    # the value "written" before the history starts.
    ids, states, intern = _interner(model.init(), freeze_first=False)
    cas_ok = type(model) is CASRegister

    comp: list[list[int]] = []
    pend: list[list[int]] = []
    reads = {"read", "get", "r"}
    writes = {"write", "put", "w"}
    get = ids.get
    for n, e in enumerate(entries):
        f = e.f
        b = 0
        if f in reads:
            kd = READ
            a = get(e.value)
            if a is None:
                a = intern(e.value)
        elif f in writes:
            kd = WRITE
            a = get(e.value)
            if a is None:
                a = intern(e.value)
        elif f == "cas" and cas_ok:
            v = e.value
            if not isinstance(v, tuple) or len(v) != 2:
                raise ModelError(f"cas value must be [expected new], got {v!r} (op {e.inv.index})")
            kd = CAS
            a = intern(v[0])
            b = intern(v[1])
        else:
            raise ModelError(
                f"model {model.name!r} has no operation {f!r} (op {e.inv.index}); "
                "use read, write" + (" or cas" if cas_ok else "")
            )
        if e.ret >= INF:
            pend.append([e.call, kd, a, b, n])
        else:
            comp.append([e.call, e.ret, kd, a, b, n])
    violation = None
    if reduce:
        comp, pend, viol = reduce_register(comp, pend)
        if viol is not None:
            violation = (entries[viol[0]], viol[1])
    p = _register_problem(comp, pend)
    id_entries = [entries[r[5]] for r in comp] + [entries[r[4]] for r in pend]
    # A tightened pending op keeps its Entry (shown as the invocation).
    return Built(p, id_entries, model, states, violation)


class _SlotEntries(Sequence[Entry]):
    """``Built.ids`` of the fused register path: the Entry of op id ``i``,
    made only when an explanation asks for it."""

    def __init__(
        self, slots: list[Slot], order: list[int], history: History, independent: bool
    ) -> None:
        self._slots = slots
        self._order = order
        self._history = history
        self._independent = independent

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, i: int) -> Entry: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Entry]: ...
    def __getitem__(self, i: int | slice) -> Entry | Sequence[Entry]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        slot = self._slots[self._order[i]]
        return to_entries([slot], self._history, independent=self._independent)[0]


def build_register_slots(
    slots: list[Slot],
    history: Sequence[Op],
    model: Model,
    *,
    independent: bool,
    reduce: bool = True,
    defer_precheck: bool = False,
) -> Built:
    """:func:`build` for a :class:`Register` or :class:`CASRegister` straight
    from slots: the same problem as ``build(to_entries(...))``, in one pass
    over the history's columns, with no Entry objects (``ids`` makes them
    when an explanation needs one).  With ``defer_precheck`` the pre-check
    is left to the caller as ``Built.precheck``."""
    h = _as_history(history)
    cols = h.columns()
    values = cols.value
    fs = cols.f
    ids, states, intern = _interner(model.init(), freeze_first=True)
    cas_ok = type(model) is CASRegister
    scalars = _SCALARS
    readish = _READISH
    reads = READ_FS
    writes = WRITE_FS
    get = ids.get

    comp: list[list[int]] = []
    pend: list[list[int]] = []
    cadd = comp.append
    padd = pend.append
    n = -1
    pending_reads = 0
    for ipos, cpos in slots:
        n += 1
        f = fs[ipos]
        v = values[ipos]
        if independent:
            v = v[1]
        if cpos >= 0:
            cv = values[cpos]
            if independent:
                cv = cv[1] if (type(cv) is list or type(cv) is tuple) and len(cv) == 2 else None
            if cv is not None:
                v = cv
            elif f in readish:
                v = None
        elif f in reads:
            pending_reads += 1
            continue  # a pending read constrains nothing and changes nothing
        if f == "cas" and cas_ok:
            if (type(v) is not list and type(v) is not tuple) or len(v) != 2:
                raise ModelError(
                    f"cas value must be [expected new], got {freeze(v)!r} (op {h[ipos].index})"
                )
            x, y = v
            a = get(x) if type(x) in scalars else None
            if a is None:
                a = intern(x)
            b = get(y) if type(y) in scalars else None
            if b is None:
                b = intern(y)
            kd = CAS
        else:
            a = get(v) if type(v) in scalars else None
            if a is None:
                a = intern(v)
            b = 0
            if f in reads:
                kd = READ
            elif f in writes:
                kd = WRITE
            else:
                raise ModelError(
                    f"model {model.name!r} has no operation {f!r} (op {h[ipos].index}); "
                    "use read, write" + (" or cas" if cas_ok else "")
                )
        if cpos >= 0:
            cadd([ipos + ipos, cpos + cpos, kd, a, b, n])
        else:
            padd([ipos + ipos, kd, a, b, n])
    pending = pending_reads + len(pend)
    if reduce:
        comp, pend, viol = reduce_register(comp, pend, precheck=not defer_precheck)
    else:
        viol = None
    p = _register_problem(comp, pend)
    order = [r[5] for r in comp] + [r[4] for r in pend]
    entries = _SlotEntries(slots, order, h, independent)

    def as_violation(viol: tuple[int, str] | None) -> tuple[Entry, str] | None:
        if viol is None:
            return None
        return (to_entries([slots[viol[0]]], h, independent=independent)[0], viol[1])

    built = Built(p, entries, model, states, as_violation(viol), pending=pending)
    if reduce and defer_precheck:
        built.precheck = lambda: as_violation(precheck_register(comp, pend))
    return built


def _interner(
    init_value: Any, *, freeze_first: bool
) -> tuple[dict[Any, int], list[Any], Callable[[Any], int]]:
    """Register values to state ids: the initial value is NIL (0), and the
    reductions treat it as the value "written" before the history starts."""
    ids: dict[Any, int] = {init_value: NIL}
    states: list[Any] = [init_value]
    scalars = _SCALARS

    def intern(v: Any) -> int:
        if freeze_first and type(v) not in scalars:
            v = freeze(v)
        i = ids.get(v)
        if i is None:
            try:
                i = ids[v] = len(states)
            except TypeError:
                raise ModelError(f"register values must be hashable, got {v!r}") from None
            states.append(v)
        return i

    return ids, states, intern


def _register_problem(comp: list[list[int]], pend: list[list[int]]) -> Problem:
    """The search problem of register rows ([call, ret, kind, a, b, id] and
    [call, kind, a, b, id]), as :func:`reduce_register` leaves them."""
    cols = [list(c) for c in zip(*comp, strict=True)] if comp else [[] for _ in range(6)]
    return Problem(
        ccall=cols[0],
        cret=cols[1],
        ckind=cols[2],
        ca=cols[3],
        cb=cols[4],
        pcall=[r[0] for r in pend],
        pkind=[r[1] for r in pend],
        pa=[r[2] for r in pend],
        pb=[r[3] for r in pend],
        ppred=_preds([(r[1], r[2], r[3]) for r in pend]),
        init=NIL,
    )


def _preds(keys: list[Hashable]) -> list[int]:
    last: dict[Hashable, int] = {}
    out = []
    for i, k in enumerate(keys):
        out.append(last.get(k, -1))
        last[k] = i
    return out


def _prune(entries: list[Entry], model: Model) -> tuple[list[Entry], tuple[Entry, str] | None]:
    """Drop pending ops introducing values nobody observes; find ok ops
    observing values nothing introduces (see ``Model.introduces``)."""
    observed: set[Hashable] = set()
    introduced: set[Hashable] = set()
    for e in entries:
        v = model.introduces(e.f, e.value)
        if v is not None:
            introduced.add(v)
        if not e.pending:
            observed.update(model.observes(e.f, e.value))
    violation = None
    for e in entries:
        if not e.pending and violation is None:
            for v in model.observes(e.f, e.value):
                if v not in introduced:
                    violation = (e, f"it observes {v!r}, which no operation could have produced")
                    break
    kept = [
        e
        for e in entries
        if not e.pending or (v := model.introduces(e.f, e.value)) is None or v in observed
    ]
    return kept, violation


def _build_generic(entries: list[Entry], model: Model) -> Built:
    violation = None
    if type(model).introduces is not Model.introduces:
        entries, violation = _prune(entries, model)
    comp = [e for e in entries if not e.pending]
    pend = [e for e in entries if e.pending]
    ops = comp + pend
    states: list[Any] = []
    sids: dict[Hashable, int] = {}

    def sid_of(state: Any) -> int:
        k = model.key(state)
        try:
            i = sids.get(k)
        except TypeError:
            raise ModelError(
                f"model {model.name!r} state {state!r} is not hashable; give the model a key()"
            ) from None
        if i is None:
            i = sids[k] = len(states)
            states.append(state)
        return i

    init = sid_of(model.init())
    cache: dict[tuple[int, int], int] = {}
    fs = [e.f for e in ops]
    vs = [e.value for e in ops]
    step = model.step

    def gstep(opid: int, sid: int) -> int:
        key = (opid, sid)
        r = cache.get(key)
        if r is None:
            ok, new = step(states[sid], fs[opid], vs[opid])
            r = sid_of(new) if ok else -1
            cache[key] = r
        return r

    p = Problem(
        ccall=[e.call for e in comp],
        cret=[e.ret for e in comp],
        ckind=[GENREAD if model.is_read(e.f, e.value) else GEN for e in comp],
        ca=[0] * len(comp),
        cb=[0] * len(comp),
        pcall=[e.call for e in pend],
        pkind=[GEN] * len(pend),
        pa=[0] * len(pend),
        pb=[0] * len(pend),
        ppred=_preds([(e.f, e.value) for e in pend]),
        init=init,
        gstep=gstep,
    )
    return Built(p, ops, model, states, violation)
