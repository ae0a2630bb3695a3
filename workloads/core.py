"""Workloads: what clients do and how the result is judged, independent of the DB.

A :class:`Workload` is one declaration: a docstring, the shapes of its ops,
a generator of client ops, an optional final generator (e.g. one last read
after the faults are healed) and the checker that judges the history.  The
database suite supplies the client that understands these ops
(``Suite.make_client(workload, opts)``); a workload for your own system may
bring its own client instead (``client``).

``opts`` is the run's spec (see :mod:`jepsy.dbs`): every CLI option plus
``-o key=value`` options.  Workloads read what they need with defaults.

By example::

    >>> from jepsy.workloads.core import get_workload
    >>> w = get_workload("register")
    >>> sorted(w.ops)
    ['cas', 'read', 'write']

Plugins: an installed package adds workloads through the entry-point group
``jepsy.workloads`` (each entry point names a :class:`Workload` or a
zero-argument factory returning one); ``jepsy test --workload ./file.py``
loads a file exposing ``workload`` (see :mod:`jepsy.plugins`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jepsy.errors import ConfigError

if TYPE_CHECKING:
    from jepsy.checkers.core import Checker
    from jepsy.client import Client
    from jepsy.generator import Generator


def _no_final(opts: Mapping[str, Any]) -> Generator | None:
    return None


@dataclass(frozen=True, kw_only=True)
class Workload:
    """A DB-independent workload.

    - ``name``: what ``--workload`` accepts.
    - ``doc``: one paragraph for ``jepsy list`` and the docs.
    - ``ops``: ``f`` -> the shape of its invoke and completion values, e.g.
      ``{"read": "invoke [k, None] -> ok [k, v]"}``.
    - ``generator(opts)``: the client ops of the main phase (the runner
      applies the time limit and rate).
    - ``final_generator(opts)``: client ops after the nemesis healed
      (e.g. a final read); None for none.
    - ``checker(opts)``: judges the history.
    - ``client(opts)``: optional; a client prototype that overrides the
      suite's (for workloads against your own system).
    - ``options``: option name -> doc (read from ``-o key=value``).
    - ``base``: for a variant of a built-in workload (same ops, e.g. another
      checker), that workload's name; suites supporting ``base`` serve it.
    """

    name: str
    doc: str
    ops: Mapping[str, str]
    generator: Callable[[Mapping[str, Any]], Generator]
    checker: Callable[[Mapping[str, Any]], Checker]
    final_generator: Callable[[Mapping[str, Any]], Generator | None] = _no_final
    client: Callable[[Mapping[str, Any]], Client] | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    base: str | None = None


_WORKLOADS: dict[str, Workload] = {}
_LOCK = threading.Lock()
_LOADED = False


def int_option(opts: Mapping[str, Any], name: str, default: int) -> int:
    """Option ``name`` (``-o name=N``) as an int of at least 1; ConfigError otherwise."""
    raw = opts.get(name, default)
    try:
        v = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"option {name} must be an int; got {raw!r}") from None
    if v < 1:
        raise ConfigError(f"option {name} must be at least 1; got {v}")
    return v


def register_workload(workload: Workload) -> Workload:
    """Add ``workload`` to the registry (replacing one of the same name); returns it."""
    if not isinstance(workload, Workload):
        raise ConfigError(
            f"register_workload needs a Workload; got {type(workload).__name__} {workload!r}"
        )
    with _LOCK:
        _WORKLOADS[workload.name] = workload
    return workload


def _load_builtin() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib

    for mod in ("register", "set", "counter", "queue", "list_append"):
        name = f"jepsy.workloads.{mod}"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    from jepsy.plugins import load_entry_point_workloads

    load_entry_point_workloads()


def get_workload(name: str) -> Workload:
    """The workload registered as ``name``, or loaded from a ``.py`` file path.

    Raises :class:`ConfigError` naming the known workloads."""
    if name.endswith(".py") or "/" in name:
        from jepsy.plugins import load_workload_file

        return load_workload_file(name)
    _load_builtin()
    try:
        return _WORKLOADS[name]
    except KeyError:
        known = ", ".join(sorted(_WORKLOADS)) or "none"
        raise ConfigError(
            f"unknown workload {name!r}; known workloads: {known} "
            "(or give a path to a .py file exposing `workload`)"
        ) from None


def workloads() -> dict[str, Workload]:
    """Every registered workload by name, sorted."""
    _load_builtin()
    return dict(sorted(_WORKLOADS.items()))


__all__ = ["Workload", "get_workload", "register_workload", "workloads"]
