"""Real ``jepsy test`` subprocesses: SIGINT cleans up and checks, SIGKILL keeps the history,
a second SIGINT aborts cleanup with a warning naming what was left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jepsy.history import read_history

pytestmark = pytest.mark.slow


def _start(store: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jepsy", "test", "--db", "memory", "--store", str(store), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for_ops(store: Path, n: int = 20, timeout: float = 30.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = store / "latest" / "history.jsonl"
        if h.exists() and h.read_bytes().count(b"\n") >= n:
            return h.resolve().parent
        time.sleep(0.1)
    raise AssertionError(f"no ops recorded under {store} within {timeout}s")


def _finish(p: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"jepsy test did not exit; stderr:\n{err}") from None
    return p.returncode, out, err


def test_sigint_stops_cleans_up_and_checks(tmp_path: Path) -> None:
    p = _start(tmp_path, "--workload", "register", "--time-limit", "60", "--rate", "300")
    run = _wait_for_ops(tmp_path)
    time.sleep(1.0)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    code, out, err = _finish(p)
    assert code == 0, err
    assert time.monotonic() - t0 < 30
    assert "verdict: valid" in out
    results = json.loads((run / "results.json").read_text())
    assert results["valid"] is True
    h = read_history(run / "history.jsonl")
    assert all(c is not None for _, c in h.pairs())
    assert "interrupted by SIGINT" in (run / "jepsy.log").read_text()


def test_sigint_on_an_invalid_run_exits_1(tmp_path: Path) -> None:
    p = _start(
        tmp_path, "--workload", "register", "--time-limit", "60", "--memory-bug", "lost-writes"
    )
    _wait_for_ops(tmp_path, n=2000)
    p.send_signal(signal.SIGTERM)
    code, _, err = _finish(p)
    assert code == 1, err


def test_sigkill_leaves_a_readable_history(tmp_path: Path) -> None:
    p = _start(tmp_path, "--workload", "register", "--time-limit", "60", "--rate", "2000")
    run = _wait_for_ops(tmp_path, n=500)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    raw = (run / "history.jsonl").read_bytes()
    lines = raw.split(b"\n")
    complete = lines[:-1]  # the part after the last newline is empty or torn
    for ln in complete:
        json.loads(ln)  # every newline-terminated line is a whole op
    h = read_history(run / "history.jsonl")
    assert len(h) == len(complete) >= 500
    # `jepsy check` reads it (pending ops at the kill are fine) ...
    out = subprocess.run(
        [sys.executable, "-m", "jepsy", "check", "--independent", str(run / "history.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # ... and `jepsy analyze` re-checks the run with its own checkers
    out = subprocess.run(
        [sys.executable, "-m", "jepsy", "analyze", str(run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (run / "results.json").is_file()


def test_second_sigint_aborts_cleanup_and_says_what_was_left(tmp_path: Path) -> None:
    wl = tmp_path / "slow_final.py"
    wl.write_text(
        "from jepsy import generator as gen\n"
        "from jepsy.workloads.register import generator, checker\n"
        "from jepsy.workloads.core import Workload\n"
        "from jepsy.dbs.memory import MemoryClient\n"
        "workload = Workload(name='register', doc='register, then a 30 s final sleep',\n"
        "    ops={}, generator=generator, checker=checker,\n"
        "    final_generator=lambda opts: gen.clients(gen.sleep(30)),\n"
        "    client=lambda opts: MemoryClient('register'))\n"
    )
    store = tmp_path / "store"
    p = _start(store, "--workload", str(wl), "--time-limit", "1", "--rate", "100")
    run = _wait_for_ops(store, n=10)
    # wait for the final phase (cleanup) to begin
    deadline = time.monotonic() + 30
    while "main phase over" not in (run / "jepsy.log").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    code, _, err = _finish(p)
    assert code == 130, err
    assert "cleanup aborted" in err
    assert "DB maybe still running" in err or "nemesis" in err
    assert not (run / "results.json").exists()
    read_history(run / "history.jsonl")  # intact
