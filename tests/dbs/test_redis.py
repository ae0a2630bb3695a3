"""Redis + Sentinel on namespace hosts: setup, every workload's ops, failover
after a partition of the primary, and the lost writes it causes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from jepsy import net
from jepsy.core import noop_test
from jepsy.dbs.redis import RedisClient, RedisDB
from jepsy.history import Op
from tests.conftest import need_binary


def _op(f: str, value: object) -> Op:
    return Op(process=0, type="invoke", f=f, value=value)


def _all(fn: Any, nodes: Any) -> None:
    with ThreadPoolExecutor(len(nodes)) as ex:
        for f in [ex.submit(fn, n) for n in nodes]:
            f.result()


@pytest.mark.integration
@pytest.mark.slow
def test_redis_sentinel_ops_failover_and_lost_writes() -> None:
    need_binary("redis-server")
    need_binary("redis-sentinel")
    from tests.remotes import cluster

    with cluster("local", name="jdredis", subnet="10.93.2.0/24", nodes=3) as r:
        db = RedisDB()
        t = noop_test(name="jdredis", nodes=("n1", "n2", "n3"), remote=r, db=db)
        opened: list[Any] = []

        def client(workload: str, node: str) -> Any:
            c = RedisClient(workload=workload, timeout=1.0).open(t, node)
            opened.append(c)
            return c

        try:
            _all(lambda n: db.setup(t, n), t.nodes)
            assert db.primaries(t) == ["n1"]
            reg = client("register", "n2")
            assert reg.invoke(t, _op("read", ["a", None])).value == ["a", None]
            assert reg.invoke(t, _op("write", ["a", 1])).type == "ok"
            assert reg.invoke(t, _op("cas", ["a", [1, 2]])).type == "ok"
            assert reg.invoke(t, _op("cas", ["a", [1, 3]])).type == "fail"
            assert reg.invoke(t, _op("read", ["a", None])).value == ["a", 2]
            cnt = client("counter", "n3")
            for d in (2, 3):
                assert cnt.invoke(t, _op("add", d)).type == "ok"
            assert cnt.invoke(t, _op("read", None)).value == 5
            q = client("queue", "n1")
            for v in (1, 2, 3):
                assert q.invoke(t, _op("enqueue", v)).type == "ok"
            assert q.invoke(t, _op("dequeue", None)).value == 1
            assert q.invoke(t, _op("drain", None)).value == [2, 3]
            empty = q.invoke(t, _op("dequeue", None))
            assert (empty.type, empty.error) == ("fail", "empty")

            # Partition the primary n1 away: its clients keep writing to it.
            minority = client("set", "n1")
            majority = client("set", "n2")
            assert minority.invoke(t, _op("add", 0)).type == "ok"
            net.partition(r, net.complete_grudge([["n1"], ["n2", "n3"]]))
            acked_on_old: list[int] = []
            deadline = time.monotonic() + 20
            new_primary: list[str] = []
            i = 1
            while time.monotonic() < deadline:
                if minority.invoke(t, _op("add", i)).type == "ok":
                    acked_on_old.append(i)
                i += 1
                new_primary = [p for p in db.primaries(t) if p != "n1"]
                if new_primary and len(acked_on_old) >= 5:
                    break
                time.sleep(0.05)
            assert new_primary, "sentinels did not fail over"
            assert acked_on_old, "the isolated primary acknowledged nothing"
            # the majority's clients follow their sentinel to the new primary
            # (once that sentinel has heard of the failover)
            deadline = time.monotonic() + 10
            while True:
                done = majority.invoke(t, _op("add", 1000))
                if majority.primary == f"{r.address(new_primary[0])}:6379":
                    break
                assert time.monotonic() < deadline, "n2's sentinel never named the new primary"
                majority.close(t)
                time.sleep(0.2)
            assert done.type == "ok"
            net.heal(r)
            # After the heal the old primary becomes a replica and drops its writes.
            deadline = time.monotonic() + 40
            while db.primaries(t) != new_primary:
                assert time.monotonic() < deadline, f"old primary not demoted: {db.primaries(t)}"
                time.sleep(0.5)
            reader = client("set", "n3")
            deadline = time.monotonic() + 20
            final: list[int] = []
            while time.monotonic() < deadline:
                got = reader.invoke(t, _op("read", None))
                if got.type == "ok" and 1000 in got.value:
                    final = got.value
                    break
                time.sleep(0.2)
            assert 1000 in final, (got, reader.primary, new_primary)
            lost = [v for v in acked_on_old if v not in final]
            assert lost, f"expected acknowledged writes to be lost; final read {final}"
            assert set(db.log_files(t, "n1")) == {
                f"{r.node_dir('n1')}/redis/redis.log",
                f"{r.node_dir('n1')}/redis/sentinel.log",
            }
            # kill / start / pause / resume act on redis-server by pid
            db.kill(t, "n3")
            assert not db._server(t, "n3").running(r)
            db.start(t, "n3")
            assert db._server(t, "n3").running(r)
            db.pause(t, "n2")
            assert (
                r.exec("n2", ["cat", f"/proc/{db._server(t, 'n2').pid(r)}/stat"]).out.split(") ")[
                    1
                ][0]
                == "T"
            )
            db.resume(t, "n2")
        finally:
            for c in opened:
                c.close(t)
            net.heal(r)
            _all(lambda n: db.teardown(t, n), t.nodes)
        for n in t.nodes:
            assert not db._server(t, n).running(r)
            assert not db._sentinel(t, n).running(r)


@pytest.mark.integration
def test_redis_runs_under_the_clock_shim_when_the_clock_nemesis_is_on() -> None:
    need_binary("redis-server")
    need_binary("redis-sentinel")
    need_binary("gcc")
    import redis

    from jepsy.nemeses.clock import write_offset
    from tests.remotes import cluster

    with cluster("local", name="jdrclk", subnet="10.93.4.0/24", nodes=1) as r:
        db = RedisDB()
        t = noop_test(nodes=("n1",), remote=r, db=db, spec={"nemesis": ["clock"]})
        try:
            db.setup(t, "n1")
            c = redis.Redis(host=r.address("n1"), port=6379, socket_timeout=2)
            before = c.time()[0]
            write_offset(r, "n1", 3600)
            time.sleep(0.3)  # the shim rereads its offset file at most every 100 ms
            after = c.time()[0]
            c.close()
            assert 3590 <= after - before <= 3610
        finally:
            write_offset(r, "n1", 0)
            db.teardown(t, "n1")
