"""Sequential models for the linearizability checker.

A model is the specification a history is checked against, in Porcupine's
shape: ``init()`` gives the initial state and ``step(state, f, value)``
returns ``(ok, new_state)``: whether the operation ``f`` with result/argument
``value`` is legal in ``state``, and the state after it.  Everything else is
optional and has defaults here, in one place (:func:`as_model`):

- ``partition(ops)``: split a history into independent parts (P-compositionality),
  a list of lists of op positions; ``None`` = no split.
- ``key(state)``: a hashable stand-in for ``state`` (equality/hash); the default
  is the state itself, so states must be hashable unless ``key`` is given.
- ``pending(f, value)``: how an op whose outcome is unknown (``info`` or never
  completed) may take effect, as ``(f, value)``; ``None`` drops the op
  (it may never have happened and nobody can observe it).
- ``describe_op(f, value)`` / ``describe_state(state)``: text for explanations.

Values are *frozen* before they reach a model: lists become tuples, sets
frozensets, dicts tuples of sorted items, so they can be hashed.

By example::

    >>> class Counter(Model):
    ...     name = "counter"
    ...     def init(self) -> int:
    ...         return 0
    ...     def step(self, state, f, value):
    ...         if f == "add":
    ...             return True, state + value
    ...         return state == value, state
    >>> Counter().step(0, "add", 2)
    (True, 2)

Built-in models (``MODELS``): ``register``, ``cas-register``,
``multi-register``, ``mutex``, ``set``, ``fifo-queue``, ``unordered-queue``
and ``kv``.  Registers start *unset* (``None``); an ``ok`` read of ``None``
means "unset".
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from jepsy.errors import ModelError

Call = tuple[str, Any]
"""One operation as a model sees it: ``(f, value)``."""


_SCALARS = frozenset((int, str, float, bool, type(None)))


def freeze(v: Any) -> Any:
    """A hashable copy of a JSON/EDN value (lists -> tuples, sets -> frozensets)."""
    t = type(v)
    if t in _SCALARS:
        return v
    if t is list or t is tuple:
        sc = _SCALARS
        return tuple([x if type(x) in sc else freeze(x) for x in v])
    if isinstance(v, list | tuple):
        return tuple(freeze(x) for x in v)
    if isinstance(v, set | frozenset):
        return frozenset(freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted(((freeze(k), freeze(x)) for k, x in v.items()), key=repr))
    return v


def _show(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, frozenset):
        return "#{" + " ".join(sorted(_show(x) for x in v)) + "}"
    if isinstance(v, tuple):
        return "[" + " ".join(_show(x) for x in v) + "]"
    return str(v)


class Model:
    """Base class for models; subclass and override ``init`` and ``step``.

    Any object with ``init()`` and ``step(state, f, value)`` also works as a
    model (see :func:`as_model`)."""

    name: str = "model"

    def init(self) -> Any:
        return None

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        raise NotImplementedError(f"model {self.name!r} has no step()")

    def partition(self, ops: Sequence[Call]) -> list[list[int]] | None:
        return None

    def key(self, state: Any) -> Hashable:
        return state  # type: ignore[no-any-return]

    def pending(self, f: str, value: Any) -> Call | None:
        return (f, value)

    def is_read(self, f: str, value: Any) -> bool:
        """True if ``f`` never changes the state when legal (lets the search
        linearize it as soon as it matches, without trying alternatives)."""
        return False

    def introduces(self, f: str, value: Any) -> Hashable | None:
        """Opt-in pruning: the one value op ``f`` brings into the state (an
        enqueued or added element), or None.  A model that defines it
        promises: an op that :meth:`observes` ``v`` is legal only after some
        op introducing ``v`` took effect, and an introduced value nobody
        observes never makes a later op legal or illegal.  Then pending ops
        introducing unobserved values are dropped, and an ok op observing a
        value nothing introduces is a violation found without search."""
        return None

    def observes(self, f: str, value: Any) -> tuple[Hashable, ...]:
        """The values an ok op ``f`` observes (see :meth:`introduces`)."""
        return ()

    def describe_op(self, f: str, value: Any) -> str:
        return f"{f} {_show(value)}"

    def describe_state(self, state: Any) -> str:
        return _show(state)

    def part_model(self, ops: Sequence[Call]) -> tuple[Model, list[Call]]:
        """The model and ops for one part made by :meth:`partition` (default: unchanged)."""
        return self, list(ops)

    def __repr__(self) -> str:
        return f"get_model({self.name!r})"


class _Adapter(Model):
    """Fills in the optional methods for a duck-typed user model."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = str(getattr(inner, "name", type(inner).__name__))

    def init(self) -> Any:
        return self.inner.init()

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        ok, new = self.inner.step(state, f, value)
        return bool(ok), new

    def partition(self, ops: Sequence[Call]) -> list[list[int]] | None:
        fn: Callable[[Sequence[Call]], list[list[int]] | None] | None = getattr(
            self.inner, "partition", None
        )
        return None if fn is None else fn(ops)

    def key(self, state: Any) -> Hashable:
        fn = getattr(self.inner, "key", None)
        return state if fn is None else fn(state)  # type: ignore[no-any-return]

    def pending(self, f: str, value: Any) -> Call | None:
        fn = getattr(self.inner, "pending", None)
        return (f, value) if fn is None else fn(f, value)

    def is_read(self, f: str, value: Any) -> bool:
        fn = getattr(self.inner, "is_read", None)
        return False if fn is None else bool(fn(f, value))

    def introduces(self, f: str, value: Any) -> Hashable | None:
        fn = getattr(self.inner, "introduces", None)
        return None if fn is None else fn(f, value)

    def observes(self, f: str, value: Any) -> tuple[Hashable, ...]:
        fn = getattr(self.inner, "observes", None)
        return () if fn is None else tuple(fn(f, value))

    def describe_op(self, f: str, value: Any) -> str:
        fn = getattr(self.inner, "describe_op", None)
        return super().describe_op(f, value) if fn is None else str(fn(f, value))

    def describe_state(self, state: Any) -> str:
        fn = getattr(self.inner, "describe_state", None)
        return super().describe_state(state) if fn is None else str(fn(state))

    def __repr__(self) -> str:
        return f"as_model({self.inner!r})"


