"""Redis 7 with replicas and Redis Sentinel: a DB and a client that follows the primary.

Why Sentinel: it is how most Redis deployments get failover, and it is the
classic Jepsen finding - during a partition the isolated old primary keeps
acknowledging writes, the majority's sentinels promote a replica, and after
the heal the old primary resynchronises from the new one and silently
discards everything it acknowledged meanwhile.  The ``set`` workload with a
partition of the primary shows those lost writes within seconds.

Layout per node (all under ``<node_dir>/redis``): ``redis-server`` on port
6379 (the first node starts as primary, the others ``replicaof`` it) and
``redis-sentinel`` on port 26379 monitoring ``mymaster`` with quorum
``n//2 + 1``, ``down-after-milliseconds 2000``.  Configs are written fresh
for every run (Sentinel rewrites its own file).

The client bound to node *n* asks the sentinels where the primary is (the
answer most give wins, *n*'s own breaks ties) and keeps its connection to
that primary until an error, then asks again - as redis-py's Sentinel
client does.  So clients connected to an isolated old primary keep writing
to it.  Set and counter reads (whole-state reads, done after the heal)
always ask afresh.

Errors: connection refused, "READONLY", "no primary known", and other
error replies -> ``fail`` (Redis rejected the command); timeouts and lost
connections -> ``info`` on updates, ``fail`` on reads.

By example::

    db = RedisDB()                               # Killable, Pausable, HasPrimaries
    client = RedisClient(workload="set")         # add v / read -> [v ...]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
import redis.exceptions as rexc
from redis.backoff import NoBackoff
from redis.retry import Retry

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
from jepsy.errors import ConfigError

if TYPE_CHECKING:
    from jepsy.control import Remote
    from jepsy.core import Test
    from jepsy.history import Op

log = logging.getLogger(__name__)

PORT = 6379
SENTINEL_PORT = 26379
MASTER = "mymaster"
WORKLOADS = frozenset({"register", "set", "counter", "queue"})

# CAS as one Lua script: atomic on the server.
_CAS = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
"""


