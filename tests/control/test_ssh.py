"""SSHRemote specifics: host key checking and its opt-out, reconnecting after
a dropped connection, the connection pool under threads, sudo wrapping."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from jepsy.control.ssh import SSHRemote
from jepsy.errors import SetupError
from tests.remotes import cluster


def test_commands_are_quoted_once_and_sudo_wraps_them() -> None:
    r = SSHRemote(["n1"], strict_host_key_checking=False, sudo=True)
    cmd, prefix = r._command(["echo", "a b", "$X"], 5, {"K": "v w"})
    assert cmd == "sudo -n -- timeout -s KILL 5 env 'K=v w' echo 'a b' '$X'"
    assert prefix == b""
    r = SSHRemote(["n1"], strict_host_key_checking=False, sudo=True, password="pw")
    cmd, prefix = r._command(["id"], None, None)
    assert (cmd, prefix) == ("sudo -S -p '' -- id", b"pw\n")


@pytest.fixture(scope="module")
def ssh() -> Iterator[Any]:
    with cluster("ssh", name="jrh", subnet="10.91.50.0/24", nodes=2) as r:
        yield r


def _opts(ssh: Any, **changes: Any) -> dict[str, Any]:
    return {**ssh.ssh_opts, **changes}


@pytest.mark.integration
def test_unknown_host_key_is_refused(ssh: Any, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(SetupError, match="known_hosts") as ei:
        SSHRemote(["n1", "n2"], **_opts(ssh, known_hosts=str(empty))).setup()
    assert "--strict-host-key-checking no" in str(ei.value)
    with pytest.raises(SetupError, match="does not exist"):
        SSHRemote(["n1", "n2"], **_opts(ssh, known_hosts=str(tmp_path / "missing"))).setup()


@pytest.mark.integration
def test_changed_host_key_is_refused(ssh: Any, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30
    )
    kt, key = Path(f"{other}.pub").read_text().split()[:2]
    bad = tmp_path / "known_hosts"
    bad.write_text("".join(f"{ssh.address(n)} {kt} {key}\n" for n in ssh.nodes()))
    with pytest.raises(SetupError, match="does not match"):
        SSHRemote(["n1", "n2"], **_opts(ssh, known_hosts=str(bad))).setup()


@pytest.mark.integration
def test_opting_out_of_host_key_checking_works_and_warns(
    ssh: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opts = _opts(ssh, known_hosts=str(tmp_path / "missing"), strict_host_key_checking=False)
    with (
        caplog.at_level(logging.WARNING, logger="jepsy.control.ssh"),
        SSHRemote(["n1", "n2"], **opts) as r,
    ):
        assert r.exec("n2", ["echo", "in"]).out == "in"
    assert any("host key checking is OFF" in m for m in caplog.messages)


@pytest.mark.integration
def test_reconnects_after_the_connection_drops(ssh: Any) -> None:
    assert ssh.exec("n1", ["true"]).exit_code == 0
    # Kill the per-connection sshd processes serving us: a real dropped connection.
    listener = psutil.Process(ssh.sshd_pids["n1"])
    sessions = listener.children()  # the per-connection sshd processes
    assert sessions, "no sshd session process to kill"
    for p in sessions:
        p.kill()
    psutil.wait_procs(sessions, timeout=5)
    assert ssh.exec("n1", ["echo", "again"]).out == "again"
    assert ssh.exec("n1", ["echo", "and again"]).out == "and again"


@pytest.mark.integration
def test_pool_serves_concurrent_calls(ssh: Any) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(3):
                results.append(ssh.exec(f"n{1 + i % 2}", ["echo", f"{i}-{j}"]).out)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(results) == sorted(f"{i}-{j}" for i in range(8) for j in range(3))
    assert all(len(idle) <= ssh.pool_size for idle in ssh._idle.values())


@pytest.mark.integration
def test_a_node_that_stops_answering_raises_remote_error_in_bounded_time(ssh: Any) -> None:
    import os
    import signal
    import time

    from jepsy.errors import RemoteError

    with SSHRemote(["n1", "n2"], **_opts(ssh, connect_timeout=1.0)) as r:
        listener = psutil.Process(ssh.sshd_pids["n2"])
        sessions = listener.children()  # the per-connection sshd processes
        os.kill(listener.pid, signal.SIGSTOP)
        try:
            for p in sessions:
                p.kill()
            psutil.wait_procs(sessions, timeout=5)
            t0 = time.monotonic()
            with pytest.raises(RemoteError) as ei:
                r.exec("n2", ["true"], timeout=2)
            assert time.monotonic() - t0 < 10
            assert ei.value.node == "n2"
            assert r.exec("n1", ["echo", "fine"]).out == "fine"
        finally:
            os.kill(listener.pid, signal.SIGCONT)
        assert r.exec("n2", ["echo", "back"]).out == "back"


# ---------------------------------------------------------------- teardown


def _dirs(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*")) if base.exists() else []


@pytest.mark.integration
def test_teardown_removes_the_node_directories_it_created_and_only_those(
    ssh: Any, tmp_path: Path
) -> None:
    """The test hosts share this machine's filesystem.  A remote that made its
    node directories removes them (and base_dir, if it made that too); one
    that found them there leaves them."""
    base = tmp_path / "base"
    with SSHRemote(["n1", "n2"], **_opts(ssh, base_dir=str(base))) as r:
        assert _dirs(base) == ["n1", "n2"]
        r.exec(
            "n1",
            ["sh", "-c", 'mkdir -p "$1/etcd" && echo x > "$1/etcd/log"', "sh", r.node_dir("n1")],
        )
    assert not base.exists()
    # n1's directory was there before: it stays, with what was in it
    (base / "n1").mkdir(parents=True)
    (base / "n1" / "keep").write_text("mine")
    with SSHRemote(["n1", "n2"], **_opts(ssh, base_dir=str(base))) as r:
        assert _dirs(base) == ["n1", "n1/keep", "n2"]
    assert _dirs(base) == ["n1", "n1/keep"]
    with SSHRemote(["n1", "n2"], **_opts(ssh, base_dir=str(base), keep_files=True)):
        pass
    assert _dirs(base) == ["n1", "n1/keep", "n2"]


@pytest.mark.integration
def test_the_default_base_dir_is_not_left_behind(ssh: Any) -> None:
    """SSHRemote's default base_dir is /var/lib/jepsy: against hosts sharing this
    machine's filesystem (bench/cluster_ops.py did this) the node directories
    /var/lib/jepsy/n1 .. used to stay behind after teardown."""
    opts = _opts(ssh)
    del opts["base_dir"]
    before = {p for p in ("/var/lib/jepsy/n1", "/var/lib/jepsy/n2") if Path(p).exists()}
    with SSHRemote(["n1", "n2"], **opts) as r:
        assert r.node_dir("n1") == "/var/lib/jepsy/n1" and Path(r.node_dir("n2")).is_dir()
    after = {p for p in ("/var/lib/jepsy/n1", "/var/lib/jepsy/n2") if Path(p).exists()}
    assert after == before


@pytest.mark.integration
def test_teardown_retries_a_cleanup_command_that_times_out(
    ssh: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from jepsy.errors import RemoteTimeout

    base = tmp_path / "base"
    r = SSHRemote(["n1", "n2"], **_opts(ssh, base_dir=str(base)))
    r.setup()
    real = r.exec
    slow = {"left": 1}

    def exec_(node: str, argv: Any, **kw: Any) -> Any:
        if argv[0] == "rm" and slow["left"]:
            slow["left"] -= 1
            raise RemoteTimeout("command did not finish within 60 s (killed)", node=node)
        return real(node, argv, **kw)

    r.exec = exec_  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="jepsy.control"):
        r.teardown()
    assert not base.exists()
    assert any("retrying" in m for m in caplog.messages), caplog.messages


@pytest.mark.integration
def test_cleanup_exec_over_ssh_retries_a_command_that_hung(ssh: Any, tmp_path: Path) -> None:
    """A real hang over SSH: the first attempt sleeps past its timeout and is
    killed on the host; the retry goes through."""
    from jepsy.control import cleanup_exec
    from jepsy.errors import RemoteTimeout

    flag, target = tmp_path / "hang-once", tmp_path / "target"
    script = 'if [ -e "$1" ]; then rm -f "$1"; sleep 30; fi; rm -f "$2" && echo removed'
    flag.touch()
    target.touch()
    t0 = time.monotonic()
    r = cleanup_exec(
        ssh, "n1", ["sh", "-c", script, "sh", str(flag), str(target)], timeout=2, backoff=0
    )
    assert r.out == "removed" and not target.exists()
    assert time.monotonic() - t0 < 20
    flag.touch()
    with pytest.raises(RemoteTimeout):
        cleanup_exec(
            ssh, "n1", ["sh", "-c", script, "sh", str(flag), str(target)], timeout=2, attempts=1
        )


@pytest.mark.integration
def test_teardown_kills_its_daemons_but_not_a_process_that_reused_a_pid(ssh: Any) -> None:
    """SSHRemote.teardown kills what spawn started, by pid: a daemon that died
    earlier (killed by a fault) may have its pid reused by then.  Staged: the
    dead daemon's record is pointed at a live process outside the hosts."""
    from jepsy.control import pid_alive, signal_pid

    outside = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        with SSHRemote(["n1", "n2"], **ssh.ssh_opts) as r:
            live = r.spawn("n1", ["sleep", "300"], log=f"{r.node_dir('n1')}/live.log")
            dead = r.spawn("n2", ["sleep", "301"], log=f"{r.node_dir('n2')}/dead.log")
            assert pid_alive(r, "n1", live) and pid_alive(r, "n2", dead)
            assert signal_pid(r, "n2", dead, "KILL")
            deadline = time.monotonic() + 10
            while pid_alive(r, "n2", dead):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            ((pid, start),) = r._spawned["n2"]
            assert pid == dead and start.isdigit()
            r._spawned["n2"] = [(outside.pid, start)]  # its pid, "reused"
        assert outside.poll() is None, "teardown killed a process outside the hosts"
        assert not pid_alive(ssh, "n1", live)
    finally:
        outside.kill()
        outside.wait()


@pytest.mark.integration
def test_a_setup_that_fails_on_one_node_removes_what_it_made_on_the_others(
    ssh: Any, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    hosts = {"n1": ssh.address("n1"), "n2": "127.0.0.1"}  # nothing of ours answers there
    with pytest.raises(SetupError):
        SSHRemote(["n1", "n2"], **_opts(ssh, base_dir=str(base), hosts=hosts)).setup()
    assert not base.exists()
