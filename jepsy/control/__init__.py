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
``setup()`` made; both are idempotent.  Every backend is also a context
manager (``with LocalRemote(nodes) as r:``), and :func:`running` does the
same for any :class:`Remote`: it tears down on every exit, exceptions and
Ctrl-C included (SIGTERM too, inside :func:`sigterm_as_interrupt`).

By example::

    from jepsy.control import make_remote, pid_alive, running, signal_pid

    with running(make_remote("local", ["n1", "n2", "n3"], cluster="demo")) as r:
        r.exec("n1", ["echo", "hi"]).out                 # "hi"
        pid = r.spawn("n1", ["sleep", "100"], log=r.node_dir("n1") + "/sleep.log")
        signal_pid(r, "n1", pid, "STOP")                  # pause ...
        signal_pid(r, "n1", pid, "KILL")
        pid_alive(r, "n1", pid)                           # False (zombies count as dead)
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import shlex
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

from jepsy.errors import ConfigError, RemoteError, SetupError

log = logging.getLogger(__name__)


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


class SetupTeardown:
    """``with remote:`` calls ``setup()`` on entry and ``teardown()`` on exit,
    however the block ends (shared by every backend)."""

    def setup(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


class NoopRemote(SetupTeardown):
    """A remote for tests with in-process systems: nodes exist only as names.

    ``exec`` runs nothing and succeeds with empty output."""

    kind = "noop"

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


def raise_for_exit(result: ExecResult) -> ExecResult:
    """Return ``result`` when it exited 0, otherwise raise the one error every
    backend raises for a failed command (node, argv, exit code, stdout, stderr)."""
    if result.exit_code != 0:
        raise RemoteError(
            f"command exited with code {result.exit_code}",
            node=result.node,
            argv=result.argv,
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
        )
    return result


def check_argv(node: str, argv: Sequence[str]) -> tuple[str, ...]:
    """Validate an argv list: a non-empty sequence of strings, not one shell string."""
    if isinstance(argv, str | bytes):
        raise ConfigError(
            f"{node}: argv must be a list of strings, not the string {argv!r}; "
            f"write ['sh', '-c', {argv!r}] if a shell is really wanted"
        )
    t = tuple(argv)
    if not t or not all(isinstance(a, str) for a in t):
        raise ConfigError(f"{node}: argv must be a non-empty list of strings, got {argv!r}")
    return t


_SIGNALS = {"KILL", "TERM", "STOP", "CONT", "INT", "HUP", "QUIT", "USR1", "USR2"}


def spawn_via_shell(
    remote: Remote,
    node: str,
    args: Sequence[str],
    *,
    log: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    nohup: bool = False,
) -> int:
    """Start ``args`` as a daemon through ``sh -c`` on ``node`` (new session,
    stdout+stderr appended to ``log``) and return the pid the shell reports.

    For backends whose exec runs a command to completion (docker, ssh); the
    quoting happens here, at the shell boundary, and nowhere else."""
    pid, _start = spawn_via_shell_started(
        remote, node, args, log=log, env=env, cwd=cwd, nohup=nohup
    )
    return pid


def spawn_via_shell_started(
    remote: Remote,
    node: str,
    args: Sequence[str],
    *,
    log: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    nohup: bool = False,
) -> tuple[int, str]:
    """:func:`spawn_via_shell`, also returning the process's start time on the
    node (``/proc/PID/stat`` field 22, ``""`` if it was already gone), which
    tells it apart from a later process that reuses its pid (see
    :func:`kill_spawned`)."""
    if env:
        args = ("env", *(f"{k}={v}" for k, v in env.items()), *args)
    script = f"mkdir -p {shlex.quote(posixpath.dirname(log) or '/')} && "
    if cwd:
        script += f"cd {shlex.quote(cwd)} && "
    launcher = "setsid nohup" if nohup else "setsid"
    script += (
        f"{{ {launcher} {shlex.join(args)} >>{shlex.quote(log)} 2>&1 </dev/null & }}; "
        "p=$!; s=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f20); echo $p $s"
    )
    r = remote.exec(node, ["sh", "-c", script], timeout=30)
    try:
        words = r.out.splitlines()[-1].split()
        pid = int(words[0])
    except (ValueError, IndexError) as e:
        raise RemoteError(
            "spawn did not report a pid", node=node, argv=list(args), stdout=r.stdout
        ) from e
    start = words[1] if len(words) > 1 and words[1].isdigit() else ""
    return pid, start


# The one guard every pid-based fault and cleanup goes through, run on the node
# right before the signal: ``ours PID [START]`` succeeds only for a live
# process (not a zombie) other than pid 1 and the shell itself, that lives in
# the same network namespace as this shell - the node's own (a namespace host,
# a container, the SSH host) - and, when START is given, that started at that
# time (so a pid reused by another process since is left alone).  Namespace
# hosts share the machine's PID space: without the namespace check a stale pid
# could name dockerd or any other process of the machine.
_OURS = (
    "ours() { "
    'case "$1" in ""|*[!0-9]*) return 1;; esac; '
    '[ "$1" -gt 1 ] && [ "$1" != "$$" ] || return 1; '
    'n=$(readlink "/proc/$1/ns/net" 2>/dev/null) || return 1; '
    '[ -n "$n" ] && [ "$n" = "$(readlink /proc/$$/ns/net)" ] || return 1; '
    '[ -z "$2" ] || '
    '[ "$(sed \'s/.*) //\' "/proc/$1/stat" 2>/dev/null | cut -d\' \' -f20)" = "$2" ]; '
    "}; "
)


def _check_pid(pid: int) -> int:
    pid = int(pid)
    if pid <= 1:
        # kill 0 / -1 / 1 would hit a process group, every process, or init.
        raise ConfigError(f"refusing to signal pid {pid}: not a daemon's pid")
    return pid


def kill_spawned(
    remote: Remote,
    node: str,
    procs: Sequence[tuple[int, str]],
    *,
    timeout: float = 0.0,
) -> list[int]:
    """SIGKILL the processes a backend spawned on ``node``: ``(pid, start)``
    pairs from :func:`spawn_via_shell_started`.  Each is signalled only if it
    is still that process and lives in the node's network namespace (see
    ``_OURS``); the others (long dead, pid reused) are left alone.  Returns the
    pids signalled.  A teardown command: bounded retries (:func:`cleanup_exec`),
    ``timeout`` per attempt (0: :data:`CLEANUP_TIMEOUT`)."""
    specs = [f"{int(pid)}:{start}" for pid, start in procs if int(pid) > 1]
    if not specs:
        return []
    script = (
        _OURS + 'for x in "$@"; do p=${x%%:*}; s=${x#*:}; '
        'if ours "$p" "$s"; then kill -s KILL "$p" 2>/dev/null && echo "$p"; fi; done; true'
    )
    r = cleanup_exec(
        remote, node, ["sh", "-c", script, "sh", *specs], timeout=timeout or CLEANUP_TIMEOUT
    )
    return [int(w) for w in r.out.split() if w.isdigit()]


# Teardown-time commands (kill, rm, iptables -F, rmdir) run when a machine is
# often at its busiest (every node tearing down at once, daemons dying, logs
# flushed); over SSH one took more than 10 s to start under load.  They get a
# long timeout and a bounded number of attempts; they must be idempotent.
CLEANUP_TIMEOUT = 60.0
CLEANUP_ATTEMPTS = 3


def cleanup_exec(
    remote: Remote,
    node: str,
    argv: Sequence[str],
    *,
    timeout: float = CLEANUP_TIMEOUT,
    attempts: int = CLEANUP_ATTEMPTS,
    backoff: float = 0.5,
) -> ExecResult:
    """Run an idempotent cleanup command (``check=False``), retrying it when it
    times out or the connection fails, at most ``attempts`` times in all
    (sleeping ``backoff``, doubled each time, between attempts).  A command
    that ran and exited non-zero is not retried: its result is returned.
    After the last failed attempt its error is raised."""
    attempts = max(1, int(attempts))
    for i in range(attempts):
        try:
            return remote.exec(node, argv, timeout=timeout, check=False)
        except RemoteError as e:
            if i + 1 >= attempts:
                raise
            log.warning(
                "%s: cleanup command %s failed (%s); retrying (%d of %d)",
                node,
                shlex.join(argv),
                e,
                i + 2,
                attempts,
            )
            time.sleep(backoff * 2**i)
    raise AssertionError("unreachable")  # pragma: no cover


def signal_pid(
    remote: Remote, node: str, pid: int, sig: str = "KILL", *, timeout: float = 10.0
) -> bool:
    """Send signal ``sig`` (a name such as ``"STOP"``) to ``pid`` on ``node``.

    Returns False when the process no longer exists, True when the signal was
    delivered.  Works on every backend (it runs ``kill`` on the node).

    Only a process living in the node's own network namespace is signalled
    (checked on the node right before the kill): namespace hosts share this
    machine's PID space, so a stale pid (a pidfile left by a dead daemon, its
    pid since reused) must never reach a process outside the cluster.  Such a
    pid counts as gone (False).  Pids below 2 raise ConfigError."""
    name = sig.upper().removeprefix("SIG")
    if name not in _SIGNALS:
        raise ConfigError(f"unknown signal {sig!r}; use one of {sorted(_SIGNALS)}")
    pid = _check_pid(pid)
    script = _OURS + 'ours "$1" || exit 3; kill -s "$2" "$1"'
    r = remote.exec(node, ["sh", "-c", script, "sh", str(pid), name], timeout=timeout, check=False)
    return r.exit_code == 0


def pid_alive(remote: Remote, node: str, pid: int, *, timeout: float = 10.0) -> bool:
    """Whether ``pid`` on ``node`` is a live process of the node.

    A zombie (state ``Z`` in ``/proc/PID/stat``) counts as dead: on some
    machines init reaps orphans slowly, so ``kill -0`` keeps succeeding for a
    while after a process died.  So does a process outside the node's network
    namespace (a reused pid on a namespace host; see :func:`signal_pid`)."""
    return pid_state(remote, node, pid, timeout=timeout) not in ("Z", "X", "")


def pid_state(remote: Remote, node: str, pid: int, *, timeout: float = 10.0) -> str:
    """The one-letter state of ``pid`` on ``node`` (``R``, ``S``, ``T`` = stopped,
    ``Z`` = zombie ...) or ``""`` when there is no such process in the node's
    network namespace."""
    if int(pid) <= 1:
        return ""
    script = _OURS + 'ours "$1" || exit 3; cat "/proc/$1/stat"'
    r = remote.exec(node, ["sh", "-c", script, "sh", str(int(pid))], timeout=timeout, check=False)
    return _stat_state(r.stdout) if r.exit_code == 0 else ""


def _stat_state(stat: bytes) -> str:
    # /proc/PID/stat: "pid (comm) S ..."; comm may contain spaces and parens.
    text = stat.decode("ascii", "replace")
    i = text.rfind(")")
    rest = text[i + 1 :].split() if i >= 0 else []
    return rest[0] if rest else ""


def wait_until(
    predicate: Any, *, timeout: float, interval: float = 0.02, what: str = "condition"
) -> None:
    """Poll ``predicate()`` until it is true; raise SetupError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise SetupError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises KeyboardInterrupt (as Ctrl-C does),
    so ``with remote:`` and ``finally`` clean up on ``kill PID`` too.

    Only the main thread can install signal handlers; elsewhere this does nothing.

        with sigterm_as_interrupt(), make_remote("local", nodes) as r:
            ...   # SIGTERM, Ctrl-C or an exception: r.teardown() runs
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def running(remote: Remote) -> Iterator[Remote]:
    """``remote.setup()``, then ``remote.teardown()`` however the block ends.

    (A backend whose setup fails part-way removes what it made itself.)"""
    remote.setup()
    try:
        yield remote
    finally:
        remote.teardown()


REMOTE_KINDS = ("local", "docker", "ssh", "noop")


def make_remote(kind: str, nodes: Sequence[str], **opts: Any) -> Remote:
    """Build a remote by name: ``"local"``, ``"docker"``, ``"ssh"`` or ``"noop"``.

    ``opts`` go to the backend's constructor (keyword-only there):

    - local: ``cluster``, ``subnet``, ``base_dir`` (:class:`jepsy.control.local.LocalRemote`)
    - docker: ``cluster``, ``image``, ``subnet``, ``docker_host``
      (:class:`jepsy.control.docker.DockerRemote`; needs ``pip install jepsy[docker]``)
    - ssh: ``hosts``, ``user``, ``port``, ``key_file``, ``password``, ``sudo``,
      ``strict_host_key_checking``, ``known_hosts``
      (:class:`jepsy.control.ssh.SSHRemote`)

    The remote is not set up yet: call ``setup()`` or use it as a context manager.
    """
    nodes = tuple(nodes)
    if kind in ("local", "docker", "ssh"):
        import importlib
        import inspect

        mod = importlib.import_module(f"jepsy.control.{kind}")
        cls = getattr(
            mod, {"local": "LocalRemote", "docker": "DockerRemote"}.get(kind, "SSHRemote")
        )
        known = set(inspect.signature(cls).parameters) - {"nodes"}
        unknown = sorted(set(opts) - known)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for the {kind} remote; "
                f"it takes {', '.join(sorted(known))}"
            )
        remote: Remote = cls(nodes, **opts)
        return remote
    if kind == "noop":
        if opts:
            raise ConfigError(f"the noop remote takes no options, got {sorted(opts)}")
        return NoopRemote(nodes)
    raise ConfigError(f"unknown remote {kind!r}; use one of {', '.join(REMOTE_KINDS)}")


__all__ = [
    "CLEANUP_ATTEMPTS",
    "CLEANUP_TIMEOUT",
    "REMOTE_KINDS",
    "ExecResult",
    "NoopRemote",
    "Remote",
    "SetupTeardown",
    "check_argv",
    "cleanup_exec",
    "kill_spawned",
    "make_remote",
    "pid_alive",
    "pid_state",
    "raise_for_exit",
    "running",
    "signal_pid",
    "sigterm_as_interrupt",
    "spawn_via_shell",
    "spawn_via_shell_started",
    "wait_until",
]
