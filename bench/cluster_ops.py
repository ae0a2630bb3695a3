"""Cluster operations per remote: up, down, one exec, one partition, one heal.

For each remote (local namespaces, docker containers, SSH hosts = sshd in
namespaces) and ``--rounds`` rounds (3 by default), brings ``--nodes`` nodes
(5) up and down and, while up, times ``--execs`` single ``true`` execs and
``--partitions`` partition/heal pairs of all nodes (``jepsy.net.partition``
with the ``halves`` grudge, then ``jepsy.net.heal``).  Prints one line per
remote with medians:

    remote=local nodes=5 up_s=0.21 down_s=0.18 exec_ms=12.9 partition_ms=48.0 heal_ms=35.1

For ``ssh``, ``up_s``/``down_s`` time only what the SSH remote does
(connecting to 5 already running sshd hosts, and closing); the namespaces and
sshd behind them are set up outside the timing.  Targets: 5 namespace hosts
up in under 1 s; partition and heal of 5 namespace nodes in under 0.5 s.
Needs root (and dockerd plus the node image for ``docker``).  Run::

    sudo python bench/cluster_ops.py
    sudo python bench/cluster_ops.py --remotes local --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUBNETS = {"local": "10.91.70.0/24", "docker": "10.91.71.0/24", "ssh": "10.91.72.0/24"}


def timed(fn: Callable[..., Any], *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def bench(kind: str, *, nodes: int, rounds: int, execs: int, partitions: int) -> dict[str, float]:
    from jepsy import net
    from jepsy.control.local import LocalRemote

    names = [f"n{i}" for i in range(1, nodes + 1)]
    ups: list[float] = []
    downs: list[float] = []
    ex: list[float] = []
    parts: list[float] = []
    heals: list[float] = []
    for _ in range(rounds):
        backing: LocalRemote | None = None
        tmp: tempfile.TemporaryDirectory[str] | None = None
        if kind == "local":
            remote: Any = LocalRemote(names, cluster="jrbl", subnet=SUBNETS[kind])
        elif kind == "docker":
            from jepsy.control.docker import DockerRemote

            remote = DockerRemote(names, cluster="jrbd", subnet=SUBNETS[kind])
        else:
            from jepsy.control.ssh import SSHRemote
            from tests.remotes import start_sshd, wait_port

            backing = LocalRemote(names, cluster="jrbs", subnet=SUBNETS[kind])
            backing.setup()
            tmp = tempfile.TemporaryDirectory(prefix="jepsy-bench-")
            opts = start_sshd(backing, Path(tmp.name))
            opts.pop("sshd_pids")
            for n in names:
                wait_port(backing.address(n), 22)
            remote = SSHRemote(names, **opts)
        try:
            ups.append(timed(remote.setup))
            remote.exec(names[0], ["true"])  # warm up
            for i in range(execs):
                ex.append(timed(remote.exec, names[i % nodes], ["true"]))
            grudge = net.halves(names)
            for _ in range(partitions):
                parts.append(timed(net.partition, remote, grudge))
                heals.append(timed(net.heal, remote))
        finally:
            downs.append(timed(remote.teardown))
            if backing is not None:
                backing.teardown()
            if tmp is not None:
                tmp.cleanup()
    med = statistics.median
    return {
        "up_s": med(ups),
        "down_s": med(downs),
        "exec_ms": med(ex) * 1000,
        "partition_ms": med(parts) * 1000,
        "heal_ms": med(heals) * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--remotes", default="local,docker,ssh")
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--execs", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=5)
    a = ap.parse_args()
    for kind in a.remotes.split(","):
        r = bench(kind, nodes=a.nodes, rounds=a.rounds, execs=a.execs, partitions=a.partitions)
        print(
            f"remote={kind} nodes={a.nodes} up_s={r['up_s']:.2f} down_s={r['down_s']:.2f} "
            f"exec_ms={r['exec_ms']:.1f} partition_ms={r['partition_ms']:.1f} "
            f"heal_ms={r['heal_ms']:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
