"""ZooKeeper 3.8: an ensemble of 3 or 5 servers and a kazoo register client.

Why these choices: Debian's ``zookeeper`` package gives the server jar and
its dependencies; jepsy runs ``QuorumPeerMain`` in the foreground with the
JVM it finds (one small heap per node), so the pid it records is the
server's own.  Each node gets its ``myid`` and a ``zoo.cfg`` naming every
member (``server.i=addr:2888:3888``), with a short tick (500 ms) so a
partitioned follower notices within ~2 s.

The client is kazoo (a well-kept pure-Python ZooKeeper client), one session
per client, bound to its node.  Register ops live on znodes ``/jepsy/<k>``:

- ``write [k, v]``: ``set`` (``create`` when the znode is missing);
- ``cas [k, [old, new]]``: ``get`` the value and its version, then ``set``
  with that version - a version mismatch or a different value is ``fail``;
- ``read [k, None] -> [k, v]``: ZooKeeper serves reads from the member the
  client is connected to, which may lag (sequential consistency, not
  linearizability).  So by default a read is confirmed through the
  leader: after ``get`` a transaction ``check``s the znode's version; if the
  check commits, the value read was current at that point of the total
  order (``linearizable_reads=False`` turns this off, to see stale reads).

Errors: not connected (session could not be established), ``NoNode`` /
``BadVersion`` / ``NodeExists`` answers -> ``fail``; connection loss, an
expired session or a timeout after sending -> ``info`` for updates; any
error on a read -> ``fail``.

By example::

    db = ZooKeeperDB()                  # Killable, Pausable, HasPrimaries
    client = ZooKeeperClient()          # register ops
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.control import cleanup_exec
from jepsy.dbs import Suite, register_suite
from jepsy.dbs._daemon import (
    Daemon,
    DaemonFaults,
    PrototypeClient,
    ensure_packages,
    wait_ready,
    write_file,
)
from jepsy.errors import ConfigError, SetupError

if TYPE_CHECKING:
    from jepsy.control import Remote
    from jepsy.core import Test
    from jepsy.history import Op

log = logging.getLogger(__name__)

CLIENT_PORT = 2181
JAR = "/usr/share/java/zookeeper.jar"
CLASSPATH = ":".join(
    [
        "/etc/zookeeper/conf",
        JAR,
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
    ]
)
WORKLOADS = frozenset({"register"})


def four_letter(host: str, port: int, cmd: str, *, timeout: float = 1.0) -> str:
    """Send a ZooKeeper four-letter command (``srvr``, ``ruok`` ...) and return the answer."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cmd.encode())
        chunks = []
        for _ in range(1000):
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("utf-8", "replace")


def mode(host: str, port: int = CLIENT_PORT) -> str | None:
    """``leader``, ``follower``, ``standalone`` or None (not serving / unreachable)."""
    try:
        text = four_letter(host, port, "srvr")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