def as_model(m: Any) -> Model:
    """``m`` as a :class:`Model`: a name from ``MODELS``, a Model, or any object
    with ``init()`` and ``step()``."""
    if isinstance(m, Model):
        return m
    if isinstance(m, str):
        return get_model(m)
    if callable(getattr(m, "init", None)) and callable(getattr(m, "step", None)):
        return _Adapter(m)
    raise ModelError(
        f"not a model: {m!r}; pass a name ({', '.join(sorted(MODELS))}) "
        "or an object with init() and step(state, f, value)"
    )


# -- registers -----------------------------------------------------------------

READ_FS = frozenset(("read", "get", "r"))
WRITE_FS = frozenset(("write", "put", "w"))


class Register(Model):
    """A single register: ``read v`` (``None`` = unset), ``write v``."""

    name = "register"
    cas = False

    def __init__(self, init: Any = None) -> None:
        self.initial = freeze(init)

    def init(self) -> Any:
        return self.initial

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        if f in READ_FS:
            return state == value, state
        if f in WRITE_FS:
            return True, value
        if self.cas and f == "cas":
            if not isinstance(value, tuple) or len(value) != 2:
                raise ModelError(f"cas value must be [expected new], got {value!r}")
            return state == value[0], value[1]
        raise ModelError(f"model {self.name!r} has no operation {f!r} (value {value!r})")

    def is_read(self, f: str, value: Any) -> bool:
        return f in READ_FS

    def pending(self, f: str, value: Any) -> Call | None:
        # A read with an unknown outcome constrains nothing and changes nothing.
        return None if f in READ_FS else (f, value)


class CASRegister(Register):
    """A register with compare-and-set: ``cas [expected new]``."""

    name = "cas-register"
    cas = True


# -- multi-register ------------------------------------------------------------


def _get(state: tuple[tuple[Any, Any], ...], k: Any) -> Any:
    for kk, v in state:
        if kk == k:
            return v
    return None


def _put(state: tuple[tuple[Any, Any], ...], k: Any, v: Any) -> tuple[tuple[Any, Any], ...]:
    d = dict(state)
    d[k] = v
    return tuple(sorted(d.items(), key=lambda kv: repr(kv[0])))


