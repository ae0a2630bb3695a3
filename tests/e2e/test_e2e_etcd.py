"""etcd end to end on namespace hosts: the verdicts that matter.

- register with partitions, kills and pauses: valid (no false alarm), with
  thousands of ops;
- register with ``serializable_reads`` and partitions: a linearizability
  violation (stale reads on the minority side).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jepsy.control.local import LocalRemote
from tests.conftest import need_binary, need_root
from tests.e2e._jd import counts, nemesis_fs, run_spec

NODES = ["n1", "n2", "n3"]


def _need() -> None:
    need_root()
    need_binary("etcd")
    need_binary("iptables")


@pytest.mark.integration
@pytest.mark.slow
def test_etcd_register_partition_kill_pause_is_valid(tmp_path: Path) -> None:
    _need()
    spec = {
        "db": "etcd",
        "workload": "register",
        "nodes": NODES,
        "concurrency": 10,
        "time_limit": 25,
        "nemesis": ["partition", "kill", "pause"],
        "nemesis_interval": 2,
        "nemesis_targets": ["one", "primaries", "majority"],
        "op_timeout": 10,
        "seed": 1,
        "etcd_timeout": 2,
    }
    remote = LocalRemote(NODES, cluster="jdev", subnet="10.93.10.0/24")
    result, history = run_spec(spec, remote, tmp_path)
    c = counts(history)
    assert c.get("ok", 0) >= 1000, c
    assert {"start-partition", "kill", "pause"} <= nemesis_fs(history)
    assert result.valid is True, result.results


@pytest.mark.integration
@pytest.mark.slow
def test_etcd_serializable_reads_under_partitions_are_not_linearizable(tmp_path: Path) -> None:
    _need()
    spec = {
        "db": "etcd",
        "workload": "register",
        "nodes": NODES,
        "concurrency": 10,
        "time_limit": 20,
        "nemesis": ["partition"],
        "nemesis_interval": 3,
        "nemesis_targets": ["one", "primaries"],
        "op_timeout": 10,
        "seed": 2,
        "etcd_timeout": 2,
        "serializable_reads": True,
    }
    remote = LocalRemote(NODES, cluster="jdes", subnet="10.93.11.0/24")
    result, history = run_spec(spec, remote, tmp_path)
    assert "start-partition" in nemesis_fs(history)
    assert result.valid is False, result.results
    assert result.results is not None
    lin = result.results.children["linearizable"]
    assert lin.valid is False
    bad = [k for k, r in lin.details["keys"].items() if r["valid"] is False]
    assert bad, lin.details
