"""Process pauses: ``pause`` the DB process (SIGSTOP), ``resume`` it (SIGCONT).

A paused process holds its sockets open but answers nothing: to its peers
it looks like a very slow node, then like a GC pause that ends, which is
what trips lease and leader-election logic.

Ops (process ``"nemesis"``):

- ``{"f": "pause", "value": "one"}``: a node selector (``one``,
  ``minority``, ``majority``, ``minority-third``, ``primaries``, ``all``) or
  a list of nodes, resolved when the op runs; the DB's ``pause(test, node)``
  runs on every chosen node at once.  Completes ``info`` with
  ``{"n1": "paused", ...}``; failures are in ``error``.
- ``{"f": "resume"}``: ``resume(test, node)`` on every node (SIGCONT is
  harmless on a running process) or on the listed nodes; value
  ``{"n1": "resumed", ...}``.

``teardown`` resumes every node this nemesis paused and did not resume.
Needs a DB implementing :class:`jepsy.db.Pausable`; :func:`package` raises
:class:`~jepsy.errors.ConfigError` up front otherwise.

By example::

    pkg = package(db=my_db, interval=10, targets=["primaries"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from jepsy import generator as gen
from jepsy.db import DB, Pausable
from jepsy.errors import ConfigError
from jepsy.nemeses.core import (
    NodeFaultNemesis,
    Package,
    RandomOp,
    check_selectors,
    plot_entry,
    toggle_schedule,
)

if TYPE_CHECKING:
    from jepsy.core import Test

PAUSE = "pause"
RESUME = "resume"
COLOR = "#C5A0E9"


def require_pausable(db: DB | None) -> Pausable:
    if db is None or not isinstance(db, Pausable):
        raise ConfigError(
            f"nemesis 'pause' needs a DB that can be paused and resumed; {db!r} cannot "
            "(hint: implement jepsy.db.Pausable: pause(test, node) and resume(test, node))"
        )
    return db


def nemesis(db: DB | None, *, default_target: str | Sequence[str] = "one") -> NodeFaultNemesis:
    """The pause/resume nemesis for ``db`` (ConfigError unless it is Pausable)."""
    p = require_pausable(db)

    def pause(test: Test, node: str) -> None:
        p.pause(test, node)

    def resume(test: Test, node: str) -> None:
        p.resume(test, node)

    return NodeFaultNemesis(
        name="pause",
        apply_f=PAUSE,
        undo_f=RESUME,
        done="paused",
        undone="resumed",
        apply=pause,
        undo=resume,
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
    """Pause nodes chosen by a selector from ``targets`` every ``interval``
    seconds, resume them ``interval`` seconds later; resume all at the end."""
    selectors = check_selectors("pause", targets, db=db, nodes=nodes)
    n = nemesis(db)
    choices = tuple(selectors)

    g = toggle_schedule(interval, RandomOp(PAUSE, choices), {"f": RESUME}, lead=lead)
    return Package(
        nemesis=n,
        generator=g,
        final_generator=gen.nemesis({"f": RESUME}),
        plot={"pause": plot_entry(COLOR, "pause", [PAUSE], [RESUME])},
    )


__all__ = ["PAUSE", "RESUME", "nemesis", "package", "require_pausable"]
