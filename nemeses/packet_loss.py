"""Packet loss: a chosen fraction of the packets between chosen nodes dropped at random.

Built on iptables' ``statistic`` match (``--mode random --probability p``)
in jepsy's ``JEPSY-LOSS`` chain, so it composes with partitions (healing a
partition leaves the loss in place, and the other way round).  Only
member<->member traffic is affected; clients on the control node are not.
(``tc netem`` is not available on every machine jepsy runs on, so delay and
reordering are out of scope.)

Ops (process ``"nemesis"``):

- ``{"f": "start-packet-loss", "value": {"nodes": "minority", "probability": 0.3}}``:
  every packet between a chosen node and any other node is dropped with
  probability ``p``, in both directions.  ``nodes`` is a node selector or a
  list; ``{"links": {node: [senders]}, "probability": p}`` gives the links
  explicitly (``node`` drops from ``senders``).  Completes ``info`` with
  ``{"probability", "links"}``.  A new start replaces the previous loss.
- ``{"f": "stop-packet-loss"}``: remove the rules; value ``"stopped"``.

``teardown`` removes the rules.

By example::

    pkg = package(interval=10, probability=0.2, targets=["one", "majority"])
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any

from jepsy import generator as gen
from jepsy import net
from jepsy.db import DB
from jepsy.errors import ConfigError
from jepsy.nemeses.core import (
    Package,
    RandomOp,
    check_selectors,
    error_text,
    nemesis_rng,
    plot_entry,
    primaries_of,
    require_network,
    select_nodes,
    toggle_schedule,
)

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import Op

START = "start-packet-loss"
STOP = "stop-packet-loss"
COLOR = "#A0C8E9"


def links_around(nodes: Sequence[str], chosen: Sequence[str]) -> dict[str, frozenset[str]]:
    """Both directions of every link between a chosen node and any other node."""
    c = set(chosen)
    out: dict[str, frozenset[str]] = {}
    for n in nodes:
        if n in c:
            out[n] = frozenset(m for m in nodes if m != n)
        else:
            out[n] = frozenset(m for m in nodes if m in c and m != n)
    return {n: v for n, v in out.items() if v}


class PacketLossNemesis:
    """Drops a random fraction of packets on chosen links."""

    def __init__(self, *, db: DB | None = None, probability: float = 0.2) -> None:
        _check_probability(probability)
        self.db = db
        self.probability = probability
        self._rng = random.Random(0)
        self._lock = threading.Lock()

    def setup(self, test: Test) -> PacketLossNemesis:
        n = PacketLossNemesis(db=self.db, probability=self.probability)
        n._rng = nemesis_rng(test, "packet-loss")
        require_network(test.remote, "packet-loss")
        net.heal_packet_loss(test.remote, nodes=list(test.nodes))
        return n

    def fs(self) -> Set[str]:
        return frozenset((START, STOP))

    def plan(self, test: Test, value: Any) -> tuple[float, dict[str, frozenset[str]]]:
        """(probability, links) for a ``start-packet-loss`` value."""
        nodes = list(test.nodes)
        v: Mapping[str, Any] = value if isinstance(value, Mapping) else {"nodes": value}
        p = float(v.get("probability", self.probability))
        _check_probability(p)
        if "links" in v:
            return p, net.from_json(v["links"])
        spec = v.get("nodes")
        prim = primaries_of(self.db, test) if spec == "primaries" else None
        with self._lock:
            chosen = select_nodes(spec, nodes, self._rng, primaries=prim)
        return p, links_around(nodes, chosen)

    def invoke(self, test: Test, op: Op) -> Op:
        if op.f == START:
            try:
                p, links = self.plan(test, op.value)
            except Exception as e:
                return op.replace(type="info", error=f"nothing done: {error_text(e)}")
            value = {"probability": p, "links": net.to_json(links)}
            try:
                net.packet_loss(test.remote, links, p, nodes=list(test.nodes))
            except Exception as e:
                return op.replace(type="info", value=value, error=error_text(e))
            return op.replace(type="info", value=value)
        if op.f == STOP:
            try:
                net.heal_packet_loss(test.remote, nodes=list(test.nodes))
            except Exception as e:
                return op.replace(type="info", value="stop failed", error=error_text(e))
            return op.replace(type="info", value="stopped")
        return op.replace(type="info", error=f"packet-loss nemesis cannot handle f {op.f!r}")

    def teardown(self, test: Test) -> None:
        net.heal_packet_loss(test.remote, nodes=list(test.nodes))

    def __repr__(self) -> str:
        return f"PacketLossNemesis(probability={self.probability:g})"


def _check_probability(p: float) -> None:
    if not 0.0 < p <= 1.0:
        raise ConfigError(f"packet-loss probability must be in (0, 1]; got {p!r}")


def package(
    *,
    interval: float = 10.0,
    targets: Sequence[str] | None = None,
    db: DB | None = None,
    nodes: Sequence[str] = ("n1", "n2", "n3", "n4", "n5"),
    probability: float = 0.2,
    lead: float | None = None,
) -> Package:
    """Every ``interval`` seconds drop ``probability`` of the packets around
    nodes chosen by a selector from ``targets``; stop ``interval`` seconds
    later; stop at the end."""
    _check_probability(probability)
    choices = tuple(check_selectors("packet-loss", targets, db=db, nodes=nodes))
    if len(nodes) < 2:
        raise ConfigError("nemesis 'packet-loss' needs at least 2 nodes")

    start = RandomOp(START, choices, key="nodes", extra={"probability": probability})
    g = toggle_schedule(interval, start, {"f": STOP}, lead=lead)
    return Package(
        nemesis=PacketLossNemesis(db=db, probability=probability),
        generator=g,
        final_generator=gen.nemesis({"f": STOP}),
        plot={"packet-loss": plot_entry(COLOR, "packet loss", [START], [STOP])},
    )


__all__ = ["START", "STOP", "PacketLossNemesis", "links_around", "package"]
