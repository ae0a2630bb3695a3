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

import dataclasses
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias, cast, overload

from jepsy.errors import HistoryError

OpType: TypeAlias = Literal["invoke", "ok", "fail", "info"]
Process: TypeAlias = int | str
OP_TYPES: frozenset[str] = frozenset(("invoke", "ok", "fail", "info"))
NEMESIS = "nemesis"

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
        try:
            process = d["process"]
            typ = d["type"]
            f = d["f"]
        except KeyError as e:
            raise HistoryError(f"op is missing the field {e.args[0]!r}: {_short(d)}") from None
        if typ not in OP_TYPES:
            raise HistoryError(
                f"op type must be one of invoke, ok, fail, info; got {typ!r}: {_short(d)}"
            )
        if isinstance(process, bool) or not isinstance(process, int | str):
            raise HistoryError(f"op process must be an int or a string; got {process!r}")
        if f is None:
            f = ""
        if not isinstance(f, str):
            raise HistoryError(f"op f must be a string; got {f!r}: {_short(d)}")
        idx = d.get("index", index)
        tm = d.get("time", -1)
        if idx is None:
            idx = index
        if tm is None:
            tm = -1
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise HistoryError(f"op index must be an int; got {idx!r}")
        if isinstance(tm, bool) or not isinstance(tm, int | float):
            raise HistoryError(f"op time must be a number of nanoseconds; got {tm!r}")
        extra = {k: v for k, v in d.items() if k not in _FIELDS}
        node = d.get("node")
        return cls(
            index=idx,
            time=int(tm),
            process=process,
            type=cast(OpType, str(typ)),
            f=str(f),
            value=d.get("value"),
            node=None if node is None else str(node),
            error=d.get("error"),
            extra=extra or None,
        )


