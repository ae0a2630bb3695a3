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

from jepsy.control import pid_alive, pid_state, signal_pid
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


# ---------------------------------------------------------------- kill safety
# Namespaces isolate the network only: every process of the machine shares
# one PID space with the nodes.  Cleanup and faults must kill only what lives
# in our own namespaces, never anything else (dockerd was SIGKILLed once).


def _host_sleeper() -> subprocess.Popen[bytes]:
    """A real process outside every namespace of ours (in the host's)."""
    return subprocess.Popen(["sleep", "300"], start_new_session=True)


def _assert_alive(p: subprocess.Popen[bytes]) -> None:
    assert p.poll() is None, f"pid {p.pid} (outside the cluster) was killed"
    state = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert state not in ("Z", "X"), state


@pytest.mark.integration
def test_destroy_kills_the_namespace_processes_and_nothing_outside() -> None:
    need_root()
    outside = _host_sleeper()
    try:
        r = LocalRemote(["n1", "n2"], cluster="jrkill", subnet="10.91.90.0/24")
        r.setup()
        inside = r.spawn("n1", ["sleep", "300"], log=f"{r.node_dir('n1')}/s.log")
        # a process of the node that teardown did not spawn (nohup'd away)
        r.exec("n2", ["sh", "-c", "setsid sleep 301 >/dev/null 2>&1 < /dev/null &"])
        removed = destroy("jrkill")
        assert str(inside) in removed["processes"] and len(removed["processes"]) == 2, removed
        assert str(outside.pid) not in removed["processes"]
        _assert_alive(outside)
        r.teardown()
        _assert_alive(outside)
        assert_clean("local", "jrkill", [inside])
    finally:
        destroy("jrkill")
        outside.kill()
        outside.wait()


@pytest.mark.integration
def test_a_namespace_name_pointing_at_the_host_namespace_kills_nothing() -> None:
    """``ip netns attach jrhost-n1 <host pid>`` makes a cluster "namespace" that
    is the machine's own: killing "its processes" would kill every process on
    the machine.  It must be refused."""
    need_root()
    from jepsy.control.local import _namespace_ids, _pids_in

    outside = _host_sleeper()
    try:
        subprocess.run(
            ["ip", "netns", "attach", "jrhost-n1", str(outside.pid)], check=True, timeout=30
        )
        assert leftovers("jrhost")["namespaces"] == ["jrhost-n1"]
        # Checked without killing first: if this ever regressed, destroy below
        # would SIGKILL the whole machine.
        assert _namespace_ids(["jrhost-n1"]) == set()
        assert _pids_in(["jrhost-n1"]) == []
        removed = destroy("jrhost")
        assert removed["processes"] == []
        assert removed["namespaces"] == ["jrhost-n1"]  # the name is gone, nothing else
        _assert_alive(outside)
        assert os.path.exists("/proc/1")
    finally:
        subprocess.run(["ip", "netns", "del", "jrhost-n1"], capture_output=True, timeout=30)
        outside.kill()
        outside.wait()
    assert leftovers("jrhost")["namespaces"] == []


@pytest.mark.integration
def test_teardown_never_signals_a_dead_daemons_reused_pid() -> None:
    """A daemon spawned, then killed by a fault and reaped: its pid is free,
    and (pid_max is 32768 here) soon another process's, e.g. dockerd's.
    Teardown must not SIGKILL that pid.  The reuse is staged: the dead
    daemon's record is moved to the pid of a live process outside."""
    need_root()
    outside = _host_sleeper()
    try:
        with LocalRemote(["n1"], cluster="jrreuse", subnet="10.91.91.0/24") as r:
            pid = r.spawn("n1", ["sleep", "300"], log=f"{r.node_dir('n1')}/s.log")
            live = r.spawn("n1", ["sleep", "302"], log=f"{r.node_dir('n1')}/t.log")
            assert signal_pid(r, "n1", pid, "KILL")
            deadline = time.monotonic() + 10
            while r._spawned[pid].returncode is None:  # the reaper thread waited for it
                assert time.monotonic() < deadline, "killed daemon not reaped"
                time.sleep(0.01)
            # the reaped daemon's pid now "belongs" to the process outside
            with r._lock:
                r._spawned[outside.pid] = r._spawned.pop(pid)
                r._spawned_node[outside.pid] = r._spawned_node.pop(pid)
        _assert_alive(outside)
        assert_clean("local", "jrreuse", [live])
    finally:
        destroy("jrreuse")
        outside.kill()
        outside.wait()


@pytest.mark.integration
def test_signals_and_a_stale_pidfile_never_reach_a_process_outside_the_node() -> None:
    need_root()
    from jepsy.dbs._daemon import Daemon

    outside = _host_sleeper()
    try:
        with LocalRemote(["n1", "n2"], cluster="jrstale", subnet="10.91.92.0/24") as r:
            # signal_pid and pid_alive work on the node's own processes ...
            mine = r.spawn("n1", ["sleep", "300"], log=f"{r.node_dir('n1')}/s.log")
            assert pid_alive(r, "n1", mine)
            assert signal_pid(r, "n1", mine, "STOP") and pid_state(r, "n1", mine) == "T"
            assert signal_pid(r, "n1", mine, "CONT")
            # ... but a host pid (same PID space) is not the node's: not alive, not signalled
            for sig in ("STOP", "TERM", "KILL"):
                assert not signal_pid(r, "n1", outside.pid, sig)
            assert not pid_alive(r, "n1", outside.pid)
            assert pid_state(r, "n1", outside.pid) == ""
            # nor is another node's process
            assert not pid_alive(r, "n2", mine) and not signal_pid(r, "n2", mine, "KILL")
            assert pid_alive(r, "n1", mine)
            for bad in (0, 1, -1):
                with pytest.raises(ConfigError, match="refusing"):
                    signal_pid(r, "n1", bad, "KILL")
            # A pidfile left by a dead daemon whose pid is now another process's:
            # start() does not take it for the daemon, stop() does not kill it.
            d = Daemon(node="n1", name="dmn", argv=["sleep", "303"], directory=r.node_dir("n1"))
            Path(d.pidfile).write_text(f"{outside.pid}\n")
            assert not d.running(r)
            d.stop(r)
            _assert_alive(outside)
            assert not Path(d.pidfile).exists()
            Path(d.pidfile).write_text("1\n")
            assert d.pid(r) is None
            new = d.start(r)
            assert new != outside.pid and d.running(r)
            d.stop(r)
            assert not d.running(r)
        _assert_alive(outside)
        assert_clean("local", "jrstale", [mine, new])
    finally:
        destroy("jrstale")
        outside.kill()
        outside.wait()
