"""README's quick start, run exactly as written: scripts/quickstart.sh sets
up what is missing and runs the etcd register test with partitions on local
namespace hosts, printing the verdict and the path of the report."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, need_binary, need_root

from jepsy.history import read_history


@pytest.mark.integration
@pytest.mark.slow
def test_quickstart_script_runs_the_main_job(tmp_path: Path) -> None:
    need_root()
    need_binary("etcd")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "sudo bash scripts/quickstart.sh" in readme
    p = subprocess.run(
        ["bash", "scripts/quickstart.sh", "--time-limit", "15", "--store", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert "verdict: valid" in out
    reports = list(tmp_path.glob("etcd-register/2*/report.html"))
    assert len(reports) == 1, out[-2000:]
    assert f"report: {reports[0]}" in out
    run = reports[0].parent
    h = read_history(run / "history.jsonl")
    fs = {op.f for op in h if op.process == "nemesis"}
    assert {"start-partition", "stop-partition"} <= fs, fs
    assert sum(1 for op in h if op.type == "ok") > 100