def _short(d: Any, limit: int = 200) -> str:
    s = repr(d)
    return s if len(s) <= limit else s[: limit - 3] + "..."


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
    """

    __slots__ = ("_by_index", "_dense", "_ops", "_pair", "source")

    def __init__(
        self, ops: Iterable[Op], *, validate: bool = True, source: str | None = None
    ) -> None:
        self._ops: tuple[Op, ...] = tuple(ops)
        self.source = source
        self._dense = all(op.index == i for i, op in enumerate(self._ops))
        self._by_index: dict[int, int] | None = None
        if not self._dense:
            self._by_index = {}
            last = None
            for pos, op in enumerate(self._ops):
                if last is not None and op.index <= last:
                    raise HistoryError(
                        f"op indexes must increase; {op.index} follows {last}",
                        source=source,
                        index=op.index,
                    )
                last = op.index
                self._by_index[op.index] = pos
        self._pair: dict[int, int] = {}
        self._build_pairs(validate)

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

    def _build_pairs(self, validate: bool) -> None:
        open_: dict[Process, int] = {}
        pair = self._pair
        for pos, op in enumerate(self._ops):
            if not op.is_client:
                # Nemesis: pair invoke -> next completion when present, never complain.
                if op.type == "invoke":
                    open_[op.process] = pos
                elif op.process in open_:
                    ipos = open_.pop(op.process)
                    pair[ipos] = pos
                    pair[pos] = ipos
                continue
            if op.type == "invoke":
                if op.process in open_ and validate:
                    prev = self._ops[open_[op.process]]
                    raise HistoryError(
                        f"process {op.process} invoked {op.f!r} while its {prev.f!r} "
                        f"(op {prev.index}) had not completed",
                        source=self.source,
                        index=op.index,
                    )
                open_[op.process] = pos
            else:
                inv_pos = open_.pop(op.process, None)
                if inv_pos is None:
                    if validate:
                        raise HistoryError(
                            f"{op.type} completion of {op.f!r} by process {op.process} "
                            "has no invocation",
                            source=self.source,
                            index=op.index,
                        )
                    continue
                inv = self._ops[inv_pos]
                if validate and inv.f != op.f:
                    raise HistoryError(
                        f"completion f {op.f!r} differs from its invocation's f {inv.f!r} "
                        f"(op {inv.index}, process {op.process})",
                        source=self.source,
                        index=op.index,
                    )
                pair[inv_pos] = pos
                pair[pos] = inv_pos

    # -- sequence -----------------------------------------------------
    def __len__(self) -> int:
        return len(self._ops)

    @overload
    def __getitem__(self, i: int) -> Op: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Op]: ...
    def __getitem__(self, i: int | slice) -> Op | Sequence[Op]:
        return self._ops[i]

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops)

    def __repr__(self) -> str:
        return f"<History {len(self._ops)} ops{' from ' + self.source if self.source else ''}>"

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
            return self._ops[index]
        assert self._by_index is not None
        return self._ops[self._by_index[index]]

    def completion(self, op: Op) -> Op | None:
        """The completion of invocation ``op`` (None while pending)."""
        p = self._pair.get(self._pos(op))
        return None if p is None else self._ops[p]

    def invocation(self, op: Op) -> Op | None:
        """The invocation a completion ``op`` belongs to."""
        p = self._pair.get(self._pos(op))
        return None if p is None else self._ops[p]

    def pairs(self) -> Iterator[tuple[Op, Op | None]]:
        """(invoke, completion or None) for every invocation, in invoke order."""
        for pos, op in enumerate(self._ops):
            if op.type == "invoke":
                p = self._pair.get(pos)
                yield op, (None if p is None else self._ops[p])

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


# -- JSONL -------------------------------------------------------------------


def _json_default(o: Any) -> Any:
    if isinstance(o, frozenset | set):
        try:
            return sorted(o)
        except TypeError:
            return list(o)
    if isinstance(o, tuple):
        return list(o)
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


def iter_jsonl(path: str | os.PathLike[str], *, tolerate_torn_tail: bool = True) -> Iterator[Op]:
    """Stream ops from a JSONL file.

    Blank lines are skipped.  A malformed line raises :class:`HistoryError`
    naming ``file:line``, except that with ``tolerate_torn_tail`` a last line
    without its newline (a run killed mid-write) is silently dropped."""
    src = os.fspath(path)
    with open(src, encoding="utf-8") as fh:
        lineno = 0
        pending_err: HistoryError | None = None
        for raw in fh:
            lineno += 1
            if pending_err is not None:
                raise pending_err
            line = raw.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                err = HistoryError(
                    f"not valid JSON ({e.msg} at column {e.colno})", source=src, line=lineno
                )
                if tolerate_torn_tail and not raw.endswith("\n"):
                    pending_err = err
                    continue
                raise err from None
            if not isinstance(d, dict):
                raise HistoryError(
                    f"expected a JSON object, got {_short(d)}", source=src, line=lineno
                )
            try:
                yield Op.from_dict(d, index=lineno - 1)
            except HistoryError as e:
                raise HistoryError(e.message, source=src, line=lineno) from None


def read_jsonl(path: str | os.PathLike[str]) -> History:
    """Read and validate a JSONL history; ops without an index are numbered in order."""
    src = os.fspath(path)
    ops = list(iter_jsonl(src))
    # Keep given indexes when they are all present and increase; otherwise renumber.
    if any(op.index < 0 for op in ops) or not all(
        b.index > a.index for a, b in itertools.pairwise(ops)
    ):
        ops = [op.replace(index=i) for i, op in enumerate(ops)]
    return History(ops, source=src)


# -- format dispatch --------------------------------------------------------

Format: TypeAlias = Literal["auto", "jsonl", "edn"]


def detect_format(path: str | os.PathLike[str]) -> Literal["jsonl", "edn"]:
    """``jsonl`` or ``edn`` by extension, else by the first non-blank character."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".edn":
        return "edn"
    with open(p, "rb") as fh:
        head = fh.read(4096).lstrip()
    while head.startswith(b";"):
        nl = head.find(b"\n")
        head = b"" if nl < 0 else head[nl + 1 :].lstrip()
    if head.startswith(b"{"):
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