@dataclass(frozen=True, kw_only=True)
class ZooKeeperDB(DaemonFaults):
    """One ZooKeeper server per node (3 or 5 nodes make a sensible ensemble).

    ``tick_ms``, ``init_limit`` and ``sync_limit`` go to ``zoo.cfg``;
    ``heap_mb`` bounds each JVM."""

    client_port: int = CLIENT_PORT
    tick_ms: int = 500
    init_limit: int = 10
    sync_limit: int = 4
    heap_mb: int = 192
    ready_timeout: float = 60.0
    install: bool = True
    java: str = "java"

    def clock_skew_support(self) -> None:
        """None: the JVM reads the wall clock through the vDSO as well; never change the real clock here."""
        return None

    def __repr__(self) -> str:
        return f"ZooKeeperDB(tick_ms={self.tick_ms}, sync_limit={self.sync_limit})"

    def _dir(self, remote: Remote, node: str) -> str:
        return f"{remote.node_dir(node)}/zookeeper"

    def _daemon(self, test: Test, node: str) -> Daemon:
        d = self._dir(test.remote, node)
        argv = [
            self.java,
            f"-Xmx{self.heap_mb}m",
            "-Xms32m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties",
            "-cp",
            CLASSPATH,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            f"{d}/zoo.cfg",
        ]
        return Daemon(node=node, name="zookeeper", argv=argv, directory=d)

    def config(self, test: Test, node: str) -> str:
        """The ``zoo.cfg`` text for ``node``."""
        r = test.remote
        d = self._dir(r, node)
        lines = [
            f"tickTime={self.tick_ms}",
            f"initLimit={self.init_limit}",
            f"syncLimit={self.sync_limit}",
            f"dataDir={d}/data",
            f"clientPort={self.client_port}",
            f"clientPortAddress={r.address(node)}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,stat,mntr",
            "maxClientCnxns=0",
        ]
        for i, n in enumerate(test.nodes, start=1):
            lines.append(f"server.{i}={r.address(n)}:2888:3888")
        return "\n".join(lines) + "\n"

    def setup(self, test: Test, node: str) -> None:
        r = test.remote
        if node not in test.nodes:
            raise ConfigError(f"zookeeper: node {node!r} is not one of {list(test.nodes)}")
        if self.install:
            have_jar = r.exec(node, ["test", "-f", JAR], check=False, timeout=20).exit_code == 0
            if not have_jar:
                ensure_packages(r, node, binaries=[self.java], packages=["zookeeper"])
            if r.exec(node, ["test", "-f", JAR], check=False, timeout=20).exit_code != 0:
                raise SetupError(f"{node}: {JAR} missing after installing zookeeper")
        self.teardown(test, node)
        d = self._dir(r, node)
        myid = test.nodes.index(node) + 1
        write_file(r, node, f"{d}/zoo.cfg", self.config(test, node))
        write_file(r, node, f"{d}/data/myid", f"{myid}\n")
        self.start(test, node)
        addr = r.address(node)
        wait_ready(
            lambda: mode(addr, self.client_port) in ("leader", "follower", "standalone"),
            timeout=self.ready_timeout,
            what=f"zookeeper on {node} to join a quorum",
            interval=0.2,
            daemon=self._daemon(test, node),
            remote=r,
        )

    def teardown(self, test: Test, node: str) -> None:
        r = test.remote
        self._daemon(test, node).stop(r)
        cleanup_exec(r, node, ["rm", "-rf", f"{self._dir(r, node)}/data"])

    def primaries(self, test: Test) -> Sequence[str]:
        return [n for n in test.nodes if mode(test.remote.address(n), self.client_port) == "leader"]

    def log_files(self, test: Test, node: str) -> Sequence[str]:
        return [self._daemon(test, node).logfile]


# --------------------------------------------------------------------------
# the client


class _NotConnected(Exception):
    pass


@dataclass(frozen=True, kw_only=True)
class ZooKeeperClient(PrototypeClient):
    """A kazoo register client (see the module doc for ops and errors).

    ``timeout``: seconds per request and for establishing the session;
    ``session_timeout``: the ZooKeeper session timeout."""

    timeout: float = 3.0
    session_timeout: float = 10.0
    linearizable_reads: bool = True
    port: int = CLIENT_PORT

    def open(self, test: Test, node: str) -> _OpenZooKeeperClient:
        port = getattr(test.db, "client_port", self.port)
        return _OpenZooKeeperClient(self, f"{test.remote.address(node)}:{port}")


