"""A small real DB for the nemesis tests: one redis-server per node.

Spawned through the remote with its pid recorded, so it runs the same on
namespaces, containers and SSH hosts; implements DB + Killable + Pausable
and declares clock support through the shim (it is dynamically linked).
:func:`ping` and :func:`redis_time` talk to it from the control node."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence

from jepsy.control import Remote, pid_alive, signal_pid
from jepsy.core import Test
from jepsy.nemeses.clock import ClockSupport, clock_env

PORT = 6399


def ping(address: str, *, port: int = PORT, timeout: float = 0.5) -> str:
    """``"PONG"``, ``"refused"`` (nothing listens), ``"timeout"`` (no answer)
    or another error name."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"PING\r\n")
            data = s.recv(64)
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return type(e).__name__
    return data.decode(errors="replace").strip().lstrip("+")


def redis_time(address: str, *, port: int = PORT, timeout: float = 2.0) -> float:
    """The server's clock (Redis ``TIME``), in epoch seconds."""
    with socket.create_connection((address, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"*1\r\n$4\r\nTIME\r\n")
        buf = b""
        deadline = time.monotonic() + timeout
        while buf.count(b"\r\n") < 5 and time.monotonic() < deadline:
            chunk = s.recv(256)
            if not chunk:
                break
            buf += chunk
    parts = buf.split(b"\r\n")
    return int(parts[2]) + int(parts[4]) / 1e6


class RedisNodesDB:
    """redis-server on every node (port 6399), optionally under the clock shim;
    ``primary_nodes`` is what it reports as primaries (no replication here)."""

    def __init__(self, remote: Remote, *, clock: bool = False) -> None:
        self.remote = remote
        self.clock = clock
        self.pids: dict[str, int] = {}
        self.all_pids: list[tuple[str, int]] = []
        self.primary_nodes: list[str] = ["n2"]
        self._lock = threading.Lock()

    def primaries(self, test: Test) -> Sequence[str]:
        return list(self.primary_nodes)

    def clock_skew_support(self) -> ClockSupport | None:
        return "shim"

    def setup(self, test: Test, node: str) -> None:
        self.start(test, node)

    def start(self, test: Test, node: str) -> None:
        with self._lock:
            pid = self.pids.get(node)
        if pid is not None and pid_alive(self.remote, node, pid):
            return
        d = self.remote.node_dir(node)
        self.remote.exec(node, ["mkdir", "-p", d])
        env = clock_env(self.remote, node) if self.clock else None
        argv = [
            "redis-server",
            "--port",
            str(PORT),
            "--bind",
            self.remote.address(node),
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            d,
        ]
        pid = self.remote.spawn(node, argv, log=f"{d}/redis.log", env=env)
        with self._lock:
            self.pids[node] = pid
            self.all_pids.append((node, pid))
        deadline = time.monotonic() + 15
        addr = self.remote.address(node)
        while ping(addr, timeout=0.3) != "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis on {node} did not answer within 15 s")
            time.sleep(0.02)

    def kill(self, test: Test, node: str) -> None:
        pid = self.pids.get(node)
        if pid is None:
            return
        signal_pid(self.remote, node, pid, "CONT")
        signal_pid(self.remote, node, pid, "KILL")
        deadline = time.monotonic() + 10
        while pid_alive(self.remote, node, pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis pid {pid} on {node} survived SIGKILL")
            time.sleep(0.02)

    def pause(self, test: Test, node: str) -> None:
        signal_pid(self.remote, node, self.pids[node], "STOP")

    def resume(self, test: Test, node: str) -> None:
        pid = self.pids.get(node)
        if pid is not None:
            signal_pid(self.remote, node, pid, "CONT")

    def teardown(self, test: Test, node: str) -> None:
        with contextlib.suppress(Exception):
            self.kill(test, node)
        with self._lock:
            self.pids.pop(node, None)
        d = self.remote.node_dir(node)
        self.remote.exec(node, ["rm", "-f", f"{d}/redis.log", f"{d}/dump.rdb"], check=False)

    def leftover_pids(self, nodes: Sequence[str]) -> list[tuple[str, int]]:
        """Every pid this DB ever started that is still alive."""
        return [(n, p) for n, p in self.all_pids if n in nodes and pid_alive(self.remote, n, p)]

    def __repr__(self) -> str:
        return "RedisNodesDB()"
