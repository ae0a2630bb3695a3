"""One suite, three backends: local namespaces, docker containers, SSH hosts.

Every test here runs on each remote (the ``remote`` fixture is parametrised)
and asserts the backends behave the same."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from jepsy.control import ExecResult, Remote, pid_alive, pid_state, signal_pid
from jepsy.errors import ConfigError, RemoteError, RemoteTimeout
from tests.conftest import need_binary
from tests.remotes import assert_clean, cluster, remote_fixture

pytestmark = pytest.mark.integration

SUBNETS = {"local": "10.91.1.0/24", "docker": "10.91.2.0/24", "ssh": "10.91.3.0/24"}
remote = remote_fixture("jr", SUBNETS, kinds=("local", "docker", "ssh"))

NASTY = ["a b", "it's", '"q"', "$HOME", "; rm -rf /tmp/nothing", "*", "\\", "", "ünï"]


def test_five_nodes_with_distinct_addresses(remote: Remote) -> None:
    assert list(remote.nodes()) == ["n1", "n2", "n3", "n4", "n5"]
    addrs = [remote.address(n) for n in remote.nodes()]
    assert len(set(addrs)) == 5
    for n in remote.nodes():
        out = remote.exec(n, ["ip", "-4", "-o", "addr", "show"]).out
        assert remote.address(n) in out, (n, out)


def test_exec_round_trip(remote: Remote) -> None:
    r = remote.exec("n3", ["echo", "hello"])
    assert isinstance(r, ExecResult)
    assert (r.node, r.exit_code, r.out, r.stderr) == ("n3", 0, "hello", b"")


def test_argv_is_never_reinterpreted_by_a_shell(remote: Remote) -> None:
    r = remote.exec("n1", ["printf", "%s\\n", *NASTY])
    assert r.stdout.decode().split("\n")[:-1] == NASTY


def test_stdin_and_env(remote: Remote) -> None:
    data = bytes(range(256)) * 64
    r = remote.exec("n2", ["cat"], stdin=data)
    assert r.stdout == data
    r = remote.exec("n2", ["sh", "-c", 'printf %s "$JEPSY_X"'], env={"JEPSY_X": "it's $x"})
    assert r.stdout == b"it's $x"


def test_nonzero_exit_raises_one_error_naming_everything(remote: Remote) -> None:
    argv = ["sh", "-c", "echo to-out; echo to-err >&2; exit 7"]
    with pytest.raises(RemoteError) as ei:
        remote.exec("n4", argv)
    e = ei.value
    assert (e.node, e.exit_code, e.argv) == ("n4", 7, argv)
    text = str(e)
    for part in ("n4", "exit code: 7", "to-out", "to-err", "echo to-out"):
        assert part in text
    r = remote.exec("n4", argv, check=False)
    assert (r.exit_code, r.out, r.err) == (7, "to-out", "to-err")


def test_timeout_raises_and_kills(remote: Remote) -> None:
    t0 = time.monotonic()
    with pytest.raises(RemoteTimeout) as ei:
        remote.exec("n1", ["sleep", "30"], timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert ei.value.node == "n1"
    # the remote is still usable afterwards
    assert remote.exec("n1", ["echo", "ok"]).out == "ok"


def test_string_argv_is_refused(remote: Remote) -> None:
    with pytest.raises(ConfigError, match="list of strings"):
        remote.exec("n1", "echo hi")  # type: ignore[arg-type]


def test_upload_download_round_trip(remote: Remote, tmp_path: Path) -> None:
    data = os.urandom(200_000) + b"\x00end"
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    target = f"{remote.node_dir('n2')}/sub dir/file.bin"
    remote.upload("n2", src, target)
    assert remote.exec("n2", ["wc", "-c", target]).out.split()[0] == str(len(data))
    back = tmp_path / "back.bin"
    remote.download("n2", target, back)
    assert back.read_bytes() == data
    with pytest.raises(RemoteError):
        remote.download("n2", f"{remote.node_dir('n2')}/missing", tmp_path / "x")


def test_upload_keeps_the_file_mode(remote: Remote, tmp_path: Path) -> None:
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho hello from $(hostname -I 2>/dev/null || echo node)\n")
    script.chmod(0o755)
    target = f"{remote.node_dir('n3')}/bin/hello.sh"
    remote.upload("n3", script, target)
    assert remote.exec("n3", [target]).out.startswith("hello from")


def test_calls_from_many_threads_at_once(remote: Remote) -> None:
    import threading

    got: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(3):
                node = remote.nodes()[(i + j) % 5]
                got.append(remote.exec(node, ["echo", f"{i}.{j}"], timeout=60).out)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, errors
    assert sorted(got) == sorted(f"{i}.{j}" for i in range(10) for j in range(3))


def test_spawn_signal_and_reap(remote: Remote) -> None:
    log = f"{remote.node_dir('n5')}/sleeper.log"
    pid = remote.spawn("n5", ["sh", "-c", "echo started; exec sleep 300"], log=log)
    assert pid > 0
    deadline = time.monotonic() + 5
    while "started" not in remote.exec("n5", ["cat", log]).out:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert pid_alive(remote, "n5", pid)
    assert signal_pid(remote, "n5", pid, "STOP")
    assert pid_state(remote, "n5", pid) == "T"
    assert signal_pid(remote, "n5", pid, "CONT")
    assert pid_state(remote, "n5", pid) in ("S", "R")
    assert signal_pid(remote, "n5", pid, "KILL")
    deadline = time.monotonic() + 5
    while pid_alive(remote, "n5", pid):
        assert time.monotonic() < deadline, "killed process still alive"
        time.sleep(0.02)
    assert not signal_pid(remote, "n5", 999_999_9, "KILL")


def test_spawn_with_cwd_and_env(remote: Remote) -> None:
    d = f"{remote.node_dir('n4')}/work dir"
    remote.exec("n4", ["mkdir", "-p", d])
    log = f"{remote.node_dir('n4')}/logs/env.log"
    remote.spawn(
        "n4", ["sh", "-c", 'echo "$(pwd)|$JEPSY_Y"'], log=log, env={"JEPSY_Y": "a b'c"}, cwd=d
    )
    deadline = time.monotonic() + 5
    while True:
        out = remote.exec("n4", ["cat", log], check=False).out
        if out:
            break
        assert time.monotonic() < deadline, "spawned command wrote nothing"
        time.sleep(0.05)
    assert out == f"{d}|a b'c"


def test_nodes_reach_each_other(remote: Remote) -> None:
    need_binary("redis-server")
    d = remote.node_dir("n2")
    remote.exec("n2", ["mkdir", "-p", d])
    addr = remote.address("n2")
    pid = remote.spawn(
        "n2",
        [
            "redis-server",
            "--port",
            "7391",
            "--bind",
            addr,
            "--protected-mode",
            "no",
            "--save",
            "",
            "--dir",
            d,
        ],
        log=f"{d}/redis.log",
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            r = remote.exec("n1", ["redis-cli", "-h", addr, "-p", "7391", "ping"], check=False)
            if r.out == "PONG":
                break
            assert time.monotonic() < deadline, r
            time.sleep(0.05)
    finally:
        signal_pid(remote, "n2", pid, "KILL")


@pytest.mark.parametrize("kind", ["local", "docker", "ssh"])
def test_cleanup_after_an_exception_leaves_nothing(kind: str) -> None:
    name = f"jrc{kind[0]}"
    pids: list[int] = []
    with (
        pytest.raises(RuntimeError, match="boom"),
        cluster(kind, name=name, subnet=f"10.91.{7 + 'lds'.index(kind[0])}.0/24", nodes=3) as r,
    ):
        pid = r.spawn("n1", ["sleep", "300"], log=f"{r.node_dir('n1')}/s.log")
        if kind != "docker":  # host pids (namespaces share the PID space)
            pids.append(pid)
        r.exec("n2", ["iptables", "-A", "INPUT", "-s", r.address("n3"), "-j", "DROP"])
        raise RuntimeError("boom")
    assert_clean(kind, name, pids)
