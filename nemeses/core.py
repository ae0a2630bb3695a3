"""Nemesis packages, composition, node selectors: the parts every fault shares.

A :class:`Package` is data (Jepsen's ``nemesis/combined``): the nemesis that
applies a fault, the generator that schedules it, the final generator that
heals it after the main phase, and what a report should shade.  Packages
compose: :func:`compose_packages` routes each op to the nemesis whose
``fs()`` holds its ``f``, runs the schedules side by side (the soonest op
of any of them next, as Jepsen's ``any``), and runs the healing generators
one after another.

Node selectors name a set of nodes, chosen when the op runs (so they follow
the cluster as it is then, e.g. its current primaries):
``one, minority, majority, minority-third, primaries, all`` or an explicit
list of node names.

By example::

    >>> import random
    >>> sorted(select_nodes("majority", ["n1", "n2", "n3"], random.Random(0)))
    ['n2', 'n3']
    >>> p = compose_packages([noop_package(), noop_package()])
    >>> sorted(p.nemesis.fs())
    []
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jepsy.control import NoopRemote, Remote
from jepsy.db import DB, HasPrimaries
from jepsy.errors import ConfigError, SetupError
from jepsy.generator import Generator
from jepsy.nemesis import Nemesis, NoopNemesis

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import Op

log = logging.getLogger(__name__)

DEFAULT_NODES: tuple[str, ...] = ("n1", "n2", "n3", "n4", "n5")

NODE_SELECTORS: tuple[str, ...] = (
    "one",
    "minority",
    "majority",
    "minority-third",
    "primaries",
    "all",
)
"""Names :func:`select_nodes` understands."""


@dataclass(frozen=True, kw_only=True)
class Package:
    """A fault, ready to run: nemesis + schedule + healing schedule + plot hints.

    ``plot`` maps a fault name to ``{"color", "label", "start", "stop"}``:
    the report shades the time between an op whose ``f`` is in ``start``
    and the next op whose ``f`` is in ``stop`` in ``color``."""

    nemesis: Nemesis
    generator: Generator | None = None
    final_generator: Generator | None = None
    plot: Mapping[str, Any] = field(default_factory=dict)


def noop_package() -> Package:
    """A package that does nothing (``--nemesis none``)."""
    return Package(nemesis=NoopNemesis())


def plot_entry(color: str, label: str, start: Iterable[str], stop: Iterable[str]) -> dict[str, Any]:
    """One ``plot`` value."""
    return {"color": color, "label": label, "start": list(start), "stop": list(stop)}


class ComposedNemesis:
    """Routes each op to the one nemesis whose ``fs()`` contains ``op.f``.

    The ``fs()`` sets must be disjoint (checked when built).  ``setup`` sets up
    every part (tearing down those already set up if one fails);
    ``teardown`` tears down every part, even when some fail, then re-raises
    the first failure."""

    def __init__(self, nemeses: Sequence[Nemesis]) -> None:
        self._nemeses = tuple(nemeses)
        self._route: dict[str, Nemesis] = {}
        for n in self._nemeses:
            for f in n.fs():
                if f in self._route:
                    raise ConfigError(
                        f"nemesis f {f!r} is handled by both {self._route[f]!r} and {n!r}; "
                        "hint: combine each fault only once"
                    )
                self._route[f] = n

    @property
    def nemeses(self) -> tuple[Nemesis, ...]:
        return self._nemeses

    def setup(self, test: Test) -> ComposedNemesis:
        ready: list[Nemesis] = []
        try:
            for n in self._nemeses:
                ready.append(n.setup(test))
        except BaseException:
            for r in reversed(ready):
                try:
                    r.teardown(test)
                except Exception:
                    log.exception("teardown of %r after a failed setup", r)
            raise
        return ComposedNemesis(ready)

    def invoke(self, test: Test, op: Op) -> Op:
        target = self._route.get(op.f)
        if target is None:
            return op.replace(
                type="info",
                error=f"no nemesis handles f {op.f!r}; handled: {sorted(self._route)}",
            )
        return target.invoke(test, op)

    def teardown(self, test: Test) -> None:
        first: BaseException | None = None
        for n in reversed(self._nemeses):
            try:
                n.teardown(test)
            except Exception as e:
                log.exception("nemesis teardown failed: %r", n)
                if first is None:
                    first = e
        if first is not None:
            raise first

    def fs(self) -> Set[str]:
        return frozenset(self._route)

    def __repr__(self) -> str:
        return f"compose({list(self._nemeses)!r})"


def compose(nemeses: Sequence[Nemesis]) -> Nemesis:
    """One nemesis routing by ``f`` to ``nemeses`` (a single one is returned as is)."""
    parts = [n for n in nemeses if not isinstance(n, NoopNemesis)]
    if not parts:
        return NoopNemesis()
    if len(parts) == 1:
        return parts[0]
    return ComposedNemesis(parts)


def compose_packages(packages: Sequence[Package]) -> Package:
    """Combine packages: nemeses routed by ``f``, main generators side by side
    (``any_``: whichever offers the soonest op, as Jepsen's combined nemesis),
    final generators in order, plots merged."""
    from jepsy import generator as gen

    nemesis = compose([p.nemesis for p in packages])
    gens = [p.generator for p in packages if p.generator is not None]
    finals = [p.final_generator for p in packages if p.final_generator is not None]
    main: Generator | None
    if not gens:
        main = None
    elif len(gens) == 1:
        main = gens[0]
    else:
        main = gen.any_(*gens)
    final: Generator | None
    if not finals:
        final = None
    elif len(finals) == 1:
        final = finals[0]
    else:
        final = gen.lift(list(finals))
    plot: dict[str, Any] = {}
    for p in packages:
        plot.update(p.plot)
    return Package(nemesis=nemesis, generator=main, final_generator=final, plot=plot)


class RandomOp:
    """A function generator: ``{"f": f, "value": <one of choices>}`` drawn
    with ``ctx.rng``; with ``key`` the value is ``{key: choice, **extra}``."""

    def __init__(
        self,
        f: str,
        choices: Sequence[Any],
        *,
        key: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if not choices:
            raise ConfigError(f"{f}: nothing to choose from")
        self.f = f
        self.choices = tuple(choices)
        self.key = key
        self.extra = dict(extra or {})

    def __call__(self, test: Test, ctx: Any) -> dict[str, Any]:
        c = ctx.rng.choice(self.choices)
        value = c if self.key is None else {self.key: c, **self.extra}
        return {"f": self.f, "value": value}

    def __repr__(self) -> str:
        more = "" if self.key is None else f", key={self.key!r}, extra={self.extra!r}"
        return f"RandomOp({self.f!r}, {list(self.choices)!r}{more})"


def toggle_schedule(
    interval: float, start: Any, stop: Any, *, lead: float | None = None
) -> Generator:
    """A fault's schedule on the nemesis thread: after ``lead`` seconds
    (default ``interval``: one healthy interval), ``start`` (an op dict or a
    function ``(test, ctx) -> op dict``, called for each start),
    ``interval`` seconds later ``stop``, ``interval`` seconds later ``start``
    again ... (Jepsen's ``(delay interval (flip-flop start stop))``)."""
    from jepsy import generator as gen

    g = gen.delay(interval, gen.flip_flop(start, gen.repeat(stop)))
    wait = interval if lead is None else lead
    return gen.nemesis([gen.sleep(wait), g] if wait > 0 else g)


# ---------------------------------------------------------------------------
# Node selection
# ---------------------------------------------------------------------------


def primaries_of(db: DB | None, test: Test) -> list[str]:
    """The DB's current primaries (ConfigError if it cannot say)."""
    if db is None or not isinstance(db, HasPrimaries):
        raise ConfigError(
            f"target 'primaries' needs a DB that reports its primaries; {db!r} does not "
            "(hint: implement jepsy.db.HasPrimaries)"
        )
    return list(db.primaries(test))


DEFAULT_NODE_TARGETS: tuple[str, ...] = ("one", "minority", "majority", "all")
"""Selectors a node fault draws from when no targets are given (plus
``primaries`` when the DB reports them)."""


def check_selectors(
    fault: str,
    targets: Sequence[str] | None,
    *,
    db: DB | None,
    nodes: Sequence[str],
) -> list[str]:
    """The node selectors among ``targets`` for ``fault`` (defaults when None).

    Raises ConfigError when none of ``targets`` selects nodes, or when
    ``primaries`` is asked for and the DB cannot report them."""
    if not nodes:
        raise ConfigError(f"nemesis {fault!r} needs at least one node")
    has_primaries = db is not None and isinstance(db, HasPrimaries)
    if targets is None:
        sel = list(DEFAULT_NODE_TARGETS)
        if has_primaries:
            sel.append("primaries")
        return sel
    sel = [t for t in targets if t in NODE_SELECTORS]
    if not sel:
        raise ConfigError(
            f"nemesis {fault!r}: none of the targets {list(targets)} selects nodes; "
            f"add one of {', '.join(NODE_SELECTORS)}"
        )
    if "primaries" in sel and not has_primaries:
        raise ConfigError(
            f"nemesis {fault!r}: target 'primaries' needs a DB that reports its primaries; "
            f"{db!r} does not (hint: implement jepsy.db.HasPrimaries or drop the target)"
        )
    return sel


def select_nodes(
    spec: str | Sequence[str] | None,
    nodes: Sequence[str],
    rng: random.Random,
    *,
    primaries: Sequence[str] | None = None,
) -> list[str]:
    """The nodes a selector names, in node order.

    ``spec`` is one of :data:`NODE_SELECTORS`, or a list of node names (each
    must be one of ``nodes``); None means ``one``.  ``primaries`` is needed
    for ``"primaries"``."""
    ns = list(nodes)
    if not ns:
        raise ConfigError("cannot select nodes from an empty node list")
    if spec is None:
        spec = "one"
    if not isinstance(spec, str):
        chosen = list(dict.fromkeys(str(s) for s in spec))
        unknown = [s for s in chosen if s not in ns]
        if unknown:
            raise ConfigError(f"nodes {unknown} are not among the test's nodes {ns}")
        return [n for n in ns if n in chosen]
    n = len(ns)
    if spec == "one":
        k = 1
    elif spec == "minority":
        k = max(1, (n - 1) // 2)
    elif spec == "majority":
        k = n // 2 + 1
    elif spec == "minority-third":
        k = max(1, (n - 1) // 3)
    elif spec == "all":
        return ns
    elif spec == "primaries":
        if primaries is None:
            raise ConfigError("node selector 'primaries' needs the DB's primaries")
        prim = set(primaries)
        picked = [x for x in ns if x in prim]
        if not picked:
            raise ConfigError(f"node selector 'primaries': the DB reported none among {ns}")
        return picked
    else:
        raise ConfigError(
            f"unknown node selector {spec!r}; choose one of {', '.join(NODE_SELECTORS)} "
            "or a list of node names"
        )
    chosen_set = set(rng.sample(ns, k))
    return [x for x in ns if x in chosen_set]


class NodeFaultNemesis:
    """A fault applied to and undone on chosen nodes, one call per node, all
    nodes at once: the shape of ``kill``/``start`` and ``pause``/``resume``.

    ``apply_f`` ops take a node selector (:data:`NODE_SELECTORS`, a list of
    nodes, or None for ``default_target``), resolved when the op runs;
    the completion's ``value`` maps each node to ``done`` (e.g. "killed"),
    its ``error`` maps nodes that failed to the reason.  ``undo_f`` ops take
    a list of nodes or None for every node of the test (undoing is harmless
    where nothing was done: a no-op start, a SIGCONT); the value maps each
    node to ``undone``.  ``teardown`` undoes the fault on every node it is
    known to be in force on."""

    def __init__(
        self,
        *,
        name: str,
        apply_f: str,
        undo_f: str,
        done: str,
        undone: str,
        apply: Callable[[Test, str], None],
        undo: Callable[[Test, str], None],
        db: DB | None = None,
        default_target: str | Sequence[str] = "one",
    ) -> None:
        self.name = name
        self.apply_f = apply_f
        self.undo_f = undo_f
        self.done = done
        self.undone = undone
        self._apply = apply
        self._undo = undo
        self.db = db
        self.default_target = default_target
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._faulted: set[str] = set()

    def setup(self, test: Test) -> NodeFaultNemesis:
        n = NodeFaultNemesis(
            name=self.name,
            apply_f=self.apply_f,
            undo_f=self.undo_f,
            done=self.done,
            undone=self.undone,
            apply=self._apply,
            undo=self._undo,
            db=self.db,
            default_target=self.default_target,
        )
        n._rng = nemesis_rng(test, self.name)
        return n

    def fs(self) -> Set[str]:
        return frozenset((self.apply_f, self.undo_f))

    @property
    def faulted(self) -> frozenset[str]:
        """Nodes the fault is currently in force on (as far as this nemesis knows)."""
        with self._lock:
            return frozenset(self._faulted)

    def _targets(self, test: Test, value: Any) -> list[str]:
        spec = self.default_target if value is None else value
        prim = primaries_of(self.db, test) if spec == "primaries" else None
        with self._lock:
            return select_nodes(spec, list(test.nodes), self._rng, primaries=prim)

    def invoke(self, test: Test, op: Op) -> Op:
        from jepsy.net import try_on_nodes

        if op.f not in (self.apply_f, self.undo_f):
            return op.replace(type="info", error=f"{self.name} nemesis cannot handle f {op.f!r}")
        try:
            if op.f == self.apply_f:
                nodes = self._targets(test, op.value)
            elif op.value is None:
                nodes = list(test.nodes)
            else:
                nodes = select_nodes(op.value, list(test.nodes), self._rng)
        except Exception as e:
            return op.replace(type="info", error=f"nothing done: {error_text(e)}")
        applying = op.f == self.apply_f
        fn = self._apply if applying else self._undo
        if applying:
            with self._lock:
                self._faulted.update(nodes)
        ok, errors = try_on_nodes(nodes, lambda n: fn(test, n))
        with self._lock:
            if not applying:
                self._faulted.difference_update(ok)
        word = self.done if applying else self.undone
        value = {n: word for n in nodes if n in ok}
        return op.replace(type="info", value=value, error=node_errors(errors))

    def teardown(self, test: Test) -> None:
        from jepsy.net import try_on_nodes

        nodes = sorted(self.faulted)
        if not nodes:
            return
        ok, errors = try_on_nodes(nodes, lambda n: self._undo(test, n))
        with self._lock:
            self._faulted.difference_update(ok)
        if errors:
            node, e = next(iter(errors.items()))
            raise SetupError(f"{self.name} teardown: {self.undo_f} failed on {node}: {e}") from e

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, db={self.db!r})"


def require_network(remote: Remote, fault: str) -> None:
    """ConfigError unless ``remote`` has real nodes with a network to cut
    (the noop remote of in-process DBs such as ``--db memory`` has none)."""
    if isinstance(remote, NoopRemote) or getattr(remote, "kind", None) == "noop":
        raise ConfigError(
            f"nemesis {fault!r} needs nodes with a network (a local, docker or ssh remote); "
            f"{remote!r} has none (an in-process DB such as --db memory): "
            "drop the fault or use a real DB"
        )


def nemesis_rng(test: Test, name: str) -> random.Random:
    """A random source for a nemesis, fixed by the test's seed and the fault name."""
    return random.Random(f"{test.seed}:nemesis:{name}")


def error_text(e: BaseException) -> str:
    """A one-line description of an exception for an op's ``error``."""
    s = str(e).strip() or type(e).__name__
    first = s.splitlines()[0] if s else s
    return first if len(s) <= 500 else first[:500]


def node_errors(errors: Mapping[str, BaseException]) -> dict[str, str] | None:
    """``{node: message}`` for an op's ``error``, or None when there are none."""
    if not errors:
        return None
    return {n: error_text(e) for n, e in sorted(errors.items())}


__all__ = [
    "DEFAULT_NODES",
    "DEFAULT_NODE_TARGETS",
    "NODE_SELECTORS",
    "ComposedNemesis",
    "NodeFaultNemesis",
    "Package",
    "RandomOp",
    "check_selectors",
    "compose",
    "compose_packages",
    "error_text",
    "nemesis_rng",
    "node_errors",
    "noop_package",
    "plot_entry",
    "primaries_of",
    "require_network",
    "select_nodes",
    "toggle_schedule",
]
