"""ZooKeeper ensemble on namespace hosts: setup, register ops with version
CAS, leader reporting, kill and restart of the leader."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jepsy.core import noop_test
from jepsy.dbs.zookeeper import JAR, ZooKeeperClient, ZooKeeperDB
from jepsy.history import Op
from tests.conftest import need, need_binary


def _op(f: str, value: object) -> Op:
    return Op(process=0, type="invoke", f=f, value=value)


def _all(fn: Any, nodes: Any) -> None:
    with ThreadPoolExecutor(len(nodes)) as ex:
        for f in [ex.submit(fn, n) for n in nodes]:
            f.result()


def test_config_names_every_member() -> None:
    from jepsy.control import NoopRemote

    t = noop_test(nodes=("a", "b", "c"), remote=NoopRemote(("a", "b", "c")))
    cfg = ZooKeeperDB().config(t, "b")
    assert "server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888" in cfg
    assert "clientPortAddress=b" in cfg


@pytest.mark.integration
@pytest.mark.slow
def test_zookeeper_ensemble_ops_leader_kill() -> None:
    import os

    need_binary("java")
    need(os.path.exists(JAR), f"needs {JAR} (apt-get install zookeeper)")
    from tests.remotes import cluster

    with cluster("local", name="jdzk", subnet="10.93.3.0/24", nodes=3) as r:
        db = ZooKeeperDB()
        t = noop_test(name="jdzk", nodes=("n1", "n2", "n3"), remote=r, db=db)
        opened: list[Any] = []

        def client(node: str, **kw: Any) -> Any:
            c = ZooKeeperClient(**kw).open(t, node)
            opened.append(c)
            return c

        try:
            _all(lambda n: db.setup(t, n), t.nodes)
            leaders = db.primaries(t)
            assert len(leaders) == 1
            c = client("n2")
            assert c.invoke(t, _op("read", ["a", None])).value == ["a", None]
            assert c.invoke(t, _op("write", ["a", 1])).type == "ok"
            assert client("n3").invoke(t, _op("read", ["a", None])).value == ["a", 1]
            assert c.invoke(t, _op("cas", ["a", [1, 2]])).type == "ok"
            bad = c.invoke(t, _op("cas", ["a", [1, 3]]))
            assert (bad.type, bad.error) == ("fail", "cas-mismatch")
            missing = c.invoke(t, _op("cas", ["b", [1, 3]]))
            assert (missing.type, missing.error) == ("fail", "NoNodeError")
            plain = client("n1", linearizable_reads=False)
            assert plain.invoke(t, _op("read", ["a", None])).value == ["a", 2]
            # kill the leader: the other two elect a new one and keep serving
            leader = leaders[0]
            db.kill(t, leader)
            other = next(n for n in t.nodes if n != leader)
            deadline = time.monotonic() + 20
            while not [p for p in db.primaries(t) if p != leader]:
                assert time.monotonic() < deadline, "no new leader"
                time.sleep(0.2)
            w = client(other)
            deadline = time.monotonic() + 10
            while w.invoke(t, _op("write", ["a", 4])).type != "ok":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            db.start(t, leader)
            deadline = time.monotonic() + 30
            while client(leader).invoke(t, _op("read", ["a", None])).value != ["a", 4]:
                assert time.monotonic() < deadline, "restarted member never caught up"
                time.sleep(0.3)
            assert "QuorumPeer" in Path(db.log_files(t, leader)[0]).read_text()
        finally:
            for c in opened:
                c.close(t)
            _all(lambda n: db.teardown(t, n), t.nodes)
        for n in t.nodes:
            assert not db._daemon(t, n).running(r)
