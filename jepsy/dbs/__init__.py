"""Database suites: one :class:`Suite` per system jepsy can test.

A suite bundles what the CLI needs to test a system: how to make its
:class:`~jepsy.db.DB` (install, start, stop on each node), how to make a
:class:`~jepsy.client.Client` for a given workload, which workloads it
supports and which options it reads.  Suites register themselves in a
process-wide table so ``jepsy test --db NAME`` and ``jepsy list`` find them.

``opts`` passed to ``make_db`` / ``make_client`` is the run's spec: a plain,
JSON-serialisable mapping of every CLI option (``nodes``, ``concurrency``,
``seed``, ``workload``, ``memory_bug`` ...) plus free-form ``-o key=value``
options under their own names.  A suite reads what it needs and ignores the
rest.

By example::

    >>> from jepsy.dbs import get_suite
    >>> suite = get_suite("memory")
    >>> "register" in suite.workloads
    True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jepsy.client import Client
from jepsy.db import DB
from jepsy.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Suite:
    """A database suite.

    - ``name``: what ``--db`` accepts.
    - ``doc``: one paragraph for ``jepsy list``.
    - ``workloads``: workload names ``make_client`` supports.
    - ``make_db(opts)``: the DB for this run.
    - ``make_client(workload, opts)``: a client prototype for ``workload``;
      raise :class:`~jepsy.errors.ConfigError` for a workload not supported.
    - ``needs_remote``: False for in-process systems (``--db memory``), which
      then run on a :class:`~jepsy.control.NoopRemote`.
    - ``options``: option name -> doc, shown by ``jepsy list``.
    """

    name: str
    doc: str
    workloads: frozenset[str]
    make_db: Callable[[Mapping[str, Any]], DB]
    make_client: Callable[[str, Mapping[str, Any]], Client]
    needs_remote: bool = True
    options: Mapping[str, str] = field(default_factory=dict)


_SUITES: dict[str, Suite] = {}
_LOCK = threading.Lock()
_LOADED = False


def register_suite(suite: Suite) -> Suite:
    """Add ``suite`` to the registry (replacing one of the same name); returns it."""
    if not suite.name or not isinstance(suite.name, str):
        raise ConfigError(f"a suite needs a non-empty name; got {suite.name!r}")
    with _LOCK:
        _SUITES[suite.name] = suite
    return suite


def _load_builtin() -> None:
    """Import the built-in suites (each registers itself on import)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib
    import logging

    for mod in ("jepsy.dbs.memory", "jepsy.dbs.etcd", "jepsy.dbs.redis", "jepsy.dbs.zookeeper"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            logging.getLogger(__name__).debug("suite module %s not present", mod)


def get_suite(name: str) -> Suite:
    """The suite registered as ``name``; :class:`ConfigError` naming the known ones."""
    _load_builtin()
    try:
        return _SUITES[name]
    except KeyError:
        known = ", ".join(sorted(_SUITES)) or "none"
        raise ConfigError(f"unknown db {name!r}; known dbs: {known} (see `jepsy list`)") from None


def suites() -> dict[str, Suite]:
    """Every registered suite by name, sorted."""
    _load_builtin()
    return dict(sorted(_SUITES.items()))


__all__ = ["Suite", "get_suite", "register_suite", "suites"]
