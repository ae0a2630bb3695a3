"""Crash faults: ``kill`` the DB process (SIGKILL by its recorded pid), ``start`` it again.

Ops (process ``"nemesis"``):

- ``{"f": "kill", "value": "minority"}``: a node selector (``one``,
  ``minority``, ``majority``, ``minority-third``, ``primaries``, ``all``) or
  a list of nodes, resolved when the op runs; the DB's ``kill(test, node)``
  runs on every chosen node at once.  Completes ``info`` with
  ``{"n2": "killed", ...}``; nodes where it failed are in ``error``.
- ``{"f": "start"}``: ``start(test, node)`` on every node (a no-op where the
  daemon runs) or on the listed nodes; value ``{"n2": "started", ...}``.

``teardown`` restarts every node this nemesis killed and did not restart.
Needs a DB implementing :class:`jepsy.db.Killable`; :func:`package` raises
:class:`~jepsy.errors.ConfigError` up front otherwise.

By example::

    pkg = package(db=my_db, interval=10, targets=["one", "majority"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from jepsy import generator as gen
from jepsy.db import DB, Killable
from jepsy.errors import ConfigError
from jepsy.nemeses.core import (
    NODE_SELECTORS,
    NodeFaultNemesis,
    Package,
    RandomOp,
    check_selectors,
    plot_entry,
    toggle_schedule,
)

if TYPE_CHECKING:
    from jepsy.core import Test

KILL = "kill"
START = "start"
COLOR = "#E9A4A0"


def require_killable(db: DB | None) -> Killable:
    if db is None or not isinstance(db, Killable):
        raise ConfigError(
            f"nemesis 'kill' needs a DB that can be killed and restarted; {db!r} cannot "
            "(hint: implement jepsy.db.Killable: start(test, node) and kill(test, node))"
        )
    return db


def nemesis(db: DB | None, *, default_target: str | Sequence[str] = "one") -> NodeFaultNemesis:
    """The kill/start nemesis for ``db`` (ConfigError unless it is Killable)."""
    k = require_killable(db)

    def kill(test: Test, node: str) -> None:
        k.kill(test, node)

    def start(test: Test, node: str) -> None:
        k.start(test, node)

    return NodeFaultNemesis(
        name="kill",
        apply_f=KILL,
        undo_f=START,
        done="killed",
        undone="started",
        apply=kill,
        undo=start,
        db=db,
        default_target=default_target,
    )


def package(
    *,
    db: DB | None,
    interval: float = 10.0,
    targets: Sequence[str] | None = None,
    nodes: Sequence[str] = ("n1", "n2", "n3", "n4", "n5"),
    lead: float | None = None,
) -> Package:
    """Kill nodes chosen by a selector from ``targets`` every ``interval``
    seconds, restart them ``interval`` seconds later; restart all at the end."""
    selectors = check_selectors("kill", targets, db=db, nodes=nodes)
    n = nemesis(db)
    choices = tuple(selectors)

    g = toggle_schedule(interval, RandomOp(KILL, choices), {"f": START}, lead=lead)
    return Package(
        nemesis=n,
        generator=g,
        final_generator=gen.nemesis({"f": START}),
        plot={"kill": plot_entry(COLOR, "kill", [KILL], [START])},
    )


__all__ = ["KILL", "NODE_SELECTORS", "START", "nemesis", "package", "require_killable"]
