"""The in-process memory DB: correct without bugs, wrong in the documented ways with them."""

from __future__ import annotations

import threading
import time

import pytest

from jepsy.core import noop_test
from jepsy.dbs import get_suite
from jepsy.dbs.memory import MemoryClient, MemoryDB, MemoryStore, NodeDown
from jepsy.errors import ClientError, ConfigError
from jepsy.history import Op


def test_store_semantics() -> None:
    s = MemoryStore()
    assert s.read("k") is None
    s.write("k", 1)
    assert s.cas("k", 1, 2) is True
    assert s.cas("k", 1, 3) is False
    assert s.read("k") == 2
    s.set_add("s", 3)
    s.set_add("s", 1)
    assert s.set_read("s") == [1, 3]


def test_stale_reads_return_the_previous_value() -> None:
    s = MemoryStore(bugs=["stale-reads"], bug_p=1.0)
    s.write("k", 1)
    s.write("k", 2)
    assert s.read("k") == 1


def test_lost_writes_are_acknowledged_and_dropped() -> None:
    s = MemoryStore(bugs=["lost-writes"], bug_p=1.0)
    s.write("k", 1)
    s.set_add("s", 5)
    assert s.read("k") is None and s.set_read("s") == []


def test_unknown_bug_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="stale-reads"):
        MemoryStore(bugs=["typo"])
    with pytest.raises(ConfigError):
        MemoryStore(bug_p=2)


def _client(db: MemoryDB, workload: str = "register", node: str = "n1") -> MemoryClient:
    return MemoryClient(workload).open(noop_test(db=db, op_timeout=5), node)


def test_client_register_ops() -> None:
    db = MemoryDB()
    c = _client(db)
    t = noop_test(db=db)
    w = c.invoke(t, Op(process=0, type="invoke", f="write", value=[7, 3]))
    assert w.type == "ok"
    r = c.invoke(t, Op(process=0, type="invoke", f="read", value=[7, None]))
    assert r.type == "ok" and r.value == [7, 3]
    bad = c.invoke(t, Op(process=0, type="invoke", f="cas", value=[7, [0, 1]]))
    assert bad.type == "fail"


def test_killed_node_refuses_definitely() -> None:
    db = MemoryDB()
    t = noop_test(db=db)
    c = _client(db, node="n2")
    db.kill(t, "n2")
    with pytest.raises(NodeDown) as e:
        c.invoke(t, Op(process=0, type="invoke", f="read", value=[1, None]))
    assert isinstance(e.value, ClientError) and e.value.definite
    db.start(t, "n2")
    assert c.invoke(t, Op(process=0, type="invoke", f="read", value=[1, None])).type == "ok"


def test_paused_node_stalls_until_resumed() -> None:
    db = MemoryDB()
    t = noop_test(db=db, op_timeout=5)
    c = _client(db, node="n3")
    db.pause(t, "n3")
    out: list[Op] = []
    th = threading.Thread(
        target=lambda: out.append(
            c.invoke(t, Op(process=0, type="invoke", f="read", value=[1, None]))
        )
    )
    th.start()
    time.sleep(0.2)
    assert not out  # stalled
    db.resume(t, "n3")
    th.join(2)
    assert out and out[0].type == "ok"


def test_client_needs_the_memory_db() -> None:
    with pytest.raises(ConfigError, match="--db memory"):
        MemoryClient("register").open(noop_test(), "n1")


def test_suite_registered() -> None:
    s = get_suite("memory")
    assert not s.needs_remote and {"register", "set"} <= s.workloads
    with pytest.raises(ConfigError, match="memory"):
        get_suite("no-such-db")
    with pytest.raises(ConfigError, match="supports"):
        s.make_client("bank", {})


def test_queue_and_list_transactions() -> None:
    s = MemoryStore()
    s.enqueue("q", 1)
    s.enqueue("q", 2)
    assert s.dequeue("q") == 1
    assert s.drain("q") == [2]
    assert s.drain("q") == []
    out = s.txn([["append", 1, 5], ["r", 1, None], ["append", 1, 6], ["r", 2, None]])
    assert out == [["append", 1, 5], ["r", 1, [5]], ["append", 1, 6], ["r", 2, []]]
    lossy = MemoryStore(bugs=["lost-writes"], bug_p=1.0)
    lossy.txn([["append", 1, 5]])
    assert lossy.txn([["r", 1, None]]) == [["r", 1, []]]


def test_client_queue_empty_is_fail() -> None:
    db = MemoryDB()
    t = noop_test(db=db)
    c = _client(db, workload="queue")
    done = c.invoke(t, Op(process=0, type="invoke", f="dequeue", value=None))
    assert done.type == "fail" and done.error == "empty"
