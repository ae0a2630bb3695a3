"""SSHRemote specifics: host key checking and its opt-out, reconnecting after
a dropped connection, the connection pool under threads, sudo wrapping."""

from __future__ import annotations

import logging
import subprocess
import threading
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
