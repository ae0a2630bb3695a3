"""Redis + Sentinel end to end: the set workload under a partition of the
primary loses acknowledged writes, and the set checker reports them."""

from __future__ import annotations

from pathlib import Path

import pytest

from jepsy.control.local import LocalRemote
from tests.conftest import need_binary, need_root
from tests.e2e._jd import counts, nemesis_fs, run_spec

NODES = ["n1", "n2", "n3"]


@pytest.mark.integration
@pytest.mark.slow
def test_redis_sentinel_partitioned_primary_loses_acknowledged_adds(tmp_path: Path) -> None:
    need_root()
    need_binary("redis-server")
    need_binary("redis-sentinel")
    need_binary("iptables")
    spec = {
        "db": "redis",
        "workload": "set",
        "nodes": NODES,
        "concurrency": 6,
        "time_limit": 20,
        "rate": 100,
        "nemesis": ["partition"],
        "nemesis_interval": 7,
        "nemesis_targets": ["primaries"],
        "op_timeout": 5,
        "seed": 4,
    }
    remote = LocalRemote(NODES, cluster="jdrs", subnet="10.93.30.0/24")
    result, history = run_spec(spec, remote, tmp_path)
    assert "start-partition" in nemesis_fs(history)
    assert counts(history).get("ok", 0) >= 500, counts(history)
    assert result.valid is False, result.results
    assert result.results is not None
    s = result.results.children["set"]
    assert s.valid is False
    assert s.details["lost_count"] > 0, s.details