@dataclass(frozen=True, kw_only=True)
class RedisDB(DaemonFaults):
    """A primary (the first node), replicas and one sentinel per node.

    ``down_after_ms`` and ``failover_timeout_ms`` go to Sentinel;
    ``min_replicas_to_write`` > 0 makes the primary refuse writes without
    that many connected replicas (a mitigation; 0 = Redis' default).
    ``env`` is extra environment for redis-server; when the test runs the
    clock nemesis, the skew shim's environment is added
    (:func:`jepsy.nemeses.clock.daemon_env`)."""

    port: int = PORT
    sentinel_port: int = SENTINEL_PORT
    down_after_ms: int = 2000
    failover_timeout_ms: int = 10000
    min_replicas_to_write: int = 0
    ready_timeout: float = 30.0
    install: bool = True
    env: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        return (
            f"RedisDB(down_after_ms={self.down_after_ms}, "
            f"min_replicas_to_write={self.min_replicas_to_write})"
        )

    def _dir(self, remote: Remote, node: str) -> str:
        return f"{remote.node_dir(node)}/redis"

    def clock_skew_support(self) -> str:
        """Redis is dynamically linked and reads the clock through libc: the
        clock nemesis' LD_PRELOAD shim works (see :mod:`jepsy.nemeses.clock`)."""
        return "shim"

    def _env(self, test: Test, node: str) -> dict[str, str]:
        from jepsy.nemeses.clock import daemon_env

        return {**(self.env or {}), **daemon_env(test, node)}

    def _server(self, test: Test, node: str, env: Mapping[str, str] | None = None) -> Daemon:
        d = self._dir(test.remote, node)
        env = dict(env or {})
        return Daemon(
            node=node,
            name="redis",
            argv=["redis-server", f"{d}/redis.conf"],
            directory=d,
            env=env,
        )

    def _sentinel(self, test: Test, node: str) -> Daemon:
        d = self._dir(test.remote, node)
        return Daemon(
            node=node, name="sentinel", argv=["redis-sentinel", f"{d}/sentinel.conf"], directory=d
        )

    def _configs(self, test: Test, node: str) -> tuple[str, str]:
        r = test.remote
        d = self._dir(r, node)
        addr = r.address(node)
        primary = r.address(test.nodes[0])
        server = [
            f"bind {addr}",
            f"port {self.port}",
            "protected-mode no",
            "daemonize no",
            f"dir {d}",
            'save ""',
            "appendonly no",
            "repl-diskless-sync yes",
            "repl-diskless-sync-delay 0",
            f"min-replicas-to-write {self.min_replicas_to_write}",
            "min-replicas-max-lag 5",
        ]
        if node != test.nodes[0]:
            server.append(f"replicaof {primary} {self.port}")
        quorum = len(test.nodes) // 2 + 1
        sentinel = [
            f"bind {addr}",
            f"port {self.sentinel_port}",
            "protected-mode no",
            "daemonize no",
            f"dir {d}",
            f"sentinel monitor {MASTER} {primary} {self.port} {quorum}",
            f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}",
            f"sentinel failover-timeout {MASTER} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {MASTER} 1",
        ]
        return "\n".join(server) + "\n", "\n".join(sentinel) + "\n"

    # -- DB

    def setup(self, test: Test, node: str) -> None:
        r = test.remote
        if self.install:
            ensure_packages(
                r,
                node,
                binaries=["redis-server", "redis-sentinel"],
                packages=["redis-server", "redis-sentinel"],
            )
        self.teardown(test, node)
        d = self._dir(r, node)
        server_conf, sentinel_conf = self._configs(test, node)
        write_file(r, node, f"{d}/redis.conf", server_conf)
        write_file(r, node, f"{d}/sentinel.conf", sentinel_conf)
        srv = self._server(test, node, self._env(test, node))
        srv.start(r)
        addr = r.address(node)
        wait_ready(
            lambda: _ping(addr, self.port),
            timeout=self.ready_timeout,
            what=f"redis on {node}",
            daemon=srv,
            remote=r,
        )
        if node != test.nodes[0]:
            wait_ready(
                lambda: _info(addr, self.port, "replication").get("master_link_status") == "up",
                timeout=self.ready_timeout,
                what=f"redis replica {node} to sync with the primary",
                daemon=srv,
                remote=r,
            )
        sen = self._sentinel(test, node)
        sen.start(r)
        others = len(test.nodes) - 1
        wait_ready(
            lambda: _sentinel_sees(addr, self.sentinel_port, others),
            timeout=self.ready_timeout,
            what=f"sentinel on {node} to see {others} replicas and {others} sentinels",
            daemon=sen,
            remote=r,
        )

    def teardown(self, test: Test, node: str) -> None:
        r = test.remote
        self._sentinel(test, node).stop(r)
        self._server(test, node).stop(r)
        d = self._dir(r, node)
        cleanup_exec(r, node, ["rm", "-f", f"{d}/dump.rdb"])

    # -- Killable / Pausable (DaemonFaults): the redis-server process; the
    # sentinels stay up.  A restart relaunches it under the clock shim's env.

    def _daemon(self, test: Test, node: str) -> Daemon:
        return self._server(test, node)

    def start(self, test: Test, node: str) -> None:
        self._server(test, node, self._env(test, node)).start(test.remote)

    def primaries(self, test: Test) -> Sequence[str]:
        out = []
        for node in test.nodes:
            try:
                if _info(test.remote.address(node), self.port, "replication").get("role") == (
                    "master"
                ):
                    out.append(node)
            except rexc.RedisError:
                continue
        return out

    def log_files(self, test: Test, node: str) -> Sequence[str]:
        d = self._dir(test.remote, node)
        return [f"{d}/redis.log", f"{d}/sentinel.log"]


