"""jepsy.control: make_remote, argv checks, the shared error and pid helpers."""

from __future__ import annotations

import pytest

from jepsy.control import (
    ExecResult,
    NoopRemote,
    _stat_state,
    check_argv,
    make_remote,
    pid_alive,
    raise_for_exit,
)
from jepsy.control.local import LocalRemote
from jepsy.errors import ConfigError, RemoteError


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
