"""jepsy.control: make_remote, argv checks, the shared error and pid helpers."""

from __future__ import annotations

from typing import Any

import pytest

from jepsy.control import (
    CLEANUP_ATTEMPTS,
    CLEANUP_TIMEOUT,
    ExecResult,
    NoopRemote,
    _stat_state,
    check_argv,
    cleanup_exec,
    make_remote,
    pid_alive,
    raise_for_exit,
)
from jepsy.control.local import LocalRemote
from jepsy.errors import ConfigError, RemoteError, RemoteTimeout


def test_make_remote_builds_each_kind_without_touching_anything() -> None:
    r = make_remote("local", ["a", "b"], cluster="jrm", subnet="10.91.80.0/24")
    assert isinstance(r, LocalRemote) and r.address("b") == "10.91.80.12"
    assert isinstance(make_remote("noop", ["x"]), NoopRemote)
    pytest.importorskip("docker")
    d = make_remote("docker", ["a"], cluster="jrm", subnet="10.91.81.0/24")
    assert d.address("a") == "10.91.81.11"
    s = make_remote("ssh", ["a"], hosts={"a": "192.0.2.1"}, strict_host_key_checking=False)
    assert s.address("a") == "192.0.2.1"


def test_make_remote_rejects_unknown_kinds_and_options() -> None:
    with pytest.raises(ConfigError, match="unknown remote 'vm'"):
        make_remote("vm", ["n1"])
    with pytest.raises(ConfigError, match=r"unknown option\(s\) colour for the local remote"):
        make_remote("local", ["n1"], colour="red")
    with pytest.raises(ConfigError, match="noop remote takes no options"):
        make_remote("noop", ["n1"], cluster="x")


def test_argv_must_be_a_list_of_strings() -> None:
    assert check_argv("n1", ["a", "b c"]) == ("a", "b c")
    for bad in ("echo hi", [], ["ok", 3]):
        with pytest.raises(ConfigError, match="n1: argv"):
            check_argv("n1", bad)  # type: ignore[arg-type]


def test_one_error_names_node_command_exit_code_and_output() -> None:
    ok = ExecResult(node="n1", argv=("true",), exit_code=0, stdout=b"", stderr=b"")
    assert raise_for_exit(ok) is ok
    bad = ExecResult(node="n2", argv=("ls", "a b"), exit_code=2, stdout=b"o", stderr=b"e")
    with pytest.raises(RemoteError) as ei:
        raise_for_exit(bad)
    assert str(ei.value).splitlines() == [
        "n2: command exited with code 2",
        "  command: ls 'a b'",
        "  exit code: 2",
        "  stdout: o",
        "  stderr: e",
    ]


def test_stat_state_survives_odd_process_names() -> None:
    assert _stat_state(b"12 (a) b) c) T 1 2 3") == "T"
    assert _stat_state(b"12 (sleep) Z 1") == "Z"
    assert _stat_state(b"") == ""


def test_noop_remote_pid_is_never_alive() -> None:
    assert not pid_alive(NoopRemote(), "n1", 1)


def test_without_the_docker_sdk_one_clear_message() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['docker'] = None\n"
        "import jepsy, jepsy.cli\n"
        "from jepsy.control import make_remote\n"
        "from jepsy.errors import SetupError\n"
        "try:\n    make_remote('docker', ['n1'], cluster='jrx').setup()\n"
        "except SetupError as e:\n    print(e)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "the docker remote needs the docker SDK: pip install 'jepsy[docker]'"


class FlakyRemote(NoopRemote):
    """Records each exec (argv, timeout); the first ``fail`` calls whose argv
    starts with ``match`` raise ``error`` (as a loaded SSH host does)."""

    def __init__(self, *, fail: int, match: str = "", error: type[RemoteError] = RemoteTimeout):
        super().__init__(("n1",))
        self.fail, self.match, self.error = fail, match, error
        self.calls: list[tuple[tuple[str, ...], float]] = []

    def exec(self, node: str, argv: Any, **kw: Any) -> ExecResult:  # type: ignore[override]
        self.calls.append((tuple(argv), kw.get("timeout", 60.0)))
        if tuple(argv)[: len(self.match.split())] == tuple(self.match.split()) and self.fail > 0:
            self.fail -= 1
            raise self.error("command did not finish within 60 s (killed)", node=node)
        return ExecResult(node=node, argv=tuple(argv), exit_code=0, stdout=b"42", stderr=b"")


def test_cleanup_commands_get_a_long_timeout_and_bounded_retries() -> None:
    assert CLEANUP_TIMEOUT >= 60 and CLEANUP_ATTEMPTS >= 2
    # a timeout, then a dropped connection: retried, then it succeeds
    r = FlakyRemote(fail=1)
    assert cleanup_exec(r, "n1", ["rm", "-f", "x"], backoff=0).exit_code == 0
    assert r.calls == [(("rm", "-f", "x"), CLEANUP_TIMEOUT)] * 2
    r = FlakyRemote(fail=CLEANUP_ATTEMPTS - 1, error=RemoteError)
    assert cleanup_exec(r, "n1", ["rm", "-f", "x"], backoff=0).exit_code == 0
    # never more than `attempts` tries: then the last error is raised
    r = FlakyRemote(fail=100)
    with pytest.raises(RemoteTimeout):
        cleanup_exec(r, "n1", ["rm", "-f", "x"], attempts=3, backoff=0)
    assert len(r.calls) == 3
    # a command that ran and failed is not repeated
    calls = []

    class Fails(NoopRemote):
        def exec(self, node: str, argv: Any, **kw: Any) -> ExecResult:  # type: ignore[override]
            calls.append(argv)
            return ExecResult(node=node, argv=tuple(argv), exit_code=1, stdout=b"", stderr=b"")

    assert cleanup_exec(Fails(), "n1", ["rmdir", "d"]).exit_code == 1
    assert len(calls) == 1


def test_daemon_stop_survives_a_slow_rm_of_its_pidfile() -> None:
    """The flake: `rm -f <pidfile>` over SSH timed out under load, failing
    the DB's teardown.  It now gets the cleanup timeout and is retried."""
    from jepsy.dbs._daemon import Daemon

    d = Daemon(node="n1", name="x", argv=["x"], directory="/d")
    r = FlakyRemote(fail=2, match="rm -f")
    # (the pid NoopRemote's "process" 42 is never alive: stop does not wait)
    d.stop(r)
    rms = [c for c in r.calls if c[0][:2] == ("rm", "-f")]
    assert rms == [(("rm", "-f", "/d/x.pid"), CLEANUP_TIMEOUT)] * 3
