"""The same etcd register run with partitions on the Docker remote and on the
SSH remote (sshd inside namespace hosts): the suites are remote-agnostic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import need_binary
from tests.e2e._jd import counts, nemesis_fs, run_spec
from tests.remotes import assert_clean, cluster

NODES = ["n1", "n2", "n3"]
SUBNETS = {"docker": "10.93.60.0/24", "ssh": "10.93.61.0/24"}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["docker", "ssh"])
def test_etcd_register_with_partitions_on_other_remotes(kind: str, tmp_path: Path) -> None:
    if kind == "ssh":
        need_binary("etcd")
    spec = {
        "db": "etcd",
        "workload": "register",
        "nodes": NODES,
        "concurrency": 6,
        "time_limit": 15,
        "nemesis": ["partition"],
        "nemesis_interval": 3,
        "nemesis_targets": ["one", "primaries"],
        "seed": 8,
        "etcd_timeout": 2,
    }
    name = f"jdr{kind[0]}"
    with cluster(kind, name=name, subnet=SUBNETS[kind], nodes=NODES) as remote:
        result, history = run_spec(spec, remote, tmp_path)
    assert_clean(kind, name)
    assert "start-partition" in nemesis_fs(history)
    assert counts(history).get("ok", 0) >= 300, counts(history)
    assert result.valid is True, result.results
    logs = list((result.run_dir.path / "nodes").glob("*/etcd.log"))
    assert len(logs) == len(NODES), logs
