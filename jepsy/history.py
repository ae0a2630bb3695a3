"""Operations and histories, with Jepsen's meaning.

An :class:`Op` is one event: a process *invokes* an operation, and later the
same process *completes* it with ``ok`` (it happened, ``value`` is the
result), ``fail`` (it certainly did not happen) or ``info`` (unknown: it may
take effect at any time after the invoke, or never).  A process is
sequential: it never has two operations outstanding, and after ``info`` it is
retired (its thread goes on as a new process).  Nemesis events use the
process ``"nemesis"``.

A :class:`History` is a read-only sequence of ops in the order they happened,
with O(1) lookup between an invocation and its completion.

By example::

    >>> h = History.from_dicts([
    ...     {"process": 0, "type": "invoke", "f": "write", "value": 1},
    ...     {"process": 0, "type": "ok", "f": "write", "value": 1},
    ... ])
    >>> h.completion(h[0]).type
    'ok'

Values are JSON-like (``None``, bools, numbers, strings, lists, dicts); EDN
keywords read from Jepsen histories become :class:`jepsy.edn.Keyword`, a
``str`` subclass, so that ``"read" == Keyword("read")``.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import gc
import json
import json.scanner
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import repeat
from operator import attrgetter, eq, itemgetter, lt
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast, overload

from jepsy.errors import HistoryError

if TYPE_CHECKING:
    from jepsy._jsonops import JsonOp

_loads: Callable[[str], Any] = json.loads
_C_LOADS = False  # True when _loads is C all the way (no Python frame per call)
# (text, index) -> (value, end index); the C scanner json.loads itself uses.
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    cast(Any, json.JSONDecoder())  # typeshed's stub for make_scanner is too narrow
)
try:  # orjson decodes two to three times faster than json
    import orjson

    _loads = orjson.loads
    _C_LOADS = True
except ImportError:  # pragma: no cover - depends on the environment
    pass

OpType: TypeAlias = Literal["invoke", "ok", "fail", "info"]
Process: TypeAlias = int | str
OP_TYPES: frozenset[str] = frozenset(("invoke", "ok", "fail", "info"))
NEMESIS = "nemesis"
_T = TypeVar("_T")

log = logging.getLogger(__name__)

_FIELDS = ("index", "time", "process", "type", "f", "value", "node", "error")


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """One history event.

    ``index`` is the position in the history (-1 for an op not yet recorded),
    ``time`` nanoseconds since the start of the test (monotonic clock),
    ``process`` an int for clients or ``"nemesis"``, ``type`` one of
    ``invoke | ok | fail | info``, ``f`` the function (``"read"``,
    ``"write"``, ``"cas"`` ...), ``value`` its argument or result, ``node``
    the node the client talked to, ``error`` why it failed or is unknown.
    ``extra`` keeps any other fields a history file carried (round-tripped).
    """

    index: int = -1
    time: int = -1
    process: Process
    type: OpType
    f: str
    value: Any = None
    node: str | None = None
    error: Any = None
    extra: Mapping[str, Any] | None = None

    @property
    def is_invoke(self) -> bool:
        return self.type == "invoke"

    @property
    def is_ok(self) -> bool:
        return self.type == "ok"

    @property
    def is_fail(self) -> bool:
        return self.type == "fail"

    @property
    def is_info(self) -> bool:
        return self.type == "info"

    @property
    def is_client(self) -> bool:
        """True for client ops (integer process), False for the nemesis."""
        return isinstance(self.process, int) and not isinstance(self.process, bool)

    def replace(self, **changes: Any) -> Op:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``None`` node/error and empty extra are omitted."""
        d: dict[str, Any] = {
            "index": self.index,
            "time": self.time,
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "value": self.value,
        }
        if self.node is not None:
            d["node"] = self.node
        if self.error is not None:
            d["error"] = self.error
        if self.extra:
            for k, v in self.extra.items():
                if k not in d:
                    d[k] = v
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, index: int = -1) -> Op:
        """Build an op from a mapping; raises :class:`HistoryError` on bad fields.

        ``index`` is used when the mapping has none."""
        return op_from_mapping(d, index)


def _short(d: Any, limit: int = 200) -> str:
    s = repr(d)
    return s if len(s) <= limit else s[: limit - 3] + "..."


_FIELD_SET = frozenset(_FIELDS)
_TYPE_NAMES: dict[Any, OpType] = {"invoke": "invoke", "ok": "ok", "fail": "fail", "info": "info"}


