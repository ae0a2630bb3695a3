"""Daemon helpers shared by the database suites.

Every suite runs its server the same way, on any remote: launch it in the
foreground through :meth:`Remote.spawn` (so the returned pid is the server's
own), write that pid to a pidfile in the node's private directory, poll a
readiness probe with a bounded deadline, and later signal *that* pid - never
a process name, because on namespace hosts every node shares one PID space
and other tests may run the same binary.

By example::

    d = Daemon(node="n1", name="etcd", argv=["etcd", "--name", "n1"], directory="/tmp/n1")
    d.start(remote)                       # spawn, write /tmp/n1/etcd.pid
    wait_ready(lambda: probe("n1"), timeout=30, what="etcd on n1")
    d.signal(remote, "STOP"); d.signal(remote, "CONT")
    d.stop(remote)                        # SIGKILL by pid, wait until it is gone
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jepsy.control import ExecResult, Remote, cleanup_exec, pid_alive, signal_pid
from jepsy.errors import ConfigError, RemoteError, SetupError

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import Op

log = logging.getLogger(__name__)

# Timeout for the small housekeeping commands (cat, rm, mkdir, kill): generous,
# because a loaded machine or a busy SSH server can take seconds to run them.
# Teardown-time ones go through cleanup_exec (longer, with bounded retries).
_T = 30.0


@dataclass(frozen=True, kw_only=True)
class Daemon:
    """One long-running server process on one node.

    ``directory`` is the daemon's own directory on the node (created on
    start); the pidfile is ``<directory>/<name>.pid`` and stdout+stderr go to
    ``<directory>/<name>.log`` unless ``log`` says otherwise."""

    node: str
    name: str
    argv: tuple[str, ...] | list[str]
    directory: str
    env: Mapping[str, str] = field(default_factory=dict)
    log: str | None = None

    @property
    def pidfile(self) -> str:
        return f"{self.directory}/{self.name}.pid"

    @property
    def logfile(self) -> str:
        return self.log or f"{self.directory}/{self.name}.log"

    def pid(self, remote: Remote) -> int | None:
        """The pid recorded in the pidfile, or None when there is none."""
        return _pid_of(remote.exec(self.node, ["cat", self.pidfile], check=False, timeout=_T))

    def running(self, remote: Remote) -> bool:
        """Whether the recorded pid is a live process (zombies count as dead)."""
        pid = self.pid(remote)
        return pid is not None and pid_alive(remote, self.node, pid, timeout=_T)

    def start(self, remote: Remote) -> int:
        """Spawn the daemon unless it already runs; return its pid."""
        pid = self.pid(remote)
        if pid is not None and pid_alive(remote, self.node, pid, timeout=_T):
            return pid
        remote.exec(self.node, ["mkdir", "-p", self.directory], timeout=_T)
        pid = remote.spawn(self.node, list(self.argv), log=self.logfile, env=dict(self.env) or None)
        remote.exec(
            self.node,
            ["sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sh", str(pid), self.pidfile],
            timeout=_T,
        )
        log.debug("%s: started %s as pid %d", self.node, self.name, pid)
        return pid

    def signal(self, remote: Remote, sig: str) -> bool:
        """Send ``sig`` to the recorded pid; False when nothing was running."""
        pid = self.pid(remote)
        if pid is None:
            return False
        return signal_pid(remote, self.node, pid, sig, timeout=_T)

    def stop(self, remote: Remote, *, sig: str = "KILL", timeout: float = 10.0) -> None:
        """Signal the recorded pid (SIGCONT first, so a paused process can die
        on SIGTERM) and wait until it is gone; removes the pidfile.

        Also the teardown path: reading and removing the pidfile are cleanup
        commands (long timeout, bounded retries: :func:`cleanup_exec`), and
        only a process in the node's own namespace is ever signalled
        (:func:`signal_pid`), so a stale pidfile cannot hit another process."""
        pid = _pid_of(cleanup_exec(remote, self.node, ["cat", self.pidfile]))
        if pid is not None:
            if sig != "KILL":
                signal_pid(remote, self.node, pid, "CONT", timeout=_T)
            signal_pid(remote, self.node, pid, sig, timeout=_T)
            deadline = time.monotonic() + timeout
            while pid_alive(remote, self.node, pid, timeout=_T):
                if time.monotonic() >= deadline:
                    if sig == "KILL":
                        raise SetupError(
                            f"{self.node}: {self.name} (pid {pid}) still alive {timeout:g} s "
                            "after SIGKILL; is it stuck in the kernel?"
                        )
                    signal_pid(remote, self.node, pid, "KILL", timeout=_T)
                    sig = "KILL"
                    deadline = time.monotonic() + timeout
                time.sleep(0.02)
            log.debug("%s: stopped %s (pid %d)", self.node, self.name, pid)
        cleanup_exec(remote, self.node, ["rm", "-f", self.pidfile])


def _pid_of(r: ExecResult) -> int | None:
    """The pid in a pidfile's contents; None for none, or for 0 and 1 (never a
    daemon's: signalling them would hit a process group or init)."""
    text = r.out
    if r.exit_code != 0 or not text.isdigit() or int(text) <= 1:
        return None
    return int(text)


