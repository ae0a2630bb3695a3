"""The counter, queue and list-append workloads: their generators (simulated)
and their checkers on tiny hand-made histories."""

from __future__ import annotations

from collections import Counter
from typing import Any

from jepsy.core import noop_test
from jepsy.generator import limit, simulate
from jepsy.history import History
from jepsy.workloads.core import get_workload
from jepsy.workloads.counter import CounterOps
from jepsy.workloads.list_append import Txns
from jepsy.workloads.queue import QueueOps


def _invokes(gen: Any, n: int = 300) -> list[Any]:
    ops = simulate(limit(n, gen), concurrency=4, nemesis=False, seed=7)
    return [op for op in ops if op.type == "invoke"]


def test_counter_ops_mix_reads_and_small_adds() -> None:
    ops = _invokes(CounterOps(read_fraction=0.3))
    fs = Counter(op.f for op in ops)
    assert set(fs) == {"add", "read"} and 50 < fs["read"] < 150
    assert all(1 <= op.value <= 5 for op in ops if op.f == "add")
    assert _invokes(CounterOps()) == _invokes(CounterOps())  # deterministic given the seed


def test_queue_enqueues_are_unique_and_increasing() -> None:
    ops = _invokes(QueueOps())
    enq = [op.value for op in ops if op.f == "enqueue"]
    assert enq == list(range(len(enq))) and len(enq) > 100
    assert any(op.f == "dequeue" for op in ops)


def test_list_append_values_unique_and_keys_retire() -> None:
    ops = _invokes(Txns(key_count=3, max_txn_length=3, max_writes_per_key=5), 400)
    appends = [(m[1], m[2]) for op in ops for m in op.value if m[0] == "append"]
    values = [v for _, v in appends]
    assert len(values) == len(set(values))
    per_key = Counter(k for k, _ in appends)
    assert max(per_key.values()) <= 5 and len(per_key) > 10
    assert all(1 <= len(op.value) <= 3 for op in ops)


def _check(workload: str, dicts: list[dict[str, Any]]) -> Any:
    w = get_workload(workload)
    h = History.from_dicts(dicts)
    return w.checker({}).check(noop_test(), h, {})


def test_counter_checker_flags_lost_increments() -> None:
    ok = [
        {"process": 0, "type": "invoke", "f": "add", "value": 2},
        {"process": 0, "type": "ok", "f": "add", "value": 2},
        {"process": 1, "type": "invoke", "f": "read", "value": None},
        {"process": 1, "type": "ok", "f": "read", "value": 2},
    ]
    assert _check("counter", ok).valid is True
    lost = [*ok[:3], {"process": 1, "type": "ok", "f": "read", "value": 0}]
    assert _check("counter", lost).valid is False


def test_queue_checker_flags_lost_elements() -> None:
    h = [
        {"process": 0, "type": "invoke", "f": "enqueue", "value": 1},
        {"process": 0, "type": "ok", "f": "enqueue", "value": 1},
        {"process": 0, "type": "invoke", "f": "enqueue", "value": 2},
        {"process": 0, "type": "ok", "f": "enqueue", "value": 2},
        {"process": 1, "type": "invoke", "f": "dequeue", "value": None},
        {"process": 1, "type": "ok", "f": "dequeue", "value": 1},
        {"process": 1, "type": "invoke", "f": "drain", "value": None},
        {"process": 1, "type": "ok", "f": "drain", "value": []},
    ]
    assert _check("queue", h).valid is False
    h[-1] = {"process": 1, "type": "ok", "f": "drain", "value": [2]}
    assert _check("queue", h).valid is True


def test_list_append_checker_flags_a_cycle() -> None:
    # T1 appends x=1 and reads y=[]; T2 appends y=1 and reads x=[]: G2 (write skew)
    # would be fine for snapshot isolation but not for serializability.
    h = [
        {
            "process": 0,
            "type": "invoke",
            "f": "txn",
            "value": [["append", "x", 1], ["r", "y", None]],
        },
        {
            "process": 1,
            "type": "invoke",
            "f": "txn",
            "value": [["append", "y", 1], ["r", "x", None]],
        },
        {"process": 0, "type": "ok", "f": "txn", "value": [["append", "x", 1], ["r", "y", []]]},
        {"process": 1, "type": "ok", "f": "txn", "value": [["append", "y", 1], ["r", "x", []]]},
        {"process": 2, "type": "invoke", "f": "txn", "value": [["r", "x", None], ["r", "y", None]]},
        {"process": 2, "type": "ok", "f": "txn", "value": [["r", "x", [1]], ["r", "y", [1]]]},
    ]
    assert _check("list-append", h).valid is False
    fine = [h[0], h[2], h[1], h[3]]
    fine[3] = {
        "process": 1,
        "type": "ok",
        "f": "txn",
        "value": [["append", "y", 1], ["r", "x", [1]]],
    }
    assert _check("list-append", fine).valid is True