def op_from_mapping(d: Mapping[str, Any], index: int = -1) -> Op:
    """:meth:`Op.from_dict`, tuned for readers: same checks, same errors.

    Keys and strings may be :class:`jepsy.edn.Keyword`; ``type``, ``f`` and
    a string ``process`` become plain ``str`` (``:nemesis`` -> ``"nemesis"``)."""
    try:
        process = d["process"]
        typ = d["type"]
        f = d["f"]
    except KeyError as e:
        raise HistoryError(f"op is missing the field {e.args[0]!r}: {_short(d)}") from None
    try:
        t = _TYPE_NAMES.get(typ)
    except TypeError:
        t = None
    if t is None:
        raise HistoryError(
            f"op type must be one of invoke, ok, fail, info; got {typ!r}: {_short(d)}"
        )
    if type(process) is not int:
        if isinstance(process, bool) or not isinstance(process, int | str):
            raise HistoryError(
                f"op process must be an int or a string; got {process!r}: {_short(d)}"
            )
        process = str(process) if isinstance(process, str) else int(process)
    if type(f) is not str:
        if f is None:
            f = ""
        elif isinstance(f, str):
            f = str(f)
        else:
            raise HistoryError(f"op f must be a string; got {f!r}: {_short(d)}")
    idx = d.get("index")
    if type(idx) is not int:
        if idx is None:
            idx = index
        elif isinstance(idx, bool) or not isinstance(idx, int):
            raise HistoryError(f"op index must be an int; got {idx!r}: {_short(d)}")
    tm = d.get("time")
    if type(tm) is not int:
        if tm is None:
            tm = -1
        elif isinstance(tm, bool) or not isinstance(tm, int | float) or tm != tm:
            raise HistoryError(f"op time must be a number of nanoseconds; got {tm!r}: {_short(d)}")
        else:
            tm = int(tm)
    node = d.get("node")
    if node is not None and type(node) is not str:
        node = str(node)
    extra = None if d.keys() <= _FIELD_SET else {k: v for k, v in d.items() if k not in _FIELD_SET}
    return _build_op(idx, tm, process, t, f, d.get("value"), node, d.get("error"), extra)


class _OpBuilder:
    """An unfrozen twin of :class:`Op` (same slots, so same memory layout)."""

    __slots__ = Op.__slots__


_FAST_BUILD = Op.__slots__ == (*_FIELDS, "extra")


@dataclass(frozen=True, slots=True)
class Columns:
    """A history as parallel columns, one entry per op (see :meth:`History.columns`).

    ``index`` is a ``range`` when the history is dense (op i has index i)."""

    index: Sequence[int]
    time: Sequence[int]
    process: Sequence[Process]
    type: Sequence[OpType]
    f: Sequence[str]
    value: Sequence[Any]
    node: Sequence[str | None]
    error: Sequence[Any]
    extra: Sequence[Mapping[str, Any] | None]


