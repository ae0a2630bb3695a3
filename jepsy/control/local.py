"""Nodes as Linux network namespaces on this machine (the embedded default).

Each node is a network namespace ``<cluster>-<node>`` with one veth
(``eth0``) on a bridge ``<cluster>br``; the control node has the first
address of the subnet on the bridge (``10.88.0.1`` by default) and node *i*
has address ``.(10+i)``.  Clients on the control node reach a node through
:meth:`LocalRemote.address` (the test's node map); nothing is written to
``/etc/hosts``.

Namespaces isolate the network only: every node shares this machine's
filesystem and PID space.  So each node gets a private directory
(:meth:`LocalRemote.node_dir`, under ``/var/lib/jepsy/<cluster>/``), daemons
are tracked by the pid :meth:`LocalRemote.spawn` returns, and
upload/download are plain file copies.

What ``setup`` created is recorded in a state file
(``/run/jepsy/local/<cluster>.json``), so that

- ``jepsy cluster up`` can make a cluster that outlives one test; a later
  ``LocalRemote`` with the same cluster name and nodes adopts it (and its
  ``teardown`` then only kills the processes in the namespaces);
- ``jepsy cluster down`` (:func:`destroy`) removes the leftovers of a run
  that was killed before it could clean up.

Cleanup never trusts process names: it kills exactly the processes that
live in the cluster's namespaces (``ip netns pids``) and the daemons it
spawned, and never by a bare pid that may have been reused: each process is
held by a pidfd (opened at spawn, or before its namespace is re-checked in a
scan) and signalled through it.  Never pid 1, this process or its group,
and never the machine's own network namespace, whatever a name in
``/run/netns`` points at.

Needs root (namespaces, bridges, iptables).  One iptables rule is added on
the host (``FORWARD -i BR -o BR -j ACCEPT``): with ``br_netfilter`` loaded
and Docker's ``FORWARD DROP`` policy, bridged traffic between namespaces is
dropped without it.

By example::

    with LocalRemote(["n1", "n2", "n3"], cluster="demo", subnet="10.88.5.0/24") as r:
        r.address("n2")                                # "10.88.5.12"
        r.exec("n1", ["ip", "-4", "-br", "addr"]).out  # shows eth0 10.88.5.11/24
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jepsy.control import ExecResult, SetupTeardown, check_argv, raise_for_exit
from jepsy.errors import ConfigError, RemoteError, RemoteTimeout, SetupError

log = logging.getLogger(__name__)

DEFAULT_CLUSTER = "jepsy"
DEFAULT_SUBNET = "10.88.0.0/24"
STATE_DIR = Path("/run/jepsy/local")
BASE_DIR = Path("/var/lib/jepsy")
NO_ROOT = (
    "the local remote needs root (network namespaces, iptables): "
    "run with sudo, or use --remote docker"
)
_CLUSTER_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_IFNAMSIZ = 15


def _run(argv: Sequence[str], *, timeout: float = 20.0, check: bool = True) -> ExecResult:
    """Run a host command (ip, iptables) for setup/teardown."""
    try:
        p = subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise RemoteTimeout(
            f"host command timed out after {timeout:g} s", node="control", argv=argv
        ) from e
    except FileNotFoundError as e:
        raise SetupError(
            f"the local remote needs the {argv[0]!r} binary: install iproute2 and iptables"
        ) from e
    r = ExecResult(
        node="control", argv=tuple(argv), exit_code=p.returncode, stdout=p.stdout, stderr=p.stderr
    )
    return raise_for_exit(r) if check else r


def _batch(argv: Sequence[str], lines: Sequence[str], *, timeout: float = 20.0) -> None:
    """Run ``ip ... -batch -`` with ``lines`` (names are validated, never user text)."""
    try:
        p = subprocess.run(
            list(argv),
            input="\n".join(lines).encode() + b"\n",
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise RemoteTimeout(
            f"host command timed out after {timeout:g} s", node="control", argv=argv
        ) from e
    except FileNotFoundError as e:
        raise SetupError("the local remote needs the 'ip' binary: install iproute2") from e
    raise_for_exit(
        ExecResult(
            node="control",
            argv=(*argv, *lines),
            exit_code=p.returncode,
            stdout=p.stdout,
            stderr=p.stderr,
        )
    )


def _namespaces() -> set[str]:
    r = _run(["ip", "netns", "list"], check=False)
    return {line.split()[0] for line in r.out.splitlines() if line.strip()}


def _links() -> set[str]:
    r = _run(["ip", "-o", "link", "show"], check=False)
    names = set()
    for line in r.out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.add(parts[1].strip().split("@")[0])
    return names


def _ns_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of a namespace file, or None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _namespace_ids(namespaces: Sequence[str]) -> set[tuple[int, int]]:
    """The ids of the named network namespaces (``/run/netns/<ns>``).

    Never this machine's own namespace (ours or pid 1's), even if a name
    points at it (``ip netns attach NAME 1``): killing "the processes in that
    namespace" would kill everything on the machine, dockerd included.  A
    name whose file is not a mounted namespace (a stale file in /run/netns) has
    no id."""
    own = _ns_id("/proc/self/ns/net")
    host = {x for x in (own, _ns_id("/proc/1/ns/net")) if x is not None}
    want = set()
    for ns in namespaces:
        nid = _ns_id(f"/run/netns/{ns}")
        if nid is None or (own is not None and nid[0] != own[0]):
            continue  # gone, or not a namespace (not on nsfs)
        if nid in host:
            log.error(
                "namespace %s is this machine's own network namespace: "
                "refusing to kill the processes in it",
                ns,
            )
            continue
        want.add(nid)
    return want


def _in_namespaces(pid: int, want: set[tuple[int, int]]) -> bool:
    """Whether host pid ``pid`` lives in one of the namespaces ``want``
    (False when its namespace cannot be read: gone, a zombie, no access)."""
    nid = _ns_id(f"/proc/{pid}/ns/net")
    return nid is not None and nid in want


def _pids_in(namespaces: Sequence[str]) -> list[int]:
    """Host pids of the processes living in the named network namespaces
    (what ``ip netns pids`` reports, for all of them in one /proc scan)."""
    want = _namespace_ids(namespaces)
    if not want:
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and _in_namespaces(int(entry.name), want):
            pids.append(int(entry.name))
    return pids


_GONE = -1  # _pidfd(): the process no longer exists


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (it names that very process, whatever later reuses
    the pid), ``_GONE`` if there is no such process, None where pidfds are
    not supported (then plain pids are used)."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return _GONE
    except (AttributeError, OSError):
        return None


def _targets_in(pids: Sequence[int], want: set[tuple[int, int]]) -> dict[int, int | None]:
    """pid -> pidfd for the ``pids`` that may be killed: each lives in one of
    the namespaces ``want``, checked *after* its pidfd was opened (so a pid
    reused between the scan and now is checked as the new process, and a
    process that died since only gets signals that go nowhere), and is neither
    pid 1, nor this process, nor in this process's group."""
    me, group = os.getpid(), os.getpgrp()
    out: dict[int, int | None] = {}
    for pid in dict.fromkeys(pids):
        if pid <= 1 or pid == me:
            continue
        fd = _pidfd(pid)
        if fd == _GONE:
            continue
        try:
            ok = _in_namespaces(pid, want) and os.getpgid(pid) != group
        except OSError:
            ok = False
        if ok:
            out[pid] = fd
        elif fd is not None:
            os.close(fd)
    return out


