"""etcd client against a real etcd member on loopback, and the DB on namespace hosts."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jepsy.core import noop_test
from jepsy.dbs.etcd import (
    Conn,
    EtcdClient,
    EtcdDB,
    EtcdError,
    Indeterminate,
    Refused,
    is_definite,
)
from jepsy.history import Op
from tests.conftest import need_binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def etcd_port() -> Iterator[int]:
    binary = need_binary("etcd")
    cport, pport = _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="jd-etcd-") as d:
        logf = open(Path(d) / "etcd.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                binary,
                "--name",
                "jd1",
                "--data-dir",
                f"{d}/data",
                "--listen-client-urls",
                f"http://127.0.0.1:{cport}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{cport}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{pport}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{pport}",
                "--initial-cluster",
                f"jd1=http://127.0.0.1:{pport}",
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
            ],
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            conn = Conn("127.0.0.1", cport, timeout=1)
            deadline = time.monotonic() + 20
            while True:
                try:
                    conn.post("/v3/kv/range", {"key": "eA=="})
                    break
                except (Refused, Indeterminate, EtcdError):
                    conn.close()
                    assert time.monotonic() < deadline, "etcd did not start"
                    time.sleep(0.05)
            conn.close()
            yield cport
        finally:
            proc.kill()
            proc.wait(10)
            logf.close()


_OPEN: list[Any] = []


def _client(port: int, workload: str = "register", **kw: Any) -> Any:
    c = EtcdClient(workload=workload, host="127.0.0.1", port=port, **kw).open(noop_test(), "n1")
    _OPEN.append(c)
    return c


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close(noop_test())


def _op(f: str, value: object, process: int = 0) -> Op:
    return Op(process=process, type="invoke", f=f, value=value)


@pytest.mark.integration
def test_register_read_write_cas(etcd_port: int) -> None:
    c = _client(etcd_port)
    t = noop_test()
    assert c.invoke(t, _op("read", ["r1", None])).value == ["r1", None]
    assert c.invoke(t, _op("write", ["r1", 3])).type == "ok"
    assert c.invoke(t, _op("read", ["r1", None])).value == ["r1", 3]
    ok = c.invoke(t, _op("cas", ["r1", [3, 4]]))
    assert ok.type == "ok"
    bad = c.invoke(t, _op("cas", ["r1", [3, 5]]))
    assert (bad.type, bad.error) == ("fail", "cas-mismatch")
    missing = c.invoke(t, _op("cas", ["nope", [0, 1]]))
    assert missing.type == "fail"
    assert c.invoke(t, _op("read", ["r1", None])).value == ["r1", 4]
    c.close(t)


@pytest.mark.integration
def test_serializable_reads_answer(etcd_port: int) -> None:
    c = _client(etcd_port, serializable_reads=True)
    t = noop_test()
    c.invoke(t, _op("write", ["s1", 7]))
    assert c.invoke(t, _op("read", ["s1", None])).value == ["s1", 7]


@pytest.mark.integration
def test_set_counter_and_list_append(etcd_port: int) -> None:
    t = noop_test()
    s = _client(etcd_port, "set")
    for v in (3, 1, 2):
        assert s.invoke(t, _op("add", v)).type == "ok"
    assert s.invoke(t, _op("read", None)).value == [1, 2, 3]

    c = _client(etcd_port, "counter")
    assert c.invoke(t, _op("read", None)).value == 0
    for n in (1, 5, -2):
        assert c.invoke(t, _op("add", n)).type == "ok"
    assert c.invoke(t, _op("read", None)).value == 4

    la = _client(etcd_port, "list-append")
    r = la.invoke(t, _op("txn", [["append", 1, 10], ["r", 1, None], ["append", 2, 20]]))
    assert r.type == "ok"
    assert r.value == [["append", 1, 10], ["r", 1, [10]], ["append", 2, 20]]
    r = la.invoke(t, _op("txn", [["r", 1, None], ["append", 1, 11], ["r", 2, None]]))
    assert r.value == [["r", 1, [10]], ["append", 1, 11], ["r", 2, [20]]]
    r = la.invoke(t, _op("txn", [["r", 1, None]]))
    assert r.value == [["r", 1, [10, 11]]]


@pytest.mark.integration
def test_errors_map_to_fail_and_info(etcd_port: int) -> None:
    t = noop_test()
    dead = _client(_free_port(), timeout=0.5)
    w = dead.invoke(t, _op("write", ["e", 1]))
    assert (w.type, w.error) == ("fail", "connection-refused")
    # A bad request is rejected by the gateway: definite.
    conn = Conn("127.0.0.1", etcd_port)
    with pytest.raises(EtcdError) as ei:
        conn.post("/v3/kv/put", {"key": 5})
    assert ei.value.status == 400 and is_definite(ei.value)
    conn.close()
    assert not is_definite(EtcdError(503, 14, "etcdserver: request timed out"))
    assert not is_definite(Indeterminate("timed out"))


def test_unknown_workload_is_a_config_error() -> None:
    from jepsy.errors import ConfigError

    c = _client(1, "bank")
    with pytest.raises(ConfigError, match="bank"):
        c.invoke(noop_test(), _op("read", None))


def _all_nodes(fn: Any, nodes: Any) -> None:
    with ThreadPoolExecutor(len(nodes)) as ex:
        for f in [ex.submit(fn, n) for n in nodes]:
            f.result()


@pytest.mark.integration
@pytest.mark.slow
def test_db_on_namespace_hosts_kill_pause_primaries() -> None:
    need_binary("etcd")
    from tests.remotes import cluster

    with cluster("local", name="jdetcd", subnet="10.93.1.0/24", nodes=3) as r:
        db = EtcdDB()
        t = noop_test(name="jdetcd", nodes=("n1", "n2", "n3"), remote=r, db=db)
        pids: list[int] = []
        try:
            t0 = time.monotonic()
            _all_nodes(lambda n: db.setup(t, n), t.nodes)
            assert time.monotonic() - t0 < 15
            d = db._daemon(t, "n1")
            pids = [p for n in t.nodes if (p := db._daemon(t, n).pid(r)) is not None]
            assert len(pids) == 3
            assert r.exec("n1", ["cat", f"/proc/{d.pid(r)}/comm"]).out == "etcd"
            c = _client_on(t, "n2")
            assert c.invoke(t, _op("write", ["x", 1])).type == "ok"
            assert _client_on(t, "n3").invoke(t, _op("read", ["x", None])).value == ["x", 1]
            leaders = db.primaries(t)
            assert len(leaders) == 1
            leader = leaders[0]
            db.kill(t, leader)
            assert not db._daemon(t, leader).running(r)
            other = next(n for n in t.nodes if n != leader)
            # the majority elects a new leader and keeps serving
            deadline = time.monotonic() + 10
            while not [p for p in db.primaries(t) if p != leader]:
                assert time.monotonic() < deadline, "no new leader"
                time.sleep(0.1)
            assert _client_on(t, other).invoke(t, _op("write", ["x", 2])).type == "ok"
            db.start(t, leader)
            assert db._daemon(t, leader).running(r)
            db._wait_serving(t, leader, db._daemon(t, leader))
            assert _client_on(t, leader).invoke(t, _op("read", ["x", None])).value == ["x", 2]
            # pause: a paused member does not answer; resume: it does again
            db.pause(t, "n1")
            pc = EtcdClient(timeout=0.5).open(t, "n1")
            _OPEN.append(pc)
            assert pc.invoke(t, _op("read", ["x", None])).type == "fail"
            w = pc.invoke(t, _op("write", ["x", 9]))
            assert (w.type, w.error) == ("info", "timeout")
            db.resume(t, "n1")
            db._wait_serving(t, "n1", db._daemon(t, "n1"))
            assert db.log_files(t, "n1") == [f"{r.node_dir('n1')}/etcd/etcd.log"]
            assert "became leader" in Path(db.log_files(t, leader)[0]).read_text() or any(
                "became leader" in Path(db.log_files(t, n)[0]).read_text() for n in t.nodes
            )
        finally:
            for c in _OPEN:
                c.close(t)
            _OPEN.clear()
            _all_nodes(lambda n: db.teardown(t, n), t.nodes)
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or _state(pid) in ("Z", "X")
        assert not Path(f"{r.node_dir('n1')}/etcd/data").exists()


def _client_on(t: Any, node: str) -> Any:
    c = EtcdClient().open(t, node)
    _OPEN.append(c)
    return c


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"