class History(Sequence[Op]):
    """A read-only, validated sequence of ops with invoke<->completion lookup.

    Indexes must be strictly increasing (dense for a recorded history; a
    filtered view keeps the original indexes).  Construction checks that
    client processes are sequential: a process never invokes twice without
    completing, every completion has an invoke with the same ``f``.  Nemesis
    (non-integer process) ops are not checked: Jepsen histories often hold
    bare ``info`` nemesis events.

    Invokes that never complete are *pending*; ``completion()`` returns None
    for them, and checkers treat them exactly like ``info``.

    A history read from a file is stored as columns (:meth:`columns`), and
    its :class:`Op` objects are built only when someone asks for them:
    checkers that work on columns (the linearizability checker does) never
    pay for them.
    """

    __slots__ = ("_by_index", "_cols", "_dense", "_n", "_opt", "_pair", "source")

    def __init__(
        self, ops: Iterable[Op], *, validate: bool = True, source: str | None = None
    ) -> None:
        self._opt: tuple[Op, ...] | None = tuple(ops)
        self._cols: Columns | None = None
        self._n = len(self._opt)
        self.source = source
        self._set_index([op.index for op in self._opt])
        self._pair: list[int] = _pairs(
            [op.process for op in self._opt],
            [op.type for op in self._opt],
            [op.f for op in self._opt],
            validate,
            self._index_at,
            source,
        )

    def _set_index(self, index: Sequence[int]) -> None:
        if type(index) is range and index.start == 0 and index.step == 1:
            self._dense = True
        else:
            self._dense = all(map(eq, index, range(len(index))))
        self._by_index: dict[int, int] | None = None
        if not self._dense:
            if not all(map(lt, index, index[1:])):
                pos = next(i for i in range(1, len(index)) if index[i] <= index[i - 1])
                raise HistoryError(
                    f"op indexes must increase; {index[pos]} follows {index[pos - 1]}",
                    source=self.source,
                    index=index[pos],
                )
            self._by_index = dict(zip(index, range(len(index)), strict=True))

    def _index_at(self, pos: int) -> int:
        if self._opt is not None:
            return self._opt[pos].index
        assert self._cols is not None
        return self._cols.index[pos]

    @classmethod
    def _from_columns(
        cls, cols: Columns, *, validate: bool = True, source: str | None = None
    ) -> History:
        """A history over ``cols`` (already checked field by field); ops are
        built on demand.  Raises :class:`HistoryError` as ``History()`` does."""
        h = cls.__new__(cls)
        h._opt = None
        h._cols = cols
        h._n = len(cols.process)
        h.source = source
        h._set_index(cols.index)
        h._pair = _pairs(cols.process, cols.type, cols.f, validate, h._index_at, source)
        return h

    # -- construction -------------------------------------------------
    @classmethod
    def from_dicts(
        cls, dicts: Iterable[Mapping[str, Any]], *, reindex: bool = True, source: str | None = None
    ) -> History:
        """Build from mappings; with ``reindex`` ops are numbered 0, 1, ... in order."""
        ops = []
        for i, d in enumerate(dicts):
            op = Op.from_dict(d, index=i)
            if reindex and op.index != i:
                op = op.replace(index=i)
            ops.append(op)
        return cls(ops, source=source)

    # -- columns and ops ------------------------------------------------
    @property
    def _ops(self) -> tuple[Op, ...]:
        ops = self._opt
        if ops is None:
            c = self._cols
            assert c is not None
            ops = self._opt = tuple(
                map(
                    _build_op,
                    c.index,
                    c.time,
                    c.process,
                    c.type,
                    c.f,
                    c.value,
                    c.node,
                    c.error,
                    c.extra,
                )
            )
        return ops

    def columns(self) -> Columns:
        """The ops as parallel columns (cheap for a history read from a file)."""
        c = self._cols
        if c is None:
            ops = self._ops
            index: Sequence[int] = range(len(ops)) if self._dense else [op.index for op in ops]
            c = self._cols = Columns(
                index,
                [op.time for op in ops],
                [op.process for op in ops],
                [op.type for op in ops],
                [op.f for op in ops],
                [op.value for op in ops],
                [op.node for op in ops],
                [op.error for op in ops],
                [op.extra for op in ops],
            )
        return c

    def partner(self, pos: int) -> int:
        """The position of the event paired with the one at position ``pos``
        (its completion or invocation), or -1."""
        return self._pair[pos]

    def partners(self) -> Sequence[int]:
        """:meth:`partner` for every position, as one sequence (do not change it)."""
        return self._pair

    # -- sequence -----------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Op: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Op]: ...
    def __getitem__(self, i: int | slice) -> Op | Sequence[Op]:
        ops = self._opt
        if ops is None and type(i) is int:
            c = self._cols
            assert c is not None
            if i < 0:
                i += self._n
            if not 0 <= i < self._n:
                raise IndexError("history index out of range")
            return _build_op(
                c.index[i],
                c.time[i],
                c.process[i],
                c.type[i],
                c.f[i],
                c.value[i],
                c.node[i],
                c.error[i],
                c.extra[i],
            )
        return self._ops[i]

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops)

    def __repr__(self) -> str:
        return f"<History {self._n} ops{' from ' + self.source if self.source else ''}>"

    @property
    def ops(self) -> tuple[Op, ...]:
        return self._ops

    # -- lookup -------------------------------------------------------
    def _pos(self, op: Op) -> int:
        if self._dense:
            return op.index
        assert self._by_index is not None
        try:
            return self._by_index[op.index]
        except KeyError:
            raise KeyError(f"op {op.index} is not in this history") from None

    def by_index(self, index: int) -> Op:
        """The op whose ``index`` is ``index``."""
        if self._dense:
            return self[index]
        assert self._by_index is not None
        return self[self._by_index[index]]

    def completion(self, op: Op) -> Op | None:
        """The completion of invocation ``op`` (None while pending)."""
        p = self._pair[self._pos(op)]
        return None if p < 0 else self[p]

    def invocation(self, op: Op) -> Op | None:
        """The invocation a completion ``op`` belongs to."""
        p = self._pair[self._pos(op)]
        return None if p < 0 else self[p]

    def pairs(self) -> Iterator[tuple[Op, Op | None]]:
        """(invoke, completion or None) for every invocation, in invoke order."""
        ops = self._ops
        pair = self._pair
        for pos, op in enumerate(ops):
            if op.type == "invoke":
                p = pair[pos]
                yield op, (None if p < 0 else ops[p])

    # -- views --------------------------------------------------------
    def filter(self, pred: Callable[[Op], bool]) -> History:
        """A view of the ops matching ``pred`` (original indexes kept)."""
        return History((op for op in self._ops if pred(op)), validate=False, source=self.source)

    def client_ops(self) -> History:
        return self.filter(lambda op: op.is_client)

    def nemesis_ops(self) -> History:
        return self.filter(lambda op: not op.is_client)

    def by_key(self) -> dict[Any, History]:
        """Split ops of Jepsen's ``independent`` workloads (values ``[key, v]``) by key.

        Nemesis ops and ops whose value is not a 2-sequence are left out.
        Each sub-history carries ops with the inner value only."""
        out: dict[Any, list[Op]] = {}
        for op in self._ops:
            if not op.is_client:
                continue
            v = op.value
            if isinstance(v, list | tuple) and len(v) == 2:
                k = v[0]
                key = tuple(k) if isinstance(k, list) else k
                out.setdefault(key, []).append(op.replace(value=v[1]))
        return {k: History(ops, validate=False, source=self.source) for k, ops in out.items()}

    def to_dicts(self) -> list[dict[str, Any]]:
        return [op.to_dict() for op in self._ops]