class _OpenZooKeeperClient:
    def __init__(self, proto: ZooKeeperClient, hosts: str) -> None:
        self.proto = proto
        self.hosts = hosts
        self.zk: Any = None

    def __repr__(self) -> str:
        return f"ZooKeeperClient(hosts={self.hosts!r})"

    def open(self, test: Test, node: str) -> _OpenZooKeeperClient:
        return self.proto.open(test, node)

    def setup(self, test: Test) -> None:
        pass

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        self._drop()

    def _drop(self) -> None:
        zk, self.zk = self.zk, None
        if zk is not None:
            with contextlib.suppress(Exception):
                zk.stop()
            with contextlib.suppress(Exception):
                zk.close()

    def _client(self) -> Any:
        if self.zk is None:
            from kazoo.client import KazooClient
            from kazoo.retry import KazooRetry

            zk = KazooClient(
                hosts=self.hosts,
                timeout=self.proto.session_timeout,
                connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
            )
            try:
                zk.start(timeout=self.proto.timeout)
            except Exception as e:
                with contextlib.suppress(Exception):
                    zk.stop()
                    zk.close()
                raise _NotConnected(f"no session with {self.hosts}: {e}") from e
            self.zk = zk
        return self.zk

    def invoke(self, test: Test, op: Op) -> Op:
        from kazoo import exceptions as kex
        from kazoo.handlers.threading import KazooTimeoutError

        reading = op.f == "read"
        try:
            return self._register(op)
        except _NotConnected as e:
            time.sleep(0.1)
            return op.replace(type="fail", error=f"not-connected: {e}")
        except (kex.NoNodeError, kex.BadVersionError, kex.NodeExistsError) as e:
            return op.replace(type="fail", error=type(e).__name__)
        except (kex.ConnectionLoss, kex.SessionExpiredError, kex.ConnectionClosedError) as e:
            self._drop()
            return op.replace(type="fail" if reading else "info", error=type(e).__name__)
        except KazooTimeoutError:
            self._drop()
            return op.replace(type="fail" if reading else "info", error="timeout")
        except kex.KazooException as e:
            self._drop()
            return op.replace(type="fail" if reading else "info", error=type(e).__name__)

    def _register(self, op: Op) -> Op:
        from kazoo import exceptions as kex

        k, v = op.value
        zk = self._client()
        path = f"/jepsy/{k}"
        t = self.proto.timeout
        if op.f == "read":
            for _ in range(3):  # a write may slip between get and check: try again
                try:
                    data, stat = zk.get_async(path).get(timeout=t)
                except kex.NoNodeError:
                    if not self.proto.linearizable_reads:
                        return op.replace(type="ok", value=[k, None])
                    zk.sync_async(path).get(timeout=t)
                    try:
                        data, stat = zk.get_async(path).get(timeout=t)
                    except kex.NoNodeError:
                        return op.replace(type="ok", value=[k, None])
                if not self.proto.linearizable_reads:
                    return op.replace(type="ok", value=[k, _decode(data)])
                tx = zk.transaction()
                tx.check(path, stat.version)
                results = tx.commit_async().get(timeout=t)
                if results and not isinstance(results[0], Exception):
                    return op.replace(type="ok", value=[k, _decode(data)])
            return op.replace(type="fail", error="read-not-confirmed")
        if op.f == "write":
            data = _encode(v)
            try:
                zk.set_async(path, data).get(timeout=t)
            except kex.NoNodeError:
                try:
                    zk.create_async(path, data, makepath=True).get(timeout=t)
                except kex.NodeExistsError:
                    zk.set_async(path, data).get(timeout=t)
            return op.replace(type="ok")
        if op.f == "cas":
            old, new = v
            data, stat = zk.get_async(path).get(timeout=t)
            if _decode(data) != old:
                return op.replace(type="fail", error="cas-mismatch")
            zk.set_async(path, _encode(new), version=stat.version).get(timeout=t)
            return op.replace(type="ok")
        raise ConfigError(f"zookeeper client: unsupported op {op.f!r}")


def _encode(v: Any) -> bytes:
    return json.dumps(v).encode()


def _decode(b: bytes | None) -> Any:
    if not b:
        return None
    try:
        return json.loads(b)
    except ValueError:
        return b.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# the suite


def make_db(opts: Mapping[str, Any]) -> ZooKeeperDB:
    nodes = opts.get("nodes") or ()
    if nodes and len(nodes) not in (1, 3, 5, 7):
        log.warning("zookeeper with %d nodes: an odd ensemble (3 or 5) is usual", len(nodes))
    return ZooKeeperDB()


def make_client(workload: str, opts: Mapping[str, Any]) -> ZooKeeperClient:
    if workload not in WORKLOADS:
        raise ConfigError(
            f"the zookeeper db supports workloads {', '.join(sorted(WORKLOADS))}; got {workload!r}"
        )
    from jepsy.dbs.etcd import opt_bool

    return ZooKeeperClient(linearizable_reads=opt_bool(opts, "zk_linearizable_reads", True))


SUITE = register_suite(
    Suite(
        name="zookeeper",
        doc=(
            "ZooKeeper 3.8 (Debian zookeeper), one server per node, kazoo clients; register "
            "ops with znode versions for CAS and reads confirmed through the leader. "
            "Killable, pausable, reports its leader."
        ),
        workloads=WORKLOADS,
        make_db=make_db,
        make_client=make_client,
        options={
            "zk_linearizable_reads": "confirm each read with a version check through the "
            "leader (default true; false = plain local reads, which may be stale)",
        },
    )
)

__all__ = ["SUITE", "ZooKeeperClient", "ZooKeeperDB", "mode"]
