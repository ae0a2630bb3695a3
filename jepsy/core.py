"""The Test: one frozen description of a run.

Everything a run does is decided by this value plus its seed; runtime state
(threads, open clients, files) lives in the runner's own context and is never
stored here.  ``test.json`` records the serialisable part (:meth:`Test.to_json`),
including ``spec``: the options (CLI flags or a plugin's arguments) the test
was built from, so ``test.json`` + seed rebuild the run.

By example::

    >>> from jepsy.core import noop_test
    >>> t = noop_test(name="demo", concurrency=3)
    >>> t.concurrency
    3
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jepsy.checkers.core import Checker, UnbridledOptimism
from jepsy.client import Client, NoopClient
from jepsy.control import NoopRemote, Remote
from jepsy.db import DB, NoopDB
from jepsy.errors import ConfigError
from jepsy.generator import Generator
from jepsy.nemesis import Nemesis, NoopNemesis


@dataclass(frozen=True, kw_only=True)
class Test:
    """A test run's description.

    - ``name``: used for the store directory ``store/<name>/<timestamp>/``.
    - ``nodes``: node names (``n1`` .. ``n5`` by default).
    - ``remote``: how to run commands on nodes (:mod:`jepsy.control`).
    - ``db``: sets up the system under test on each node.
    - ``client``: a prototype; each worker calls ``client.open(test, node)``.
    - ``generator``: the main phase's ops, for clients and the nemesis
      (route with ``generator.clients`` / ``generator.nemesis``); None = nothing.
    - ``final_generator``: run on the nemesis after the main phase (healing).
    - ``nemesis``: fault injector.  ``checker``: judges the history.
    - ``concurrency``: number of client worker threads; workers are spread
      over nodes round-robin.
    - ``time_limit``: seconds for the main phase (None: until the generator ends).
    - ``rate``: target client ops per second over all workers (None: as fast as
      possible); the runner spaces ops by a random 0..2/rate s, like Jepsen's
      ``stagger``.
    - ``op_timeout``: seconds before a hung client call is recorded as ``info``.
    - ``seed``: seeds ``ctx.rng`` for the generators.
    - ``store_dir``: root of the store (``store/`` by default).
    - ``leave_db_running``: skip DB teardown at the end.
    - ``spec``: the serialisable options the test was built from.
    - ``plot``: hints for reports, e.g. nemesis f's to shade and their colours.
    """

    __test__ = False  # tell pytest this is not a test class

    name: str = "noop"
    nodes: tuple[str, ...] = ("n1", "n2", "n3", "n4", "n5")
    remote: Remote = field(default_factory=NoopRemote)
    db: DB = field(default_factory=NoopDB)
    client: Client = field(default_factory=NoopClient)
    generator: Generator | None = None
    final_generator: Generator | None = None
    nemesis: Nemesis = field(default_factory=NoopNemesis)
    checker: Checker = field(default_factory=UnbridledOptimism)
    concurrency: int = 5
    time_limit: float | None = 60.0
    rate: float | None = None
    op_timeout: float = 10.0
    seed: int = 0
    store_dir: Path = Path("store")
    leave_db_running: bool = False
    spec: Mapping[str, Any] = field(default_factory=dict)
    plot: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int):
            raise ConfigError(f"concurrency must be an int; got {self.concurrency!r}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1; got {self.concurrency}")
        if not self.nodes:
            raise ConfigError("a test needs at least one node; got none")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"time_limit must be > 0 seconds or None; got {self.time_limit!r}")
        if self.rate is not None and self.rate <= 0:
            raise ConfigError(f"rate must be > 0 ops/s or None; got {self.rate!r}")
        if self.op_timeout <= 0:
            raise ConfigError(f"op_timeout must be > 0 seconds; got {self.op_timeout!r}")

    def replace(self, **changes: Any) -> Test:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The serialisable part of the test (objects by their repr)."""
        return {
            "name": self.name,
            "nodes": list(self.nodes),
            "remote": repr(self.remote),
            "db": repr(self.db),
            "client": repr(self.client),
            "generator": repr(self.generator),
            "final_generator": repr(self.final_generator),
            "nemesis": repr(self.nemesis),
            "checker": repr(self.checker),
            "concurrency": self.concurrency,
            "time_limit": self.time_limit,
            "rate": self.rate,
            "op_timeout": self.op_timeout,
            "seed": self.seed,
            "store_dir": str(self.store_dir),
            "leave_db_running": self.leave_db_running,
            "spec": dict(self.spec),
            "plot": dict(self.plot),
        }


def noop_test(**overrides: Any) -> Test:
    """A test that does nothing, to build on (Jepsen's ``noop-test``)."""
    return Test(**overrides)