class MultiRegister(Model):
    """Several named registers changed by atomic ``txn`` ops.

    A txn's value is a list of micro-ops ``[f k v]`` with ``f`` read or
    write; a read of ``None`` inside a txn is unknown (matches anything), as
    in Knossos.  State: sorted ``(key, value)`` pairs; unset keys are ``None``."""

    name = "multi-register"

    def __init__(self, init: Any = None) -> None:
        self.initial: tuple[tuple[Any, Any], ...] = ()
        for k, v in dict(init or {}).items():
            self.initial = _put(self.initial, freeze(k), freeze(v))

    def init(self) -> Any:
        return self.initial

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        if f != "txn":
            raise ModelError(f"multi-register has no operation {f!r}; use txn")
        for mop in value or ():
            if not isinstance(mop, tuple) or len(mop) != 3:
                raise ModelError(f"txn micro-op must be [f k v], got {mop!r}")
            mf, k, v = mop
            if mf in READ_FS:
                if v is not None and _get(state, k) != v:
                    return False, state
            elif mf in WRITE_FS:
                state = _put(state, k, v)
            else:
                raise ModelError(f"txn micro-op f must be read or write, got {mf!r}")
        return True, state

    def is_read(self, f: str, value: Any) -> bool:
        return f == "txn" and all(
            isinstance(m, tuple) and len(m) == 3 and m[0] in READ_FS for m in value or ()
        )

    def describe_state(self, state: Any) -> str:
        return "{" + ", ".join(f"{_show(k)} {_show(v)}" for k, v in state) + "}"


# -- mutex, set, queues ---------------------------------------------------------


class Mutex(Model):
    """A lock: ``acquire`` needs it free, ``release`` needs it held."""

    name = "mutex"

    def init(self) -> Any:
        return False

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        if f == "acquire":
            return not state, True
        if f == "release":
            return bool(state), False
        raise ModelError(f"mutex has no operation {f!r}; use acquire or release")

    def describe_state(self, state: Any) -> str:
        return "locked" if state else "unlocked"


class SetModel(Model):
    """A grow-only set: ``add v``; ``read`` returns every element."""

    name = "set"

    def init(self) -> Any:
        return frozenset()

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        if f == "add":
            return True, state | {value}
        if f in READ_FS:
            got = frozenset() if value is None else frozenset(value)
            return got == state, state
        raise ModelError(f"set has no operation {f!r}; use add or read")

    def introduces(self, f: str, value: Any) -> Hashable | None:
        return value if f == "add" else None

    def observes(self, f: str, value: Any) -> tuple[Hashable, ...]:
        return tuple(value or ()) if f in READ_FS else ()

    def pending(self, f: str, value: Any) -> Call | None:
        return None if f in READ_FS else (f, value)

    def is_read(self, f: str, value: Any) -> bool:
        return f in READ_FS


_DEQ_ANY = "dequeue?"


class FIFOQueue(Model):
    """A FIFO queue: ``enqueue v``; ``dequeue v`` takes the head (``None`` = empty).

    A dequeue with an unknown outcome removes the head if there is one."""

    name = "fifo-queue"

    def init(self) -> Any:
        return ()

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        if f == "enqueue":
            return True, (*state, value)
        if f == "dequeue":
            if not state:
                return value is None, state
            return state[0] == value, state[1:]
        if f == _DEQ_ANY:
            return True, state[1:]
        raise ModelError(f"fifo-queue has no operation {f!r}; use enqueue or dequeue")

    def pending(self, f: str, value: Any) -> Call | None:
        return (_DEQ_ANY, None) if f == "dequeue" else (f, value)

    def introduces(self, f: str, value: Any) -> Hashable | None:
        return value if f == "enqueue" else None

    def observes(self, f: str, value: Any) -> tuple[Hashable, ...]:
        return (value,) if f == "dequeue" and value is not None else ()