def _pairs(
    procs: Sequence[Process],
    types: Sequence[str],
    fs: Sequence[str],
    validate: bool,
    index_at: Callable[[int], int],
    source: str | None,
) -> list[int]:
    """Positions pairing each invocation with its completion (-1: none).

    Client (int) processes are checked to be sequential when ``validate``;
    a nemesis invoke pairs with the next completion of its process, and
    nothing about nemesis events is ever an error."""
    n = len(procs)
    pair = [-1] * n
    open_: dict[Process, int] = {}
    pop = open_.pop
    for pos, p, t in zip(range(n), procs, types, strict=True):
        if t == "invoke":
            if validate and p in open_ and type(p) is int:
                prev = open_[p]
                raise HistoryError(
                    f"process {p} invoked {fs[pos]!r} while its {fs[prev]!r} "
                    f"(op {index_at(prev)}) had not completed",
                    source=source,
                    index=index_at(pos),
                )
            open_[p] = pos
            continue
        ipos = pop(p, -1)
        if ipos < 0:
            if validate and type(p) is int:
                raise HistoryError(
                    f"{t} completion of {fs[pos]!r} by process {p} has no invocation",
                    source=source,
                    index=index_at(pos),
                )
            continue
        if validate and fs[ipos] != fs[pos] and type(p) is int:
            raise HistoryError(
                f"completion f {fs[pos]!r} differs from its invocation's f {fs[ipos]!r} "
                f"(op {index_at(ipos)}, process {p})",
                source=source,
                index=index_at(pos),
            )
        pair[ipos] = pos
        pair[pos] = ipos
    return pair


def _build_op(
    index: int,
    time: int,
    process: Process,
    type: OpType,
    f: str,
    value: Any,
    node: str | None,
    error: Any,
    extra: Mapping[str, Any] | None,
) -> Op:
    if not _FAST_BUILD:  # pragma: no cover - only if Op gains fields
        return Op(
            index=index,
            time=time,
            process=process,
            type=type,
            f=f,
            value=value,
            node=node,
            error=error,
            extra=extra,
        )
    op: Any = _OpBuilder()
    op.index = index
    op.time = time
    op.process = process
    op.type = type
    op.f = f
    op.value = value
    op.node = node
    op.error = error
    op.extra = extra
    op.__class__ = Op
    return op  # type: ignore[no-any-return]


_INT_ONLY = frozenset((int,))
_STR_ONLY = frozenset((str,))
_PROCESS_TYPES = frozenset((int, str))
_NODE_TYPES = frozenset((str, type(None)))
_TIME_TYPES = frozenset((int, type(None)))


