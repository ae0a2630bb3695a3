"""The clock shim and the clock nemesis's rules (no cluster needed).

The shim is compiled here with gcc and run under real programs (``date``,
``python3``); the on-node path is in test_nemesis_integration.py."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from jepsy.control import NoopRemote
from jepsy.core import noop_test
from jepsy.errors import ConfigError
from jepsy.nemeses import clock
from tests.conftest import need_binary


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = need_binary("gcc")
    out = tmp_path_factory.mktemp("shim") / "clockshim.so"
    subprocess.run(
        [
            cc,
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-shared",
            "-fPIC",
            "-o",
            str(out),
            str(clock.SHIM_SOURCE),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def run(shim: Path, offset_file: Path, argv: list[str]) -> str:
    env = {**os.environ, "LD_PRELOAD": str(shim), clock.ENV_FILE: str(offset_file)}
    return subprocess.run(
        argv, env=env, capture_output=True, timeout=30, check=True
    ).stdout.decode()


def test_shim_source_ships_with_the_package() -> None:
    assert clock.SHIM_SOURCE.is_file()
    assert clock.SHIM_SOURCE.parent.name == "nemeses"


@pytest.mark.parametrize("offset", [3600.0, -7200.5, 0.0])
def test_date_under_the_shim_is_shifted(shim: Path, tmp_path: Path, offset: float) -> None:
    f = tmp_path / "offset"
    f.write_text(f"{offset}\n")
    got = float(run(shim, f, ["date", "+%s.%N"]))
    assert abs(got - time.time() - offset) < 1


def test_every_realtime_api_is_shifted_and_monotonic_is_not(shim: Path, tmp_path: Path) -> None:
    f = tmp_path / "offset"
    f.write_text("86400\n")
    code = (
        "import time, datetime, ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.time.restype = ctypes.c_long\n"
        "print(time.time(), time.clock_gettime(time.CLOCK_REALTIME), libc.time(None),"
        " datetime.datetime.now().timestamp(), time.monotonic())\n"
    )
    vals = [float(x) for x in run(shim, f, ["python3", "-c", code]).split()]
    now = time.time()
    for v in vals[:4]:
        assert abs(v - now - 86400) < 2, vals
    assert abs(vals[4] - time.monotonic()) < 2


def test_offset_changes_reach_a_running_process(shim: Path, tmp_path: Path) -> None:
    f = tmp_path / "offset"
    f.write_text("0\n")
    code = (
        "import sys, time\n"
        "for line in sys.stdin:\n"
        "    print(time.time() - time.monotonic(), flush=True)\n"
    )
    env = {**os.environ, "LD_PRELOAD": str(shim), clock.ENV_FILE: str(f)}
    p = subprocess.Popen(
        ["python3", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert p.stdin is not None and p.stdout is not None

        def sample() -> float:
            assert p.stdin is not None and p.stdout is not None
            p.stdin.write("x\n")
            p.stdin.flush()
            return float(p.stdout.readline())

        base = sample()
        f.write_text("500\n")
        time.sleep(0.25)
        assert abs(sample() - base - 500) < 1
        f.unlink()  # a missing file means no skew
        time.sleep(0.25)
        assert abs(sample() - base) < 1
    finally:
        if p.stdin is not None:
            p.stdin.close()
        p.wait(timeout=10)
        if p.stdout is not None:
            p.stdout.close()


def test_strobe_flips_between_two_offsets_then_stops(shim: Path, tmp_path: Path) -> None:
    f = tmp_path / "offset"
    f.write_text(f"10 1000 0.05 {int(time.time()) + 2}\n")
    code = (
        "import time\n"
        "seen = set()\n"
        "for _ in range(40):\n"
        "    seen.add(round((time.time() - time.monotonic()) / 100)); time.sleep(0.013)\n"
        "print(len(seen))\n"
    )
    assert run(shim, f, ["python3", "-c", code]).strip() == "2"
    f.write_text(f"10 1000 0.05 {int(time.time()) - 1}\n")  # strobe over: offset only
    got = float(run(shim, f, ["date", "+%s.%N"]))
    assert abs(got - time.time() - 10) < 1


def test_garbage_in_the_file_means_no_skew(shim: Path, tmp_path: Path) -> None:
    f = tmp_path / "offset"
    f.write_text("not a number\n")
    assert abs(float(run(shim, f, ["date", "+%s.%N"])) - time.time()) < 1


def test_system_mode_refused_on_shared_clock_remotes() -> None:
    n = clock.ClockNemesis(mode="system")
    with pytest.raises(ConfigError, match="could set the real clock of this machine"):
        n.setup(noop_test(remote=NoopRemote()))


def test_bad_op_values_complete_as_info_with_an_error() -> None:
    t = noop_test(remote=NoopRemote())
    n = clock.ClockNemesis(mode="shim")
    from jepsy.history import Op

    done = n.invoke(t, Op(process="nemesis", type="invoke", f="clock-bump", value=5))
    assert done.type == "info" and "clock-bump value must be" in done.error
    done = n.invoke(t, Op(process="nemesis", type="invoke", f="clock-strobe", value={"x": 1}))
    assert done.type == "info" and "clock-strobe value must be" in done.error
    done = n.invoke(t, Op(process="nemesis", type="invoke", f="clock-bump", value={"n9": 1}))
    assert "not among" in done.error
    done = n.invoke(
        t,
        Op(process="nemesis", type="invoke", f="clock-bump", value={"nodes": "one", "delta": "x"}),
    )
    assert done.type == "info" and "nothing done" in done.error


def test_daemon_env_only_when_the_clock_nemesis_runs() -> None:
    t = noop_test(remote=NoopRemote(), spec={"nemesis": ["partition"]})
    assert not clock.wants_clock(t)
    assert clock.daemon_env(t, "n1") == {}
    assert clock.wants_clock(noop_test(spec={"nemesis": "partition,clock"}))
    assert clock.wants_clock(noop_test(spec={"nemesis": ["kill", "clock"]}))
    assert not clock.wants_clock(noop_test())


class ShortFormDB:
    def __init__(self, supports: bool) -> None:
        self.supports_clock = supports

    def setup(self, test: object, node: str) -> None: ...

    def teardown(self, test: object, node: str) -> None: ...


def test_short_form_supports_clock_attribute() -> None:
    assert clock.clock_mode(ShortFormDB(True)) == "shim"
    with pytest.raises(ConfigError, match="cannot be skewed"):
        clock.clock_mode(ShortFormDB(False))
