"""Remotes: how the control node runs commands on a node.

Three backends behave the same: :mod:`jepsy.control.local` (network
namespaces on this machine; the embedded default, root required),
:mod:`jepsy.control.docker` (containers through the docker SDK) and
:mod:`jepsy.control.ssh` (real hosts through paramiko).

Rules every backend keeps:

- Commands are argv lists.  Quoting (``shlex.join``) happens only at a shell
  boundary inside the backend, never on user data elsewhere.
- A non-zero exit raises :class:`jepsy.errors.RemoteError` naming node,
  argv, exit code, stdout and stderr (unless ``check=False``).
- Every call has a timeout; overrunning it raises
  :class:`jepsy.errors.RemoteTimeout`.

A remote object is the explicit context: it knows its nodes and their
addresses, and nothing is kept in globals.  ``setup()`` brings the nodes up
(namespaces, containers, SSH connections), ``teardown()`` removes what
``setup()`` made; both are idempotent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, kw_only=True)
class ExecResult:
    """What a finished command gave back."""

    node: str
    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        """stdout decoded and stripped."""
        return self.stdout.decode("utf-8", "replace").strip()

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()


@runtime_checkable
class Remote(Protocol):
    def setup(self) -> None:
        """Bring every node up / connect to it.  Idempotent."""
        ...

    def teardown(self) -> None:
        """Remove everything ``setup`` created.  Idempotent, never raises for leftovers."""
        ...

    def nodes(self) -> Sequence[str]:
        """Node names, in order."""
        ...

    def address(self, node: str) -> str:
        """The address clients on the control node use to reach ``node``."""
        ...

    def node_dir(self, node: str) -> str:
        """A directory private to ``node`` (on the node), for data, logs and pidfiles."""
        ...

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 60.0,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run ``argv`` on ``node`` and wait for it."""
        ...

    def spawn(
        self,
        node: str,
        argv: Sequence[str],
        *,
        log: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> int:
        """Start a daemon in the background on ``node``, stdout+stderr appended to
        ``log`` (a path on the node); return its pid as seen on the node."""
        ...

    def upload(self, node: str, local: str | os.PathLike[str], remote: str) -> None:
        """Copy a local file to ``remote`` on ``node``."""
        ...

    def download(self, node: str, remote: str, local: str | os.PathLike[str]) -> None:
        """Copy ``remote`` on ``node`` to a local file."""
        ...


class NoopRemote:
    """A remote for tests with in-process systems: nodes exist only as names.

    ``exec`` runs nothing and succeeds with empty output."""

    def __init__(self, nodes: Sequence[str] = ("n1", "n2", "n3", "n4", "n5")) -> None:
        self._nodes = tuple(nodes)

    def setup(self) -> None:
        pass

    def teardown(self) -> None:
        pass

    def nodes(self) -> Sequence[str]:
        return self._nodes

    def address(self, node: str) -> str:
        return node

    def node_dir(self, node: str) -> str:
        return f"/nonexistent/{node}"

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 60.0,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        return ExecResult(node=node, argv=tuple(argv), exit_code=0, stdout=b"", stderr=b"")

    def spawn(
        self,
        node: str,
        argv: Sequence[str],
        *,
        log: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> int:
        return 0

    def upload(self, node: str, local: str | os.PathLike[str], remote: str) -> None:
        pass

    def download(self, node: str, remote: str, local: str | os.PathLike[str]) -> None:
        pass

    def __repr__(self) -> str:
        return f"NoopRemote({list(self._nodes)!r})"


__all__ = ["ExecResult", "NoopRemote", "Remote"]
