"""Cleanup is a promise: an exception, Ctrl-C, SIGTERM or SIGKILL of the run
never leaves a namespace, bridge, FORWARD rule, container, network, paused
process or iptables rule of the run behind (after SIGKILL: once `jepsy
cluster down` ran)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from jepsy.cli import cli
from tests.remotes import NODE_IMAGE, assert_clean, need_backend

pytestmark = pytest.mark.integration

RUN = """
import sys, time
from jepsy.control import make_remote, running, sigterm_as_interrupt, signal_pid
kind, name, subnet = sys.argv[1:4]
opts = {"image": sys.argv[4]} if kind == "docker" else {}
with sigterm_as_interrupt(), running(make_remote(kind, ["n1", "n2", "n3"], cluster=name,
                                                 subnet=subnet, **opts)) as r:
    pid = r.spawn("n1", ["sleep", "300"], log=r.node_dir("n1") + "/sleep.log")
    signal_pid(r, "n1", pid, "STOP")      # a paused process
    r.exec("n2", ["iptables", "-A", "INPUT", "-s", r.address("n3"), "-j", "DROP"])
    print(pid, flush=True)
    time.sleep(120)
"""

CASES = [
    ("local", signal.SIGTERM, "10.91.40.0/24"),
    ("local", signal.SIGINT, "10.91.41.0/24"),
    ("local", signal.SIGKILL, "10.91.42.0/24"),
    ("docker", signal.SIGTERM, "10.91.43.0/24"),
    ("docker", signal.SIGKILL, "10.91.44.0/24"),
]


@pytest.mark.parametrize(
    ("kind", "sig", "subnet"), CASES, ids=[f"{k}-{s.name}" for k, s, _ in CASES]
)
def test_run_ends_clean(kind: str, sig: signal.Signals, subnet: str) -> None:
    need_backend(kind)
    name = f"jrz{kind[0]}{sig.value}"
    with subprocess.Popen(
        [sys.executable, "-c", RUN, kind, name, subnet, NODE_IMAGE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as p:
        try:
            assert p.stdout is not None and p.stderr is not None
            line = p.stdout.readline()
            assert line.strip().isdigit(), (line, p.stderr.read())
            pid = int(line)
            p.send_signal(sig)
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    if sig == signal.SIGKILL:
        res = CliRunner().invoke(cli, ["cluster", "down", "--remote", kind, "--cluster", name])
        assert res.exit_code == 0, res.output
        assert "nothing was left" not in res.output
    deadline = time.monotonic() + 5
    while kind == "local" and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert_clean(kind, name, [pid] if kind == "local" else [])