def wait_ready(
    probe: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    daemon: Daemon | None = None,
    remote: Remote | None = None,
) -> float:
    """Poll ``probe()`` until it returns True; return the seconds it took.

    Exceptions from ``probe`` count as "not yet".  When ``daemon`` and
    ``remote`` are given, a daemon that died while we waited ends the wait at
    once with its log's tail in the error."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last: BaseException | None = None
    n = 0
    while True:
        try:
            if probe():
                return time.monotonic() - t0
        except Exception as e:
            last = e
        n += 1
        if daemon is not None and remote is not None and n % 10 == 0 and not daemon.running(remote):
            raise SetupError(
                f"{daemon.node}: {daemon.name} exited while starting; "
                f"log tail:\n{tail(remote, daemon.node, daemon.logfile)}"
            )
        if time.monotonic() >= deadline:
            hint = f" (last error: {last})" if last else ""
            extra = ""
            if daemon is not None and remote is not None:
                extra = f"; log tail:\n{tail(remote, daemon.node, daemon.logfile)}"
            raise SetupError(f"timed out after {timeout:g} s waiting for {what}{hint}{extra}")
        time.sleep(interval)


def tail(remote: Remote, node: str, path: str, *, lines: int = 20) -> str:
    """The last ``lines`` lines of ``path`` on ``node`` ("" when unreadable)."""
    try:
        r = remote.exec(node, ["tail", "-n", str(lines), path], check=False, timeout=_T)
    except RemoteError:
        return ""
    return r.out


def have_binary(remote: Remote, node: str, name: str) -> bool:
    """Whether ``name`` is on the node's PATH (or in /usr/sbin)."""
    r = remote.exec(
        node,
        ["sh", "-c", 'command -v "$1" || test -x "/usr/sbin/$1"', "sh", name],
        check=False,
        timeout=_T,
    )
    return r.exit_code == 0


def ensure_packages(
    remote: Remote, node: str, *, binaries: Sequence[str], packages: Sequence[str]
) -> None:
    """Install Debian ``packages`` on ``node`` unless every one of ``binaries``
    is already there.  Raises :class:`SetupError` with apt's output on failure."""
    if all(have_binary(remote, node, b) for b in binaries):
        return
    log.info("%s: installing %s", node, " ".join(packages))
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    r = remote.exec(
        node,
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        check=False,
        timeout=600,
        env=env,
    )
    if r.exit_code != 0:
        remote.exec(node, ["apt-get", "update", "-q"], check=False, timeout=600, env=env)
        r = remote.exec(
            node,
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
            check=False,
            timeout=600,
            env=env,
        )
    if r.exit_code != 0 or not all(have_binary(remote, node, b) for b in binaries):
        raise SetupError(
            f"{node}: could not install {' '.join(packages)} (apt-get exit {r.exit_code}); "
            f"install it by hand or run scripts/setup-system.sh\n{r.err[-2000:]}"
        )


def write_file(remote: Remote, node: str, path: str, text: str) -> None:
    """Write ``text`` to ``path`` on ``node`` (parent directories created)."""
    remote.exec(
        node,
        ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", path],
        stdin=text.encode(),
        timeout=_T,
    )


__all__ = ["Daemon", "ensure_packages", "have_binary", "tail", "wait_ready", "write_file"]


class DaemonFaults:
    """Killable and Pausable for a suite whose faults hit one daemon per node.

    A suite defines ``_daemon(test, node) -> Daemon``; ``start`` relaunches
    it (a no-op while it runs), ``kill`` SIGKILLs it by its recorded pid,
    ``pause`` / ``resume`` send SIGSTOP / SIGCONT.  A suite that must wait
    for readiness after a restart overrides ``start``."""

    def _daemon(self, test: Test, node: str) -> Daemon:
        raise NotImplementedError

    def start(self, test: Test, node: str) -> None:
        self._daemon(test, node).start(test.remote)

    def kill(self, test: Test, node: str) -> None:
        self._daemon(test, node).stop(test.remote, sig="KILL")

    def pause(self, test: Test, node: str) -> None:
        self._daemon(test, node).signal(test.remote, "STOP")

    def resume(self, test: Test, node: str) -> None:
        self._daemon(test, node).signal(test.remote, "CONT")


class PrototypeClient:
    """The Client methods of a prototype: the runner only calls ``open`` on
    it (each worker gets the opened client); the rest keep it a valid
    :class:`~jepsy.client.Client`."""

    def setup(self, test: Test) -> None:
        pass

    def invoke(self, test: Test, op: Op) -> Op:
        raise ConfigError(f"{type(self).__name__} is a prototype; call open(test, node) first")

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        pass
