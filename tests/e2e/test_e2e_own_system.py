"""The own-system example (examples/own-system) end to end on namespace hosts:
valid without bug flags, invalid with each bug flag."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from jepsy.control.local import LocalRemote
from tests.conftest import ROOT, need_binary, need_root
from tests.e2e._jd import counts, nemesis_fs, run_spec

NODES = ["n1", "n2", "n3"]


def load_example() -> ModuleType:
    """Import examples/own-system/jepsy_kv.py (registers the ``own-kv`` suite)."""
    if "jepsy_kv" in sys.modules:
        return sys.modules["jepsy_kv"]
    path = ROOT / "examples" / "own-system" / "jepsy_kv.py"
    spec = importlib.util.spec_from_file_location("jepsy_kv", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["jepsy_kv"] = mod
    spec.loader.exec_module(mod)
    return mod


CASES: dict[str, dict[str, Any]] = {
    # no bugs: partitions and kills of any node (the primary included) are survived
    "none": {"nemesis": ["partition", "kill"], "nemesis_targets": ["one", "primaries"]},
    # backups answer reads from their own, possibly stale, state
    "read-from-backups": {"nemesis": ["partition"], "nemesis_targets": ["one"]},
    # the primary acknowledges before logging: killing it loses acknowledged writes
    # (one thread per long-lived key, so reads after the restart meet the writes
    # it lost, and few in-flight writes are left indeterminate by the kill)
    "ack-before-replicate": {
        "nemesis": ["kill"],
        "nemesis_targets": ["primaries"],
        "threads_per_key": 1,
        "ops_per_key": 1000,
    },
}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("bug", list(CASES))
def test_own_system_verdicts(bug: str, tmp_path: Path) -> None:
    need_root()
    need_binary("iptables")
    load_example()
    spec = {
        "db": "own-kv",
        "workload": "register",
        "nodes": NODES,
        "concurrency": 9,
        "time_limit": 15,
        "nemesis_interval": 2,
        "op_timeout": 8,
        "seed": 3,
        **CASES[bug],
    }
    if bug != "none":
        spec["kv_bug"] = bug
    subnet = {"none": 20, "read-from-backups": 21, "ack-before-replicate": 22}[bug]
    remote = LocalRemote(NODES, cluster=f"jdk{subnet}", subnet=f"10.93.{subnet}.0/24")
    result, history = run_spec(spec, remote, tmp_path)
    assert counts(history).get("ok", 0) >= 300, counts(history)
    assert nemesis_fs(history) & {"start-partition", "kill"}
    if bug == "none":
        assert result.valid is True, result.results
    else:
        assert result.valid is False, result.results