def _exited(pid: int, fd: int | None) -> bool:
    if fd is None:
        return _dead(pid)
    # A pidfd polls readable once its process has exited (zombies included).
    return bool(select.select([fd], [], [], 0)[0])


def _kill_targets(targets: Mapping[int, int | None], *, timeout: float = 5.0) -> list[int]:
    """SIGKILL the ``targets`` (pid -> pidfd, see :func:`_targets_in`; SIGCONT
    too, harmless) and wait until they are gone or zombies.  Closes the
    pidfds.  Returns the pids still alive after ``timeout``."""
    try:
        for pid, fd in targets.items():
            for sig in (signal.SIGKILL, signal.SIGCONT):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if fd is not None:
                        signal.pidfd_send_signal(fd, sig)
                    else:
                        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        left = [p for p, fd in targets.items() if not _exited(p, fd)]
        while left and time.monotonic() < deadline:
            time.sleep(0.01)
            left = [p for p in left if not _exited(p, targets[p])]
        return left
    finally:
        for fd in targets.values():
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _proc_state(pid: int) -> str:
    """State letter of a host pid, ``""`` if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text("ascii", "replace")
    except OSError:
        return ""
    rest = text[text.rfind(")") + 1 :].split()
    return rest[0] if rest else ""


def _proc_start(pid: int) -> int | None:
    """Start time (clock ticks after boot) of a host pid: tells a reused pid apart."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text("ascii", "replace")
    except OSError:
        return None
    rest = text[text.rfind(")") + 1 :].split()
    return int(rest[19]) if len(rest) > 19 else None


