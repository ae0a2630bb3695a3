"""LocalRemote specifics: names, errors, adopting a `cluster up` cluster and
removing the leftovers of a run that was killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jepsy.control.local import LocalRemote, destroy, leftovers, load_state
from jepsy.errors import ConfigError, SetupError
from tests.conftest import need, need_root
from tests.remotes import assert_clean


def test_bad_names_and_subnets_are_refused_up_front() -> None:
    with pytest.raises(ConfigError, match="cluster name"):
        LocalRemote(cluster="much-too-long-name")
    with pytest.raises(ConfigError, match="cluster name"):
        LocalRemote(cluster="Bad")
    with pytest.raises(ConfigError, match="subnet"):
        LocalRemote(subnet="10.0.0.300/24")
    with pytest.raises(ConfigError, match="room for"):
        LocalRemote(subnet="10.91.0.0/29")
    with pytest.raises(ConfigError, match="duplicate"):
        LocalRemote(["n1", "n1"])
    r = LocalRemote(["a", "b"], cluster="jrn", subnet="10.91.20.0/24")
    assert (r.address("a"), r.address("b"), r.control_address) == (
        "10.91.20.11",
        "10.91.20.12",
        "10.91.20.1",
    )
    assert (r.bridge, r.namespace("b")) == ("jrnbr", "jrn-b")
    with pytest.raises(ConfigError, match="unknown node 'c'"):
        r.address("c")


@pytest.mark.integration
def test_without_root_one_clear_message() -> None:
    need_root()
    setpriv = shutil.which("setpriv")
    need(setpriv is not None, "needs setpriv (util-linux)")
    code = (
        "from jepsy.control.local import LocalRemote\n"
        "from jepsy.errors import SetupError\n"
        "try:\n    LocalRemote(cluster='jrq', subnet='10.91.21.0/24').setup()\n"
        "except SetupError as e:\n    print(e)\n"
    )
    p = subprocess.run(
        [
            str(setpriv),
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": "/tmp"},
    )
    assert "needs root" in p.stdout and "sudo" in p.stdout and "--remote docker" in p.stdout, p


@pytest.mark.integration
def test_overlapping_subnet_is_refused() -> None:
    need_root()
    with (
        LocalRemote(["n1"], cluster="jro", subnet="10.91.22.0/24"),
        pytest.raises(SetupError, match="overlaps"),
    ):
        LocalRemote(["n1"], cluster="jrp", subnet="10.91.22.128/25").setup()
    assert_clean("local", "jro")
    assert_clean("local", "jrp")


@pytest.mark.integration
def test_a_cluster_up_is_adopted_and_survives_the_test() -> None:
    need_root()
    up = LocalRemote(["n1", "n2"], cluster="jra", subnet="10.91.23.0/24", persistent=True)
    try:
        up.setup()  # what `jepsy cluster up` does; that process then exits
        assert load_state("jra") is not None
        test = LocalRemote(["n1", "n2"], cluster="jra", subnet="10.91.23.0/24")
        test.setup()
        pid = test.spawn("n1", ["sleep", "300"], log=f"{test.node_dir('n1')}/s.log")
        test.exec("n2", ["iptables", "-A", "INPUT", "-s", "10.91.23.11", "-j", "DROP"])
        test.teardown()
        assert leftovers("jra")["namespaces"] == ["jra-n1", "jra-n2"]
        assert_clean("none", "jra", [pid])
        assert "DROP" not in test.exec("n2", ["iptables", "-S", "INPUT"]).out
    finally:
        destroy("jra")
    assert_clean("local", "jra")
    assert load_state("jra") is None


@pytest.mark.integration
def test_down_removes_leftovers_of_a_killed_run(tmp_path: Path) -> None:
    need_root()
    code = (
        "import os, signal\n"
        "from jepsy.control.local import LocalRemote\n"
        "r = LocalRemote(['n1', 'n2', 'n3'], cluster='jrk', subnet='10.91.24.0/24')\n"
        "r.setup()\n"
        "pid = r.spawn('n2', ['sleep', '300'], log=r.node_dir('n2') + '/s.log')\n"
        "print(pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == -signal.SIGKILL, p
    pid = int(p.stdout.split()[0])
    left = leftovers("jrk")
    assert len(left["namespaces"]) == 3 and left["forward_rules"], left
    from click.testing import CliRunner

    from jepsy.cli import cli

    res = CliRunner().invoke(cli, ["cluster", "down", "--cluster", "jrk"])
    assert res.exit_code == 0, res.output
    assert "3 namespaces" in res.output and "1 processes" in res.output, res.output
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert_clean("local", "jrk", [pid])
    assert not Path("/var/lib/jepsy/jrk").exists()


@pytest.mark.integration
def test_leftover_of_a_leave_db_running_run_is_reused_then_removed() -> None:
    need_root()
    first = LocalRemote(["n1", "n2"], cluster="jrb", subnet="10.91.25.0/24")
    first.setup()  # ... and the run ends without teardown (--leave-db-running)
    pid = first.spawn("n1", ["sleep", "300"], log=f"{first.node_dir('n1')}/db.log")
    try:
        with LocalRemote(["n1", "n2"], cluster="jrb", subnet="10.91.25.0/24") as again:
            assert again.exec("n1", ["cat", f"/proc/{pid}/comm"]).out == "sleep"
        assert leftovers("jrb")["namespaces"] == []  # this run's teardown removed it
    finally:
        destroy("jrb")
    assert_clean("local", "jrb", [pid])


@pytest.mark.integration
def test_a_cluster_in_use_by_another_run_is_not_taken_over() -> None:
    need_root()
    code = (
        "import time\n"
        "from jepsy.control import running, sigterm_as_interrupt\n"
        "from jepsy.control.local import LocalRemote\n"
        "with sigterm_as_interrupt(), running(\n"
        "    LocalRemote(['n1', 'n2'], cluster='jru', subnet='10.91.26.0/24')):\n"
        "    print('up', flush=True)\n"
        "    time.sleep(120)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as other:
        try:
            assert other.stdout is not None and other.stdout.readline().strip() == "up"
            with pytest.raises(
                SetupError, match=rf"in use by another jepsy run \(pid {other.pid}\)"
            ):
                LocalRemote(["n1", "n2"], cluster="jru", subnet="10.91.26.0/24").setup()
            assert len(leftovers("jru")["namespaces"]) == 2  # untouched
        finally:
            other.send_signal(signal.SIGTERM)
            other.wait(timeout=60)
    assert_clean("local", "jru")
