"""Real hosts over SSH, through paramiko.

Each node is a host (``hosts={"n1": "10.0.0.5", ...}``; by default the node
name itself).  Connections are pooled per node and shared safely between
threads: a call borrows an idle connection (or opens one) and gives it back.
Authentication by key file, password, or the agent / default keys.  With
``sudo=True`` commands run through ``sudo -n`` (``sudo -S`` when a password
is given).

Host keys are checked against ``known_hosts`` (``~/.ssh/known_hosts`` by
default) and unknown or changed keys are refused.  The explicit opt-out,
``strict_host_key_checking=False`` (``--strict-host-key-checking no``),
accepts any key and logs a warning.

Commands are argv lists joined with ``shlex.join`` only here, at the shell
boundary, and wrapped in ``timeout -s KILL`` on the host so a timed-out call
does not leave its command running.  A connection that drops before a
command starts is reopened once and the call retried; upload and download
(SFTP) are retried once as a whole.

By example::

    r = SSHRemote(["n1", "n2"], hosts={"n1": "10.0.0.5", "n2": "10.0.0.6"},
                  user="admin", key_file="~/.ssh/id_ed25519", sudo=True)
    with r:
        r.exec("n1", ["iptables", "-S"])
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import select
import shlex
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import paramiko

from jepsy.control import (
    ExecResult,
    SetupTeardown,
    check_argv,
    cleanup_exec,
    kill_spawned,
    raise_for_exit,
    spawn_via_shell_started,
)
from jepsy.errors import ConfigError, RemoteError, RemoteTimeout, SetupError

log = logging.getLogger(__name__)

NODE_BASE_DIR = "/var/lib/jepsy"
_DROPPED = (paramiko.SSHException, EOFError, OSError, socket.error)
T = TypeVar("T")


class SSHRemote(SetupTeardown):
    """Nodes as SSH hosts.  See the module doc.

    - ``hosts``: node -> host name or address (default: the node name).
    - ``user``, ``port``: login.  ``key_file`` / ``password``: credentials
      (neither: agent and default keys).
    - ``sudo``: run commands through sudo.
    - ``strict_host_key_checking``: check host keys against ``known_hosts``;
      False accepts any key and warns.
    - ``connect_timeout``: seconds for TCP connect, banner and auth.
    - ``pool_size``: idle connections kept per node.
    - ``base_dir``: node directories are ``<base_dir>/<node>`` on the host.
    - ``keep_files``: leave the node directories in place at teardown.  By
      default teardown removes each node directory that ``setup`` created
      (and ``base_dir`` when ``setup`` created it and it is empty); one that
      existed before is left alone.
    """

    kind = "ssh"

    def __init__(
        self,
        nodes: Sequence[str] = ("n1", "n2", "n3", "n4", "n5"),
        *,
        hosts: Mapping[str, str] | None = None,
        user: str = "root",
        port: int = 22,
        key_file: str | os.PathLike[str] | None = None,
        password: str | None = None,
        sudo: bool = False,
        strict_host_key_checking: bool = True,
        known_hosts: str | os.PathLike[str] | None = None,
        connect_timeout: float = 10.0,
        pool_size: int = 4,
        base_dir: str = NODE_BASE_DIR,
        keep_files: bool = False,
    ) -> None:
        self._nodes = tuple(nodes)
        if not self._nodes or len(set(self._nodes)) != len(self._nodes):
            raise ConfigError(f"need distinct node names, got {list(self._nodes)!r}")
        hosts = dict(hosts or {})
        unknown = set(hosts) - set(self._nodes)
        if unknown:
            raise ConfigError(f"hosts given for unknown nodes {sorted(unknown)}")
        self._host = {n: hosts.get(n, n) for n in self._nodes}
        self.user = user
        self.port = int(port)
        self.key_file = str(Path(key_file).expanduser()) if key_file else None
        if self.key_file and not Path(self.key_file).exists():
            raise ConfigError(f"SSH key file {self.key_file!r} does not exist")
        self.password = password
        self.sudo = sudo
        self.strict = strict_host_key_checking
        self.known_hosts = (
            str(Path(known_hosts).expanduser())
            if known_hosts
            else str(Path("~/.ssh/known_hosts").expanduser())
        )
        self.connect_timeout = connect_timeout
        self.pool_size = pool_size
        self.base_dir = base_dir.rstrip("/") or "/"
        self.keep_files = keep_files
        self._idle: dict[str, list[paramiko.SSHClient]] = {n: [] for n in self._nodes}
        self._all: set[paramiko.SSHClient] = set()
        self._lock = threading.Lock()
        self._spawned: dict[str, list[tuple[int, str]]] = {}
        # node directories (and base_dir, per node) that setup created
        self._made_dirs: set[str] = set()
        self._made_base: set[str] = set()
        self._warned = False

    # ------------------------------------------------------------------ lifecycle

    def setup(self) -> None:
        """Connect to every node (in parallel) and create the node directories.
        If a node fails, what the others made is removed again."""
        if self.strict and not Path(self.known_hosts).exists():
            raise SetupError(
                f"strict host key checking needs a known_hosts file, and {self.known_hosts} "
                "does not exist: add the hosts' keys (ssh-keyscan), pass known_hosts=..., "
                "or opt out with --strict-host-key-checking no"
            )

        def up(node: str) -> None:
            self._release(node, self._connect(node))
            # Remember what we create: teardown removes exactly that.
            r = self.exec(
                node,
                [
                    "sh",
                    "-c",
                    'b=; [ -d "$2" ] || b=base; '
                    'if [ -d "$1" ]; then echo "existed $b"; '
                    'else mkdir -p "$1" && echo "created $b"; fi',
                    "sh",
                    self.node_dir(node),
                    self.base_dir,
                ],
                timeout=30,
            )
            words = r.out.split()
            with self._lock:
                if "created" in words:
                    self._made_dirs.add(node)
                if "base" in words:
                    self._made_base.add(node)

        try:
            with ThreadPoolExecutor(max_workers=min(8, len(self._nodes))) as pool:
                list(pool.map(up, self._nodes))
        except BaseException:
            self.teardown()  # what the nodes that did come up made
            raise

    def teardown(self) -> None:
        """Kill the processes :meth:`spawn` started (by pid, only if each is still
        that process), remove the node directories :meth:`setup` created
        (unless ``keep_files``), and close every connection.

        Cleanup commands get a long timeout and bounded retries
        (:func:`jepsy.control.cleanup_exec`); a node that cannot be reached
        is logged and skipped, never raised."""
        with self._lock:
            spawned = dict(self._spawned)
            self._spawned.clear()
            made = [] if self.keep_files else [n for n in self._nodes if n in self._made_dirs]
            made_base = [] if self.keep_files else [n for n in self._nodes if n in self._made_base]
            self._made_dirs.clear()
            self._made_base.clear()

        def each(nodes: Sequence[str], fn: Callable[[str], object], what: str) -> None:
            def guarded(node: str) -> None:
                try:
                    fn(node)
                except RemoteError as e:
                    log.warning("%s: teardown could not %s: %s", node, what, e)

            if nodes:
                with ThreadPoolExecutor(max_workers=min(8, len(nodes))) as pool:
                    list(pool.map(guarded, nodes))

        each(list(spawned), lambda n: kill_spawned(self, n, spawned[n]), "kill spawned processes")
        # All node directories first, then base_dir: hosts may share a filesystem.
        each([n for n in made if _safe_name(n)], self._remove_node_dir, "remove its directory")
        each(made_base, self._remove_base, "remove base_dir")
        with self._lock:
            clients = list(self._all)
            self._all.clear()
            for idle in self._idle.values():
                idle.clear()
        for c in clients:
            with contextlib.suppress(Exception):
                c.close()

    def _remove_node_dir(self, node: str) -> None:
        cleanup_exec(self, node, ["rm", "-rf", "--", self.node_dir(node)])

    def _remove_base(self, node: str) -> None:
        if self.base_dir != "/":
            cleanup_exec(self, node, ["rmdir", "--", self.base_dir])

    # ------------------------------------------------------------------ connections

    def _connect(self, node: str) -> paramiko.SSHClient:
        host = self._host[node]
        c = paramiko.SSHClient()
        if self.strict:
            c.load_host_keys(self.known_hosts)
            c.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            if not self._warned:
                self._warned = True
                log.warning(
                    "SSH host key checking is OFF (--strict-host-key-checking no): "
                    "any host key is accepted, so a man in the middle goes unnoticed"
                )
            c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        explicit = self.key_file is not None or self.password is not None
        try:
            c.connect(
                host,
                port=self.port,
                username=self.user,
                key_filename=self.key_file,
                password=self.password,
                look_for_keys=not explicit,
                allow_agent=not explicit,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
            )
        except paramiko.BadHostKeyException as e:
            c.close()
            raise SetupError(
                f"{node}: host key of {host}:{self.port} does not match {self.known_hosts} "
                f"({e}); if the host was rebuilt, update known_hosts"
            ) from e
        except paramiko.SSHException as e:
            c.close()
            hint = (
                "add its key to known_hosts (ssh-keyscan) or opt out with "
                "--strict-host-key-checking no"
                if "not found in known_hosts" in str(e)
                else "check user, key/password and that sshd runs"
            )
            raise SetupError(
                f"{node}: SSH to {self.user}@{host}:{self.port} failed: {e}; {hint}"
            ) from e
        except OSError as e:
            c.close()
            raise SetupError(
                f"{node}: cannot reach {host}:{self.port} ({e}); is the host up and sshd running?"
            ) from e
        transport = c.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
        with self._lock:
            self._all.add(c)
        return c

    def _acquire(self, node: str) -> paramiko.SSHClient:
        """An idle pooled connection to ``node`` or a new one.  A node that does
        not answer raises RemoteError (SetupError only from :meth:`setup`)."""
        c = self._pop_idle(node)
        if c is not None:
            return c
        try:
            return self._connect(node)
        except SetupError as e:
            raise RemoteError(str(e).removeprefix(f"{node}: "), node=node) from e

    def _pop_idle(self, node: str) -> paramiko.SSHClient | None:
        with self._lock:
            idle = self._idle[node]
            while idle:
                c = idle.pop()
                t = c.get_transport()
                if t is not None and t.is_active():
                    return c
                self._all.discard(c)
                c.close()
        return None

    def _release(self, node: str, c: paramiko.SSHClient) -> None:
        t = c.get_transport()
        with self._lock:
            if t is not None and t.is_active() and len(self._idle[node]) < self.pool_size:
                self._idle[node].append(c)
                return
            self._all.discard(c)
        c.close()

    def _discard(self, c: paramiko.SSHClient) -> None:
        with self._lock:
            self._all.discard(c)
        with contextlib.suppress(Exception):
            c.close()

    def _with_client(self, node: str, fn: Callable[[paramiko.SSHClient], T], *, retry: bool) -> T:
        """Run ``fn`` on a pooled connection; on a dropped connection reconnect
        once and retry (when ``retry``)."""
        for attempt in (0, 1):
            c = self._acquire(node)
            try:
                result = fn(c)
            except _DROPPED as e:
                self._discard(c)
                if attempt == 0 and retry:
                    log.info("%s: connection dropped (%s); reconnecting", node, e)
                    continue
                raise RemoteError(
                    f"SSH connection to {self._host[node]} failed: {e}", node=node
                ) from e
            except BaseException:
                self._discard(c)
                raise
            self._release(node, c)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ Remote

    def nodes(self) -> Sequence[str]:
        return self._nodes

    def address(self, node: str) -> str:
        return self._host[self._known(node)]

    def node_dir(self, node: str) -> str:
        return f"{self.base_dir}/{self._known(node)}"

    def _known(self, node: str) -> str:
        if node not in self._host:
            raise ConfigError(f"unknown node {node!r}; nodes are {', '.join(self._nodes)}")
        return node

    def _command(
        self, argv: Sequence[str], timeout: float | None, env: Mapping[str, str] | None
    ) -> tuple[str, bytes]:
        """The shell command line for ``argv`` and what to prepend to stdin."""
        args = list(argv)
        if env:
            args = ["env", *(f"{k}={v}" for k, v in env.items()), *args]
        if timeout is not None:
            args = ["timeout", "-s", "KILL", f"{timeout:g}", *args]
        prefix = b""
        if self.sudo:
            if self.password is not None:
                args = ["sudo", "-S", "-p", "", "--", *args]
                prefix = self.password.encode() + b"\n"
            else:
                args = ["sudo", "-n", "--", *args]
        return shlex.join(args), prefix

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
        args = check_argv(node, argv)
        self._known(node)
        cmd, prefix = self._command(args, timeout, env)
        data = prefix + stdin if stdin is not None else (prefix or None)
        deadline = time.monotonic() + timeout + 5

        def start(c: paramiko.SSHClient) -> paramiko.Channel:
            t = c.get_transport()
            if t is None or not t.is_active():
                raise paramiko.SSHException("transport is not active")
            ch = t.open_session(timeout=self.connect_timeout)
            ch.exec_command(cmd)
            return ch

        # Only opening the session is retried: a started command is never repeated.
        c = self._acquire(node)
        try:
            try:
                ch = start(c)
            except _DROPPED as e:
                self._discard(c)
                log.info("%s: connection dropped (%s); reconnecting", node, e)
                c = self._acquire(node)
                try:
                    ch = start(c)
                except _DROPPED as e2:
                    raise RemoteError(
                        f"SSH connection to {self._host[node]} failed: {e2}", node=node, argv=args
                    ) from e2
            out, err, code, timed_out = _communicate(ch, data, deadline=deadline)
        except RemoteError:
            self._discard(c)
            raise
        except _DROPPED as e:
            self._discard(c)
            raise RemoteError(
                f"SSH connection to {self._host[node]} dropped while the command ran "
                f"(its effect is unknown): {e}",
                node=node,
                argv=args,
            ) from e
        except BaseException:
            self._discard(c)
            raise
        self._release(node, c)
        # `timeout -s KILL` ends the command with a signal: sshd reports no exit
        # status for it (paramiko gives -1), or a shell reports 137.
        if timed_out or (code in (-1, 137) and time.monotonic() >= deadline - 5.05):
            raise RemoteTimeout(
                f"command did not finish within {timeout:g} s (killed)",
                node=node,
                argv=args,
                stdout=out,
                stderr=err,
            )
        r = ExecResult(node=node, argv=args, exit_code=code, stdout=out, stderr=err)
        return raise_for_exit(r) if check else r

    def spawn(
        self,
        node: str,
        argv: Sequence[str],
        *,
        log: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> int:
        args = check_argv(node, argv)
        pid, start = spawn_via_shell_started(
            self, node, args, log=log, env=env, cwd=cwd, nohup=True
        )
        with self._lock:
            self._spawned.setdefault(node, []).append((pid, start))
        return pid

    def upload(self, node: str, local: str | os.PathLike[str], remote: str) -> None:
        self._known(node)
        if not Path(local).is_file():
            raise RemoteError(f"upload: local file {local} does not exist", node=node)
        parent = posixpath.dirname(remote) or "/"
        self.exec(node, ["mkdir", "-p", parent], timeout=30)
        target = f"/tmp/.jepsy-upload-{uuid.uuid4().hex}" if self.sudo else remote

        def put(c: paramiko.SSHClient) -> None:
            with c.open_sftp() as sftp:
                chan = sftp.get_channel()
                if chan is not None:
                    chan.settimeout(60)
                sftp.put(str(local), target)
                sftp.chmod(target, Path(local).stat().st_mode & 0o7777)

        try:
            self._with_client(node, put, retry=True)
        except (paramiko.SFTPError, OSError) as e:
            raise RemoteError(f"upload {local} -> {remote} failed: {e}", node=node) from e
        if self.sudo:
            self.exec(node, ["mv", "-f", target, remote], timeout=30)

    def download(self, node: str, remote: str, local: str | os.PathLike[str]) -> None:
        self._known(node)
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        if self.sudo:
            r = self.exec(node, ["cat", remote], timeout=120)
            Path(local).write_bytes(r.stdout)
            return

        def get(c: paramiko.SSHClient) -> None:
            with c.open_sftp() as sftp:
                chan = sftp.get_channel()
                if chan is not None:
                    chan.settimeout(60)
                sftp.get(remote, str(local))

        try:
            self._with_client(node, get, retry=True)
        except (paramiko.SFTPError, OSError) as e:
            with contextlib.suppress(OSError):
                Path(local).unlink()
            raise RemoteError(f"download {remote} -> {local} failed: {e}", node=node) from e

    def __repr__(self) -> str:
        return (
            f"SSHRemote({list(self._nodes)!r}, user={self.user!r}, port={self.port}, "
            f"sudo={self.sudo}, strict_host_key_checking={self.strict})"
        )


def _safe_name(node: str) -> bool:
    """A node name that is one path component (never ``..``), so removing
    ``<base_dir>/<node>`` stays inside base_dir."""
    return node not in ("", ".", "..") and "/" not in node and "\0" not in node


def _communicate(
    ch: paramiko.Channel, data: bytes | None, *, deadline: float
) -> tuple[bytes, bytes, int, bool]:
    """Feed ``data`` to the command, collect stdout/stderr and the exit code.
    Returns (out, err, exit_code, timed_out)."""
    if data is not None:

        def feed() -> None:
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                ch.sendall(data)
                ch.shutdown_write()

        threading.Thread(target=feed, daemon=True).start()
    else:
        ch.shutdown_write()
    out, err = bytearray(), bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            ch.close()
            return bytes(out), bytes(err), -1, True
        # the channel's fileno() wakes on stdout data and close; stderr is polled
        select.select([ch], [], [], min(left, 0.01))
        while ch.recv_ready():
            out += ch.recv(65536)
        while ch.recv_stderr_ready():
            err += ch.recv_stderr(65536)
        if ch.exit_status_ready() and ch.eof_received:
            while ch.recv_ready():
                out += ch.recv(65536)
            while ch.recv_stderr_ready():
                err += ch.recv_stderr(65536)
            if ch.closed or not (ch.recv_ready() or ch.recv_stderr_ready()):
                break
    code = ch.recv_exit_status()
    ch.close()
    return bytes(out), bytes(err), code, False