def _conn(host: str, port: int, timeout: float = 0.5) -> redis.Redis:
    return redis.Redis(
        host=host,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _ping(host: str, port: int) -> bool:
    c = _conn(host, port)
    try:
        return bool(c.ping())
    except rexc.RedisError:
        return False
    finally:
        c.close()


def _info(host: str, port: int, section: str) -> dict[str, Any]:
    c = _conn(host, port)
    try:
        return dict(c.info(section))
    finally:
        c.close()


def _sentinel_sees(host: str, port: int, others: int) -> bool:
    c = _conn(host, port)
    try:
        m: Any = c.sentinel_master(MASTER)
        return (
            int(m.get("num-slaves", 0)) >= others and int(m.get("num-other-sentinels", 0)) >= others
        )
    except rexc.RedisError:
        return False
    finally:
        c.close()


# --------------------------------------------------------------------------
# the client


class _NoPrimary(Exception):
    pass


@dataclass(frozen=True, kw_only=True)
class RedisClient(PrototypeClient):
    """A client prototype for one workload (see :data:`WORKLOADS`).

    Ops: register ``read [k, None] -> [k, v]``, ``write [k, v]``,
    ``cas [k, [old, new]]`` (a Lua script); set ``add v`` (SADD),
    ``read None -> [v ...]`` (SMEMBERS); counter ``add n`` (INCRBY),
    ``read None -> n``; queue ``enqueue v`` (RPUSH), ``dequeue None -> v``
    (LPOP; ``fail`` when empty), ``drain None -> [v ...]`` (everything left)."""

    workload: str = "register"
    timeout: float = 2.0
    port: int = PORT
    sentinel_port: int = SENTINEL_PORT

    def open(self, test: Test, node: str) -> _OpenRedisClient:
        if self.workload not in WORKLOADS:
            raise ConfigError(
                f"the redis db supports workloads {', '.join(sorted(WORKLOADS))}; "
                f"got {self.workload!r}"
            )
        port = getattr(test.db, "port", self.port)
        sport = getattr(test.db, "sentinel_port", self.sentinel_port)
        own = test.remote.address(node)
        sentinels = [own] + [test.remote.address(n) for n in test.nodes if n != node]
        return _OpenRedisClient(self, own, port, sport, sentinels)


class _OpenRedisClient:
    def __init__(
        self, proto: RedisClient, addr: str, port: int, sentinel_port: int, sentinels: list[str]
    ) -> None:
        self.proto = proto
        self.sentinels = sentinels
        self.addr = addr
        self.port = port
        self.sentinel_port = sentinel_port
        self.conn: redis.Redis | None = None
        self.primary: str | None = None

    def __repr__(self) -> str:
        return f"RedisClient(workload={self.proto.workload!r}, via={self.addr})"

    def open(self, test: Test, node: str) -> _OpenRedisClient:
        return self.proto.open(test, node)

    def setup(self, test: Test) -> None:
        pass

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _discover(self) -> tuple[str, int]:
        """Ask every sentinel (this node's first) where the primary is; the
        answer most of them give wins, this node's sentinel breaks ties."""
        votes: dict[tuple[str, int], int] = {}
        errors: list[str] = []
        for addr in self.sentinels:
            s = _conn(addr, self.sentinel_port, min(self.proto.timeout, 0.5))
            try:
                got: Any = s.sentinel_get_master_addr_by_name(MASTER)
            except rexc.RedisError as e:
                errors.append(f"{addr}: {e}")
                continue
            finally:
                s.close()
            if got:
                key = (_text(got[0]), int(got[1]))
                votes[key] = votes.get(key, 0) + 1
        if not votes:
            raise _NoPrimary("no sentinel named a primary: " + "; ".join(errors))
        return max(votes, key=lambda k: votes[k])  # dicts keep order: own sentinel first

    def _primary(self) -> redis.Redis:
        if self.conn is None:
            host, port = self._discover()
            self.primary = f"{host}:{port}"
            self.conn = redis.Redis(
                host=host,
                port=port,
                socket_timeout=self.proto.timeout,
                socket_connect_timeout=self.proto.timeout,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
        return self.conn

    def invoke(self, test: Test, op: Op) -> Op:
        reading = op.f in ("read",)
        if reading and self.proto.workload in ("set", "counter"):
            self._drop()  # whole-state reads go to the primary the sentinels name now
        try:
            out = self._invoke(op)
        except _NoPrimary as e:
            return op.replace(type="fail", error=f"no-primary: {e}")
        except rexc.ConnectionError as e:
            self._drop()
            if reading or _before_send(e):
                return op.replace(type="fail", error=f"connection-refused: {e}")
            return op.replace(type="info", error=f"connection-lost: {e}")
        except rexc.TimeoutError as e:
            self._drop()
            definite = reading or _before_send(e)
            return op.replace(type="fail" if definite else "info", error=f"timeout: {e}")
        except rexc.ResponseError as e:
            # An error reply: Redis rejected the command (READONLY, NOREPLICAS, ...).
            self._drop()
            return op.replace(type="fail", error=str(e).split(" ", 1)[0].lower() or "error")
        return out

    def _invoke(self, op: Op) -> Op:
        c = self._primary()
        got: Any
        w, f, v = self.proto.workload, op.f, op.value
        if w == "register":
            k, x = v
            key = f"jepsy:r:{k}"
            if f == "read":
                got = c.get(key)
                return op.replace(type="ok", value=[k, None if got is None else int(got)])
            if f == "write":
                c.set(key, str(x))
                return op.replace(type="ok")
            if f == "cas":
                ok = c.eval(_CAS, 1, key, str(x[0]), str(x[1]))
                return op.replace(type="ok" if ok else "fail", error=None if ok else "cas-mismatch")
        elif w == "set":
            if f == "add":
                c.sadd("jepsy:set", str(v))
                return op.replace(type="ok")
            if f == "read":
                return op.replace(type="ok", value=sorted(int(x) for x in c.smembers("jepsy:set")))
        elif w == "counter":
            if f == "add":
                c.incrby("jepsy:counter", int(v))
                return op.replace(type="ok")
            if f == "read":
                got = c.get("jepsy:counter")
                return op.replace(type="ok", value=0 if got is None else int(got))
        elif w == "queue":
            if f == "enqueue":
                c.rpush("jepsy:queue", str(v))
                return op.replace(type="ok")
            if f == "dequeue":
                got = c.lpop("jepsy:queue")
                if got is None:
                    return op.replace(type="fail", error="empty")
                return op.replace(type="ok", value=int(got))
            if f == "drain":
                items: list[int] = []
                for _ in range(1_000_000):
                    got = c.lpop("jepsy:queue")
                    if got is None:
                        break
                    items.append(int(got))
                return op.replace(type="ok", value=items)
        raise ConfigError(f"redis client: unsupported op {f!r} for workload {w!r}")


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _before_send(e: BaseException) -> bool:
    """Whether redis-py failed while connecting (so the command was never sent)."""
    text = str(e).lower()
    return "connection refused" in text or "connecting to" in text or "timeout connecting" in text


# --------------------------------------------------------------------------
# the suite


def make_db(opts: Mapping[str, Any]) -> RedisDB:
    try:
        mrw = int(opts.get("min_replicas_to_write", 0))
    except (TypeError, ValueError):
        raise ConfigError(
            f"min_replicas_to_write must be an integer; got {opts.get('min_replicas_to_write')!r}"
        ) from None
    return RedisDB(min_replicas_to_write=mrw)


def make_client(workload: str, opts: Mapping[str, Any]) -> RedisClient:
    if workload not in WORKLOADS:
        raise ConfigError(
            f"the redis db supports workloads {', '.join(sorted(WORKLOADS))}; got {workload!r}"
        )
    return RedisClient(workload=workload)


SUITE = register_suite(
    Suite(
        name="redis",
        doc=(
            "Redis 7: a primary, replicas and one Sentinel per node for failover; clients "
            "follow the primary their node's sentinel names. Killable, pausable, reports its "
            "primaries; loses acknowledged writes when the primary is partitioned away."
        ),
        workloads=WORKLOADS,
        make_db=make_db,
        make_client=make_client,
        options={
            "min_replicas_to_write": "primary refuses writes without this many replicas "
            "(default 0, Redis' default)",
        },
    )
)

__all__ = ["SUITE", "RedisClient", "RedisDB"]
