"""Generators: immutable values that say what operation to do next.

Why values: a schedule such as "a random mix of reads and writes, 100 per
second, on the client threads, while the nemesis partitions every 10 s" is
easier to read, test and reproduce as one pure value than as threads and
sleeps.  The runner interprets the value; :func:`simulate` interprets it
without threads in simulated time, so tests can check a schedule exactly.

By example::

    >>> from jepsy import generator as gen
    >>> g = gen.time_limit(30, gen.any_(
    ...     gen.clients(gen.stagger(0.01, gen.mix([
    ...         gen.repeat({"f": "read"}),
    ...         lambda test, ctx: {"f": "write", "value": ctx.rng.randint(0, 4)},
    ...     ]))),
    ...     gen.nemesis(gen.cycle([gen.sleep(5), {"f": "start-partition"},
    ...                            gen.sleep(5), {"f": "stop-partition"}])),
    ... ))
    >>> ops = gen.simulate(gen.limit(4, gen.clients(gen.repeat({"f": "read"}))))
    >>> [(o.process, o.type) for o in ops][:3]
    [(0, 'invoke'), (1, 'invoke'), (2, 'invoke')]

The protocol (it follows ``jepsen.generator``)
----------------------------------------------

- ``gen.op(test, ctx)`` returns ``None`` when the generator is exhausted, or
  a pair ``(x, gen2)`` where ``gen2`` is the generator to use *if* ``x`` is
  taken, and ``x`` is one of

  * an :class:`~jepsy.history.Op` of type ``invoke`` with ``process`` set to
    a *free* process of ``ctx`` and ``time`` (ns since test start) no earlier
    than ``ctx.time``;
  * :data:`PENDING`: nothing to do right now (``gen2`` is ignored);
  * a :class:`Sleep` action: the thread running ``process`` (a free one)
    sleeps ``seconds``; nothing is recorded in the history;
  * a :class:`Log` action: one line for ``jepsy.log``.

- ``gen.update(test, ctx, event)`` returns the generator after observing an
  event: every invoke the interpreter dispatches and every completion it
  records (not sleeps or logs).  ``None`` means exhausted.

Generators never mutate themselves: asking ``op`` again with the same
context gives the same answer, except through ``ctx.rng``.  Randomness comes
only from ``ctx.rng`` (seeded from the test's seed).  ``op`` may draw from
it (``mix`` picks a child, ``stagger`` draws its next gap), so a re-ask can
pick differently; :func:`simulate` is nevertheless deterministic outright,
and a real run is deterministic up to the timing of completions.

Interpreter contract (the runner and :func:`simulate` both follow it)
----------------------------------------------------------------------

State: ``gen`` (``lift(test.generator)``), ``ctx`` =
``Context.initial(concurrency, seed=test.seed)`` (client threads ``0 ..
concurrency-1`` running processes ``0 .. concurrency-1``, plus the thread
``"nemesis"`` running process ``"nemesis"``), and ``now`` = ns since start.
Everything below happens under one lock; a :class:`Context` may be reused
while nothing changed.

1. ``r = gen.op(test, ctx.with_time(now))``.
2. ``r is None``: no new operations.  Let in-flight operations complete
   (step 7, asking again after each); stop once every thread is free and
   ``gen.op`` still returns ``None``.
3. ``r[0] is PENDING``: keep ``gen`` unchanged; wait for the next
   completion, or at most a short poll (10 ms), then go to 1.
4. ``r[0]`` is an ``Op`` with ``op.time > now``: keep ``gen`` unchanged;
   wait until ``op.time`` or the next completion, whichever is first, then
   go to 1 (the generator is asked again; it will hand out the op then).
5. ``r[0]`` is an ``Op`` due now: ``thread = ctx.thread_of(op.process)``
   (must be free, else the generator is broken: raise
   :class:`GeneratorError`).  Record ``inv = op`` with ``time=now`` and the
   next history ``index``; ``ctx = ctx.busy(thread)``;
   ``gen = r[1].update(test, ctx, inv)`` (or ``None`` if ``r[1]`` is None);
   hand ``inv`` to that thread.
6. ``r[0]`` is a :class:`Sleep`: ``gen = r[1]``; ``ctx =
   ctx.busy(thread)`` for the sleep's thread; after ``seconds`` that
   thread is freed (``ctx = ctx.free(thread)``, no update, no history).
   A :class:`Log`: ``gen = r[1]``, write the line; no thread is occupied.
7. A completion ``c`` from ``thread`` (type ``ok``/``fail``/``info``, same
   ``process`` and ``f`` as its invoke): record it with ``time=now``;
   ``ctx = ctx.with_time(now).free(thread)``;
   ``gen = gen.update(test, ctx, c)``; **then**, if ``c.type == "info"`` and
   the thread is a client thread, retire the process:
   ``ctx = ctx.retire(thread, concurrency=concurrency)`` (the thread goes on
   as process ``process + concurrency``).  The nemesis process never changes.

An ``update`` that is sure to return the generator itself (every generator
that would see the event ignores events, see :func:`ignores_events`) may be
skipped together with the context it would need; the runner does that.

Fast paths (for generators asked once per op)
---------------------------------------------

A generator that runs tens of thousands of times a second (a workload's main
generator) can use three small helpers; each keeps values immutable:

- :data:`make_op` builds the op positionally, about twice as fast as
  ``Op(...)``: ``make_op(-1, ctx.time, process, "invoke", f, value, None,
  None, None)``.
- :func:`fast_constructor` gives the same kind of positional constructor for
  the generator's own frozen, slotted dataclass, to build its next state.
- ``update = ignore_event`` says "this generator ignores events"; wrappers
  and the runner see it (:func:`ignores_events`) and skip ``update`` and the
  context built for it.
- :func:`lowest_free_client` picks the lowest free client thread (-1 when
  none), without building a list.

``workloads/register.py`` uses all three.

Semantics decided here
----------------------

- ``sleep(dt)`` occupies *one* free thread for ``dt`` (like Jepsen's
  ``:sleep`` ops).  Under :func:`nemesis` that is the nemesis thread, so
  ``cycle([sleep(10), {"f": "start-partition"}, ...])`` is a schedule.  To
  pause every client, use :func:`phases` / :func:`synchronize` around it.
- ``limit(n, g)`` counts invoke ops only (sleeps and logs are free);
  ``repeat(n, g)`` counts everything it emits.
- ``time_limit(dt, g)`` is anchored at the moment its first action is taken
  (its first op's time); from then on it emits ops whose time is before the
  cutoff and is exhausted after it.
- ``delay(dt, g)``: successive ops at least ``dt`` apart.  ``stagger(dt,
  g)``: gaps uniform in ``[0, 2 dt)`` (mean ``dt``) across the whole stream,
  like Jepsen; a generator whose threads are all busy falls behind that
  rate rather than bursting.
- ``then(a, b)`` runs ``a`` then ``b`` with **no** synchronisation (the same
  as the list ``[a, b]``; Jepsen's ``then`` synchronises and takes its
  arguments backwards); ``phases(a, b)`` waits for every thread to be free
  before each phase.
- A ``dict`` is *one* op: ``mix([{"f": "read"}, {"f": "write"}])`` emits two
  ops and ends.  Use ``repeat(...)`` or a function for endless streams.
- ``mix`` picks a child uniformly for every op; ``any_`` and ``reserve``
  take the soonest op, ties round-robin (no randomness).
- A generator routed to no thread at all (``nemesis(g)`` without a nemesis
  thread, ``on_threads([7], g)`` with 5 clients) is empty, not stuck.
- Ops go to the lowest free thread (client threads in order, then the
  nemesis) unless routing says otherwise; wrap client schedules in
  :func:`clients` so the nemesis never gets them.
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar, runtime_checkable

from jepsy.errors import ConfigError, JepsyError
from jepsy.history import NEMESIS, Op, Process

if TYPE_CHECKING:
    from jepsy.core import Test

__all__ = [
    "PENDING",
    "Action",
    "Context",
    "GenLike",
    "Generator",
    "GeneratorError",
    "Log",
    "Sleep",
    "Thread",
    "any_",
    "clients",
    "cycle",
    "delay",
    "each_thread",
    "fast_constructor",
    "filter_",
    "flip_flop",
    "ignore_event",
    "ignores_events",
    "lift",
    "limit",
    "log",
    "lowest_free_client",
    "make_op",
    "map_",
    "mix",
    "nemesis",
    "on_threads",
    "once",
    "phases",
    "repeat",
    "reserve",
    "simulate",
    "sleep",
    "stagger",
    "synchronize",
    "then",
    "time_limit",
    "until_ok",
]

Thread: TypeAlias = int | str
"""A worker thread: ``0 .. concurrency-1`` for clients, ``"nemesis"`` for the nemesis."""

NS: Final = 1_000_000_000


class GeneratorError(JepsyError):
    """A generator broke the protocol (e.g. emitted an op for a busy process)."""


class _Pending:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PENDING"


PENDING: Final = _Pending()


@dataclass(frozen=True, slots=True)
class Sleep:
    """Ask the thread running ``process`` to sleep ``seconds`` (recorded in no history)."""

    seconds: float
    process: Process = NEMESIS


@dataclass(frozen=True, slots=True)
class Log:
    """Write ``message`` to the run log."""

    message: str
    process: Process = NEMESIS


Action: TypeAlias = Op | _Pending | Sleep | Log


def _thread_key(t: Thread) -> tuple[int, int, str]:
    return (1, 0, t) if isinstance(t, str) else (0, t, "")


def _is_client_thread(t: Thread) -> bool:
    return type(t) is int


def _is_nemesis_thread(t: Thread) -> bool:
    return t == NEMESIS


Selector: TypeAlias = "Callable[[Thread], bool] | Collection[Thread]"

_T = TypeVar("_T")


def fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for the frozen, slotted dataclass ``cls``.

    About twice as fast as ``cls(...)``: the object is built as a plain
    slotted twin of ``cls`` (same slots, same order, so the same memory
    layout), its fields are stored the fast way, then its ``__class__`` is set
    to ``cls``.  Every field is passed, positionally, in field order: no
    defaults, no ``__post_init__``, no validation.  The objects are real,
    frozen ``cls`` instances, equal to ones built by ``cls(...)``.  For
    generators that build a new state on every op (see "Fast paths" in this
    module's docstring)::

        >>> @dataclass(frozen=True, slots=True)
        ... class Counter:
        ...     n: int = 0
        >>> fast_constructor(Counter)(3) == Counter(3)
        True
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    ns: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make({', '.join(names)}):"]
    try:
        if tuple(getattr(cls, "__slots__", ())) != tuple(names):
            raise TypeError("fields not all in the class's own __slots__")
        twin = type(f"_{cls.__name__}Twin", cls.__bases__, {"__slots__": tuple(names)})
        probe: Any = object.__new__(twin)
        probe.__class__ = cls  # raises TypeError (here, once) unless the layouts match
    except TypeError:  # e.g. fields inherited from a dataclass base: set them one by one
        lines.append("    o = _new(_cls)")
        for i, n in enumerate(names):
            ns[f"_s{i}"] = getattr(cls, n).__set__
            lines.append(f"    _s{i}(o, {n})")
    else:
        ns["_twin"] = twin
        lines.append("    o = _new(_twin)")
        lines += [f"    o.{n} = {n}" for n in names]
        lines.append("    o.__class__ = _cls")
    lines.append("    return o")
    exec("\n".join(lines), ns)  # generated from the field names only
    fn: Callable[..., _T] = ns["make"]
    fn.__qualname__ = f"fast_constructor({cls.__name__})"
    return fn


def lowest_free_client(ctx: Context) -> int:
    """The lowest free client thread of ``ctx``, or -1 when no client thread is free."""
    best = -1
    for t in ctx.free_threads:
        if type(t) is int and (best < 0 or t < best):
            best = t
    return best


make_op: Callable[[int, int, Process, str, str, Any, str | None, Any, Mapping[str, Any] | None], Op]
make_op = fast_constructor(Op)
"""``make_op(index, time, process, type, f, value, node, error, extra)``: the same
:class:`~jepsy.history.Op` as the keyword constructor, positional and about twice as
fast.  Every field must be given, in this order; a generator emits
``make_op(-1, ctx.time, process, "invoke", f, value, None, None, None)``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Context:
    """What a generator may know about the run at this instant.

    ``time``: ns since the test started.  ``free_threads``: threads with no
    operation in flight.  ``workers``: thread -> its current process (a
    client thread's process grows by ``concurrency`` each time it crashes).
    ``rng``: the run's seeded random source (the only randomness allowed).

    Contexts are values: ``busy``, ``free``, ``with_time``, ``restrict`` ...
    return new ones.  Never mutate a ``workers`` mapping after building a
    context on it (build a new mapping instead): ``restrict`` results are
    memoised per context and per workers mapping, so an interpreter that
    reuses a context between events saves work."""

    time: int
    free_threads: frozenset[Thread]
    workers: Mapping[Thread, Process]
    rng: random.Random = field(compare=False, repr=False)
    _memo: dict[Any, Any] | None = field(default=None, init=False, compare=False, repr=False)

    @classmethod
    def initial(
        cls,
        concurrency: int,
        *,
        seed: int = 0,
        rng: random.Random | None = None,
        nemesis: bool = True,
        time: int = 0,
    ) -> Context:
        """Client threads ``0..concurrency-1`` (process = thread) plus, with
        ``nemesis``, the thread ``"nemesis"``; all free."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
            raise ConfigError(
                f"concurrency must be a non-negative int; got {concurrency!r} "
                "(hint: the number of client threads, e.g. 5)"
            )
        workers: dict[Thread, Process] = {t: t for t in range(concurrency)}
        if nemesis:
            workers[NEMESIS] = NEMESIS
        return cls(
            time=time,
            free_threads=frozenset(workers),
            workers=workers,
            rng=rng if rng is not None else random.Random(seed),
        )

    # -- queries --------------------------------------------------------
    def all_threads(self) -> list[Thread]:
        """Every thread of this context: client threads ascending, then named ones."""
        return list(_order(self.workers))

    def free_processes(self) -> list[Process]:
        """Processes of the free threads, in thread order."""
        w = self.workers
        free = self.free_threads
        return [w[t] for t in _order(w) if t in free]

    def some_free_process(self) -> Process | None:
        """The process of the lowest free thread (clients first), or None."""
        free = self.free_threads
        if not free:
            return None
        w = self.workers
        for t in _order(w):
            if t in free:
                return w[t]
        return None  # free threads outside workers: a malformed context

    def _cache(self) -> dict[Any, Any]:
        memo = self._memo
        if memo is None:
            memo = {}
            _set_memo(self, memo)
        return memo

    def process_of(self, thread: Thread) -> Process:
        """The process ``thread`` currently runs."""
        try:
            return self.workers[thread]
        except KeyError:
            raise GeneratorError(
                f"thread {thread!r} is not in this context; threads: {self.all_threads()}"
            ) from None

    def thread_of(self, process: Process) -> Thread | None:
        """The thread running ``process`` now, or None (retired or not visible here)."""
        w = self.workers
        if w.get(process, _MISSING) == process:
            return process
        for t, p in w.items():
            if p == process:
                return t
        return None

    def is_free_process(self, process: Process) -> bool:
        t = self.thread_of(process)
        return t is not None and t in self.free_threads

    def all_free(self) -> bool:
        """True when no thread of this context has an operation in flight."""
        return len(self.free_threads) == len(self.workers)

    # -- new contexts ---------------------------------------------------
    def restrict(self, threads: Selector) -> Context:
        """A context that sees only ``threads`` (a collection, or a predicate on
        threads).  Returns ``self`` when nothing is hidden."""
        if not (callable(threads) or isinstance(threads, frozenset | tuple)):
            threads = frozenset(threads)
        memo = self._memo
        if memo is None:
            memo = {}
            _set_memo(self, memo)
        else:
            hit: Context | None = memo.get(threads)
            if hit is not None:
                return hit
        w = self.workers
        # Which threads survive depends only on `workers`, which rarely changes:
        # remember it per (workers object, selector).
        key = (id(w), threads)
        kept = _RESTRICTED.get(key)
        if kept is None or kept[0] is not w:
            keep = [t for t in w if (threads(t) if callable(threads) else t in threads)]
            if len(keep) == len(w):
                kept = (w, None, w)
            else:
                kept = (w, frozenset(keep), {t: w[t] for t in keep})
            if len(_RESTRICTED) > 512:
                _RESTRICTED.clear()
            _RESTRICTED[key] = kept
        ks = kept[1]
        if ks is None:
            res = self
        else:
            res = _mkctx(self.time, self.free_threads & ks, kept[2], self.rng, None)
        memo[threads] = res
        return res

    def with_time(self, time: int) -> Context:
        if time == self.time:
            return self
        return _mkctx(time, self.free_threads, self.workers, self.rng, None)

    def busy(self, thread: Thread) -> Context:
        """``thread`` now has an operation in flight."""
        return _mkctx(self.time, self.free_threads - {thread}, self.workers, self.rng, None)

    def free(self, thread: Thread) -> Context:
        """``thread`` finished its operation."""
        return _mkctx(self.time, self.free_threads | {thread}, self.workers, self.rng, None)

    def with_process(self, thread: Thread, process: Process) -> Context:
        w = dict(self.workers)
        w[thread] = process
        return _mkctx(self.time, self.free_threads, w, self.rng, None)

    def retire(self, thread: Thread, *, concurrency: int) -> Context:
        """After an ``info`` completion: the client ``thread`` continues as process
        ``process + concurrency``.  The nemesis thread keeps its process."""
        p = self.workers[thread]
        if type(p) is not int:
            return self
        return self.with_process(thread, p + concurrency)


_mkctx: Callable[[int, frozenset[Thread], Mapping[Thread, Process], random.Random, None], Context]
_mkctx = fast_constructor(Context)
"""``Context(time, free_threads, workers, rng, _memo)``, positional and fast."""
_set_memo: Callable[[Context, dict[Any, Any]], None] = getattr(Context, "_memo").__set__  # noqa: B009

_MISSING: Final = object()
_RESTRICTED: dict[Any, tuple[Mapping[Thread, Process], frozenset[Thread] | None, Any]] = {}
_ORDERS: dict[int, tuple[Mapping[Thread, Process], tuple[Thread, ...]]] = {}


def _order(w: Mapping[Thread, Process]) -> tuple[Thread, ...]:
    """The threads of ``w`` in thread order, cached per workers mapping."""
    got = _ORDERS.get(id(w))
    if got is not None and got[0] is w:
        return got[1]
    order = tuple(sorted(w, key=_thread_key))
    if len(_ORDERS) > 512:
        _ORDERS.clear()
    _ORDERS[id(w)] = (w, order)
    return order


@runtime_checkable
class Generator(Protocol):
    def op(self, test: Test, ctx: Context) -> tuple[Action, Generator | None] | None: ...

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None: ...


GenLike: TypeAlias = "Generator | Mapping[str, Any] | list[Any] | tuple[Any, ...] | Any | None"
OpResult: TypeAlias = "tuple[Action, Generator | None] | None"


# ---------------------------------------------------------------------------
# helpers


def _seconds(name: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x < 0:
        raise ConfigError(
            f"{name} takes a non-negative number of seconds; got {x!r} (hint: e.g. {name}(0.1, ...))"
        )
    return float(x)


def _count(name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"{name} takes a non-negative int count; got {n!r}")
    return n


def _with_time(op: Op, t: int) -> Op:
    if op.time == t:
        return op
    return make_op(op.index, t, op.process, op.type, op.f, op.value, op.node, op.error, op.extra)


def _time_of(a: Action, ctx: Context) -> int:
    return a.time if type(a) is Op else ctx.time


def _r(x: Any) -> str:
    """Repr of a generator, a function shown by its name."""
    if callable(x) and not isinstance(x, _Gen) and hasattr(x, "__qualname__"):
        return str(x.__qualname__)
    return repr(x)


def _rl(xs: Sequence[Any]) -> str:
    return ", ".join(_r(x) for x in xs)


def ignore_event(self: Any, test: Test, ctx: Context, event: Op) -> Any:
    """The ``update`` of a generator that ignores events: it returns itself.

    Use it as is in a generator class (``update = ignore_event``), not wrapped
    in another function: wrappers such as :func:`clients` and the runner
    recognise this exact function and then skip ``update`` and the context it
    would need (see :func:`ignores_events`)."""
    return self


class _Gen:
    """Base of the built-in generators (frozen dataclasses)."""

    __slots__ = ()

    def op(self, test: Test, ctx: Context) -> OpResult:  # pragma: no cover - abstract
        raise NotImplementedError

    update = ignore_event


# ---------------------------------------------------------------------------
# coercion


@dataclass(frozen=True, slots=True, repr=False)
class _Nil(_Gen):
    def op(self, test: Test, ctx: Context) -> OpResult:
        return None

    def __repr__(self) -> str:
        return "None"


_NIL: Final = _Nil()

_FAST_KEYS: Final = frozenset(("f", "value"))
_TEMPLATE_KEYS = frozenset(("f", "value", "process", "node", "type", "time", "error", "index"))


@dataclass(frozen=True, slots=True, repr=False)
class _Template(_Gen):
    """One op from a dict or an Op: emitted once to a free process."""

    f: str
    value: Any
    process: Process | None
    node: str | None
    time: int
    extra: Mapping[str, Any] | None
    src: Any = field(compare=False)

    @staticmethod
    def from_mapping(m: Mapping[str, Any]) -> _Template:
        f = m.get("f")
        if not isinstance(f, str):
            raise ConfigError(
                f"an op dict needs a string 'f'; got {m!r} (hint: {{'f': 'read', 'value': None}})"
            )
        typ = m.get("type", "invoke")
        if typ != "invoke":
            raise ConfigError(
                f"a generator emits invocations; op dict has type {typ!r}: {m!r} "
                "(hint: drop 'type' or use 'invoke')"
            )
        process = m.get("process")
        if process is not None and (
            isinstance(process, bool) or not isinstance(process, int | str)
        ):
            raise ConfigError(f"op dict 'process' must be an int or a string; got {process!r}")
        extra = {k: v for k, v in m.items() if k not in _TEMPLATE_KEYS}
        node = m.get("node")
        return _Template(
            f=f,
            value=m.get("value"),
            process=process,
            node=None if node is None else str(node),
            time=-1,
            extra=extra or None,
            src=dict(m),
        )

    @staticmethod
    def from_op(o: Op) -> _Template:
        if o.type != "invoke":
            raise ConfigError(
                f"a generator emits invocations; got an op of type {o.type!r}: {o!r} "
                "(hint: op.replace(type='invoke'))"
            )
        return _Template(
            f=o.f,
            value=o.value,
            process=o.process,
            node=o.node,
            time=o.time,
            extra=o.extra,
            src=o,
        )

    def op(self, test: Test, ctx: Context) -> OpResult:
        p = self.process
        if p is None:
            p = ctx.some_free_process()
            if p is None:
                return (PENDING, self)
        else:
            t = ctx.thread_of(p)
            if t is None:
                p = ctx.some_free_process()
                if p is None:
                    return (PENDING, self)
            elif t not in ctx.free_threads:
                return (PENDING, self)
        tm = ctx.time if self.time < ctx.time else self.time
        return (make_op(-1, tm, p, "invoke", self.f, self.value, self.node, None, self.extra), None)

    def __repr__(self) -> str:
        return repr(self.src)


def _arity(fn: Callable[..., Any]) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 2
    try:
        sig.bind(None, None)
        return 2
    except TypeError:
        pass
    try:
        sig.bind()
        return 0
    except TypeError:
        raise ConfigError(
            f"a function generator takes (test, ctx) or no arguments; {_r(fn)} has signature {sig}"
        ) from None


@dataclass(frozen=True, slots=True, repr=False)
class _Fn(_Gen):
    """Calls ``fn(test, ctx)`` (or ``fn()``) each time; None ends it."""

    fn: Callable[..., Any]
    arity: int

    def op(self, test: Test, ctx: Context) -> OpResult:
        if not ctx.free_threads:
            return (PENDING, self)
        x = self.fn(test, ctx) if self.arity == 2 else self.fn()
        if x is None:
            return None
        if type(x) is dict and x.keys() <= _FAST_KEYS and type(x.get("f")) is str:
            p = ctx.some_free_process()
            if p is None:
                return (PENDING, self)
            return (
                make_op(-1, ctx.time, p, "invoke", x["f"], x.get("value"), None, None, None),
                self,
            )
        g = lift(x)
        r = g.op(test, ctx)
        if r is None:
            return None
        a, g2 = r
        if a is PENDING:
            return (PENDING, self)
        return (a, self if g2 is None else _mk_Seq(g2, (self,), 0, "list"))

    def __repr__(self) -> str:
        return _r(self.fn)


def lift(x: GenLike) -> Generator:
    """Coerce a generator-like value into a generator.

    ``None`` -> empty; a ``dict`` -> one op (keys ``f``, ``value``,
    optional ``process``/``node``; other keys go to ``Op.extra``); an
    ``Op`` of type invoke -> that op once; a list/tuple -> its elements in
    order; a function ``(test, ctx)`` or ``()`` returning op-likes -> called
    for each op until it returns None; a generator -> itself."""
    if isinstance(x, _Gen):
        return x
    if x is None:
        return _NIL
    if isinstance(x, Mapping):
        return _Template.from_mapping(x)
    if isinstance(x, Op):
        return _Template.from_op(x)
    if isinstance(x, list | tuple):
        return _seq([lift(e) for e in x], "list")
    if isinstance(x, Generator) and not isinstance(x, type):
        return x
    if callable(x):
        return _Fn(x, _arity(x))
    raise ConfigError(
        f"cannot use {_r(x)} (a {type(x).__name__}) as a generator "
        "(hint: use a dict op, a list, a function (test, ctx) -> dict, or a jepsy.generator "
        "combinator; wrap iterators in list(...))"
    )


# ---------------------------------------------------------------------------
# sequencing


@dataclass(frozen=True, slots=True, repr=False)
class _Seq(_Gen):
    head: Generator | None
    rest: tuple[Generator, ...]
    pos: int
    form: str

    def op(self, test: Test, ctx: Context) -> OpResult:
        head, pos, rest = self.head, self.pos, self.rest
        while True:
            if head is not None:
                r = head.op(test, ctx)
                if r is not None:
                    a, g2 = r
                    if a is PENDING:
                        return (PENDING, self)
                    if g2 is None:
                        if pos >= len(rest):
                            return (a, None)
                        return (a, _mk_Seq(rest[pos], rest, pos + 1, self.form))
                    return (a, _mk_Seq(g2, rest, pos, self.form))
            if pos >= len(rest):
                return None
            head = rest[pos]
            pos += 1

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        head = self.head
        if head is None:
            return self
        h2 = head.update(test, ctx, event)
        if h2 is head:
            return self
        return _mk_Seq(h2, self.rest, self.pos, self.form)

    def __repr__(self) -> str:
        items: list[Any] = [] if self.head is None else [self.head]
        items.extend(self.rest[self.pos :])
        if self.form == "list":
            return f"[{_rl(items)}]"
        if self.form == "phases":
            return f"phases({_rl([i.gen if isinstance(i, _Synchronize) else i for i in items])})"
        return f"{self.form}({_rl(items)})"


def _seq(gens: Sequence[Generator], form: str) -> _Seq:
    if not gens:
        return _mk_Seq(None, (), 0, form)
    return _Seq(gens[0], tuple(gens), 1, form)


def then(*gens: GenLike) -> Generator:
    """Run each generator to exhaustion, in order, without waiting for threads
    in between (the list ``[a, b, ...]`` says the same)."""
    return _seq([lift(g) for g in gens], "then")


@dataclass(frozen=True, slots=True, repr=False)
class _Synchronize(_Gen):
    gen: Generator

    def op(self, test: Test, ctx: Context) -> OpResult:
        if len(ctx.free_threads) != len(ctx.workers):
            return (PENDING, self)
        r = self.gen.op(test, ctx)
        if r is not None and r[0] is PENDING:
            return (PENDING, self)
        return r

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        g2 = self.gen.update(test, ctx, event)
        if g2 is self.gen:
            return self
        return None if g2 is None else _mk_Synchronize(g2)

    def __repr__(self) -> str:
        return f"synchronize({self.gen!r})"


def synchronize(gen: GenLike) -> Generator:
    """Wait until every thread (of the context it sees) is free, then act as ``gen``."""
    return _Synchronize(lift(gen))


def phases(*gens: GenLike) -> Generator:
    """Each generator in turn, waiting for every thread to be free before each."""
    return _seq([_Synchronize(lift(g)) for g in gens], "phases")


# ---------------------------------------------------------------------------
# counting and time


@dataclass(frozen=True, slots=True, repr=False)
class _Limit(_Gen):
    n: int
    gen: Generator
    name: str = "limit"

    def op(self, test: Test, ctx: Context) -> OpResult:
        if self.n <= 0:
            return None
        r = self.gen.op(test, ctx)
        if r is None:
            return None
        a, g2 = r
        if a is PENDING:
            return (PENDING, self)
        n = self.n - 1 if type(a) is Op else self.n
        if g2 is None or n <= 0:
            return (a, None)
        return (a, _mk_Limit(n, g2, self.name))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        g2 = self.gen.update(test, ctx, event)
        if g2 is self.gen:
            return self
        return None if g2 is None else _mk_Limit(self.n, g2, self.name)

    def __repr__(self) -> str:
        if self.name == "once" and self.n == 1:
            return f"once({self.gen!r})"
        return f"limit({self.n}, {self.gen!r})"


def limit(n: int, gen: GenLike) -> Generator:
    """At most ``n`` invoke ops from ``gen`` (sleeps and logs are not counted)."""
    return _Limit(_count("limit", n), lift(gen))


def once(gen: GenLike) -> Generator:
    """Only the first op of ``gen``."""
    return _Limit(1, lift(gen), "once")


@dataclass(frozen=True, slots=True, repr=False)
class _Repeat(_Gen):
    n: int | None
    gen: Generator

    def op(self, test: Test, ctx: Context) -> OpResult:
        n = self.n
        if n is not None and n <= 0:
            return None
        r = self.gen.op(test, ctx)
        if r is None:
            return None
        a = r[0]
        if a is PENDING:
            return (PENDING, self)
        if n is None:
            return (a, self)
        return (a, _mk_Repeat(n - 1, self.gen) if n > 1 else None)

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        g2 = self.gen.update(test, ctx, event)
        if g2 is self.gen:
            return self
        return None if g2 is None else _mk_Repeat(self.n, g2)

    def __repr__(self) -> str:
        if self.n is None:
            return f"repeat({self.gen!r})"
        return f"repeat({self.n}, {self.gen!r})"


def repeat(n_or_gen: Any, gen: GenLike = _MISSING) -> Generator:
    """``repeat(x)``: emit ``x``'s first op forever (``x`` itself never advances);
    ``repeat(n, x)``: ``n`` times."""
    if gen is _MISSING:
        return _mk_Repeat(None, lift(n_or_gen))
    return _Repeat(_count("repeat", n_or_gen), lift(gen))


@dataclass(frozen=True, slots=True, repr=False)
class _Cycle(_Gen):
    n: int | None  # runs left, including the current one
    orig: Generator
    cur: Generator

    def op(self, test: Test, ctx: Context) -> OpResult:
        n, cur = self.n, self.cur
        if n is not None and n <= 0:
            return None
        r = cur.op(test, ctx)
        if r is None:
            if n is not None:
                n -= 1
                if n <= 0:
                    return None
            cur = self.orig
            r = cur.op(test, ctx)
            if r is None:
                return None
        a, g2 = r
        if a is PENDING:
            return (PENDING, self)
        if g2 is None:
            if n is not None and n <= 1:
                return (a, None)
            return (a, _mk_Cycle(None if n is None else n - 1, self.orig, self.orig))
        return (a, _mk_Cycle(n, self.orig, g2))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        g2 = self.cur.update(test, ctx, event)
        if g2 is self.cur:
            return self
        return _mk_Cycle(self.n, self.orig, _NIL if g2 is None else g2)

    def __repr__(self) -> str:
        if self.n is None:
            return f"cycle({self.orig!r})"
        return f"cycle({self.n}, {self.orig!r})"


def cycle(n_or_gen: Any, gen: GenLike = _MISSING) -> Generator:
    """``cycle(g)``: run ``g`` to exhaustion, then start it again, forever;
    ``cycle(n, g)``: ``n`` runs.  Ends if a fresh ``g`` is immediately empty."""
    if gen is _MISSING:
        return _mk_Cycle(None, lift(n_or_gen), lift(n_or_gen))
    g = lift(gen)
    return _Cycle(_count("cycle", n_or_gen), g, g)


@dataclass(frozen=True, slots=True, repr=False)
class _TimeLimit(_Gen):
    seconds: float
    gen: Generator
    cutoff: int | None = None

    def op(self, test: Test, ctx: Context) -> OpResult:
        cutoff = self.cutoff
        if cutoff is not None and ctx.time >= cutoff:
            return None
        r = self.gen.op(test, ctx)
        if r is None:
            return None
        a, g2 = r
        if a is PENDING:
            return (PENDING, self)
        t = _time_of(a, ctx)
        if cutoff is None:
            cutoff = t + int(self.seconds * NS)
        if t >= cutoff:
            return None
        return (a, None if g2 is None else _mk_TimeLimit(self.seconds, g2, cutoff))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        g2 = self.gen.update(test, ctx, event)
        if g2 is self.gen:
            return self
        return None if g2 is None else _mk_TimeLimit(self.seconds, g2, self.cutoff)

    def __repr__(self) -> str:
        return f"time_limit({self.seconds:g}, {self.gen!r})"


def time_limit(seconds: float, gen: GenLike) -> Generator:
    """Ops from ``gen`` until ``seconds`` after its first op; then exhausted."""
    return _TimeLimit(_seconds("time_limit", seconds), lift(gen))


@dataclass(frozen=True, slots=True, repr=False)
class _Delay(_Gen):
    seconds: float
    dt: int  # ns
    gen: Generator
    random: bool
    next_time: int = -1

    def op(self, test: Test, ctx: Context) -> OpResult:
        nt = self.next_time
        # Children see the time their op will happen at (no re-timing needed).
        r = self.gen.op(test, ctx if nt <= ctx.time else ctx.with_time(nt))
        if r is None:
            return None
        a, g2 = r
        if type(a) is not Op:
            return (PENDING, self) if a is PENDING else (a, None if g2 is None else self._with(g2))
        t = a.time if a.time >= nt else nt
        gap = int(ctx.rng.random() * 2 * self.dt) if self.random else self.dt
        nxt = _mk_Delay(self.seconds, self.dt, g2, self.random, t + gap) if g2 is not None else None
        return (_with_time(a, t), nxt)

    def _with(self, g: Generator) -> _Delay:
        return _mk_Delay(self.seconds, self.dt, g, self.random, self.next_time)

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        g2 = self.gen.update(test, ctx, event)
        if g2 is self.gen:
            return self
        return None if g2 is None else self._with(g2)

    def __repr__(self) -> str:
        return f"{'stagger' if self.random else 'delay'}({self.seconds:g}, {self.gen!r})"


def delay(seconds: float, gen: GenLike) -> Generator:
    """Ops from ``gen``, successive ones at least ``seconds`` apart."""
    s = _seconds("delay", seconds)
    return _Delay(s, int(s * NS), lift(gen), False)


def stagger(seconds: float, gen: GenLike) -> Generator:
    """Ops from ``gen`` spaced by random gaps uniform in ``[0, 2*seconds)``:
    a total rate of about ``1/seconds`` ops per second."""
    s = _seconds("stagger", seconds)
    return _Delay(s, int(s * NS), lift(gen), True)


@dataclass(frozen=True, slots=True, repr=False)
class _SleepGen(_Gen):
    seconds: float

    def op(self, test: Test, ctx: Context) -> OpResult:
        p = ctx.some_free_process()
        if p is None:
            return (PENDING, self)
        return (Sleep(self.seconds, p), None)

    def __repr__(self) -> str:
        return f"sleep({self.seconds:g})"


def sleep(seconds: float) -> Generator:
    """One free thread (the nemesis, under :func:`nemesis`) sleeps ``seconds``."""
    return _SleepGen(_seconds("sleep", seconds))


@dataclass(frozen=True, slots=True, repr=False)
class _LogGen(_Gen):
    message: str

    def op(self, test: Test, ctx: Context) -> OpResult:
        p = ctx.some_free_process()
        if p is None:
            return (PENDING, self)
        return (Log(self.message, p), None)

    def __repr__(self) -> str:
        return f"log({self.message!r})"


def log(message: str) -> Generator:
    """Write ``message`` to the run log once a thread is free (occupies no thread)."""
    return _LogGen(str(message))


# ---------------------------------------------------------------------------
# choice and concurrency


@dataclass(frozen=True, slots=True, repr=False)
class _Mix(_Gen):
    gens: tuple[Generator, ...]

    def op(self, test: Test, ctx: Context) -> OpResult:
        gens = self.gens
        rng = ctx.rng
        while gens:
            i = int(rng.random() * len(gens))
            r = gens[i].op(test, ctx)
            if r is None:
                gens = gens[:i] + gens[i + 1 :]
                continue
            a, g2 = r
            if a is PENDING:
                return (PENDING, self)
            if g2 is gens[i]:
                return (a, self if gens is self.gens else _mk_Mix(gens))
            gens = gens[:i] + gens[i + 1 :] if g2 is None else (*gens[:i], g2, *gens[i + 1 :])
            return (a, _mk_Mix(gens) if gens else None)
        return None

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        out = []
        changed = False
        for g in self.gens:
            g2 = g.update(test, ctx, event)
            if g2 is not g:
                changed = True
            if g2 is not None:
                out.append(g2)
        if not changed:
            return self
        return _mk_Mix(tuple(out))

    def __repr__(self) -> str:
        return f"mix([{_rl(self.gens)}])"


def mix(gens: Sequence[GenLike]) -> Generator:
    """Each op from a generator chosen uniformly at random (``ctx.rng``);
    exhausted ones drop out."""
    if isinstance(gens, Mapping) or not isinstance(gens, Sequence) or isinstance(gens, str):
        raise ConfigError(
            f"mix takes a list of generators; got {_r(gens)} (hint: mix([reads, writes]))"
        )
    return _Mix(tuple(lift(g) for g in gens))


def _soonest(results: list[OpResult], ctx: Context, last: int) -> tuple[int, bool]:
    """(index of the soonest action or -1, whether any is pending).  Ties go
    round-robin: to the first tied index after ``last`` (pure, and fair)."""
    best = -1
    best_t = 0
    pending = False
    for i, r in enumerate(results):
        if r is None:
            continue
        a = r[0]
        if a is PENDING:
            pending = True
            continue
        t = _time_of(a, ctx)
        if best < 0 or t < best_t or (t == best_t and best <= last < i):
            best, best_t = i, t
    return best, pending


@dataclass(frozen=True, slots=True, repr=False)
class _Any(_Gen):
    gens: tuple[Generator, ...]
    last: int = -1

    def op(self, test: Test, ctx: Context) -> OpResult:
        results = [g.op(test, ctx) for g in self.gens]
        best, pending = _soonest(results, ctx, self.last)
        if best < 0:
            return (PENDING, self) if pending else None
        r = results[best]
        assert r is not None
        out = []
        last = -1
        for i, (g, ri) in enumerate(zip(self.gens, results, strict=True)):
            if i == best:
                if r[1] is not None:
                    out.append(r[1])
                last = len(out) - 1
            elif ri is not None:
                out.append(g)
        return (r[0], _mk_Any(tuple(out), last) if out else None)

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        out = []
        changed = False
        for g in self.gens:
            g2 = g.update(test, ctx, event)
            if g2 is not g:
                changed = True
            if g2 is not None:
                out.append(g2)
        if not changed:
            return self
        return _mk_Any(tuple(out), self.last if len(out) == len(self.gens) else -1) if out else None

    def __repr__(self) -> str:
        return f"any_({_rl(self.gens)})"


def any_(*gens: GenLike) -> Generator:
    """All generators at once: each time, the soonest op any of them offers
    (ties taken round-robin); every event goes to all of them."""
    return _Any(tuple(lift(g) for g in gens))


@dataclass(frozen=True, slots=True, repr=False)
class _OnThreads(_Gen):
    sel: Any  # Callable[[Thread], bool] | frozenset[Thread]
    gen: Generator
    label: str

    def _has(self, t: Thread) -> bool:
        s = self.sel
        return bool(s(t)) if callable(s) else t in s

    def op(self, test: Test, ctx: Context) -> OpResult:
        memo = ctx._memo
        sub = memo.get(self.sel) if memo is not None else None
        if sub is None:
            sub = ctx.restrict(self.sel)
        if not sub.workers:
            return None  # routed to no thread at all: nothing can ever run
        r = self.gen.op(test, sub)
        if r is None:
            return None
        a, g2 = r
        if a is PENDING:
            return (PENDING, self)
        return (a, None if g2 is None else _mk_OnThreads(self.sel, g2, self.label))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        if type(self.gen).update is ignore_event:
            return self  # the child would return itself: no context needed
        t = ctx.thread_of(event.process)
        if t is None or not self._has(t):
            return self
        g2 = self.gen.update(test, ctx.restrict(self.sel), event)
        if g2 is self.gen:
            return self
        return None if g2 is None else _mk_OnThreads(self.sel, g2, self.label)

    def __repr__(self) -> str:
        if self.label:
            return f"{self.label}({self.gen!r})"
        sel = self.sel
        shown = _r(sel) if callable(sel) else repr(sorted(sel, key=_thread_key))
        return f"on_threads({shown}, {self.gen!r})"


def on_threads(threads: Selector, gen: GenLike) -> Generator:
    """``gen`` sees (and runs on) only ``threads``: a collection of threads or a
    predicate ``thread -> bool``.  Routed to no existing thread, it is empty."""
    sel: Any = threads if callable(threads) else frozenset(threads)
    return _OnThreads(sel, lift(gen), "")


def clients(gen: GenLike, nemesis_gen: GenLike = None) -> Generator:
    """``gen`` runs on the client threads only; with ``nemesis_gen`` also run that
    on the nemesis thread (``any_(clients(gen), nemesis(nemesis_gen))``)."""
    c = _OnThreads(_is_client_thread, lift(gen), "clients")
    if nemesis_gen is None:
        return c
    return _Any((c, _OnThreads(_is_nemesis_thread, lift(nemesis_gen), "nemesis")))


def nemesis(gen: GenLike, clients_gen: GenLike = None) -> Generator:
    """``gen`` runs on the nemesis thread only; with ``clients_gen`` also run that
    on the client threads."""
    n = _OnThreads(_is_nemesis_thread, lift(gen), "nemesis")
    if clients_gen is None:
        return n
    return _Any((n, _OnThreads(_is_client_thread, lift(clients_gen), "clients")))


_MAX_SKIPS: Final = 1_000_000


@dataclass(frozen=True, slots=True, repr=False)
class _Filter(_Gen):
    pred: Callable[[Op], Any]
    gen: Generator

    def op(self, test: Test, ctx: Context) -> OpResult:
        g: Generator | None = self.gen
        for _ in range(_MAX_SKIPS):
            if g is None:
                return None
            r = g.op(test, ctx)
            if r is None:
                return None
            a, g2 = r
            if a is PENDING:
                return (PENDING, self) if g is self.gen else (PENDING, _mk_Filter(self.pred, g))
            if type(a) is not Op or self.pred(a):
                return (a, None if g2 is None else _mk_Filter(self.pred, g2))
            g = g2
        raise GeneratorError(
            f"filter_({_r(self.pred)}, ...) rejected {_MAX_SKIPS} ops in a row "
            "(hint: the predicate never matches what the generator emits)"
        )

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        g2 = self.gen.update(test, ctx, event)
        if g2 is self.gen:
            return self
        return None if g2 is None else _mk_Filter(self.pred, g2)

    def __repr__(self) -> str:
        return f"filter_({_r(self.pred)}, {self.gen!r})"


def filter_(pred: Callable[[Op], Any], gen: GenLike) -> Generator:
    """Only the ops of ``gen`` for which ``pred(op)`` is true (others are skipped)."""
    if not callable(pred):
        raise ConfigError(f"filter_ takes a predicate op -> bool first; got {_r(pred)}")
    return _Filter(pred, lift(gen))


@dataclass(frozen=True, slots=True, repr=False)
class _Map(_Gen):
    fn: Callable[[Op], Op]
    gen: Generator

    def op(self, test: Test, ctx: Context) -> OpResult:
        r = self.gen.op(test, ctx)
        if r is None:
            return None
        a, g2 = r
        if a is PENDING:
            return (PENDING, self)
        if type(a) is Op:
            a2 = self.fn(a)
            if not isinstance(a2, Op):
                raise GeneratorError(
                    f"map_({_r(self.fn)}, ...) must return an Op; got {_r(a2)} for {a!r} "
                    "(hint: return op.replace(...))"
                )
            a = a2
        return (a, None if g2 is None else _mk_Map(self.fn, g2))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        g2 = self.gen.update(test, ctx, event)
        if g2 is self.gen:
            return self
        return None if g2 is None else _mk_Map(self.fn, g2)

    def __repr__(self) -> str:
        return f"map_({_r(self.fn)}, {self.gen!r})"


def map_(fn: Callable[[Op], Op], gen: GenLike) -> Generator:
    """Ops of ``gen`` transformed by ``fn(op) -> op`` (keep the process)."""
    if not callable(fn):
        raise ConfigError(f"map_ takes a function op -> op first; got {_r(fn)}")
    return _Map(fn, lift(gen))


@dataclass(frozen=True, slots=True, repr=False)
class _EachThread(_Gen):
    gen: Generator
    per: Mapping[Thread, Generator | None]  # copy-on-write; a missing thread has a fresh `gen`

    def op(self, test: Test, ctx: Context) -> OpResult:
        per = self.per
        free = ctx.free_threads
        best_t: Thread | None = None
        best: tuple[Action, Generator | None] | None = None
        best_time = 0
        pending = False
        for t in _order(ctx.workers):
            g = per.get(t, self.gen)
            if g is None:
                continue
            if t not in free:
                pending = True
                continue
            r = g.op(test, ctx.restrict((t,)))
            if r is None:
                continue
            if r[0] is PENDING:
                pending = True
                continue
            tm = _time_of(r[0], ctx)
            if best is None or tm < best_time:
                best_t, best, best_time = t, r, tm
                if tm <= ctx.time:
                    break  # nothing can be sooner; ties go to the lowest thread
        if best is None:
            return (PENDING, self) if pending else None
        per2 = dict(per)
        per2[best_t] = best[1]  # type: ignore[index]
        return (best[0], _mk_EachThread(self.gen, per2))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        t = ctx.thread_of(event.process)
        if t is None:
            return self
        g = self.per.get(t, self.gen)
        if g is None:
            return self
        g2 = g.update(test, ctx.restrict((t,)), event)
        if g2 is g:
            return self
        per2 = dict(self.per)
        per2[t] = g2
        return _mk_EachThread(self.gen, per2)

    def __repr__(self) -> str:
        return f"each_thread({self.gen!r})"


def each_thread(gen: GenLike) -> Generator:
    """An independent copy of ``gen`` for every thread (of the context it sees):
    ``each_thread([{"f": "inc"}, {"f": "read"}])`` makes every thread inc then read."""
    return _EachThread(lift(gen), {})


@dataclass(frozen=True, slots=True, repr=False)
class _Reserve(_Gen):
    counts: tuple[int, ...]
    gens: tuple[Generator | None, ...]  # len(counts) + 1; the last is the default
    last: int = -1

    def _groups(self, ctx: Context) -> tuple[tuple[Thread, ...], ...]:
        key = ("reserve", self.counts)
        memo = ctx._cache()
        got: tuple[tuple[Thread, ...], ...] | None = memo.get(key)
        if got is not None:
            return got
        threads = ctx.all_threads()
        groups = []
        start = 0
        for n in self.counts:
            groups.append(tuple(threads[start : start + n]))
            start += n
        groups.append(tuple(threads[start:]))
        res = tuple(groups)
        memo[key] = res
        return res

    def op(self, test: Test, ctx: Context) -> OpResult:
        groups = self._groups(ctx)
        results: list[OpResult] = []
        for g, grp in zip(self.gens, groups, strict=True):
            results.append(None if g is None or not grp else g.op(test, ctx.restrict(grp)))
        best, pending = _soonest(results, ctx, self.last)
        if best < 0:
            return (PENDING, self) if pending else None
        r = results[best]
        assert r is not None
        gens = list(self.gens)
        gens[best] = r[1]
        if all(g is None for g in gens):
            return (r[0], None)
        return (r[0], _mk_Reserve(self.counts, tuple(gens), best))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        t = ctx.thread_of(event.process)
        if t is None:
            return self
        for i, grp in enumerate(self._groups(ctx)):
            if t in grp:
                g = self.gens[i]
                if g is None:
                    return self
                g2 = g.update(test, ctx.restrict(grp), event)
                if g2 is g:
                    return self
                gens = list(self.gens)
                gens[i] = g2
                return _mk_Reserve(self.counts, tuple(gens), self.last)
        return self

    def __repr__(self) -> str:
        parts = []
        for n, g in zip(self.counts, self.gens, strict=False):
            parts.append(f"{n}, {g!r}")
        parts.append(repr(self.gens[-1]))
        return f"reserve({', '.join(parts)})"


def reserve(*args: Any) -> Generator:
    """``reserve(5, writes, 10, cas, reads)``: the first 5 threads (in thread
    order: clients ascending, then the nemesis) run ``writes``, the next 10
    run ``cas``, the rest run the default ``reads`` (None: nothing).
    Usually wrapped in :func:`clients`."""
    if len(args) % 2 == 0:
        raise ConfigError(
            f"reserve takes count, generator pairs and then a default generator; got {len(args)} "
            "arguments (hint: reserve(5, writes, reads) or reserve(5, writes, None))"
        )
    counts = tuple(_count("reserve", n) for n in args[:-1:2])
    default = None if args[-1] is None else lift(args[-1])
    gens = (*(lift(g) for g in args[1:-1:2]), default)
    return _Reserve(counts, gens)


@dataclass(frozen=True, slots=True, repr=False)
class _FlipFlop(_Gen):
    gens: tuple[Generator | None, ...]
    i: int = 0

    def op(self, test: Test, ctx: Context) -> OpResult:
        g = self.gens[self.i]
        if g is None:
            return None
        r = g.op(test, ctx)
        if r is None:
            return None
        a, g2 = r
        if a is PENDING:
            return (PENDING, self)
        gens = list(self.gens)
        gens[self.i] = g2
        return (a, _mk_FlipFlop(tuple(gens), (self.i + 1) % len(gens)))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        out = tuple(None if g is None else g.update(test, ctx, event) for g in self.gens)
        if all(a is b for a, b in zip(out, self.gens, strict=True)):
            return self
        return _mk_FlipFlop(out, self.i)

    def __repr__(self) -> str:
        return f"flip_flop({_rl(self.gens)})"


def flip_flop(a: GenLike, b: GenLike, *more: GenLike) -> Generator:
    """An op from ``a``, then from ``b``, then ``a`` again ...; stops as soon as
    the generator whose turn it is is exhausted."""
    return _FlipFlop(tuple(lift(g) for g in (a, b, *more)))


@dataclass(frozen=True, slots=True, repr=False)
class _UntilOk(_Gen):
    gen: Generator
    active: frozenset[Process] = frozenset()
    done: bool = False

    def op(self, test: Test, ctx: Context) -> OpResult:
        if self.done:
            return None
        r = self.gen.op(test, ctx)
        if r is None:
            return None
        a, g2 = r
        if a is PENDING:
            return (PENDING, self)
        active = self.active | {a.process} if type(a) is Op else self.active
        return (a, _UntilOk(_NIL if g2 is None else g2, active))

    def update(self, test: Test, ctx: Context, event: Op) -> Generator | None:
        g2 = self.gen.update(test, ctx, event)
        active, done = self.active, self.done
        if event.type != "invoke" and event.process in active:
            active = active - {event.process}
            done = done or event.type == "ok"
        if g2 is self.gen and active is self.active and done == self.done:
            return self
        return _UntilOk(_NIL if g2 is None else g2, active, done)

    def __repr__(self) -> str:
        return f"until_ok({self.gen!r})"


def until_ok(gen: GenLike) -> Generator:
    """Ops from ``gen`` until one of them completes ``ok``; then exhausted."""
    return _UntilOk(lift(gen))


# Fast positional constructors for the per-op paths (every field, in order).
_mk_OnThreads = fast_constructor(_OnThreads)
_mk_Delay = fast_constructor(_Delay)
_mk_Seq = fast_constructor(_Seq)
_mk_Limit = fast_constructor(_Limit)
_mk_Mix = fast_constructor(_Mix)
_mk_Any = fast_constructor(_Any)
_mk_TimeLimit = fast_constructor(_TimeLimit)
_mk_Repeat = fast_constructor(_Repeat)
_mk_Cycle = fast_constructor(_Cycle)
_mk_EachThread = fast_constructor(_EachThread)
_mk_Synchronize = fast_constructor(_Synchronize)
_mk_Filter = fast_constructor(_Filter)
_mk_Map = fast_constructor(_Map)
_mk_Reserve = fast_constructor(_Reserve)
_mk_FlipFlop = fast_constructor(_FlipFlop)


# Wrappers whose ``update`` only passes the event to one child and returns
# itself when the child does (attribute of that child), and the ones that do
# the same over a tuple of children.
_ONE_CHILD: Final[dict[type, str]] = {
    _OnThreads: "gen",
    _Limit: "gen",
    _Repeat: "gen",
    _Delay: "gen",
    _TimeLimit: "gen",
    _Map: "gen",
    _Filter: "gen",
    _Synchronize: "gen",
    _Cycle: "cur",
    _Seq: "head",
}
_ALL_CHILDREN: Final[dict[type, str]] = {_Mix: "gens", _Any: "gens"}


def ignores_events(g: Generator | None) -> bool:
    """True when ``g.update(test, ctx, event)`` is sure to return ``g`` itself for
    any event (every generator that would see it uses :func:`ignore_event`, and
    the built-in wrappers on the way only pass events down), so an interpreter
    may skip the call and the context it would build for it."""
    return _ignores(g, 0)


def _ignores(g: Generator | None, depth: int) -> bool:
    while g is not None:
        cls = type(g)
        if cls.update is ignore_event:
            return True
        attr = _ONE_CHILD.get(cls)
        if attr is not None:
            g = getattr(g, attr)
            continue
        attr = _ALL_CHILDREN.get(cls)
        if attr is not None and depth < 8:
            return all(_ignores(c, depth + 1) for c in getattr(g, attr))
        return False
    return True


# ---------------------------------------------------------------------------
# the thread-free interpreter


def _completion(inv: Op, c: Any) -> Op:
    if isinstance(c, str):
        typ = c
        c = inv
    elif isinstance(c, Op):
        typ = c.type
    else:
        raise GeneratorError(f"complete() must return an Op or 'ok'/'fail'/'info'; got {_r(c)}")
    if typ not in ("ok", "fail", "info"):
        raise GeneratorError(f"complete() gave type {typ!r} for {inv!r}; want ok, fail or info")
    return make_op(-1, inv.time, inv.process, typ, inv.f, c.value, c.node, c.error, c.extra)


def _default_complete(op: Op, ctx: Context) -> Op | str:
    return "ok" if op.is_client else "info"


def simulate(
    gen: GenLike,
    *,
    test: Test | None = None,
    concurrency: int = 5,
    seed: int = 0,
    complete: Callable[[Op, Context], Op | str] | None = None,
    max_events: int = 10_000,
    time_limit: float | None = None,
    latency: int | Callable[[Op, random.Random], int] = 10,
    nemesis: bool = True,
    on_log: Callable[[int, str], None] | None = None,
    poll: int = 10_000_000,
) -> list[Op]:
    """Run ``gen`` in simulated time, following the interpreter contract; return
    the history (invokes and completions, indexed, with times in ns).

    ``concurrency`` client threads plus the nemesis thread (unless
    ``nemesis=False``).  Each op takes ``latency`` ns (an int, or
    ``latency(invoke, rng) -> ns`` with its own seeded rng); ``complete(invoke,
    ctx)`` returns the completion (an Op, or just ``"ok"``/``"fail"``/``"info"``;
    default: clients ``ok``, nemesis ``info``).  Stops asking for new ops once
    ``max_events`` events are recorded or simulated time passes ``time_limit``
    seconds, then lets in-flight ops complete.  Log lines go to ``on_log(time,
    message)``.  Deterministic for a given seed.

    Raises :class:`GeneratorError` when the generator emits an op for a process
    that is not free, or stays PENDING with every thread free and nothing in
    flight (it could never make progress)."""
    g: Generator | None = lift(gen)
    if test is None:
        from jepsy.core import noop_test

        test = noop_test(concurrency=concurrency, seed=seed)
    comp = complete or _default_complete
    ctx = Context.initial(concurrency, seed=seed, nemesis=nemesis)
    lat_rng = random.Random(seed ^ 0x5EED)
    limit_ns = None if time_limit is None else int(_seconds("time_limit", time_limit) * NS)
    history: list[Op] = []
    heap: list[tuple[int, int, Thread, Op | None]] = []
    seq = 0
    now = 0
    idle_polls = 0
    steps = 0
    max_steps = 50 * max_events + 10_000
    while True:
        steps += 1
        if steps > max_steps:
            raise GeneratorError(
                f"simulate gave up after {max_steps} steps with {len(history)} events "
                f"(simulated time {now / NS:g} s); generator {g!r} goes on without "
                "recording ops (hint: pass time_limit=..., or make the generator finite)"
            )
        if heap and heap[0][0] <= now:
            tdone, _, thread, inv = heappop(heap)
            now = max(now, tdone)
            ctx = ctx.with_time(now).free(thread)
            if inv is None:
                continue
            c = _completion(inv, comp(inv, ctx))
            c = make_op(
                len(history), now, c.process, c.type, c.f, c.value, c.node, c.error, c.extra
            )
            history.append(c)
            if g is not None:
                g = g.update(test, ctx, c)
            if c.type == "info" and type(thread) is int:
                ctx = ctx.retire(thread, concurrency=concurrency)
            continue
        stop = len(history) >= max_events or (limit_ns is not None and now >= limit_ns)
        r = None if (stop or g is None) else g.op(test, ctx)
        if r is None:
            if heap:
                now = heap[0][0]
                ctx = ctx.with_time(now)
                continue
            break
        a, g2 = r
        if a is PENDING:
            if heap:
                now = heap[0][0]
            else:
                idle_polls += 1
                if idle_polls > 1000:
                    raise GeneratorError(
                        f"generator {g!r} is PENDING with every thread free and nothing in "
                        "flight, so it can never make progress (hint: a custom generator that "
                        "waits for something no event will bring?)"
                    )
                now += poll
            ctx = ctx.with_time(now)
            continue
        idle_polls = 0
        if isinstance(a, Log):
            if on_log is not None:
                on_log(now, a.message)
            g = g2
            continue
        if isinstance(a, Op) and a.time > now:
            now = a.time if not heap or heap[0][0] > a.time else heap[0][0]
            ctx = ctx.with_time(now)
            continue
        thread_of = ctx.thread_of(a.process)  # type: ignore[union-attr]
        if thread_of is None or thread_of not in ctx.free_threads:
            raise GeneratorError(
                f"generator {g!r} emitted {a!r} for process {a.process!r}, "  # type: ignore[union-attr]
                f"which is not free; free processes: {ctx.free_processes()}"
            )
        if isinstance(a, Sleep):
            ctx = ctx.busy(thread_of)
            seq += 1
            heappush(heap, (now + int(a.seconds * NS), seq, thread_of, None))
            g = g2
            continue
        assert isinstance(a, Op)
        if a.type != "invoke":
            raise GeneratorError(f"generator {g!r} emitted {a!r}; want type 'invoke'")
        inv = make_op(
            len(history), now, a.process, "invoke", a.f, a.value, a.node, a.error, a.extra
        )
        history.append(inv)
        ctx = ctx.busy(thread_of)
        g = None if g2 is None else g2.update(test, ctx, inv)
        lat = latency(inv, lat_rng) if callable(latency) else latency
        seq += 1
        heappush(heap, (now + max(0, int(lat)), seq, thread_of, inv))
    return history
