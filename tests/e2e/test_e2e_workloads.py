"""The counter, queue and list-append workloads against real databases:
etcd list-append transactions under partitions are strict-serializable;
Redis counter and queue without faults are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from jepsy.control.local import LocalRemote
from tests.conftest import need_binary, need_root
from tests.e2e._jd import counts, run_spec

NODES = ["n1", "n2", "n3"]


@pytest.mark.integration
@pytest.mark.slow
def test_etcd_list_append_under_partitions_is_strict_serializable(tmp_path: Path) -> None:
    need_root()
    need_binary("etcd")
    spec = {
        "db": "etcd",
        "workload": "list-append",
        "nodes": NODES,
        "concurrency": 6,
        "time_limit": 12,
        "nemesis": ["partition"],
        "nemesis_interval": 3,
        "nemesis_targets": ["one", "primaries"],
        "seed": 6,
        "etcd_timeout": 2,
    }
    remote = LocalRemote(NODES, cluster="jdla", subnet="10.93.50.0/24")
    result, history = run_spec(spec, remote, tmp_path)
    c = counts(history)
    assert c.get("ok", 0) >= 300, c
    reads = [m for op in history if op.is_ok for m in op.value if m[0] == "r" and m[2]]
    assert reads, "no transaction read a non-empty list"
    assert result.valid is True, result.results


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("workload", ["counter", "queue"])
def test_redis_counter_and_queue_without_faults_are_valid(workload: str, tmp_path: Path) -> None:
    need_root()
    need_binary("redis-server")
    need_binary("redis-sentinel")
    spec = {
        "db": "redis",
        "workload": workload,
        "nodes": NODES,
        "concurrency": 6,
        "time_limit": 6,
        "seed": 7,
    }
    n = {"counter": 51, "queue": 52}[workload]
    remote = LocalRemote(NODES, cluster=f"jdw{n}", subnet=f"10.93.{n}.0/24")
    result, history = run_spec(spec, remote, tmp_path)
    assert counts(history).get("ok", 0) >= 200, counts(history)
    final = [op for op in history if op.is_ok and op.f in ("drain", "read")]
    assert final, "no final read/drain"
    assert result.valid is True, result.results