def history_from_op_dicts(dicts: list[dict[str, Any]], source: str) -> History | None:
    """A validated, columnar :class:`History` from decoded op mappings, or None.

    The bulk path of the readers: each field becomes a column through a few
    C-level passes (no :class:`Op` objects are built until asked for), with
    the checks of :func:`op_from_mapping` and ``History()`` applied to whole
    columns.  It never raises: anything unusual (a missing or odd field, a
    str subclass where a plain str is kept, indexes that need renumbering, a
    history that does not validate) gives None, and the caller goes the
    op-by-op way, whose errors name the line."""
    n = len(dicts)
    get = dict.get
    try:
        procs = list(map(get, dicts, repeat("process")))
        if not set(map(type, procs)) <= _PROCESS_TYPES:
            return None
        types = list(map(_TYPE_NAMES.get, map(get, dicts, repeat("type"))))
        fs = list(map(get, dicts, repeat("f")))
    except TypeError:  # not a dict, or an unhashable type
        return None
    if None in types or not set(map(type, fs)) <= _STR_ONLY:
        return None
    keys = set().union(*dicts)
    index: Sequence[int] = range(n)
    if "index" in keys:
        given = _index_column(list(map(get, dicts, repeat("index"))), typed=False)
        if given is None:
            return None
        index = given
    times: list[Any] | _Repeat[int]
    if "time" in keys:
        times = list(map(get, dicts, repeat("time")))
        kinds = set(map(type, times))
        if not kinds <= _TIME_TYPES:
            return None
        if type(None) in kinds:
            times = [-1 if t is None else t for t in times]
    else:
        times = _Repeat(-1, n)
    nodes: list[Any] | _Repeat[None] = _Repeat(None, n)
    if "node" in keys:
        nodes = list(map(get, dicts, repeat("node")))
        if not set(map(type, nodes)) <= _NODE_TYPES:
            return None
    errors: list[Any] | _Repeat[None] = (
        list(map(get, dicts, repeat("error"))) if "error" in keys else _Repeat(None, n)
    )
    extra: Sequence[Mapping[str, Any] | None]
    if keys <= _FIELD_SET:
        extra = _Repeat(None, n)
    else:
        extra = [
            None if d.keys() <= _FIELD_SET else {k: v for k, v in d.items() if k not in _FIELD_SET}
            for d in dicts
        ]
    cols = Columns(
        index,
        cast(Sequence[int], times),
        cast(list[Process], procs),
        cast(list[OpType], types),
        cast(list[str], fs),
        list(map(get, dicts, repeat("value"))),
        cast(Sequence[str | None], nodes),
        errors,
        extra,
    )
    try:
        return History._from_columns(cols, source=source)
    except HistoryError:
        return None


def _index_column(raw: list[Any], *, typed: bool) -> Sequence[int] | None:
    """The index column of the bulk readers from the ops' raw indexes: a
    range when none has one or they are 0, 1, ...; the ints when they only
    increase; None when the op-by-op way must decide (some missing, a
    non-int, one not above the one before).  ``typed``: each is known to be
    an int or None already (msgspec checked it)."""
    n = len(raw)
    if None in raw:
        return range(n) if raw.count(None) == n else None
    if not typed and not set(map(type, raw)) <= _INT_ONLY:
        return None
    ints = cast(list[int], raw)
    if not all(map(lt, ints, ints[1:])):
        return None
    return range(n) if not ints or (ints[0] == 0 and ints[-1] == n - 1) else ints


_get_process = attrgetter("process")
_get_type = attrgetter("type")
_get_f = attrgetter("f")
_get_index = attrgetter("index")
_get_time = attrgetter("time")
_get_value = attrgetter("value")
_get_node = attrgetter("node")
_get_error = attrgetter("error")


def decode_json_ops(data: bytes | str, *, lines: bool) -> list[JsonOp] | None:
    """The ops of a plain JSON history (one object a line, or an array of
    objects, or an array holding one such array), decoded and type-checked by msgspec in one C call; None when
    anything is unusual (the dict path then decides, naming the line).

    With ``lines``, every line must hold exactly one op: there must be one
    line break fewer than ops, each of them in ``}\\n{``, which no JSON value
    can hold inside it (after a ``}`` in a value comes ``,`` or a closing
    bracket).  So no op spans two lines, and as many lines as ops means no
    line holds two."""
    try:
        from jepsy import _jsonops as j
    except ImportError:  # pragma: no cover - msgspec is a dependency; the dict path works without
        return None
    b = data.encode() if isinstance(data, str) else data
    try:
        if not lines:
            b = b.strip()
            if b[:2] == b"[[":  # an array holding one array of ops (one EDN vector)
                return list(j.ONE_ARRAY.decode(b)[0])
            return j.ARRAY.decode(b)
        ops = j.LINES.decode_lines(b)
    except (j.DecodeError, UnicodeError):
        return None
    body = b.strip()
    breaks = len(ops) - 1
    if body.count(b"\n") != breaks or body.count(b"}\n{") != breaks:
        return None
    return ops


