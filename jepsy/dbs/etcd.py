"""etcd 3.4: a DB that runs a real etcd cluster, and a client over its v3 API.

Why the JSON gateway: etcd 3.4 serves its v3 API as JSON over plain HTTP
(``/v3/kv/range``, ``/v3/kv/put``, ``/v3/kv/txn``), so the client needs only
the standard library - no gRPC stack whose versions must match the server.
Keys and values travel base64-encoded, int64s come back as strings, and
fields with default values are omitted (a failed txn has no ``succeeded``).

Errors map to Jepsen's op types (see docs/databases.md for the full table):

- connection refused before anything was sent, a rejected compare, HTTP
  400 (bad request), "no leader" / "too many requests": ``fail`` - the
  operation certainly did not happen;
- a client timeout, a lost connection after sending, HTTP 503 "request
  timed out" (no quorum; etcd gives up after 7 s) or any other error on a
  write: ``info`` - it may still take effect;
- any error on a read: ``fail`` (a read has no effect, so leaving it out of
  the history is always safe).

By example::

    from jepsy.dbs.etcd import EtcdDB, EtcdClient
    test = noop_test(nodes=("n1", "n2", "n3"), remote=remote, db=EtcdDB(), client=EtcdClient())
    client = test.client.open(test, "n1")
    client.invoke(test, Op(process=0, type="invoke", f="write", value=["k1", 3]))  # ok
    client.invoke(test, Op(process=0, type="invoke", f="read", value=["k1", None]))  # ok ["k1", 3]
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.control import cleanup_exec
from jepsy.dbs import Suite, register_suite
from jepsy.dbs._daemon import Daemon, DaemonFaults, PrototypeClient, ensure_packages, wait_ready
from jepsy.errors import ClientError, ConfigError

if TYPE_CHECKING:
    from jepsy.control import Remote
    from jepsy.core import Test
    from jepsy.history import Op

log = logging.getLogger(__name__)

CLIENT_PORT = 2379
PEER_PORT = 2380
KEY_PREFIX = "jepsy/"
WORKLOADS = frozenset({"register", "set", "counter", "list-append"})


# --------------------------------------------------------------------------
# wire helpers


def b64(s: str | bytes) -> str:
    """base64 of ``s`` (UTF-8 for str), as the gateway wants keys and values."""
    raw = s.encode() if isinstance(s, str) else s
    return base64.b64encode(raw).decode("ascii")


def unb64(s: str) -> str:
    return base64.b64decode(s).decode("utf-8", "replace")


def prefix_end(prefix: str) -> str:
    """The ``range_end`` that selects every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return b64(bytes(raw))
        raw.pop()
    return b64(b"\0")


def _encode(v: Any) -> str:
    return b64(json.dumps(v, separators=(",", ":")))


def _decode(s: str | None) -> Any:
    if s is None:
        return None
    text = unb64(s)
    try:
        return json.loads(text)
    except ValueError:
        return text


