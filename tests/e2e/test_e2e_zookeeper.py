"""ZooKeeper end to end: the register workload under partitions is linearizable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jepsy.control.local import LocalRemote
from jepsy.dbs.zookeeper import JAR
from tests.conftest import need, need_binary, need_root
from tests.e2e._jd import counts, nemesis_fs, run_spec

NODES = ["n1", "n2", "n3"]


@pytest.mark.integration
@pytest.mark.slow
def test_zookeeper_register_under_partitions_is_valid(tmp_path: Path) -> None:
    need_root()
    need_binary("java")
    need_binary("iptables")
    need(os.path.exists(JAR), f"needs {JAR} (apt-get install zookeeper)")
    spec = {
        "db": "zookeeper",
        "workload": "register",
        "nodes": NODES,
        "concurrency": 9,
        "time_limit": 20,
        "nemesis": ["partition"],
        "nemesis_interval": 3,
        "nemesis_targets": ["one", "primaries"],
        "op_timeout": 10,
        "seed": 5,
    }
    remote = LocalRemote(NODES, cluster="jdzr", subnet="10.93.40.0/24")
    result, history = run_spec(spec, remote, tmp_path)
    assert "start-partition" in nemesis_fs(history)
    assert counts(history).get("ok", 0) >= 500, counts(history)
    assert result.valid is True, result.results
