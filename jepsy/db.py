"""The DB protocol and its optional abilities.

A DB sets up and tears down the system under test on each node.  ``setup``
installs (or finds) the binary, writes config, starts the daemon with a
pidfile and waits until it is ready; ``teardown`` stops it and wipes its data.
Both are called once per node, concurrently across nodes.

Optional abilities are separate protocols checked with ``isinstance``; a
nemesis offers a fault only when the DB has the ability:

- :class:`Killable`: ``start`` / ``kill`` the daemon on a node (by recorded pid).
- :class:`Pausable`: ``pause`` / ``resume`` (SIGSTOP / SIGCONT).
- :class:`HasPrimaries`: which nodes currently act as primary/leader.
- :class:`HasLogFiles`: remote paths collected into ``nodes/<node>/`` at teardown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from jepsy.core import Test


@runtime_checkable
class DB(Protocol):
    def setup(self, test: Test, node: str) -> None:
        """Install, configure and start the DB on ``node``; return once it serves."""
        ...

    def teardown(self, test: Test, node: str) -> None:
        """Stop the DB on ``node`` and remove its data; idempotent."""
        ...


@runtime_checkable
class Killable(Protocol):
    def start(self, test: Test, node: str) -> None:
        """(Re)start the daemon on ``node``; a no-op if it is running."""
        ...

    def kill(self, test: Test, node: str) -> None:
        """SIGKILL the daemon on ``node`` by its recorded pid."""
        ...


@runtime_checkable
class Pausable(Protocol):
    def pause(self, test: Test, node: str) -> None:
        """SIGSTOP the daemon on ``node``."""
        ...

    def resume(self, test: Test, node: str) -> None:
        """SIGCONT the daemon on ``node``."""
        ...


@runtime_checkable
class HasPrimaries(Protocol):
    def primaries(self, test: Test) -> Sequence[str]:
        """Nodes that currently believe they are primary (may be several)."""
        ...


@runtime_checkable
class HasLogFiles(Protocol):
    def log_files(self, test: Test, node: str) -> Sequence[str]:
        """Remote paths of log files to collect from ``node``."""
        ...


class NoopDB:
    """Does nothing on every node."""

    def setup(self, test: Test, node: str) -> None:
        pass

    def teardown(self, test: Test, node: str) -> None:
        pass

    def __repr__(self) -> str:
        return "NoopDB()"
