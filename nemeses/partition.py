"""Network partitions: ``start-partition`` / ``stop-partition``.

Ops (process ``"nemesis"``):

- ``{"f": "start-partition", "value": "majorities-ring"}``: a named strategy
  (:data:`jepsy.net.PARTITION_STRATEGIES`), resolved to a grudge when the op
  runs (``primaries`` asks the DB then), or an explicit grudge
  ``{"n1": ["n2", "n3"], ...}``.  Completes ``info`` with ``{"strategy",
  "grudge"}``: exactly what was applied.  A new partition replaces the
  previous one.
- ``{"f": "stop-partition"}``: removes jepsy's rules on every node, then
  checks with real TCP connects that every pair of nodes talks again (once
  more healing and probing if not); completes with ``"healed"``, or with
  ``error`` naming the pairs that are still cut.

``teardown`` heals.  The rules are iptables DROPs in jepsy's own chain
(:mod:`jepsy.net`); only member<->member traffic is cut, clients on the
control node reach every node throughout.

By example::

    pkg = package(interval=10, targets=["majority", "bridge"])
    pkg.generator    # nemesis(cycle([sleep(10), start-partition <target>, sleep(10), stop-partition]))
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any

from jepsy import generator as gen
from jepsy import net
from jepsy.db import DB, HasPrimaries
from jepsy.errors import ConfigError
from jepsy.nemeses.core import (
    Package,
    RandomOp,
    error_text,
    nemesis_rng,
    plot_entry,
    primaries_of,
    require_network,
    toggle_schedule,
)

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import Op

log = logging.getLogger(__name__)

START = "start-partition"
STOP = "stop-partition"
COLOR = "#E9DCA0"


class PartitionNemesis:
    """Applies grudges through ``test.remote`` and heals them.

    - ``db``: consulted for the ``primaries`` strategy.
    - ``verify_heal``: probe every pair after a heal (default on).
    - ``verify_partition``: also probe after applying a grudge (costs about
      ``connect_timeout`` seconds per start, for the blocked links).
    - ``probe_port``, ``connect_timeout``: see :func:`jepsy.net.probe`."""

    def __init__(
        self,
        *,
        db: DB | None = None,
        verify_heal: bool = True,
        verify_partition: bool = False,
        probe_port: int = net.PROBE_PORT,
        connect_timeout: float = 0.5,
    ) -> None:
        self.db = db
        self.verify_heal = verify_heal
        self.verify_partition = verify_partition
        self.probe_port = probe_port
        self.connect_timeout = connect_timeout
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._active: dict[str, frozenset[str]] | None = None

    def _copy(self) -> PartitionNemesis:
        return PartitionNemesis(
            db=self.db,
            verify_heal=self.verify_heal,
            verify_partition=self.verify_partition,
            probe_port=self.probe_port,
            connect_timeout=self.connect_timeout,
        )

    def setup(self, test: Test) -> PartitionNemesis:
        n = self._copy()
        n._rng = nemesis_rng(test, "partition")
        require_network(test.remote, "partition")
        net.heal(test.remote, nodes=list(test.nodes))
        return n

    def fs(self) -> Set[str]:
        return frozenset((START, STOP))

    def grudge(self, test: Test, value: Any) -> tuple[str, dict[str, frozenset[str]]]:
        """(strategy name, grudge) for a ``start-partition`` value."""
        nodes = list(test.nodes)
        if value is None:
            value = "majority"
        if isinstance(value, str):
            prim = primaries_of(self.db, test) if value == "primaries" else None
            with self._lock:
                g = net.grudge_for(value, nodes, self._rng, primary_nodes=prim)
            return value, g
        if isinstance(value, Mapping):
            if "grudge" in value:
                return str(value.get("strategy", "explicit")), net.from_json(value["grudge"])
            return "explicit", net.from_json(value)
        raise ConfigError(
            f"start-partition value must be a strategy name or a grudge mapping; got {value!r}"
        )

    def invoke(self, test: Test, op: Op) -> Op:
        if op.f == START:
            return self._start(test, op)
        if op.f == STOP:
            return self._stop(test, op)
        return op.replace(type="info", error=f"partition nemesis cannot handle f {op.f!r}")

    def _start(self, test: Test, op: Op) -> Op:
        try:
            strategy, g = self.grudge(test, op.value)
        except Exception as e:
            return op.replace(type="info", error=f"no partition applied: {error_text(e)}")
        value: dict[str, Any] = {"strategy": strategy, "grudge": net.to_json(g)}
        try:
            net.partition(test.remote, g, nodes=list(test.nodes))
        except Exception as e:
            self._active = g  # may be partly applied: heal will clear it
            return op.replace(type="info", value=value, error=f"partition failed: {error_text(e)}")
        self._active = g
        if self.verify_partition:
            try:
                net.verify_connectivity(
                    test.remote,
                    g,
                    nodes=list(test.nodes),
                    port=self.probe_port,
                    connect_timeout=self.connect_timeout,
                )
                value["verified"] = True
            except Exception as e:
                return op.replace(type="info", value=value, error=error_text(e))
        return op.replace(type="info", value=value)

    def _heal_and_verify(self, test: Test) -> None:
        nodes = list(test.nodes)
        net.heal(test.remote, nodes=nodes)
        if not self.verify_heal:
            return
        try:
            net.verify_connectivity(
                test.remote, None, nodes=nodes, port=self.probe_port, connect_timeout=1.0
            )
        except net.ConnectivityError:
            log.warning("connectivity not restored after heal; healing once more")
            net.heal(test.remote, nodes=nodes)
            net.verify_connectivity(
                test.remote, None, nodes=nodes, port=self.probe_port, connect_timeout=2.0
            )

    def _stop(self, test: Test, op: Op) -> Op:
        try:
            self._heal_and_verify(test)
        except Exception as e:
            return op.replace(type="info", value="heal failed", error=error_text(e))
        self._active = None
        return op.replace(type="info", value="healed" if self.verify_heal else "heal applied")

    def teardown(self, test: Test) -> None:
        self._heal_and_verify(test)
        self._active = None

    def __repr__(self) -> str:
        return "PartitionNemesis()"


_MIN_NODES = {"minority-third": 4, "majorities-ring": 4, "bridge": 3}


def partition_targets(
    targets: Sequence[str] | None, *, nodes: Sequence[str] | None = None
) -> list[str]:
    """The partition strategies among ``targets``.

    The default is every strategy but ``primaries`` that fits the number of
    ``nodes`` (3 nodes leave out ``minority-third`` and ``majorities-ring``);
    targets named explicitly are kept as given and checked by
    :func:`check_targets`."""
    if targets is None:
        n = len(nodes) if nodes is not None else 5
        return [
            t for t in net.PARTITION_STRATEGIES if t != "primaries" and n >= _MIN_NODES.get(t, 2)
        ]
    return [t for t in targets if t in net.PARTITION_STRATEGIES]


def check_targets(targets: Sequence[str], *, db: DB | None, nodes: Sequence[str]) -> None:
    """Raise ConfigError for a strategy that cannot work with ``db`` / ``nodes``."""
    n = len(nodes)
    for t in targets:
        if t == "primaries" and (db is None or not isinstance(db, HasPrimaries)):
            raise ConfigError(
                f"partition target 'primaries' needs a DB that reports its primaries; "
                f"{db!r} does not (hint: implement jepsy.db.HasPrimaries or drop the target)"
            )
        need = _MIN_NODES.get(t, 2)
        if n < need:
            raise ConfigError(
                f"partition target {t!r} needs at least {need} nodes; the test has {n}"
            )


def package(
    *,
    interval: float = 10.0,
    targets: Sequence[str] | None = None,
    db: DB | None = None,
    nodes: Sequence[str] = ("n1", "n2", "n3", "n4", "n5"),
    verify_partition: bool = False,
    lead: float | None = None,
) -> Package:
    """Partition every ``interval`` seconds with a strategy drawn from
    ``targets``, heal ``interval`` seconds later; heal at the end."""
    strategies = partition_targets(targets, nodes=nodes)
    if not strategies:
        raise ConfigError(
            f"partition: none of the targets {list(targets or [])} is a partition strategy; "
            f"choose from {', '.join(net.PARTITION_STRATEGIES)}"
        )
    check_targets(strategies, db=db, nodes=nodes)
    choices = tuple(strategies)

    start = RandomOp(START, choices)
    g = toggle_schedule(interval, start, {"f": STOP}, lead=lead)
    return Package(
        nemesis=PartitionNemesis(db=db, verify_partition=verify_partition),
        generator=g,
        final_generator=gen.nemesis({"f": STOP}),
        plot={"partition": plot_entry(COLOR, "partition", [START], [STOP])},
    )


__all__ = ["START", "STOP", "PartitionNemesis", "check_targets", "package", "partition_targets"]
