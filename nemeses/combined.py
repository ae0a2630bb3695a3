"""``--nemesis partition,kill,pause,clock,packet-loss``: composed fault packages.

:func:`package` builds one :class:`~jepsy.nemeses.core.Package` per fault
name and composes them: ops are routed to the nemesis whose ``fs()`` holds
their ``f``; the schedules run side by side on the nemesis thread (the
soonest op of any package first, Jepsen's ``any`` of ``delay``-ed
``flip-flop``s): each fault starts, is stopped ``interval`` seconds later,
starts again ``interval`` seconds after that, and so on, after one healthy
``interval``.  As in Jepsen, the faults toggle together (each start picks its
own targets); the
healing generators run one after another at the end (``stop-partition``,
``start``, ``resume``, ``clock-reset``, ``stop-packet-loss``); ``plot``
carries each fault's colour for the report.

A fault the DB cannot take is refused when the package is built, with a
:class:`~jepsy.errors.ConfigError` naming the fault and the reason (``kill``
on a DB that is not Killable, ``clock`` on a DB whose clock cannot be
skewed, such as etcd), never silently dropped.

``targets`` mixes partition strategies (``one, halves, random-halves,
majority, minority-third, majorities-ring, bridge, primaries``) and node
selectors (``one, minority, majority, minority-third, primaries, all``);
each fault uses the ones it understands, and a fault that understands none
of them is a ConfigError.

By example::

    >>> pkg = package(["partition"], interval=5, targets=["majority", "bridge"])
    >>> sorted(pkg.nemesis.fs())
    ['start-partition', 'stop-partition']
    >>> sorted(pkg.plot)
    ['partition']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jepsy import generator as gen
from jepsy.db import DB
from jepsy.errors import ConfigError
from jepsy.nemeses import clock, kill, packet_loss, partition, pause
from jepsy.nemeses.core import DEFAULT_NODES, NODE_SELECTORS, Package, compose_packages
from jepsy.net import PARTITION_STRATEGIES

FAULTS: tuple[str, ...] = ("partition", "kill", "pause", "clock", "packet-loss", "none")
"""Fault names :func:`package` accepts."""

NEMESES: dict[str, str] = {
    "none": "no faults",
    "partition": "network partitions as iptables DROP rules (targets: one, halves, "
    "random-halves, majority, minority-third, majorities-ring, bridge, primaries); "
    "every heal is checked with real TCP connects",
    "kill": "SIGKILL the DB process on target nodes, restart it an interval later "
    "(needs a Killable DB)",
    "pause": "SIGSTOP the DB process on target nodes, SIGCONT it an interval later "
    "(needs a Pausable DB)",
    "clock": "bump or strobe target nodes' wall clocks (LD_PRELOAD shim; needs a DB that "
    "declares clock support), reset an interval later",
    "packet-loss": "drop a random fraction of the packets around target nodes "
    "(iptables statistic match), stop an interval later",
}
"""One line per fault for ``jepsy list``."""

TARGETS: tuple[str, ...] = tuple(dict.fromkeys((*PARTITION_STRATEGIES, *NODE_SELECTORS)))
"""Every name accepted in ``targets``."""


def parse_names(names: str | Sequence[str]) -> list[str]:
    """``"partition,kill"`` or ``["partition", "kill"]`` -> checked, deduplicated names."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    for raw in items:
        n = str(raw).strip().lower().replace("_", "-")
        if not n:
            continue
        if n not in FAULTS:
            raise ConfigError(f"unknown nemesis {raw!r}; choose from {', '.join(FAULTS)}")
        if n not in out:
            out.append(n)
    return out


def package(
    names: str | Sequence[str],
    *,
    interval: float = 10.0,
    targets: str | Sequence[str] | None = None,
    db: DB | None = None,
    nodes: Sequence[str] = DEFAULT_NODES,
    packet_loss_probability: float = 0.2,
    system_clock: bool = False,
    verify_partition: bool = False,
) -> Package:
    """Compose the packages for the fault ``names`` (see :data:`FAULTS`).

    - ``interval``: seconds between fault actions (each fault is held for
      about ``interval`` seconds, then healed).
    - ``targets``: partition strategies / node selectors (see the module
      doc), a list or a comma-separated string; None = each fault's defaults.
    - ``db``: the DB under test, consulted up front for what it supports.
    - ``nodes``: the test's nodes (checked against what strategies need).
    - ``system_clock``: let ``clock`` set real node clocks on SSH hosts.
    """
    faults = [n for n in parse_names(names) if n != "none"]
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(
            f"nemesis interval must be a positive number of seconds; got {interval!r}"
        )
    tg: list[str] | None = None
    if isinstance(targets, str):
        targets = targets.split(",")
    if targets is not None:
        tg = [str(t).strip().lower().replace("_", "-") for t in targets if str(t).strip()]
        unknown = [t for t in tg if t not in TARGETS]
        if unknown:
            raise ConfigError(
                f"unknown nemesis targets {unknown}; choose from {', '.join(TARGETS)}"
            )
        if not tg:
            tg = None
    common: dict[str, Any] = {"interval": float(interval), "targets": tg, "nodes": tuple(nodes)}
    packages: list[Package] = []
    common["lead"] = 0.0
    for f in faults:
        if f == "partition":
            packages.append(partition.package(db=db, verify_partition=verify_partition, **common))
        elif f == "kill":
            packages.append(kill.package(db=db, **common))
        elif f == "pause":
            packages.append(pause.package(db=db, **common))
        elif f == "clock":
            packages.append(clock.package(db=db, system_clock=system_clock, **common))
        elif f == "packet-loss":
            packages.append(
                packet_loss.package(db=db, probability=packet_loss_probability, **common)
            )
    pkg = compose_packages(packages)
    if pkg.generator is None:
        return pkg
    # One healthy interval, then every fault's schedule side by side.
    main = gen.nemesis([gen.sleep(float(interval)), pkg.generator])
    return dataclasses.replace(pkg, generator=main)


__all__ = ["FAULTS", "NEMESES", "TARGETS", "package", "parse_names"]