class EtcdError(Exception):
    """An error answer from etcd: HTTP ``status``, gRPC ``code``, ``message``."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"HTTP {status} code {code}: {message}")


class Refused(Exception):
    """The connection could not be made: nothing was sent."""


class Indeterminate(Exception):
    """The request was (perhaps) sent but no answer came back."""


class Conn:
    """One HTTP/1.1 connection to one etcd member's JSON gateway.

    ``post`` returns the decoded JSON answer or raises :class:`Refused`
    (nothing sent), :class:`Indeterminate` (sent, no answer) or
    :class:`EtcdError` (an error answer)."""

    def __init__(self, host: str, port: int = CLIENT_PORT, *, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, path: str, body: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        t = self.timeout if timeout is None else timeout
        if self._conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=t)
            try:
                conn.connect()
            except OSError as e:  # refused, unreachable, connect timeout: nothing sent
                conn.close()
                raise Refused(f"connect to {self.host}:{self.port}: {e}") from e
            self._conn = conn
        conn = self._conn
        if conn.sock is not None:
            conn.sock.settimeout(t)
        data = json.dumps(body).encode()
        try:
            conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise Indeterminate(f"{type(e).__name__}: {e}") from e
        if resp.status != 200:
            try:
                err = json.loads(raw)
                code = err.get("code")
                msg = str(err.get("message") or err.get("error") or raw[:200])
            except ValueError:
                code, msg = None, raw[:200].decode("utf-8", "replace")
            raise EtcdError(resp.status, code, msg)
        try:
            return json.loads(raw)
        except ValueError as e:
            self.close()
            raise Indeterminate(f"unparseable answer {raw[:200]!r}") from e


# --------------------------------------------------------------------------
# error classification

# Messages etcd gives when it rejected a request before proposing it to raft.
_DEFINITE_MESSAGES = (
    "etcdserver: no leader",
    "etcdserver: too many requests",
    "etcdserver: not capable",
    "etcdserver: request is too large",
    "etcdserver: key is not provided",
    "etcdserver: permission denied",
)


def is_definite(e: BaseException) -> bool:
    """True when ``e`` proves the request had no effect (see the module doc)."""
    if isinstance(e, Refused):
        return True
    if isinstance(e, EtcdError):
        if e.status == 400:
            return True
        return any(e.message.startswith(m) for m in _DEFINITE_MESSAGES)
    return False


def error_name(e: BaseException) -> str:
    """A short, stable error label for the history."""
    if isinstance(e, Refused):
        return "connection-refused"
    if isinstance(e, Indeterminate):
        text = str(e).lower()
        return "timeout" if "timed out" in text or "timeout" in text else "connection-lost"
    if isinstance(e, EtcdError):
        return e.message.removeprefix("etcdserver: ").replace(" ", "-")
    return type(e).__name__


# --------------------------------------------------------------------------
# the client


@dataclass(frozen=True, kw_only=True)
class EtcdClient(PrototypeClient):
    """A client prototype for etcd (see the module doc for ops and errors).

    Ops (``k`` is any JSON scalar; it becomes the key ``jepsy/<k>``):

    - register: ``read [k, None] -> [k, v]``, ``write [k, v]``,
      ``cas [k, [old, new]]`` (a txn comparing the value; a failed compare
      is ``fail``).
    - set: ``add v``, ``read None -> [v ...]`` (one key per element under
      ``jepsy/set/``).
    - counter: ``add n`` (read-modify-write txn guarded by mod revision;
      ``fail`` when it lost the race), ``read None -> n``.
    - list-append: ``txn [["append", k, v] | ["r", k, None] ...]``: reads
      the keys, then one txn guarded by every key's mod revision that
      writes the appended lists; ``fail`` when a guard failed.

    ``serializable_reads`` makes reads local to the member (fast, possibly
    stale).  ``timeout`` is the per-request client timeout in seconds;
    ``refused_backoff`` the pause after a refused connection before the op
    completes ``fail``."""

    workload: str = "register"
    serializable_reads: bool = False
    timeout: float = 5.0
    refused_backoff: float = 0.1
    port: int = CLIENT_PORT
    host: str | None = None

    def open(self, test: Test, node: str) -> _OpenEtcdClient:
        host = self.host or test.remote.address(node)
        return _OpenEtcdClient(self, node, Conn(host, self.port, timeout=self.timeout))


class _OpenEtcdClient:
    def __init__(self, proto: EtcdClient, node: str, conn: Conn) -> None:
        self.proto = proto
        self.node = node
        self.conn = conn

    def __repr__(self) -> str:
        return f"EtcdClient(node={self.node!r}, serializable_reads={self.proto.serializable_reads})"

    def open(self, test: Test, node: str) -> _OpenEtcdClient:
        return self.proto.open(test, node)

    def setup(self, test: Test) -> None:
        pass

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        self.conn.close()

    # -- ops

    def invoke(self, test: Test, op: Op) -> Op:
        read_only = op.f == "read"
        try:
            return self._invoke(op)
        except ClientError as e:
            if e.definite:
                return op.replace(type="fail", error=str(e))
            return op.replace(type="info", error=str(e))
        except (Refused, Indeterminate, EtcdError) as e:
            if isinstance(e, Refused):
                # A down member refuses at once; pausing briefly keeps workers from
                # filling the history with tens of thousands of refusals.
                time.sleep(self.proto.refused_backoff)
            if read_only or is_definite(e):
                return op.replace(type="fail", error=error_name(e))
            return op.replace(type="info", error=error_name(e))

    def _range(self, key: str, *, serializable: bool | None = None) -> dict[str, Any] | None:
        body: dict[str, Any] = {"key": b64(key)}
        if self.proto.serializable_reads if serializable is None else serializable:
            body["serializable"] = True
        r = self.conn.post("/v3/kv/range", body)
        kvs = r.get("kvs") or []
        return kvs[0] if kvs else None

    def _invoke(self, op: Op) -> Op:
        w = self.proto.workload
        if w == "register":
            return self._register(op)
        if w == "set":
            return self._set(op)
        if w == "counter":
            return self._counter(op)
        if w == "list-append":
            return self._txn(op)
        raise ConfigError(
            f"etcd client: unsupported workload {w!r}; use one of {sorted(WORKLOADS)}"
        )

    def _register(self, op: Op) -> Op:
        if not _is_pair(op.value):
            raise ConfigError(f"etcd client: register ops want [k, v]; got {op.value!r}")
        k, v = op.value[0], op.value[1]
        key = KEY_PREFIX + str(k)
        if op.f == "read":
            kv = self._range(key)
            return op.replace(type="ok", value=[k, _decode(kv.get("value")) if kv else None])
        if op.f == "write":
            self.conn.post("/v3/kv/put", {"key": b64(key), "value": _encode(v)})
            return op.replace(type="ok")
        if op.f != "cas" or not _is_pair(v):
            raise ConfigError(
                f"etcd client: register op must be read, write or cas [k, [old, new]]; got {op.f} {op.value!r}"
            )
        old, new = v
        r = self.conn.post(
            "/v3/kv/txn",
            {
                "compare": [
                    {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": _encode(old)}
                ],
                "success": [{"request_put": {"key": b64(key), "value": _encode(new)}}],
            },
        )
        if r.get("succeeded"):
            return op.replace(type="ok")
        return op.replace(type="fail", error="cas-mismatch")

    def _set(self, op: Op) -> Op:
        prefix = KEY_PREFIX + "set/"
        if op.f == "add":
            self.conn.post("/v3/kv/put", {"key": b64(prefix + json.dumps(op.value)), "value": ""})
            return op.replace(type="ok")
        if op.f == "read":
            body: dict[str, Any] = {
                "key": b64(prefix),
                "range_end": prefix_end(prefix),
                "keys_only": True,
            }
            if self.proto.serializable_reads:
                body["serializable"] = True
            r = self.conn.post("/v3/kv/range", body)
            vals = [json.loads(unb64(kv["key"])[len(prefix) :]) for kv in r.get("kvs") or []]
            return op.replace(type="ok", value=sorted(vals, key=_sort_key))
        raise ConfigError(f"etcd client: set op must be add or read; got {op.f!r}")

    def _counter(self, op: Op) -> Op:
        key = KEY_PREFIX + "counter"
        if op.f == "read":
            kv = self._range(key)
            return op.replace(type="ok", value=int(_decode(kv.get("value")) or 0) if kv else 0)
        if op.f != "add":
            raise ConfigError(f"etcd client: counter op must be add or read; got {op.f!r}")
        kv = self._range(key, serializable=False)
        cur = int(_decode(kv.get("value")) or 0) if kv else 0
        rev = kv.get("mod_revision", "0") if kv else "0"
        r = self.conn.post(
            "/v3/kv/txn",
            {
                "compare": [
                    {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": rev}
                ],
                "success": [
                    {"request_put": {"key": b64(key), "value": _encode(cur + int(op.value))}}
                ],
            },
        )
        if r.get("succeeded"):
            return op.replace(type="ok")
        return op.replace(type="fail", error="conflict")

    def _txn(self, op: Op) -> Op:
        mops = op.value
        if not isinstance(mops, list | tuple) or not all(
            isinstance(m, list | tuple) and len(m) == 3 for m in mops
        ):
            raise ConfigError(f"etcd client: txn wants [[f, k, v] ...]; got {mops!r}")
        keys = sorted({str(m[1]) for m in mops}, key=str)
        # One linearizable txn of ranges gives a consistent snapshot of every key.
        snap = self.conn.post(
            "/v3/kv/txn",
            {"success": [{"request_range": {"key": b64(KEY_PREFIX + "la/" + k)}} for k in keys]},
        )
        state: dict[str, list[Any]] = {}
        revs: dict[str, str] = {}
        for k, resp in zip(keys, snap.get("responses") or [{}] * len(keys), strict=False):
            kvs = (resp.get("response_range") or {}).get("kvs") or []
            if kvs:
                state[k] = list(_decode(kvs[0].get("value")) or [])
                revs[k] = kvs[0].get("mod_revision", "0")
            else:
                state[k] = []
                revs[k] = "0"
        out: list[list[Any]] = []
        written: set[str] = set()
        for f, k, v in mops:
            ks = str(k)
            if f in ("r", "read"):
                out.append([f, k, list(state[ks])])
            elif f == "append":
                state[ks].append(v)
                written.add(ks)
                out.append([f, k, v])
            else:
                raise ConfigError(f"etcd client: txn micro-op must be r or append; got {f!r}")
        if not written:
            return op.replace(type="ok", value=out)
        r = self.conn.post(
            "/v3/kv/txn",
            {
                "compare": [
                    {
                        "key": b64(KEY_PREFIX + "la/" + k),
                        "target": "MOD",
                        "result": "EQUAL",
                        "mod_revision": revs[k],
                    }
                    for k in keys
                ],
                "success": [
                    {
                        "request_put": {
                            "key": b64(KEY_PREFIX + "la/" + k),
                            "value": _encode(state[k]),
                        }
                    }
                    for k in sorted(written)
                ],
            },
        )
        if r.get("succeeded"):
            return op.replace(type="ok", value=out)
        return op.replace(type="fail", error="conflict")


def _is_pair(v: Any) -> bool:
    return isinstance(v, list | tuple) and len(v) == 2


def _sort_key(v: Any) -> tuple[str, str]:
    return (type(v).__name__, json.dumps(v))


# --------------------------------------------------------------------------
# the DB


@dataclass(frozen=True, kw_only=True)
class EtcdDB(DaemonFaults):
    """Runs one etcd member per node (Debian's ``etcd-server`` 3.4).

    Installs the package when the binary is missing, starts each member in
    the foreground with a pidfile under ``<node_dir>/etcd``, and returns from
    ``setup`` once the member serves a linearizable read (which needs the
    whole cluster's quorum, so nodes are set up concurrently).  Killable,
    pausable, reports its leader as the primary, and leaves its log for
    collection.  Clock faults are not supported: Go reads the wall clock
    through the vDSO, which an LD_PRELOAD shim cannot shift.
    """

    client_port: int = CLIENT_PORT
    peer_port: int = PEER_PORT
    heartbeat_ms: int = 100
    election_ms: int = 1000
    pre_vote: bool = False
    ready_timeout: float = 30.0
    install: bool = True
    binary: str = "etcd"

    def clock_skew_support(self) -> None:
        """None: Go reads the wall clock through the vDSO, which no LD_PRELOAD shim shifts; never change the real clock here."""
        return None

    def __repr__(self) -> str:
        return (
            f"EtcdDB(client_port={self.client_port}, peer_port={self.peer_port}, "
            f"election_ms={self.election_ms})"
        )

    # -- layout

    def _dir(self, remote: Remote, node: str) -> str:
        return f"{remote.node_dir(node)}/etcd"

    def _data_dir(self, remote: Remote, node: str) -> str:
        return f"{self._dir(remote, node)}/data"

    def _daemon(self, test: Test, node: str) -> Daemon:
        r = test.remote
        nodes = list(test.nodes)
        if node not in nodes:
            raise ConfigError(f"etcd: node {node!r} is not one of the test's nodes {nodes}")
        addr = r.address(node)
        cluster = ",".join(f"{n}=http://{r.address(n)}:{self.peer_port}" for n in nodes)
        data = self._data_dir(r, node)
        argv = [
            self.binary,
            "--name",
            node,
            "--data-dir",
            data,
            "--listen-peer-urls",
            f"http://{addr}:{self.peer_port}",
            "--initial-advertise-peer-urls",
            f"http://{addr}:{self.peer_port}",
            "--listen-client-urls",
            f"http://{addr}:{self.client_port}",
            "--advertise-client-urls",
            f"http://{addr}:{self.client_port}",
            "--initial-cluster",
            cluster,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            f"jepsy-{test.name}",
            "--heartbeat-interval",
            str(self.heartbeat_ms),
            "--election-timeout",
            str(self.election_ms),
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
        ]
        if self.pre_vote:
            argv.append("--pre-vote")
        return Daemon(node=node, name="etcd", argv=argv, directory=self._dir(r, node))

    # -- DB

    def setup(self, test: Test, node: str) -> None:
        r = test.remote
        if self.install:
            ensure_packages(r, node, binaries=[self.binary], packages=["etcd-server"])
        d = self._daemon(test, node)
        d.stop(r)
        r.exec(node, ["rm", "-rf", self._data_dir(r, node)], timeout=30)
        d.start(r)
        self._wait_serving(test, node, d)

    def teardown(self, test: Test, node: str) -> None:
        r = test.remote
        d = self._daemon(test, node)
        d.stop(r)
        cleanup_exec(r, node, ["rm", "-rf", self._data_dir(r, node)])

    def _wait_serving(self, test: Test, node: str, d: Daemon) -> float:
        conn = Conn(test.remote.address(node), self.client_port, timeout=1.0)

        def probe() -> bool:
            try:
                conn.post("/v3/kv/range", {"key": b64(KEY_PREFIX + "ready")})
                return True
            except (Refused, Indeterminate, EtcdError):
                conn.close()
                return False

        try:
            return wait_ready(
                probe,
                timeout=self.ready_timeout,
                what=f"etcd on {node} to serve a linearizable read",
                daemon=d,
                remote=test.remote,
            )
        finally:
            conn.close()

    # -- Killable / Pausable

    # -- HasPrimaries / HasLogFiles

    def primaries(self, test: Test) -> Sequence[str]:
        out = []
        for node in test.nodes:
            conn = Conn(test.remote.address(node), self.client_port, timeout=0.5)
            try:
                st = conn.post("/v3/maintenance/status", {})
            except (Refused, Indeterminate, EtcdError):
                continue
            finally:
                conn.close()
            leader = st.get("leader")
            if leader is not None and leader == (st.get("header") or {}).get("member_id"):
                out.append(node)
        return out

    def log_files(self, test: Test, node: str) -> Sequence[str]:
        return [f"{self._dir(test.remote, node)}/etcd.log"]


# --------------------------------------------------------------------------
# the suite


def opt_bool(opts: Mapping[str, Any], name: str, default: bool = False) -> bool:
    """Read a boolean option given as a bool or a string (``-o name=true``)."""
    v = opts.get(name, default)
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return bool(v)
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on", ""):
        return True
    if s in ("0", "false", "no", "off", "none"):
        return False
    raise ConfigError(f"option {name} must be true or false; got {v!r}")


def opt_float(opts: Mapping[str, Any], name: str, default: float) -> float:
    v = opts.get(name, default)
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"option {name} must be a number; got {v!r}") from None


def make_db(opts: Mapping[str, Any]) -> EtcdDB:
    return EtcdDB(pre_vote=opt_bool(opts, "pre_vote"))


def make_client(workload: str, opts: Mapping[str, Any]) -> EtcdClient:
    if workload not in WORKLOADS:
        raise ConfigError(
            f"the etcd db supports workloads {', '.join(sorted(WORKLOADS))}; got {workload!r}"
        )
    return EtcdClient(
        workload=workload,
        serializable_reads=opt_bool(opts, "serializable_reads"),
        timeout=opt_float(opts, "etcd_timeout", 5.0),
    )


SUITE = register_suite(
    Suite(
        name="etcd",
        doc=(
            "etcd 3.4 (Debian etcd-server), one member per node, driven through its v3 JSON "
            "gateway. Killable, pausable, reports its leader; no clock faults (Go reads the "
            "clock via the vDSO)."
        ),
        workloads=WORKLOADS,
        make_db=make_db,
        make_client=make_client,
        options={
            "serializable_reads": "serve reads from the local member without quorum "
            "(fast, may be stale: expect linearizability violations under partitions)",
            "etcd_timeout": "client request timeout in seconds (default 5)",
            "pre_vote": "start members with --pre-vote (default false)",
        },
    )
)


__all__ = ["SUITE", "Conn", "EtcdClient", "EtcdDB", "EtcdError", "is_definite"]
