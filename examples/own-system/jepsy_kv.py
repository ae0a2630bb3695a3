"""jepsy's DB and client for kvserver (examples/own-system/kvserver.py).

This file is the worked example of testing your own system: about a hundred
lines tell jepsy how to install and start the server on each node (a
:class:`~jepsy.db.DB`), how to kill and pause it (so the kill and pause
nemeses can be used), and how a client speaks its protocol, mapping every
error to ``fail`` (certainly did not happen) or ``info`` (unknown).

Importing it registers the suite ``own-kv`` (``register`` workload), so
``jepsy test --db own-kv`` works once the module is imported, e.g. from a
workload file or your own script; see README.md here for the walk-through.

By example::

    db = KVDB(bugs=("read-from-backups",))
    client = KVClient()
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jepsy.control import cleanup_exec
from jepsy.dbs import Suite, register_suite
from jepsy.dbs._daemon import Daemon, DaemonFaults, PrototypeClient, wait_ready
from jepsy.errors import ConfigError

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import Op

SERVER = Path(__file__).resolve().parent / "kvserver.py"
PORT = 7300
BUGS = ("read-from-backups", "ack-before-replicate")


@dataclass(frozen=True, kw_only=True)
class KVDB(DaemonFaults):
    """Runs kvserver on every node; the first node is the primary.

    ``bugs``: kvserver bug flags to switch on.  ``flush_interval``: how long
    the ack-before-replicate bug keeps acknowledged updates only in memory."""

    bugs: tuple[str, ...] = ()
    port: int = PORT
    python: str = "python3"
    flush_interval: float = 0.5

    def __post_init__(self) -> None:
        for b in self.bugs:
            if b not in BUGS:
                raise ConfigError(f"unknown kvserver bug {b!r}; known: {', '.join(BUGS)}")

    def _daemon(self, test: Test, node: str) -> Daemon:
        r = test.remote
        d = f"{r.node_dir(node)}/kv"
        nodes = ",".join(f"{n}={r.address(n)}:{self.port}" for n in test.nodes)
        argv = [self.python, f"{d}/kvserver.py", "--node", node, "--nodes", nodes]
        argv += ["--dir", f"{d}/data", "--flush-interval", str(self.flush_interval)]
        for b in self.bugs:
            argv += ["--bug", b]
        return Daemon(node=node, name="kvserver", argv=argv, directory=d)

    def setup(self, test: Test, node: str) -> None:
        d = self._daemon(test, node)
        d.stop(test.remote)
        test.remote.exec(node, ["rm", "-rf", f"{d.directory}/data"], timeout=20)
        test.remote.exec(node, ["mkdir", "-p", d.directory], timeout=20)
        test.remote.upload(node, SERVER, f"{d.directory}/kvserver.py")
        self.start(test, node)

    def teardown(self, test: Test, node: str) -> None:
        d = self._daemon(test, node)
        d.stop(test.remote)
        cleanup_exec(test.remote, node, ["rm", "-rf", f"{d.directory}/data"])

    # Killable: a SIGKILL'd kvserver restarts from its log file.
    def start(self, test: Test, node: str) -> None:
        d = self._daemon(test, node)
        d.start(test.remote)
        addr = (test.remote.address(node), self.port)
        wait_ready(
            lambda: _call(addr, {"op": "hello"}, 0.5) is not None,
            timeout=15,
            what=f"kvserver on {node}",
            daemon=d,
            remote=test.remote,
        )

    # kill / pause / resume by pid come from DaemonFaults.

    def primaries(self, test: Test) -> Sequence[str]:
        return [test.nodes[0]]

    def log_files(self, test: Test, node: str) -> Sequence[str]:
        d = self._daemon(test, node)
        return [d.logfile, f"{d.directory}/data/kv.log"]


def _call(addr: tuple[str, int], req: Mapping[str, Any], timeout: float) -> Any:
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            s.sendall((json.dumps(req) + "\n").encode())
            with s.makefile("r") as reader:
                line = reader.readline()
            return json.loads(line) if line else None
    except (OSError, ValueError):
        return None


class NotSent(Exception):
    """Connecting failed: the request never left the client."""


@dataclass(frozen=True, kw_only=True)
class KVClient(PrototypeClient):
    """A register client for kvserver: ``read [k, None] -> [k, v]``,
    ``write [k, v]``, ``cas [k, [old, new]]``.

    Error table: connection refused / connect timeout -> ``fail``; an answer
    with ``definite: true`` (cas mismatch, primary unreachable from a backup)
    -> ``fail``; a timeout or lost connection after sending, or
    ``definite: false`` -> ``info``; any error on a read -> ``fail``."""

    timeout: float = 3.0
    node: str | None = None
    address: tuple[str, int] | None = None

    def open(self, test: Test, node: str) -> _OpenKVClient:
        port = test.db.port if isinstance(test.db, KVDB) else PORT
        return _OpenKVClient((test.remote.address(node), port), self.timeout)


class _OpenKVClient:
    def __init__(self, address: tuple[str, int], timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.reader: Any = None

    def open(self, test: Test, node: str) -> _OpenKVClient:
        return KVClient(timeout=self.timeout).open(test, node)

    def setup(self, test: Test) -> None:
        pass

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        self._drop()

    def _drop(self) -> None:
        # The reader first: a socket with a makefile() open keeps its file
        # descriptor until that file is closed too.
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _request(self, req: Mapping[str, Any]) -> dict[str, Any]:
        if self.sock is None:
            try:
                self.sock = socket.create_connection(self.address, timeout=self.timeout)
            except OSError as e:
                raise NotSent(str(e)) from e
            self.reader = self.sock.makefile("r", encoding="utf-8")
        try:
            self.sock.sendall((json.dumps(req) + "\n").encode())
            line = self.reader.readline()
            if not line:
                raise ConnectionResetError("connection closed by server")
            answer: dict[str, Any] = json.loads(line)
            return answer
        except (OSError, ValueError):
            self._drop()
            raise

    def invoke(self, test: Test, op: Op) -> Op:
        k, v = op.value
        if op.f == "read":
            req: dict[str, Any] = {"op": "read", "key": str(k)}
        elif op.f == "write":
            req = {"op": "write", "key": str(k), "value": v}
        elif op.f == "cas":
            req = {"op": "cas", "key": str(k), "old": v[0], "new": v[1]}
        else:
            raise ConfigError(f"kvserver client: unknown op {op.f!r}")
        try:
            answer = self._request(req)
        except NotSent as e:
            time.sleep(0.1)  # a down node refuses at once: don't spin
            return op.replace(type="fail", error=f"not-sent: {e}")
        except (OSError, ValueError) as e:
            kind = "fail" if op.f == "read" else "info"
            return op.replace(type=kind, error=f"{type(e).__name__}: {e}")
        if answer.get("ok"):
            if op.f == "read":
                return op.replace(type="ok", value=[k, answer.get("value")])
            return op.replace(type="ok")
        definite = answer.get("definite") or op.f == "read"
        if str(answer.get("error", "")).startswith("primary unreachable"):
            time.sleep(0.1)  # the primary is down: don't spin
        return op.replace(type="fail" if definite else "info", error=answer.get("error"))


def _bugs(opts: Mapping[str, Any]) -> tuple[str, ...]:
    raw = opts.get("kv_bug") or ()
    if isinstance(raw, str):
        raw = [raw]
    return tuple(b.strip() for item in raw for b in str(item).split(",") if b.strip())


SUITE = register_suite(
    Suite(
        name="own-kv",
        doc="The own-system example: kvserver, a primary-backup key-value server "
        "(examples/own-system). Killable, pausable; plant bugs with -o kv_bug=NAME.",
        workloads=frozenset({"register"}),
        make_db=lambda opts: KVDB(bugs=_bugs(opts)),
        make_client=lambda workload, opts: KVClient(),
        options={"kv_bug": "kvserver bug flags: " + ", ".join(BUGS)},
    )
)
