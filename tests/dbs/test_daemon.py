"""jepsy.dbs._daemon on a real namespace host: pidfile, signals, readiness."""

from __future__ import annotations

import time

import pytest

from jepsy.control import NoopRemote
from jepsy.dbs._daemon import Daemon, ensure_packages, have_binary, tail, wait_ready, write_file
from jepsy.errors import SetupError


def test_wait_ready_is_bounded_and_names_what_it_waited_for() -> None:
    t0 = time.monotonic()
    with pytest.raises(SetupError, match="the moon"):
        wait_ready(lambda: False, timeout=0.3, what="the moon", interval=0.05)
    assert time.monotonic() - t0 < 2
    calls = iter([False, ValueError("not yet"), True])

    def probe() -> bool:
        x = next(calls)
        if isinstance(x, Exception):
            raise x
        return x

    assert wait_ready(probe, timeout=5, what="x", interval=0.01) < 5


def test_pidfile_path_and_log_default() -> None:
    d = Daemon(node="n1", name="srv", argv=["srv"], directory="/d")
    assert (d.pidfile, d.logfile) == ("/d/srv.pid", "/d/srv.log")
    assert d.pid(NoopRemote(("n1",))) is None


@pytest.mark.integration
def test_daemon_lifecycle_on_a_namespace_host() -> None:
    from tests.remotes import cluster

    with cluster("local", name="jddmn", subnet="10.93.5.0/24", nodes=1) as r:
        base = r.node_dir("n1") + "/dmn"
        d = Daemon(
            node="n1",
            name="sleeper",
            argv=["sh", "-c", 'echo "up $GREETING"; exec sleep 300'],
            directory=base,
            env={"GREETING": "hello"},
        )
        pid = d.start(r)
        try:
            assert d.pid(r) == pid and d.running(r)
            assert d.start(r) == pid  # already running: no second process
            wait_ready(lambda: "up hello" in tail(r, "n1", d.logfile), timeout=5, what="log")
            assert d.signal(r, "STOP")
            state = r.exec("n1", ["cat", f"/proc/{pid}/stat"]).out.rsplit(")", 1)[1].split()[0]
            assert state == "T"
            assert d.signal(r, "CONT")
        finally:
            d.stop(r, sig="TERM")
        assert not d.running(r) and d.pid(r) is None
        assert not d.signal(r, "KILL")  # nothing recorded any more
        # a daemon that exits at once is reported with its log
        bad = Daemon(node="n1", name="bad", argv=["sh", "-c", "echo boom; exit 3"], directory=base)
        bad.start(r)
        with pytest.raises(SetupError, match="boom"):
            wait_ready(lambda: False, timeout=5, what="bad", daemon=bad, remote=r, interval=0.01)
        write_file(r, "n1", base + "/sub/f.txt", "x\ny\n")
        assert r.exec("n1", ["cat", base + "/sub/f.txt"]).out == "x\ny"
        assert have_binary(r, "n1", "sh") and not have_binary(r, "n1", "jd-no-such-binary")
        ensure_packages(r, "n1", binaries=["sh"], packages=["jd-never-installed"])  # present: no-op