def history_from_json_ops(ops: list[JsonOp], source: str) -> History | None:
    """:func:`history_from_op_dicts` for :func:`decode_json_ops`' ops.

    msgspec has already checked each field's type, so what is left is a
    few C-level passes per column; None when the history needs the op-by-op
    way (mixed null and int indexes, indexes that need renumbering, a
    history that does not validate)."""
    n = len(ops)
    index = _index_column(list(map(_get_index, ops)), typed=True) if n else None
    if index is None:
        return None

    # msgspec has checked these three; checkers seldom read them: made on first use.
    def times() -> Sequence[int]:
        got: list[Any] = list(map(_get_time, ops))
        return [-1 if t is None else t for t in got] if None in got else got

    def nones_or(get: Callable[[JsonOp], Any]) -> Callable[[], Sequence[Any]]:
        def make() -> Sequence[Any]:
            got = list(map(get, ops))
            return _Repeat(None, n) if got.count(None) == n else got

        return make

    cols = Columns(
        index,
        _Lazy(n, times),
        list(map(_get_process, ops)),
        list(map(_get_type, ops)),
        list(map(_get_f, ops)),
        list(map(_get_value, ops)),
        _Lazy(n, nones_or(_get_node)),
        _Lazy(n, nones_or(_get_error)),
        _Repeat(None, n),
    )
    try:
        return History._from_columns(cols, source=source)
    except HistoryError:
        return None


class _Repeat(Sequence[_T]):
    """``n`` times the same value, in no memory (a column no op has)."""

    __slots__ = ("_n", "_v")

    def __init__(self, v: _T, n: int) -> None:
        self._v = v
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> _T: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[_T]: ...
    def __getitem__(self, i: int | slice) -> _T | Sequence[_T]:
        if isinstance(i, slice):
            return [self._v] * len(range(*i.indices(self._n)))
        if not -self._n <= i < self._n:
            raise IndexError("index out of range")
        return self._v

    def __iter__(self) -> Iterator[_T]:
        return repeat(self._v, self._n)


class _Lazy(Sequence[_T]):
    """A column of ``n`` values made by ``make()`` the first time it is read
    (it pickles as the list it makes)."""

    __slots__ = ("_got", "_make", "_n")

    def __init__(self, n: int, make: Callable[[], Sequence[_T]]) -> None:
        self._n = n
        self._make: Callable[[], Sequence[_T]] | None = make
        self._got: Sequence[_T] | None = None

    def _values(self) -> Sequence[_T]:
        got = self._got
        if got is None:
            assert self._make is not None
            got = self._got = self._make()
            self._make = None  # and with it what it kept alive
        return got

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> _T: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[_T]: ...
    def __getitem__(self, i: int | slice) -> _T | Sequence[_T]:
        return self._values()[i]

    def __iter__(self) -> Iterator[_T]:
        return iter(self._values())

    def __reduce__(self) -> tuple[type[list[_T]], tuple[list[_T]]]:
        return (list, (list(self._values()),))


# -- JSONL -------------------------------------------------------------------