class UnorderedQueue(Model):
    """A bag: ``enqueue v``; ``dequeue v`` removes one ``v``.

    A dequeue that returns ``None`` (empty) is not checked, and dequeues
    with an unknown outcome are dropped: together that is sound, because a
    bag with extra elements allows every dequeue a smaller one allows.
    State: a sorted tuple of ``(value, count)``."""

    name = "unordered-queue"

    def init(self) -> Any:
        return ()

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        d = dict(state)
        if f == "enqueue":
            d[value] = d.get(value, 0) + 1
        elif f == "dequeue":
            if value is None:
                return True, state
            c = d.get(value, 0)
            if c == 0:
                return False, state
            if c == 1:
                del d[value]
            else:
                d[value] = c - 1
        else:
            raise ModelError(f"unordered-queue has no operation {f!r}; use enqueue or dequeue")
        return True, tuple(sorted(d.items(), key=lambda kv: repr(kv[0])))

    def pending(self, f: str, value: Any) -> Call | None:
        return None if f == "dequeue" else (f, value)

    def introduces(self, f: str, value: Any) -> Hashable | None:
        return value if f == "enqueue" else None

    def observes(self, f: str, value: Any) -> tuple[Hashable, ...]:
        return (value,) if f == "dequeue" and value is not None else ()

    def describe_state(self, state: Any) -> str:
        return "{" + " ".join(f"{_show(v)}x{c}" for v, c in state) + "}"


# -- kv ---------------------------------------------------------------------------


def _append(cur: Any, v: Any) -> Any:
    if isinstance(v, str):
        return (cur if isinstance(cur, str) else "") + v
    base = cur if isinstance(cur, tuple) else ()
    return (*base, *(v if isinstance(v, tuple) else (v,)))


class KVKey(Model):
    """One key of a :class:`KV` store: ``get v``, ``put v``, ``append v``."""

    name = "kv-key"

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        if f in READ_FS:
            return state == value, state
        if f in WRITE_FS:
            return True, value
        if f == "append":
            return True, _append(state, value)
        raise ModelError(f"kv has no operation {f!r}; use get, put or append")

    def pending(self, f: str, value: Any) -> Call | None:
        return None if f in READ_FS else (f, value)

    def is_read(self, f: str, value: Any) -> bool:
        return f in READ_FS


class KV(Model):
    """A key-value store: ``get [k v]``, ``put [k v]``, ``append [k v]``.

    Keys are independent, so it partitions by key; each key is a register
    (with ``append`` concatenating strings or sequences), unset = ``None``."""

    name = "kv"

    def init(self) -> Any:
        return ()

    def _kv(self, value: Any) -> tuple[Any, Any]:
        if not isinstance(value, tuple) or len(value) != 2:
            raise ModelError(f"kv op value must be [key value], got {value!r}")
        return value[0], value[1]

    def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
        k, v = self._kv(value)
        ok, new = KVKey().step(_get(state, k), f, v)
        if not ok:
            return False, state
        return True, (state if f in READ_FS else _put(state, k, new))

    def pending(self, f: str, value: Any) -> Call | None:
        return None if f in READ_FS else (f, value)

    def is_read(self, f: str, value: Any) -> bool:
        return f in READ_FS

    def partition(self, ops: Sequence[Call]) -> list[list[int]] | None:
        parts: dict[Any, list[int]] = {}
        for i, (_, value) in enumerate(ops):
            parts.setdefault(self._kv(value)[0], []).append(i)
        return list(parts.values())

    def part_model(self, ops: Sequence[Call]) -> tuple[Model, list[Call]]:
        inner = [(f, self._kv(v)[1]) for f, v in ops]
        if any(f == "append" for f, _ in inner):
            return KVKey(), inner
        return Register(), inner

    def describe_state(self, state: Any) -> str:
        return "{" + ", ".join(f"{_show(k)} {_show(v)}" for k, v in state) + "}"


MODELS: dict[str, Callable[..., Model]] = {
    "register": Register,
    "cas-register": CASRegister,
    "multi-register": MultiRegister,
    "mutex": Mutex,
    "set": SetModel,
    "fifo-queue": FIFOQueue,
    "unordered-queue": UnorderedQueue,
    "kv": KV,
}


_INITS = frozenset(("register", "cas-register", "multi-register"))


def get_model(name: str, *, init: Any = None) -> Model:
    """A fresh built-in model by name; :class:`ModelError` for unknown names.

    ``init``: the initial value of a register (default unset, ``None``) or
    the initial mapping of a multi-register (e.g. ``{"x": 0, "y": 0}``)."""
    try:
        factory = MODELS[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}"
        ) from None
    if init is None:
        return factory()
    if name not in _INITS:
        raise ModelError(
            f"model {name!r} takes no initial value (got {init!r}); "
            f"only {', '.join(sorted(_INITS))} do"
        )
    return factory(init)