def _live_creator(state: Mapping[str, Any]) -> int | None:
    """The pid of the other, still running process that made this state, or None."""
    pid = state.get("creator_pid")
    if not isinstance(pid, int) or pid == os.getpid() or _dead(pid):
        return None
    start = state.get("creator_start")
    if start is not None and _proc_start(pid) != start:
        return None  # the pid was reused by another process
    return pid


def _dead(pid: int) -> bool:
    return _proc_state(pid) in ("", "Z", "X")


def _forward_rule(bridge: str) -> list[str]:
    return ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]


def _state_path(cluster: str, state_dir: Path) -> Path:
    return state_dir / f"{cluster}.json"


def validate_cluster_name(cluster: str) -> str:
    """A cluster name: lower-case letters and digits, starting with a letter,
    at most 10 characters (interface names derived from it must fit in 15)."""
    if not _CLUSTER_RE.match(cluster):
        raise ConfigError(
            f"bad cluster name {cluster!r}: use 1-10 lower-case letters or digits, "
            "starting with a letter (interface names derived from it must fit in 15 chars)"
        )
    return cluster


class LocalRemote(SetupTeardown):
    """Nodes as network namespaces on a bridge on this machine.  See the module doc.

    - ``nodes``: node names (``n1`` .. ``n5`` by default).
    - ``cluster``: names the namespaces (``<cluster>-<node>``), the bridge
      (``<cluster>br``), host-side veths (``<cluster>v<i>``) and the state file.
    - ``subnet``: an IPv4 network; ``.1`` is the control node, nodes ``.11`` on.
      Default: the subnet of the running cluster of that name (``jepsy
      cluster up``), else ``10.88.0.0/24``.
    - ``base_dir``: per-node directories live in ``<base_dir>/<node>``
      (default ``/var/lib/jepsy/<cluster>``).
    - ``keep_files``: leave ``base_dir`` in place at teardown.
    - ``persistent``: mark the cluster as made to outlive runs (``jepsy
      cluster up``): a later remote with other nodes refuses to replace it
      instead of removing it.
    """

    kind = "local"

    def __init__(
        self,
        nodes: Sequence[str] = ("n1", "n2", "n3", "n4", "n5"),
        *,
        cluster: str = DEFAULT_CLUSTER,
        subnet: str | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        keep_files: bool = False,
        persistent: bool = False,
        state_dir: str | os.PathLike[str] = STATE_DIR,
    ) -> None:
        self.cluster = validate_cluster_name(cluster)
        self.persistent = persistent
        if subnet is None:
            with contextlib.suppress(OSError):
                subnet = (load_state(cluster, state_dir=state_dir) or {}).get("subnet")
            subnet = subnet or DEFAULT_SUBNET
        self._nodes = tuple(nodes)
        if not self._nodes:
            raise ConfigError("a local cluster needs at least one node, got none")
        if len(set(self._nodes)) != len(self._nodes):
            raise ConfigError(f"duplicate node names in {list(self._nodes)!r}")
        for n in self._nodes:
            if not _NODE_RE.match(n):
                raise ConfigError(
                    f"bad node name {n!r}: use letters, digits, '-', '_' or '.', at most 32 chars"
                )
        try:
            self.subnet = ipaddress.IPv4Network(subnet, strict=False)
        except ValueError as e:
            raise ConfigError(f"bad subnet {subnet!r}: {e}; use e.g. 10.88.0.0/24") from e
        if self.subnet.num_addresses < len(self._nodes) + 12:
            raise ConfigError(
                f"subnet {subnet} has room for {max(0, self.subnet.num_addresses - 12)} "
                f"nodes, {len(self._nodes)} asked for; use a /24"
            )
        if len(self._nodes) > 99:
            raise ConfigError(f"at most 99 local nodes, got {len(self._nodes)}")
        self.bridge = f"{cluster}br"
        self.base_dir = Path(base_dir) if base_dir is not None else BASE_DIR / cluster
        self.keep_files = keep_files
        self.state_dir = Path(state_dir)
        self.control_address = str(self.subnet.network_address + 1)
        self._addr = {n: str(self.subnet.network_address + 11 + i) for i, n in enumerate(nodes)}
        self._ns = {n: f"{cluster}-{n}" for n in self._nodes}
        self._veth = {n: f"{cluster}v{i + 1}" for i, n in enumerate(self._nodes)}
        for name in (self.bridge, *self._veth.values()):
            if len(name) > _IFNAMSIZ:  # pragma: no cover - guaranteed by the name checks
                raise ConfigError(f"interface name {name!r} is longer than 15 characters")
        self._lock = threading.Lock()
        self._spawned: dict[int, subprocess.Popen[bytes]] = {}
        self._spawned_node: dict[int, str] = {}
        self._pidfds: dict[int, int | None] = {}  # spawned and not yet reaped
        self._adopted = False
        self._up = False

    # ------------------------------------------------------------------ lifecycle

    def _state(self) -> dict[str, Any]:
        return {
            "kind": "local",
            "cluster": self.cluster,
            "nodes": {n: self._addr[n] for n in self._nodes},
            "subnet": str(self.subnet),
            "bridge": self.bridge,
            "namespaces": [self._ns[n] for n in self._nodes],
            "veths": [self._veth[n] for n in self._nodes],
            "base_dir": str(self.base_dir),
            "forward_rule": True,
            "persistent": self.persistent,
            "created": time.time(),
            "creator_pid": os.getpid(),
            "creator_start": _proc_start(os.getpid()),
        }

    @property
    def state_file(self) -> Path:
        return _state_path(self.cluster, self.state_dir)

    def setup(self) -> None:
        """Create the bridge, the namespaces and the node directories.

        If a cluster of the same name and nodes is already up (``jepsy cluster
        up``), adopt it.  Leftovers of a killed run with this name are removed
        first."""
        if self._up:
            return
        if os.geteuid() != 0:
            raise SetupError(NO_ROOT)
        t0 = time.monotonic()
        existing = load_state(self.cluster, state_dir=self.state_dir)
        owner = _live_creator(existing) if existing and not existing.get("persistent") else None
        if owner is not None and self._alive(existing or {}):
            raise SetupError(
                f"local cluster {self.cluster!r} is in use by another jepsy run (pid {owner}); "
                f"wait for it, choose another --cluster, or remove it: jepsy cluster down "
                f"--cluster {self.cluster}"
            )
        if existing is not None and self._matches(existing):
            # A `jepsy cluster up` cluster stays up after this run; a leftover
            # of a run with --leave-db-running is reused and then removed.
            self._adopted = bool(existing.get("persistent")) or self.persistent
            self._up = True
            for n in self._nodes:
                Path(self.node_dir(n)).mkdir(parents=True, exist_ok=True)
            log.info("adopted running local cluster %s (%d nodes)", self.cluster, len(self._nodes))
            return
        if existing and existing.get("persistent") and self._alive(existing):
            raise SetupError(
                f"local cluster {self.cluster!r} is up (jepsy cluster up) with nodes "
                f"{existing.get('nodes')} in {existing.get('subnet')}; use those nodes and "
                f"subnet, another --cluster name, or remove it: jepsy cluster down "
                f"--cluster {self.cluster}"
            )
        if existing is not None:
            log.warning(
                "local cluster %s exists with other nodes/subnet; removing it first", self.cluster
            )
        destroy(self.cluster, state_dir=self.state_dir)
        self._check_subnet_free()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Write the state first: a run killed half-way through setup still
        # leaves enough behind for `jepsy cluster down`.
        self.state_file.write_text(json.dumps(self._state(), indent=2))
        try:
            self._create()
        except BaseException:
            destroy(self.cluster, state_dir=self.state_dir)
            raise
        self._up = True
        log.info(
            "local cluster %s up: %d nodes in %.2f s",
            self.cluster,
            len(self._nodes),
            time.monotonic() - t0,
        )

    def _matches(self, state: Mapping[str, Any]) -> bool:
        if state.get("nodes") != {n: self._addr[n] for n in self._nodes}:
            return False
        have = _namespaces()
        return all(self._ns[n] in have for n in self._nodes) and self.bridge in _links()

    def _alive(self, state: Mapping[str, Any]) -> bool:
        have = _namespaces()
        return any(ns in have for ns in state.get("namespaces", []))

    def _check_subnet_free(self) -> None:
        r = _run(["ip", "-j", "-4", "addr", "show"], check=False)
        try:
            ifaces = json.loads(r.out or "[]")
        except ValueError:
            return
        for iface in ifaces:
            for a in iface.get("addr_info", []):
                try:
                    net = ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
                except (KeyError, ValueError):
                    continue
                if net.overlaps(self.subnet):
                    raise SetupError(
                        f"subnet {self.subnet} for local cluster {self.cluster!r} overlaps "
                        f"{net} on interface {iface.get('ifname')!r}; choose another "
                        "subnet (--subnet) or remove that interface"
                    )

    def _create(self) -> None:
        # One `ip -batch` for the host side and one per namespace: 1 + N
        # processes instead of 3 + 6N (5 nodes up in about 0.1 s).
        br = self.bridge
        prefix = self.subnet.prefixlen
        host = [
            f"link add {br} type bridge",
            f"addr add {self.control_address}/{prefix} dev {br}",
            f"link set {br} up",
        ]
        for n in self._nodes:
            ns, veth = self._ns[n], self._veth[n]
            host += [
                f"netns add {ns}",
                f"link add {veth} type veth peer name eth0 netns {ns}",
                f"link set {veth} master {br} up",
            ]
        _batch(["ip", "-batch", "-"], host)
        _run(["iptables", "-w", "5", "-I", *_forward_rule(br)])
        for n in self._nodes:
            _batch(
                ["ip", "-n", self._ns[n], "-batch", "-"],
                [
                    f"addr add {self._addr[n]}/{prefix} dev eth0",
                    "link set eth0 up",
                    "link set lo up",
                ],
            )
            Path(self.node_dir(n)).mkdir(parents=True, exist_ok=True)

    def teardown(self) -> None:
        """Kill every process in the namespaces and remove them, the bridge,
        the FORWARD rule, the node directories and the state file.

        A cluster made by ``jepsy cluster up`` stays up: only the processes
        in its namespaces are killed and its iptables rules flushed."""
        with self._lock:
            spawned = dict(self._spawned)
            self._spawned.clear()
            self._spawned_node.clear()
            # Our own children, by pidfd: one that died (and was reaped) since
            # has no pidfd left here, so its pid - maybe reused by now by
            # anything on the machine - is never signalled.
            # (None: no pidfds on this kernel; then the plain pid, while unreaped)
            targets = {
                pid: fd
                for pid, fd in self._pidfds.items()
                if fd is not None or spawned[pid].returncode is None
            }
            self._pidfds.clear()
        if self._adopted:
            want = _namespace_ids([self._ns[n] for n in self._nodes])
            scanned = _targets_in(_pids_in([self._ns[n] for n in self._nodes]), want)
            for pid, fd in scanned.items():
                if pid not in targets:
                    targets[pid] = fd
                elif fd is not None:
                    os.close(fd)
            left = _kill_targets(targets)
            for n in self._nodes:
                _run(["ip", "netns", "exec", self._ns[n], "iptables", "-F"], check=False)
            if left:
                log.warning("processes still alive after SIGKILL: %s", left)
        else:
            _kill_targets(targets)
            destroy(self.cluster, state_dir=self.state_dir, keep_files=self.keep_files)
        for p in spawned.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=1)
        self._up = False
        self._adopted = False

    # ------------------------------------------------------------------ Remote

    def nodes(self) -> Sequence[str]:
        return self._nodes

    def address(self, node: str) -> str:
        return self._addr[self._known(node)]

    def node_dir(self, node: str) -> str:
        return str(self.base_dir / self._known(node))

    def namespace(self, node: str) -> str:
        """The network namespace that is ``node``."""
        return self._ns[self._known(node)]

    def _known(self, node: str) -> str:
        if node not in self._ns:
            raise ConfigError(
                f"unknown node {node!r} in local cluster {self.cluster!r}; "
                f"nodes are {', '.join(self._nodes)}"
            )
        return node

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
        ns = self.namespace(node)
        full_env = {**os.environ, **env} if env else None
        try:
            p = subprocess.Popen(
                ["ip", "netns", "exec", ns, *args],
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                start_new_session=True,
            )
        except OSError as e:  # pragma: no cover - ip is checked at setup
            raise RemoteError(f"could not start command: {e}", node=node, argv=args) from e
        try:
            out, err = p.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            # (the group of our own child, not reaped yet: its id is not reused)
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
            try:
                out, err = p.communicate(timeout=2)
            except subprocess.TimeoutExpired:
                # A grandchild in another session holds the pipes open; give up on them.
                for f in (p.stdout, p.stderr):
                    if f is not None:
                        f.close()
                p.wait(timeout=2)
                out, err = b"", b""
            raise RemoteTimeout(
                f"command did not finish within {timeout:g} s (killed)",
                node=node,
                argv=args,
                stdout=out,
                stderr=err,
            ) from None
        except BaseException:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise
        r = ExecResult(node=node, argv=args, exit_code=p.returncode, stdout=out, stderr=err)
        if r.exit_code == 1 and err.startswith(b"Cannot open network namespace"):
            raise RemoteError(
                f"namespace {ns!r} is gone; is the cluster up? (jepsy cluster status)",
                node=node,
                argv=args,
                exit_code=r.exit_code,
                stderr=err,
            )
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
        ns = self.namespace(node)
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **env} if env else None
        try:
            with open(log, "ab") as f:
                # `ip netns exec` execs argv in place, so p.pid is the daemon's pid.
                p = subprocess.Popen(
                    ["ip", "netns", "exec", ns, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd,
                    start_new_session=True,
                )
        except OSError as e:
            raise RemoteError(f"could not start daemon: {e}", node=node, argv=args) from e
        # Not reaped yet, so the pid is still this child's: the pidfd names it
        # for good, and teardown signals it only through the pidfd.
        fd = _pidfd(p.pid)
        with self._lock:
            self._spawned[p.pid] = p
            self._spawned_node[p.pid] = node
            if fd != _GONE:
                self._pidfds[p.pid] = fd
        # Reap it the moment it dies, so a killed daemon never lingers as a zombie.
        threading.Thread(
            target=self._reap, args=(p,), name=f"reap-{node}-{p.pid}", daemon=True
        ).start()
        return p.pid

    def _reap(self, p: subprocess.Popen[bytes]) -> None:
        p.wait()
        with self._lock:
            fd = self._pidfds.pop(p.pid, None)
        if fd is not None:
            os.close(fd)

    def upload(self, node: str, local: str | os.PathLike[str], remote: str) -> None:
        self._known(node)
        try:
            Path(remote).parent.mkdir(parents=True, exist_ok=True)
            if Path(remote).exists() and os.path.samefile(local, remote):
                return  # the filesystem is shared: already in place
            shutil.copyfile(local, remote)
            shutil.copymode(local, remote)
        except OSError as e:
            raise RemoteError(f"upload {local} -> {remote} failed: {e}", node=node) from e

    def download(self, node: str, remote: str, local: str | os.PathLike[str]) -> None:
        self._known(node)
        try:
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            if Path(local).exists() and os.path.samefile(local, remote):
                return
            shutil.copyfile(remote, local)
        except OSError as e:
            raise RemoteError(f"download {remote} -> {local} failed: {e}", node=node) from e

    def spawned(self) -> dict[int, str]:
        """Pids started by :meth:`spawn` (pid -> node), dead or alive."""
        with self._lock:
            return dict(self._spawned_node)

    def __repr__(self) -> str:
        return (
            f"LocalRemote({list(self._nodes)!r}, cluster={self.cluster!r}, "
            f"subnet={str(self.subnet)!r})"
        )


def load_state(
    cluster: str, *, state_dir: str | os.PathLike[str] = STATE_DIR
) -> dict[str, Any] | None:
    """The recorded state of local cluster ``cluster``, or None."""
    path = _state_path(cluster, Path(state_dir))
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("unreadable state file %s (%s); treating the cluster as leftovers", path, e)
        return {}
    return data if isinstance(data, dict) else {}


def list_clusters(*, state_dir: str | os.PathLike[str] = STATE_DIR) -> list[str]:
    """Names of local clusters with a state file."""
    d = Path(state_dir)
    return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []


def leftovers(cluster: str) -> dict[str, list[str]]:
    """What of local cluster ``cluster`` exists on this machine right now:
    namespaces, interfaces (bridge, veths) and FORWARD rules.  Empty lists
    mean nothing is left."""
    validate_cluster_name(cluster)
    ns = sorted(n for n in _namespaces() if n.startswith(f"{cluster}-"))
    links = sorted(x for x in _links() if x == f"{cluster}br" or re.fullmatch(rf"{cluster}v\d+", x))
    rules = [
        line
        for line in _run(["iptables", "-w", "5", "-S", "FORWARD"], check=False).out.splitlines()
        if f" {cluster}br " in f"{line} "
    ]
    return {"namespaces": ns, "links": links, "forward_rules": rules}


def destroy(
    cluster: str,
    *,
    state_dir: str | os.PathLike[str] = STATE_DIR,
    keep_files: bool = False,
    timeout: float = 10.0,
) -> dict[str, list[str]]:
    """Remove local cluster ``cluster`` and any leftovers of it, state file or not.

    Kills every process in its namespaces, deletes namespaces, veths, the
    bridge and the FORWARD rule, the node directories (unless ``keep_files``)
    and the state file.  Idempotent; returns what it removed."""
    if os.geteuid() != 0:
        raise SetupError(NO_ROOT)
    validate_cluster_name(cluster)
    state = load_state(cluster, state_dir=state_dir) or {}
    found = leftovers(cluster)
    removed: dict[str, list[str]] = {"processes": [], **{k: [] for k in found}}
    targets = _targets_in(_pids_in(found["namespaces"]), _namespace_ids(found["namespaces"]))
    pids = list(targets)
    left = _kill_targets(targets, timeout=timeout)
    removed["processes"] = [str(p) for p in pids if p not in left]
    if left:
        log.warning("cluster %s: processes %s survived SIGKILL", cluster, left)
    bridge = f"{cluster}br"
    # veths first (their peers go with them), then namespaces, then the
    # bridge, in one `ip -force -batch` (it goes on past a line that fails).
    veths = [x for x in found["links"] if x != bridge]
    lines = [f"link del {x}" for x in veths] + [f"netns del {ns}" for ns in found["namespaces"]]
    if bridge in found["links"]:
        lines.append(f"link del {bridge}")
    if lines:
        with contextlib.suppress(RemoteError):
            _batch(["ip", "-force", "-batch", "-"], lines)
    removed["links"] = [*veths, *([bridge] if bridge in found["links"] else [])]
    removed["namespaces"] = list(found["namespaces"])
    # exactly as many times as the rule is there (it may have been inserted twice)
    for _ in range(min(len(found["forward_rules"]), 20)):
        r = _run(["iptables", "-w", "5", "-D", *_forward_rule(bridge)], check=False)
        if r.exit_code != 0:
            break
        removed["forward_rules"].append(" ".join(_forward_rule(bridge)))
    base = state.get("base_dir")
    if base and not keep_files:
        # Only the node directories this cluster made, then base_dir if empty.
        path = Path(base)
        for node in state.get("nodes", {}):
            if _NODE_RE.match(node):
                shutil.rmtree(path / node, ignore_errors=True)
        with contextlib.suppress(OSError):
            path.rmdir()
    with contextlib.suppress(FileNotFoundError):
        _state_path(cluster, Path(state_dir)).unlink()
    return removed