def _json_default(o: Any) -> Any:
    if isinstance(o, frozenset | set):
        try:
            return sorted(o)
        except TypeError:
            return list(o)
    if isinstance(o, tuple):
        return list(o)
    if isinstance(o, Decimal | Fraction):  # EDN 1.5M and 1/3: JSON has only floats
        return float(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON: {o!r}")


def op_to_json(op: Op) -> str:
    """One JSONL line (no newline) for ``op``."""
    return json.dumps(op.to_dict(), separators=(",", ":"), default=_json_default)


def write_jsonl(history: Iterable[Op], path: str | os.PathLike[str] | IO[str]) -> None:
    """Write ops as JSON Lines, one op per line."""
    if isinstance(path, str | os.PathLike):
        with open(path, "w", encoding="utf-8") as fh:
            write_jsonl(history, fh)
        return
    for op in history:
        path.write(op_to_json(op))
        path.write("\n")


def _iter_jsonl_located(src: str, *, tolerate_torn_tail: bool = True) -> Iterator[tuple[int, Op]]:
    loads = json.loads
    make = op_from_mapping
    with open(src, "rb") as fh:
        lineno = 0
        for raw in fh:
            lineno += 1
            try:
                d = loads(raw)
            except ValueError as e:
                if not raw.strip():
                    continue
                torn = tolerate_torn_tail and not raw.endswith(b"\n")
                if torn:
                    log.warning("%s:%d: ignoring a torn last line (%s)", src, lineno, e)
                    return
                if isinstance(e, UnicodeDecodeError):
                    msg = f"not UTF-8 text ({e.reason} at byte {e.start} of the line)"
                elif isinstance(e, json.JSONDecodeError):
                    msg = f"not valid JSON ({e.msg} at column {e.pos + 1})"
                else:  # pragma: no cover - json raises only the two above
                    msg = f"not valid JSON ({e})"
                raise HistoryError(msg, source=src, line=lineno) from None
            if type(d) is not dict:
                if tolerate_torn_tail and not raw.endswith(b"\n"):
                    log.warning("%s:%d: ignoring a torn last line", src, lineno)
                    return
                raise HistoryError(
                    f"expected a JSON object (one op per line), got {_short(d)}",
                    source=src,
                    line=lineno,
                )
            try:
                op = make(d, lineno - 1)
            except HistoryError as e:
                raise HistoryError(e.message, source=src, line=lineno) from None
            yield lineno, op


def iter_jsonl(path: str | os.PathLike[str], *, tolerate_torn_tail: bool = True) -> Iterator[Op]:
    """Stream ops from a JSONL file (not validated as a whole; see :func:`read_jsonl`).

    Blank lines are skipped.  A malformed line raises :class:`HistoryError`
    naming ``file:line``, except that with ``tolerate_torn_tail`` a last line
    without its newline (a run killed mid-write) is dropped with a warning."""
    for _line, op in _iter_jsonl_located(os.fspath(path), tolerate_torn_tail=tolerate_torn_tail):
        yield op


def history_from_located(
    located: Iterable[tuple[int, Op]], source: str, text: str | None = None
) -> History:
    """A validated :class:`History` from ``(where, op)`` pairs read from ``source``.

    ``where`` is a line number, or an offset into ``text`` when ``text`` is
    given.  Ops are renumbered 0, 1, ... unless they all carry increasing
    indexes.  A validation error is re-raised naming the op's line."""
    ops: list[Op] = []
    where: list[int] = []
    for w, op in located:
        where.append(w)
        ops.append(op)
    return _validated(ops, where.__getitem__, source, text)


def _validated(
    ops: list[Op], where: Callable[[int], int], source: str, text: str | None = None
) -> History:
    prev = -1
    for op in ops:
        if op.index <= prev:
            ops = [op.replace(index=i) for i, op in enumerate(ops)]
            break
        prev = op.index
    try:
        return History(ops, source=source)
    except HistoryError as e:
        if e.index is None or e.line is not None:
            raise
        pos = bisect.bisect_left([op.index for op in ops], e.index)
        if pos >= len(ops) or ops[pos].index != e.index:  # pragma: no cover - defensive
            raise
        w = where(pos)
        line = w if text is None else text.count("\n", 0, w) + 1
        raise HistoryError(e.message, source=source, line=line, index=e.index) from None


@contextlib.contextmanager
def bulk_allocation() -> Iterator[None]:
    """The cyclic collector off while a reader builds a history, and its new
    objects sent to the oldest generation afterwards.

    A reader makes hundreds of thousands of containers and no cycles; with
    the collector on, each young collection would walk them.  Off alone is
    not enough: when it comes back on, the first allocation anywhere starts
    a young collection over all of them (0.1 s for 200,000 ops).
    ``gc.freeze()`` then ``gc.unfreeze()`` moves every tracked object to the
    oldest generation by splicing lists, visiting none, as a collection
    would have moved these survivors; they are still collected as usual.
    The young generations are collected first (a few objects, as a rule),
    so that garbage already there is freed now, not at a full collection."""
    enabled = gc.isenabled()
    if enabled:
        gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def read_jsonl(path: str | os.PathLike[str], *, tolerate_torn_tail: bool = True) -> History:
    """Read and validate a JSONL history; ops without an index are numbered in order.

    The file is read at once and each line decoded by one C call (orjson,
    or json's own C scanner), without a Python step per line; any problem
    sends it through the line-by-line reader, which names the offending
    line."""
    src = os.fspath(path)
    with bulk_allocation():
        fast = _read_jsonl_bulk(src, tolerate_torn_tail=tolerate_torn_tail)
    if fast is not None:
        return fast
    return history_from_located(
        _iter_jsonl_located(src, tolerate_torn_tail=tolerate_torn_tail), src
    )


# 19 digits in a row may be an integer beyond 64 bits (or a long fraction).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def _read_jsonl_bulk(src: str, *, tolerate_torn_tail: bool) -> History | None:
    """The fast path of :func:`read_jsonl`; None when the slow path must decide."""
    with open(src, "rb") as fh:
        data = fh.read()
    # A file of plain op lines (what jepsy writes): typed and decoded in C
    # (msgspec keeps integers beyond 64 bits exact).
    ops = decode_json_ops(data, lines=True)
    if ops is not None and (h := history_from_json_ops(ops, src)) is not None:
        return h
    if _LONG_NUMBER in data.translate(_DIGITS_TO_ZERO):
        return None  # orjson reads integers beyond 64 bits as floats; json is exact
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    if tail.strip():
        if not tolerate_torn_tail:
            return None
        try:
            d = _loads(tail)
        except ValueError:
            d = None
        if type(d) is not dict:
            return None  # the slow path drops it with a warning
        lines.append(tail)
    if (
        lines
        and min(map(len, lines)) < 8
        and any(not x or x.isspace() for x in lines if len(x) < 8)
    ):
        lines = [line for line in lines if line.strip()]
    try:
        if _C_LOADS:
            # One C call per line: exactly the line-by-line semantics.
            dicts = list(map(_loads, lines))
        else:
            # json.loads has Python overhead per call; its scanner is C.  It
            # reads one value from the start of each line, and must end where
            # the line does (a StopIteration ends map() early: counted below).
            found = list(map(_scan, lines, repeat(0)))
            if len(found) != len(lines) or list(map(itemgetter(1), found)) != list(
                map(len, map(str.rstrip, lines, repeat(" \t\r")))
            ):
                return None
            dicts = list(map(itemgetter(0), found))
    except ValueError:
        return None
    if len(dicts) != len(lines):  # pragma: no cover - one value per line by now
        return None
    # None sends the file through the line-by-line reader, which names the line.
    return history_from_op_dicts(dicts, src)


# -- format dispatch --------------------------------------------------------

Format: TypeAlias = Literal["auto", "jsonl", "edn"]


def detect_format(path: str | os.PathLike[str]) -> Literal["jsonl", "edn"]:
    """``jsonl`` or ``edn`` by extension (.jsonl .json .ndjson / .edn), else by content."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".edn":
        return "edn"
    with open(p, "rb") as fh:
        head = fh.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()  # a UTF-8 BOM
    while head.startswith(b";"):
        nl = head.find(b"\n")
        head = b"" if nl < 0 else head[nl + 1 :].lstrip()
    # JSON objects start with a string key ({"process": ...}); EDN op maps with
    # a keyword ({:process ...}), a record tag (#jepsen.history.Op{...}) or a
    # vector or list of maps.
    if head.startswith(b"{") and head[1:].lstrip()[:1] in (b'"', b"}"):
        return "jsonl"
    return "edn"


def read_history(path: str | os.PathLike[str], *, format: Format = "auto") -> History:
    """Read a history file (JSONL or Jepsen EDN), validated.

    Raises :class:`HistoryError` naming file and line on malformed input,
    and for a missing or unreadable file."""
    src = os.fspath(path)
    try:
        fmt = detect_format(src) if format == "auto" else format
        if fmt == "jsonl":
            return read_jsonl(src)
        if fmt == "edn":
            from jepsy import edn

            return edn.read_edn_history(src)
    except FileNotFoundError:
        raise HistoryError("no such file", source=src) from None
    except IsADirectoryError:
        raise HistoryError("is a directory, not a history file", source=src) from None
    except PermissionError:
        raise HistoryError("permission denied", source=src) from None
    except UnicodeDecodeError as e:
        raise HistoryError(f"not UTF-8 text ({e.reason} at byte {e.start})", source=src) from None
    raise HistoryError(f"unknown history format {format!r}; use auto, jsonl or edn", source=src)


def write_history(
    history: Iterable[Op], path: str | os.PathLike[str], *, format: Format = "auto"
) -> None:
    """Write a history as JSONL or EDN (``auto``: by the file's extension)."""
    fmt = format
    if fmt == "auto":
        fmt = "edn" if Path(path).suffix.lower() == ".edn" else "jsonl"
    if fmt == "jsonl":
        write_jsonl(history, path)
    else:
        from jepsy import edn

        edn.write_edn_history(history, path)
